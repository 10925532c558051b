// Sampler (include/mla/sampler.h). Only the tokens a filter keeps are sorted, and only as far as
// the filter needs: top-p sorts the best tokens in growing chunks (std::nth_element, then a sort
// of the chunk) until their mass is reached, so a 129k vocabulary is not sorted at every token.
#include "mla/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>

#include "mla/error.h"

namespace mla {
namespace {

constexpr int64_t kMaxRepeatLastN = int64_t{1} << 20;

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void validate(const SamplerParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0)
    throw Error("sampler: temperature must be a finite number >= 0, got " + number(p.temperature));
  if (p.top_k < 0) throw Error("sampler: top_k must be >= 0, got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0 && p.top_p <= 1.0))
    throw Error("sampler: top_p must be in (0, 1], got " + number(p.top_p));
  if (!(p.min_p >= 0.0 && p.min_p <= 1.0))
    throw Error("sampler: min_p must be in [0, 1], got " + number(p.min_p));
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0.0)
    throw Error("sampler: repeat_penalty must be a finite number > 0, got " +
                number(p.repeat_penalty));
  if (p.repeat_last_n < 0 || p.repeat_last_n > kMaxRepeatLastN)
    throw Error("sampler: repeat_last_n must be in [0, " + std::to_string(kMaxRepeatLastN) +
                "], got " + std::to_string(p.repeat_last_n));
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
  validate(params_);
  history_.resize(static_cast<size_t>(params_.repeat_last_n));
}

void Sampler::reset(uint64_t seed) {
  rng_.seed(seed);
  params_.seed = seed;
  history_next_ = history_size_ = 0;
  kept_ = 0;
}

void Sampler::accept(std::span<const int32_t> tokens) {
  for (int32_t t : tokens) {
    if (t < 0) throw Error("sampler: token " + std::to_string(t) + " is negative");
    if (history_.empty()) continue;
    history_[history_next_] = t;
    history_next_ = (history_next_ + 1) % history_.size();
    history_size_ = std::min(history_size_ + 1, history_.size());
  }
}

std::span<const int32_t> Sampler::candidate_ids() const {
  return std::span<const int32_t>(order_.data(), kept_);
}

std::span<const double> Sampler::candidate_probs() const {
  return std::span<const double>(probs_.data(), kept_);
}

void Sampler::apply_penalty(std::span<const float> logits) {
  const size_t v = logits.size();
  std::copy(logits.begin(), logits.end(), work_.begin());
  if (params_.repeat_penalty == 1.0 || history_size_ == 0) return;
  const auto penalty = static_cast<float>(params_.repeat_penalty);
  for (size_t k = 0; k < history_size_; ++k) {
    const auto t = static_cast<size_t>(history_[k]);
    if (t >= v) {
      throw Error("sampler: token " + std::to_string(t) + " in the history is outside the " +
                  std::to_string(v) + " logits");
    }
    if (seen_[t]) continue;  // each distinct token once, however often it occurred
    seen_[t] = 1;
    work_[t] = work_[t] > 0.0f ? work_[t] / penalty : work_[t] * penalty;
  }
  for (size_t k = 0; k < history_size_; ++k) seen_[static_cast<size_t>(history_[k])] = 0;
}

int32_t Sampler::sample(std::span<const float> logits) {
  const size_t v = logits.size();
  if (v == 0) throw Error("sampler: no logits");
  if (v > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw Error("sampler: more logits than int32 token ids");
  if (work_.size() != v) {  // the only allocation: at the first call or a new vocabulary size
    work_.assign(v, 0.0f);
    seen_.assign(v, 0);
    order_.assign(v, 0);
    probs_.assign(v, 0.0);
  }
  for (size_t k = 0; k < v; ++k) {
    if (std::isnan(logits[k]) || logits[k] == std::numeric_limits<float>::infinity())
      throw Error("sampler: logit " + std::to_string(k) + " is " +
                  (std::isnan(logits[k]) ? "NaN" : "+inf"));
  }
  apply_penalty(logits);
  const float* w = work_.data();
  // The first largest logit: greedy's choice and the softmax's shift.
  size_t best = 0;
  for (size_t k = 1; k < v; ++k) {
    if (w[k] > w[best]) best = k;
  }
  if (w[best] == -std::numeric_limits<float>::infinity())
    throw Error("sampler: every logit is -inf");
  int32_t chosen = static_cast<int32_t>(best);
  kept_ = 0;
  if (params_.temperature > 0.0) {
    const double max_logit = w[best];
    const double inv_t = 1.0 / params_.temperature;
    auto weight = [&](int32_t id) { return std::exp((w[id] - max_logit) * inv_t); };
    auto better = [w](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
    int32_t* ids = order_.data();
    std::iota(order_.begin(), order_.end(), 0);
    size_t n = v;
    bool sorted = false;
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < v) {
      n = static_cast<size_t>(params_.top_k);
      std::nth_element(ids, ids + n, ids + v, better);
      std::sort(ids, ids + n, better);
      sorted = true;
    }
    size_t kept = n;
    if (params_.min_p > 0.0) {
      // p >= min_p * p_max  <=>  logit >= max + T ln(min_p): a prefix of the sorted order. The
      // tokens it drops stay behind the kept ones, still counted in top-p's mass below.
      const double threshold = max_logit + params_.temperature * std::log(params_.min_p);
      kept = static_cast<size_t>(
          std::partition(ids, ids + n, [&](int32_t id) { return w[id] >= threshold; }) - ids);
      if (sorted) std::sort(ids, ids + kept, better);  // partition keeps no order
    }
    // One exponential per top-k survivor, by position; their sum is top-p's reference mass.
    double mass = 0.0;
    for (size_t k = 0; k < n; ++k) {
      probs_[k] = weight(ids[k]);
      mass += probs_[k];
    }
    if (params_.top_p < 1.0) {
      const double target = params_.top_p * mass;
      double cumulative = 0.0;
      size_t done = 0, cut = kept;
      while (done < kept && cut == kept) {
        const size_t end = sorted ? kept : std::min(kept, std::max(done * 2, done + 64));
        if (!sorted) {
          if (end < kept) std::nth_element(ids + done, ids + end, ids + kept, better);
          std::sort(ids + done, ids + end, better);
        }
        for (size_t k = done; k < end; ++k) {
          if (!sorted) probs_[k] = weight(ids[k]);  // the sort moved the ids
          cumulative += probs_[k];
          if (cumulative >= target) {
            cut = k + 1;
            break;
          }
        }
        done = end;
      }
      kept = cut;
    }
    n = kept;
    double total = 0.0;
    for (size_t k = 0; k < n; ++k) total += probs_[k];
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
    double acc = 0.0;
    chosen = -1;
    for (size_t k = 0; k < n; ++k) {
      acc += probs_[k];
      if (u < acc) {
        chosen = ids[k];
        break;
      }
    }
    if (chosen < 0) {  // u rounded up to the total: the last token with any probability
      for (size_t k = n; k-- > 0 && chosen < 0;) {
        if (probs_[k] > 0.0) chosen = ids[k];
      }
    }
    for (size_t k = 0; k < n; ++k) probs_[k] /= total;
    kept_ = n;
  }
  accept(std::span(&chosen, 1));
  return chosen;
}

}  // namespace mla
