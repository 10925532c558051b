// The DeepSeekMoE router (deepseek-model.md, "Router"): scores, optional correction bias,
// group limiting, top-k, and the weights taken from the original scores.
#include <cmath>
#include <limits>

#include "mla/model.h"

namespace mla {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Index of the largest value in [begin, end) of v; the lowest index wins a tie.
int64_t argmax(const float* v, int64_t begin, int64_t end) {
  int64_t best = begin;
  for (int64_t i = begin + 1; i < end; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

void score(const RouterConfig& cfg, const float* z, float* s) {
  const int64_t e = cfg.num_experts;
  if (cfg.scoring == ScoringFunc::kSigmoid) {
    for (int64_t i = 0; i < e; ++i) s[i] = 1.0f / (1.0f + std::exp(-z[i]));
    return;
  }
  float top = z[0];
  for (int64_t i = 1; i < e; ++i) top = std::max(top, z[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < e; ++i) {
    s[i] = std::exp(z[i] - top);
    sum += s[i];
  }
  for (int64_t i = 0; i < e; ++i) s[i] /= sum;
}

// Keeps the topk_group best groups of c (group score: the max, or with a bias the sum of the two
// largest entries) and sets every entry of the other groups to -inf.
void limit_groups(const RouterConfig& cfg, bool biased, float* c) {
  const int64_t groups = cfg.n_group, per = cfg.num_experts / cfg.n_group;
  // On the stack (the config bounds n_group by 64), which keeps routing allocation-free.
  float group_score[64];
  bool keep[64] = {};
  for (int64_t g = 0; g < groups; ++g) {
    const float* v = c + g * per;
    const int64_t first = argmax(v, 0, per);
    float value = v[first];
    if (biased) {
      float second = kMinusInf;
      for (int64_t i = 0; i < per; ++i) {
        if (i != first) second = std::max(second, v[i]);
      }
      value += second;
    }
    group_score[g] = value;
  }
  for (int64_t t = 0; t < cfg.topk_group; ++t) {
    const int64_t best = argmax(group_score, 0, groups);
    keep[best] = true;
    group_score[best] = kMinusInf;
  }
  for (int64_t g = 0; g < groups; ++g) {
    if (keep[g]) continue;
    for (int64_t i = 0; i < per; ++i) c[g * per + i] = kMinusInf;
  }
}

}  // namespace

void route_tokens(const RouterConfig& cfg, const float* logits, const float* bias, int64_t n,
                  int32_t* experts, float* weights, float* scratch) {
  const int64_t e = cfg.num_experts, k = cfg.top_k;
  float* s = scratch;
  float* c = scratch + e;
  const bool grouped = cfg.method != TopkMethod::kGreedy && cfg.n_group > 1;
  for (int64_t t = 0; t < n; ++t) {
    score(cfg, logits + t * e, s);
    for (int64_t i = 0; i < e; ++i) c[i] = s[i] + (bias != nullptr ? bias[i] : 0.0f);
    if (grouped) limit_groups(cfg, bias != nullptr, c);
    int32_t* chosen = experts + t * k;
    float* w = weights + t * k;
    float sum = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t best = argmax(c, 0, e);
      chosen[j] = static_cast<int32_t>(best);
      w[j] = s[best];
      sum += w[j];
      c[best] = kMinusInf;  // the config guarantees k entries outside the dropped groups
    }
    const float scale = static_cast<float>(cfg.routed_scaling_factor);
    for (int64_t j = 0; j < k; ++j) {
      if (cfg.norm_topk_prob) w[j] /= sum;
      w[j] *= scale;
    }
  }
}

}  // namespace mla
