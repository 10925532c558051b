#include "train/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/gemm.h"
#include "ops/sparse_select.h"
#include "train/activation.h"

namespace mla::train {
namespace {

// P' = dropout(P) of one (sequence, head) into `buffer`; returns P itself without dropout.
template <typename T>
const T* dropped_probs(const T* p, int64_t b, int64_t h, const AttentionLayout& l,
                       std::vector<T>& buffer) {
  if (l.dropout <= 0.0) return p;
  const int64_t n = l.seq * l.seq;
  if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
  dropout_forward(buffer.data(), p, n, l.dropout,
                  dropout_key(l.dropout_key, b * l.num_heads + h, 0));
  return buffer.data();
}

}  // namespace

template <typename T>
void sparse_keep(const AttentionLayout& l, int64_t b, int64_t h, int64_t i, const T* row,
                 uint8_t* keep) {
  const SparseSpec& sp = l.sparse;
  if (!sp.is_sparse() || h < sp.dense_heads) {
    std::fill(keep, keep + i + 1, uint8_t{1});
    return;
  }
  std::fill(keep, keep + i + 1, uint8_t{0});
  if (sp.kind == SparseKind::kDsa) {
    for (int64_t j = 0; j <= i; ++j) {
      keep[j] = l.key_mask == nullptr || l.key_mask[(b * l.seq + i) * l.seq + j] != 0;
    }
    return;
  }
  // Inference's selection (ops/sparse_select.h), so training and serving keep the same keys.
  thread_local std::vector<int32_t> keys, order;
  keys.resize(static_cast<size_t>(i + 1));
  int64_t count = 0;
  switch (sp.kind) {
    case SparseKind::kWindow:
      count = ops::select_window(i, sp.window, keys.data());
      break;
    case SparseKind::kBlock:
      count = ops::select_blocks(i, sp.block_size, sp.local_blocks, sp.global_blocks, keys.data());
      break;
    case SparseKind::kTopK:
      count = ops::select_top_k(row, i + 1, sp.top_k, keys.data(), order);
      break;
    default:
      break;
  }
  for (int64_t n = 0; n < count; ++n) keep[keys[static_cast<size_t>(n)]] = 1;
}

template <typename T>
void attention_forward(T* out, T* probs, const T* q, const T* k, const T* v,
                       const AttentionLayout& l) {
  const int64_t s = l.seq, group = l.num_heads / l.num_kv_heads;
  const bool sparse = l.sparse.is_sparse();
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
  for (int64_t b = 0; b < l.batch; ++b) {
    for (int64_t h = 0; h < l.num_heads; ++h) {
      thread_local std::vector<T> dropped;
      const int64_t g = h / group;
      const T* qh = q + b * s * l.q_token_stride + h * l.q_head_stride;
      const T* kg = k + b * s * l.k_token_stride + g * l.k_head_stride;
      const T* vg = v + b * s * l.v_token_stride + g * l.v_head_stride;
      T* p = probs + (b * l.num_heads + h) * s * s;
      ops::gemm(false, true, s, s, l.qk_dim, static_cast<T>(l.scale), qh, l.q_token_stride, kg,
                l.k_token_stride, T(0), p, s);
      for (int64_t i = 0; i < s; ++i) {  // causal softmax of row i over keys 0..i
        T* row = p + i * s;
        thread_local std::vector<uint8_t> keep;
        keep.assign(static_cast<size_t>(i + 1), 1);
        if (sparse) sparse_keep(l, b, h, i, row, keep.data());
        T mx = -INFINITY;
        for (int64_t j = 0; j <= i; ++j)
          if (keep[static_cast<size_t>(j)]) mx = std::max(mx, row[j]);
        T sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          row[j] = keep[static_cast<size_t>(j)] ? std::exp(row[j] - mx) : T(0);
          sum += row[j];
        }
        // Only an explicit key_mask can empty a row; its query then attends to nothing (output 0)
        // rather than producing NaN.
        const T inv = sum > T(0) ? T(1) / sum : T(0);
        for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
        std::fill(row + i + 1, row + s, T(0));
      }
      ops::gemm(false, false, s, l.v_dim, s, T(1), dropped_probs(p, b, h, l, dropped), s, vg,
                l.v_token_stride, T(0), out + b * s * l.out_token_stride + h * l.out_head_stride,
                l.out_token_stride);
    }
  }
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* probs, const T* q, const T* k,
                        const T* v, const AttentionLayout& l) {
  const int64_t s = l.seq, group = l.num_heads / l.num_kv_heads;
  const T scale = static_cast<T>(l.scale);
#pragma omp parallel
  {
    // dP, then dS in place. Kept per thread across calls: a fresh S x S vector per call is a
    // fresh mmap, and its page faults cost more than the products for S >= 256.
    thread_local std::vector<T> ds, dropped, d_dropped;
    if (ds.size() < static_cast<size_t>(s * s)) ds.resize(static_cast<size_t>(s * s));
    if (l.dropout > 0.0 && d_dropped.size() < static_cast<size_t>(s * s))
      d_dropped.resize(static_cast<size_t>(s * s));
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int64_t b = 0; b < l.batch; ++b) {
      for (int64_t g = 0; g < l.num_kv_heads; ++g) {
        const T* kg = k + b * s * l.k_token_stride + g * l.k_head_stride;
        const T* vg = v + b * s * l.v_token_stride + g * l.v_head_stride;
        T* dkg = dk + b * s * l.k_token_stride + g * l.k_head_stride;
        T* dvg = dv + b * s * l.v_token_stride + g * l.v_head_stride;
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          const T* p = probs + (b * l.num_heads + h) * s * s;
          const T* qh = q + b * s * l.q_token_stride + h * l.q_head_stride;
          const T* doh = dout + b * s * l.out_token_stride + h * l.out_head_stride;
          T* dqh = dq + b * s * l.q_token_stride + h * l.q_head_stride;
          if (l.dropout > 0.0) {
            // dP' = dO V^T, then through the mask: dP = mask * dP' / (1 - p).
            ops::gemm(false, true, s, s, l.v_dim, T(1), doh, l.out_token_stride, vg,
                      l.v_token_stride, T(0), d_dropped.data(), s);
            std::fill(ds.begin(), ds.begin() + s * s, T(0));
            dropout_backward(ds.data(), d_dropped.data(), s * s, l.dropout,
                             dropout_key(l.dropout_key, b * l.num_heads + h, 0));
          } else {
            ops::gemm(false, true, s, s, l.v_dim, T(1), doh, l.out_token_stride, vg,
                      l.v_token_stride, T(0), ds.data(), s);
          }
          ops::gemm(true, false, s, l.v_dim, s, T(1), dropped_probs(p, b, h, l, dropped), s, doh,
                    l.out_token_stride, T(1), dvg, l.v_token_stride);
          for (int64_t i = 0; i < s; ++i) {  // softmax backward, row by row
            const T* pr = p + i * s;
            T* dr = ds.data() + i * s;
            T dot = 0;
            for (int64_t j = 0; j <= i; ++j) dot += pr[j] * dr[j];
            for (int64_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot) * scale;
            std::fill(dr + i + 1, dr + s, T(0));
          }
          ops::gemm(false, false, s, l.qk_dim, s, T(1), ds.data(), s, kg, l.k_token_stride, T(1),
                    dqh, l.q_token_stride);
          ops::gemm(true, false, s, l.qk_dim, s, T(1), ds.data(), s, qh, l.q_token_stride, T(1),
                    dkg, l.k_token_stride);
        }
      }
    }
  }
}

template void sparse_keep<float>(const AttentionLayout&, int64_t, int64_t, int64_t, const float*,
                                 uint8_t*);
template void sparse_keep<double>(const AttentionLayout&, int64_t, int64_t, int64_t, const double*,
                                  uint8_t*);
template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const AttentionLayout&);
template void attention_forward<double>(double*, double*, const double*, const double*,
                                        const double*, const AttentionLayout&);
template void attention_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*,
                                        const AttentionLayout&);
template void attention_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*,
                                         const AttentionLayout&);

}  // namespace mla::train
