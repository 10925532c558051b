// DeepSeekMoE: route, group the tokens by expert, one product per chosen expert, weighted sum,
// plus the shared experts.
#include <algorithm>
#include <cstring>

#include "model/model_parts.h"

namespace mla::detail {
namespace {

template <class Vector>
void grow(Vector& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

}  // namespace

int64_t MoeWeights::bytes() const {
  int64_t b = gate.bytes() + static_cast<int64_t>(bias.size() * sizeof(float)) + shared.bytes();
  for (const SwiGlu& e : experts) b += e.bytes();
  return b;
}

void MoeScratch::reserve(int64_t n, int64_t d, const RouterConfig& r, int64_t m,
                         int64_t shared_width) {
  const int64_t e = r.num_experts, k = r.top_k;
  grow(logits, n * e);
  grow(weights, n * k);
  grow(router, 2 * e);
  grow(gathered, n * k * d);
  grow(hidden, 2 * std::max(n * k * m, n * shared_width));
  grow(out, std::max(n * k, n) * d);
  grow(experts, n * k);
  grow(counts, e);
  grow(offsets, e + 1);
  grow(rows, n * k);
}

void moe_forward(const RouterConfig& cfg, const MoeWeights& w, const float* x, int64_t n, int64_t d,
                 MoeScratch& s, float* y) {
  const int64_t e = cfg.num_experts, k = cfg.top_k;
  const int64_t m = w.experts.empty() ? 0 : w.experts.front().width();
  s.reserve(n, d, cfg, m, w.shared.width());
  // The router in float32 (the official Gate computes its logits in the activations' dtype and
  // the softmax in float32; in float32 both are the same).
  w.gate.apply(x, n, s.logits.data());
  route_tokens(cfg, s.logits.data(), w.bias.empty() ? nullptr : w.bias.data(), n, s.experts.data(),
               s.weights.data(), s.router.data());
  // Counting sort of the n*k (token, expert) pairs by expert: rows[] lists pair ids in order.
  std::fill(s.counts.begin(), s.counts.begin() + e, 0);
  for (int64_t p = 0; p < n * k; ++p) ++s.counts[static_cast<size_t>(s.experts[p])];
  s.offsets[0] = 0;
  for (int64_t i = 0; i < e; ++i) s.offsets[i + 1] = s.offsets[i] + s.counts[i];
  std::copy(s.offsets.begin(), s.offsets.begin() + e, s.counts.begin());  // write cursors
  for (int64_t p = 0; p < n * k; ++p) s.rows[s.counts[s.experts[p]]++] = static_cast<int32_t>(p);
  for (int64_t r = 0; r < n * k; ++r) {
    std::memcpy(s.gathered.data() + r * d, x + (s.rows[r] / k) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
  // One product per chosen expert over all its tokens: its weights are read once.
  for (int64_t i = 0; i < e; ++i) {
    const int64_t begin = s.offsets[i], count = s.offsets[i + 1] - begin;
    if (count == 0) continue;
    swiglu_forward(w.experts[static_cast<size_t>(i)], s.gathered.data() + begin * d, count,
                   s.hidden.data(), s.out.data() + begin * d);
  }
  // Weighted sum in expert order per token (as the official loop over experts adds them).
  std::fill(y, y + n * d, 0.0f);
  for (int64_t r = 0; r < n * k; ++r) {
    const int64_t p = s.rows[r], token = p / k;
    const float weight = s.weights[p];
    const float* src = s.out.data() + r * d;
    float* dst = y + token * d;
    for (int64_t j = 0; j < d; ++j) dst[j] += weight * src[j];
  }
  if (!w.shared.gate.empty()) {
    swiglu_forward(w.shared, x, n, s.hidden.data(), s.out.data());
    for (int64_t j = 0; j < n * d; ++j) y[j] += s.out[j];
  }
}

}  // namespace mla::detail
