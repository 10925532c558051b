#include "model/mla_projection.h"

#include <algorithm>
#include <exception>
#include <type_traits>

#include "ops/gemm.h"
#include "ops/linear_bf16.h"
#include "ops/norm.h"
#include "ops/parallel.h"
#include "ops/rope.h"

namespace mla::detail {
namespace {

// The per-head absorption products are small (Dn x R): one parallel region over the heads, each
// product single-threaded inside it, costs one fork instead of one per head (oneDNN runs
// sequentially inside a parallel region). An exception may not leave the region: the first is
// kept and rethrown after it. Forks only when the products are worth it (ops/parallel.h):
// `work` multiply-adds in all. Heads are handed out one at a time (a thread slowed by another
// process does fewer).
template <class Fn>
void for_each_head(int64_t heads, double work, const Fn& fn) {
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1) if (ops::worth_parallel(work))
  for (int64_t head = 0; head < heads; ++head) {
    try {
      fn(head);
    } catch (...) {
#pragma omp critical(mla_for_each_head)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

template <typename T>
void project(const Projection<T>& p, const T* x, int64_t n, int64_t in, int64_t out, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (p.w_bf16 != nullptr) {
      ops::linear_bf16(x, n, in, p.w_bf16, out, y);
    } else {
      ops::linear(x, n, in, p.w, out, y);
    }
  } else {
    ops::gemm(false, true, n, out, in, T(1), x, in, p.w, in, T(0), y, out);
  }
  ops::add_bias_rows(y, n, out, p.bias);
}

template <typename T>
void latent_norm_forward(const MlaConfig& config, T* out, T* mean, T* rstd, const T* inp,
                         const T* w, const T* b, int64_t n, int64_t c, int64_t inp_stride,
                         int64_t out_stride) {
  switch (config.latent_norm) {
    case LatentNorm::kRmsNorm:
      ops::rms_norm_forward(out, rstd, inp, w, n, c, config.rms_norm_eps, inp_stride, out_stride);
      return;
    case LatentNorm::kLayerNorm:
      ops::layer_norm_forward(out, mean, rstd, inp, w, b, n, c, config.rms_norm_eps, inp_stride,
                              out_stride);
      return;
    case LatentNorm::kNone:
      if (out == inp) return;
      for (int64_t i = 0; i < n; ++i) std::copy_n(inp + i * inp_stride, c, out + i * out_stride);
      return;
  }
}

template <typename T>
void latent_norm_backward(const MlaConfig& config, T* dinp, T* dw, T* db, const T* dout,
                          const T* inp, const T* w, const T* mean, const T* rstd, int64_t n,
                          int64_t c, int64_t inp_stride, int64_t dout_stride) {
  switch (config.latent_norm) {
    case LatentNorm::kRmsNorm:
      ops::rms_norm_backward(dinp, dw, dout, inp, w, rstd, n, c, inp_stride, dout_stride);
      return;
    case LatentNorm::kLayerNorm:
      ops::layer_norm_backward(dinp, dw, db, dout, inp, w, mean, rstd, n, c, inp_stride,
                               dout_stride);
      return;
    case LatentNorm::kNone:
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t k = 0; k < c; ++k) dinp[i * inp_stride + k] += dout[i * dout_stride + k];
      }
      return;
  }
}

template <typename T>
void project_inputs(const MlaConfig& c, const MlaChainWeights<T>& w, const T* x, int64_t n,
                    const float* rope_table, int64_t rope_period, const MlaProjected<T>& out) {
  const int64_t d = c.hidden_size, h = c.num_heads, dn = c.qk_nope_head_dim,
                dr = c.qk_rope_head_dim;
  const int64_t r = c.kv_lora_rank, dqk = c.qk_head_dim(), lw = r + dr;
  const bool keep = out.kv_raw != nullptr;  // training: norms out of place, statistics kept

  if (c.has_q_lora()) {
    const int64_t rq = c.q_lora_rank;
    T* raw = keep ? out.q_latent_raw : out.q_latent;
    project(w.q_a, x, n, d, rq, raw);
    latent_norm_forward(c, out.q_latent, out.q_mean, out.q_rstd, raw, w.q_norm, w.q_norm_bias, n,
                        rq, rq, rq);
    project(w.q_b, out.q_latent, n, rq, h * dqk, out.q);
  } else {
    project(w.q, x, n, d, h * dqk, out.q);
  }

  T* kv = keep ? out.kv_raw : out.latent;
  project(w.kv_a, x, n, d, lw, kv);
  latent_norm_forward(c, out.latent, out.kv_mean, out.kv_rstd, kv, w.kv_norm, w.kv_norm_bias, n, r,
                      lw, lw);
  if (dr == 0) return;
  if (keep) {
    for (int64_t i = 0; i < n; ++i) std::copy_n(kv + i * lw + r, dr, out.latent + i * lw + r);
  }
  ops::rope_apply_rows(out.q + dn, n, h * dqk, h, dqk, dr, rope_table, rope_period);
  ops::rope_apply_rows(out.latent + r, n, lw, 1, lw, dr, rope_table, rope_period);
}

template <typename T>
void absorb_queries(const MlaConfig& c, const T* kv_b, const T* q, int64_t n, T* q_absorbed) {
  const int64_t h = c.num_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim,
                dv = c.v_head_dim;
  const int64_t r = c.kv_lora_rank, dqk = c.qk_head_dim(), lw = r + dr;
  // q~_h (N, R) = q_nope_h (N, Dn) * W_UK_h (Dn, R)
  for_each_head(h, static_cast<double>(n) * h * r * dn, [&](int64_t head) {
    ops::gemm(false, false, n, r, dn, T(1), q + head * dqk, h * dqk, kv_b + head * (dn + dv) * r, r,
              T(0), q_absorbed + head * lw, h * lw);
  });
  for (int64_t i = 0; i < n * h; ++i) std::copy_n(q + i * dqk + dn, dr, q_absorbed + i * lw + r);
}

template <typename T>
void expand_kv(const MlaConfig& c, const T* kv_b, const T* kv_b_bias, const T* latent, int64_t n,
               T* kv) {
  const int64_t h = c.num_heads, dn = c.qk_nope_head_dim, dv = c.v_head_dim, r = c.kv_lora_rank;
  ops::gemm(false, true, n, h * (dn + dv), r, T(1), latent, c.latent_dim(), kv_b, r, T(0), kv,
            h * (dn + dv));
  ops::add_bias_rows(kv, n, h * (dn + dv), kv_b_bias);
}

template <typename T>
void naive_keys(const MlaConfig& c, const T* kv_row, const T* latent_row, T* keys, T* values) {
  const int64_t h = c.num_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim,
                dv = c.v_head_dim, dqk = c.qk_head_dim();
  for (int64_t head = 0; head < h; ++head) {
    const T* kv = kv_row + head * (dn + dv);
    std::copy_n(kv, dn, keys + head * dqk);
    std::copy_n(latent_row + c.kv_lora_rank, dr, keys + head * dqk + dn);
    if (values != nullptr) std::copy_n(kv + dn, dv, values + head * dv);
  }
}

template <typename T>
void absorbed_values(const MlaConfig& c, const T* kv_b, const T* kv_b_bias, const T* o_latent,
                     int64_t n, T* o) {
  const int64_t h = c.num_heads, dn = c.qk_nope_head_dim, dv = c.v_head_dim, r = c.kv_lora_rank;
  // o_h (N, Dv) = o~_h (N, R) * W_UV_h^T, W_UV_h is (Dv, R).
  for_each_head(h, static_cast<double>(n) * h * dv * r, [&](int64_t head) {
    ops::gemm(false, true, n, dv, r, T(1), o_latent + head * r, h * r,
              kv_b + (head * (dn + dv) + dn) * r, r, T(0), o + head * dv, h * dv);
  });
  if (kv_b_bias == nullptr) return;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t head = 0; head < h; ++head) {
      const T* b = kv_b_bias + head * (dn + dv) + dn;
      T* row = o + (i * h + head) * dv;
      for (int64_t k = 0; k < dv; ++k) row[k] += b[k];
    }
  }
}

