#include "ops/sparse_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "mla/dtype.h"
#include "mla/error.h"
#include "ops/gemm.h"
#include "ops/sparse_select.h"

namespace mla::ops {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// One work item: query token t of sequence `seq`, heads [h0, h1), which share one KV head and
// one key list.
struct Item {
  size_t seq;
  int64_t t, h0, h1;
};

// Per-thread buffers, grown on demand and kept: decode steps allocate nothing once warm.
struct Scratch {
  std::vector<float> keys, values;  // (tile, qk_dim), (tile, v_dim) gathered rows
  std::vector<float> scores;        // (rows, tile), then probabilities
  std::vector<float> acc;           // (rows, v_dim)
  std::vector<float> row_max, row_sum;
  std::vector<float> all_scores;  // top-k mode: one head's scores over the whole context
  std::vector<int32_t> selected, order;
};

Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}

void grow(std::vector<float>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

// The value of a key row is its first v_dim entries (absorbed MLA): gather once, use twice.
bool value_in_key(const AttentionParams& p) {
  const KvView &k = p.k, &v = p.v;
  return v.base == k.base && v.pages == k.pages && v.page_size == k.page_size &&
         v.token_stride == k.token_stride && v.offset == k.offset && v.dtype == k.dtype &&
         p.v_head_stride == p.k_head_stride && p.v_dim <= p.qk_dim;
}

void load_row(const KvView& view, int64_t j, int64_t head_offset, int64_t n, float* dst) {
  if (view.dtype == DType::kF32) {
    std::copy_n(view.row<float>(j) + head_offset, n, dst);
  } else {
    convert_to_f32(view.row<uint16_t>(j) + head_offset, DType::kBF16, static_cast<size_t>(n), dst);
  }
}

float dot_row(const float* q, const KvView& view, int64_t j, int64_t head_offset, int64_t n) {
  float sum = 0.0f;
  if (view.dtype == DType::kF32) {
    const float* k = view.row<float>(j) + head_offset;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) sum += q[i] * k[i];
  } else {
    const uint16_t* k = view.row<uint16_t>(j) + head_offset;
    for (int64_t i = 0; i < n; ++i) sum += q[i] * bf16_to_f32(k[i]);
  }
  return sum;
}

std::string where(size_t seq) {
  return "sparse_attention: sequence " + std::to_string(seq) + ": ";
}

void check_params(const SparseAttentionParams& sp, size_t s) {
  const AttentionParams& p = sp.attn;
  if (p.q == nullptr || p.out == nullptr || (p.k.base == nullptr && p.k.pages == nullptr) ||
      (p.v.base == nullptr && p.v.pages == nullptr)) {
    throw Error(where(s) + "null query, output or cache");
  }
  if (p.num_queries < 0 || p.num_heads < 1 || p.num_kv_heads < 1 ||
      p.num_heads % p.num_kv_heads != 0 || p.qk_dim < 1 || p.v_dim < 1 || p.context_before < 0 ||
      p.context_before + p.num_queries >= (int64_t{1} << 31)) {
    throw Error(where(s) + "bad shape (queries, heads, KV heads, widths or context)");
  }
  if ((p.k.dtype != DType::kF32 && p.k.dtype != DType::kBF16) ||
      (p.v.dtype != DType::kF32 && p.v.dtype != DType::kBF16)) {
    throw Error(where(s) + "the cache must be F32 or BF16");
  }
  if (sp.top_k < 0) throw Error(where(s) + "top_k must not be negative");
  if (sp.top_k > 0) return;
  const KeyLists& l = sp.lists;
  if (l.indices == nullptr || l.counts == nullptr || l.capacity < 1)
    throw Error(where(s) + "no key lists");
  const int64_t per_token = l.per_head ? p.num_heads : 1;
  for (int64_t t = 0; t < p.num_queries; ++t) {
    const int64_t visible = p.context_before + t + 1;
    for (int64_t h = 0; h < per_token; ++h) {
      const int64_t list = t * per_token + h;
      const int64_t n = l.counts[list];
      const int32_t* idx = l.indices + list * l.capacity;
      const std::string name = "list " + std::to_string(list) + ": ";
      if (n < 1 || n > l.capacity) {
        throw Error(where(s) + name + "holds " + std::to_string(n) + " keys, expected 1 to " +
                    std::to_string(l.capacity));
      }
      for (int64_t i = 0; i < n; ++i) {
        if (idx[i] < 0 || idx[i] >= visible) {
          throw Error(where(s) + name + "key " + std::to_string(idx[i]) +
                      " is outside the keys 0.." + std::to_string(visible - 1) +
                      " this query may see");
        }
        if (i > 0 && idx[i] <= idx[i - 1])
          throw Error(where(s) + name + "keys are not strictly ascending");
      }
    }
  }
}

