// The float64 attention reference and the paged-cache fixture shared by the kernel tests
// (tests/ops): one plain restatement of causal softmax attention, independent of the kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <vector>

#include "mla/dtype.h"
#include "ops/attention.h"
#include "ops/kv_view.h"

namespace mla::test {

// T queries after `context_before` cached keys; H query heads over G KV heads (H % G == 0).
struct AttentionShape {
  int64_t queries, context_before, heads, kv_heads, qk_dim, v_dim;
  bool value_is_key_prefix;  // latent layout: the value is the first v_dim entries of the key
};

inline void PrintTo(const AttentionShape& s, std::ostream* os) {
  *os << "T" << s.queries << "_ctx" << s.context_before << "_H" << s.heads << "_G" << s.kv_heads
      << "_qk" << s.qk_dim << "_v" << s.v_dim << (s.value_is_key_prefix ? "_latent" : "");
}

// Absorbed MLA's layout: one row (R + Dr) per token shared by H heads, value = its first R.
inline AttentionShape latent_shape(int64_t heads, int64_t rank, int64_t rope, int64_t queries,
                                   int64_t context_before) {
  return {queries, context_before, heads, 1, rank + rope, rank, true};
}

// out[t][h] = softmax_j(scale q.k_j) v_j over j <= context_before + t, in double.
// q (T, H, qk), k (L, G, qk), v (L, G, v_dim) (unused when the value is the key's prefix).
inline std::vector<float> attention_reference(const AttentionShape& s, const float* q,
                                              const float* k, const float* v, float scale) {
  const int64_t group = s.heads / s.kv_heads;
  std::vector<float> out(s.queries * s.heads * s.v_dim);
  for (int64_t t = 0; t < s.queries; ++t) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t g = h / group, n = s.context_before + t + 1;
      const float* qh = q + (t * s.heads + h) * s.qk_dim;
      std::vector<double> p(n);
      double mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        const float* kj = k + (j * s.kv_heads + g) * s.qk_dim;
        double dot = 0;
        for (int64_t i = 0; i < s.qk_dim; ++i) dot += static_cast<double>(qh[i]) * kj[i];
        p[j] = scale * dot;
        mx = std::max(mx, p[j]);
      }
      double total = 0;
      for (double& e : p) total += (e = std::exp(e - mx));
      for (int64_t i = 0; i < s.v_dim; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) {
          const float* vj = s.value_is_key_prefix ? k + (j * s.kv_heads + g) * s.qk_dim
                                                  : v + (j * s.kv_heads + g) * s.v_dim;
          acc += p[j] * vj[i];
        }
        out[(t * s.heads + h) * s.v_dim + i] = static_cast<float>(acc / total);
      }
    }
  }
  return out;
}

// Kernel parameters for densely packed q (T, H, qk) and out (T, H, v) over the views k and v.
inline ops::AttentionParams attention_params(const AttentionShape& s, const float* q, ops::KvView k,
                                             ops::KvView v, float* out, float scale) {
  ops::AttentionParams p;
  p.q = q;
  p.q_token_stride = s.heads * s.qk_dim;
  p.q_head_stride = s.qk_dim;
  p.k = k;
  p.k_head_stride = s.qk_dim;
  p.v = s.value_is_key_prefix ? k : v;
  p.v_head_stride = s.value_is_key_prefix ? s.qk_dim : s.v_dim;
  p.out = out;
  p.out_token_stride = s.heads * s.v_dim;
  p.out_head_stride = s.v_dim;
  p.num_queries = s.queries;
  p.num_heads = s.heads;
  p.num_kv_heads = s.kv_heads;
  p.qk_dim = s.qk_dim;
  p.v_dim = s.v_dim;
  p.context_before = s.context_before;
  p.scale = scale;
  return p;
}

// A (tokens, width) buffer copied into pages of `page_size` tokens stored in shuffled order, NaN
// (or its bf16 pattern) in every slot past the last token: a kernel that reads outside fails.
struct ShuffledPages {
  std::vector<std::vector<float>> f32;
  std::vector<std::vector<uint16_t>> bf16;
  std::vector<const void*> table;
  int64_t page_size = 0, width = 0;
  DType dtype = DType::kF32;

  ops::KvView view() const { return ops::KvView::paged(table.data(), page_size, width, 0, dtype); }
};

inline ShuffledPages shuffled_pages(const std::vector<float>& rows, int64_t tokens, int64_t width,
                                    int64_t page_size, DType dtype, uint64_t seed) {
  ShuffledPages p;
  p.page_size = page_size;
  p.width = width;
  p.dtype = dtype;
  const int64_t pages = (tokens + page_size - 1) / page_size;
  std::vector<int64_t> order(pages);
  for (int64_t i = 0; i < pages; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  if (dtype == DType::kBF16) {
    p.bf16.assign(pages, std::vector<uint16_t>(page_size * width, 0x7fc0));
  } else {
    p.f32.assign(pages, std::vector<float>(page_size * width, NAN));
  }
  p.table.resize(pages);
  for (int64_t pg = 0; pg < pages; ++pg) {
    const int64_t at = order[pg];
    for (int64_t t = pg * page_size; t < std::min(tokens, (pg + 1) * page_size); ++t) {
      const int64_t slot = (t - pg * page_size) * width;
      if (dtype == DType::kBF16) {
        convert_from_f32(rows.data() + t * width, width, DType::kBF16, p.bf16[at].data() + slot);
      } else {
        std::copy_n(rows.begin() + t * width, width, p.f32[at].begin() + slot);
      }
    }
    p.table[pg] = dtype == DType::kBF16 ? static_cast<const void*>(p.bf16[at].data())
                                        : static_cast<const void*>(p.f32[at].data());
  }
  return p;
}

}  // namespace mla::test