#define MLA_CHAIN_INSTANTIATE(T)                                                                   \
  template void project<T>(const Projection<T>&, const T*, int64_t, int64_t, int64_t, T*);         \
  template void latent_norm_forward<T>(const MlaConfig&, T*, T*, T*, const T*, const T*, const T*, \
                                       int64_t, int64_t, int64_t, int64_t);                        \
  template void latent_norm_backward<T>(const MlaConfig&, T*, T*, T*, const T*, const T*,          \
                                        const T*, const T*, const T*, int64_t, int64_t, int64_t,   \
                                        int64_t);                                                  \
  template void project_inputs<T>(const MlaConfig&, const MlaChainWeights<T>&, const T*, int64_t,  \
                                  const float*, int64_t, const MlaProjected<T>&);                  \
  template void absorb_queries<T>(const MlaConfig&, const T*, const T*, int64_t, T*);              \
  template void expand_kv<T>(const MlaConfig&, const T*, const T*, const T*, int64_t, T*);         \
  template void naive_keys<T>(const MlaConfig&, const T*, const T*, T*, T*);                       \
  template void absorbed_values<T>(const MlaConfig&, const T*, const T*, const T*, int64_t, T*);
MLA_CHAIN_INSTANTIATE(float)
MLA_CHAIN_INSTANTIATE(double)
#undef MLA_CHAIN_INSTANTIATE

}  // namespace mla::detail