// Attention of rows (heads h0..h1 of token t) over the n keys in idx, written to p.out.
void attend_list(const AttentionParams& p, int64_t t, int64_t h0, int64_t h1, const int32_t* idx,
                 int64_t n, Scratch& s) {
  const int64_t rows = h1 - h0, qk = p.qk_dim, vd = p.v_dim;
  const int64_t g = h0 / (p.num_heads / p.num_kv_heads);
  const bool shared = value_in_key(p);
  grow(s.keys, kSparseTile * qk);
  if (!shared) grow(s.values, kSparseTile * vd);
  grow(s.scores, rows * kSparseTile);
  grow(s.acc, rows * vd);
  grow(s.row_max, rows);
  grow(s.row_sum, rows);
  std::fill_n(s.acc.begin(), rows * vd, 0.0f);
  std::fill_n(s.row_max.begin(), rows, kMinusInf);
  std::fill_n(s.row_sum.begin(), rows, 0.0f);
  const float* q = p.q + t * p.q_token_stride + h0 * p.q_head_stride;

  for (int64_t c0 = 0; c0 < n; c0 += kSparseTile) {
    const int64_t nt = std::min(kSparseTile, n - c0);
    for (int64_t i = 0; i < nt; ++i) {
      load_row(p.k, idx[c0 + i], g * p.k_head_stride, qk, s.keys.data() + i * qk);
      if (!shared) load_row(p.v, idx[c0 + i], g * p.v_head_stride, vd, s.values.data() + i * vd);
    }
    gemm(false, true, rows, nt, qk, p.scale, q, p.q_head_stride, s.keys.data(), qk, 0.0f,
         s.scores.data(), kSparseTile);
    for (int64_t r = 0; r < rows; ++r) {  // online softmax
      float* sr = s.scores.data() + r * kSparseTile;
      const float m_old = s.row_max[static_cast<size_t>(r)];
      float m = m_old;
      for (int64_t i = 0; i < nt; ++i) m = std::max(m, sr[i]);
      const float correction = m_old == kMinusInf ? 0.0f : std::exp(m_old - m);
      float sum = 0.0f;
      for (int64_t i = 0; i < nt; ++i) {
        sr[i] = std::exp(sr[i] - m);
        sum += sr[i];
      }
      s.row_max[static_cast<size_t>(r)] = m;
      s.row_sum[static_cast<size_t>(r)] = s.row_sum[static_cast<size_t>(r)] * correction + sum;
      if (correction != 1.0f) {
        float* ar = s.acc.data() + r * vd;
        for (int64_t c = 0; c < vd; ++c) ar[c] *= correction;
      }
    }
    const float* values = shared ? s.keys.data() : s.values.data();
    gemm(false, false, rows, vd, nt, 1.0f, s.scores.data(), kSparseTile, values, shared ? qk : vd,
         1.0f, s.acc.data(), vd);
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* out = p.out + t * p.out_token_stride + (h0 + r) * p.out_head_stride;
    const float inv = 1.0f / s.row_sum[static_cast<size_t>(r)];
    for (int64_t c = 0; c < vd; ++c) out[c] = s.acc[static_cast<size_t>(r * vd + c)] * inv;
  }
}

void run_item(const SparseAttentionParams& sp, const Item& it, Scratch& s) {
  const AttentionParams& p = sp.attn;
  if (sp.top_k == 0) {
    const KeyLists& l = sp.lists;
    const int64_t list = l.per_head ? it.t * p.num_heads + it.h0 : it.t;
    attend_list(p, it.t, it.h0, it.h1, l.indices + list * l.capacity, l.counts[list], s);
    return;
  }
  // Exact top-k: every score of this head (one head, so at most context floats), then the top.
  const int64_t visible = p.context_before + it.t + 1;
  const int64_t g = it.h0 / (p.num_heads / p.num_kv_heads);
  grow(s.all_scores, visible);
  if (s.selected.size() < static_cast<size_t>(std::min(sp.top_k, visible)))
    s.selected.resize(static_cast<size_t>(std::min(sp.top_k, visible)));
  const float* q = p.q + it.t * p.q_token_stride + it.h0 * p.q_head_stride;
  for (int64_t j = 0; j < visible; ++j)
    s.all_scores[static_cast<size_t>(j)] = dot_row(q, p.k, j, g * p.k_head_stride, p.qk_dim);
  const int64_t n =
      select_top_k(s.all_scores.data(), visible, sp.top_k, s.selected.data(), s.order);
  attend_list(p, it.t, it.h0, it.h1, s.selected.data(), n, s);
}

}  // namespace

void sparse_attention(std::span<const SparseAttentionParams> seqs) {
  for (size_t s = 0; s < seqs.size(); ++s) check_params(seqs[s], s);
  const int64_t threads = omp_get_max_threads();
  thread_local std::vector<Item> items;
  items.clear();
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SparseAttentionParams& sp = seqs[s];
    const AttentionParams& p = sp.attn;
    // Heads that share a KV head and a list share one gather; split them further only to give
    // every thread work (decode of one sequence).
    const bool one_list = sp.top_k == 0 && !sp.lists.per_head;
    const int64_t per_kv = p.num_heads / p.num_kv_heads;
    int64_t group = one_list ? per_kv : 1;
    if (one_list && p.num_queries > 0) {
      const int64_t blocks = p.num_queries * p.num_kv_heads;
      const int64_t splits = std::min(per_kv, (2 * threads + blocks - 1) / blocks);
      group = (per_kv + splits - 1) / splits;
    }
    for (int64_t t = 0; t < p.num_queries; ++t) {
      for (int64_t h0 = 0; h0 < p.num_heads;) {
        const int64_t kv_end = (h0 / per_kv + 1) * per_kv;
        const int64_t h1 = std::min(h0 + group, kv_end);
        items.push_back(Item{s, t, h0, h1});
        h0 = h1;
      }
    }
  }
  // Worker threads have their own (empty) thread_local `items`: hand them this thread's array.
  const Item* all = items.data();
  const auto n_items = static_cast<int64_t>(items.size());
#pragma omp parallel for schedule(dynamic, 1) if (n_items > 1)
  for (int64_t i = 0; i < n_items; ++i) {
    const Item& it = all[i];
    run_item(seqs[it.seq], it, thread_scratch());
  }
}

}  // namespace mla::ops
