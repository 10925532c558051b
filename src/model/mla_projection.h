// The projection chain of an MLA layer, the one implementation MlaLayer (inference, float) and
// train::MlaBlock (training, float and double) both run. Legend: N tokens, d hidden, H heads,
// Dn/Dr/Dv nope/rope/value head widths, Dqk = Dn + Dr, R kv_lora_rank, Rq q_lora_rank.
//
//   q      = RoPE_Dr( q_b(Norm(q_a x)) )  or  RoPE_Dr(q_proj x)                 (N, H, Dqk)
//   latent = [ Norm(kv_a x [:, :R]) ; RoPE(kv_a x [:, R:]) ]                     (N, R + Dr)
//   absorbed:  q~_h = [W_UK_h^T q_nope_h ; q_pe_h]                               (N, H, R + Dr)
//              o_h  = W_UV_h o~_h + b_UV_h         (o~ = attention over the latent rows)
//   naive:     kv   = kv_b latent[:, :R]           per head k_nope then v        (N, H, Dn + Dv)
//   out = o_proj(o)
//
// Norm is the config's latent_norm (RMSNorm, LayerNorm or none); each projection may carry a bias
// and, in float, a bf16 copy of its matrix (MlaLayer's DType::kBF16). Training keeps what its
// backward needs by passing buffers for it (MlaProjected's optional fields); inference passes
// none and everything is normalised in place.
#pragma once

#include <cstdint>

#include "mla/config.h"

namespace mla::detail {

// y = x W^T (+ bias): W (out, in) in T, or its bf16 copy when w_bf16 is set (float only).
template <typename T>
struct Projection {
  const T* w = nullptr;
  const uint16_t* w_bf16 = nullptr;
  const T* bias = nullptr;  // null: no bias
};

template <typename T>
struct MlaChainWeights {
  Projection<T> q, q_a, q_b, kv_a, o;  // q without query compression, q_a and q_b with it
  const T* q_norm = nullptr;           // (Rq); its bias (LayerNorm) below
  const T* q_norm_bias = nullptr;
  const T* kv_norm = nullptr;  // (R)
  const T* kv_norm_bias = nullptr;
  const T* kv_b = nullptr;       // (H*(Dn+Dv), R): per head W_UK_h (Dn, R) then W_UV_h (Dv, R)
  const T* kv_b_bias = nullptr;  // (H*(Dn+Dv)) or null
};

// The chain's view of one layer's tensors: an MlaTensorSet of T* or const T* slots (null where
// unused). Inference adds its bf16 copies afterwards.
template <typename T, typename TensorSet>
MlaChainWeights<T> chain_weights(const TensorSet& w) {
  MlaChainWeights<T> c;
  c.q = {w.wq, nullptr, w.bq};
  c.q_a = {w.wq_a, nullptr, w.bq_a};
  c.q_b = {w.wq_b, nullptr, w.bq_b};
  c.kv_a = {w.wkv_a, nullptr, w.bkv_a};
  c.o = {w.wo, nullptr, w.bo};
  c.q_norm = w.q_norm;
  c.q_norm_bias = w.q_norm_bias;
  c.kv_norm = w.kv_norm;
  c.kv_norm_bias = w.kv_norm_bias;
  c.kv_b = w.wkv_b;
  c.kv_b_bias = w.bkv_b;
  return c;
}

// Where project_inputs writes. q, latent and (with query compression) q_latent are required.
template <typename T>
struct MlaProjected {
  T* q = nullptr;         // (N, H, Dqk), RoPE applied
  T* latent = nullptr;    // (N, R + Dr): normed c_kv, then roped k_pe
  T* q_latent = nullptr;  // (N, Rq): the normed query latent
  // For backward, all or none: the norms' inputs and statistics. Null: normalise in place.
  T* q_latent_raw = nullptr;  // (N, Rq): q_a x + b
  T* kv_raw = nullptr;        // (N, R + Dr): kv_a x + b (k_pe before RoPE)
  T* q_mean = nullptr;        // (N) each; means only for LayerNorm
  T* q_rstd = nullptr;
  T* kv_mean = nullptr;
  T* kv_rstd = nullptr;
};

// y (n, out) = x (n, in) W^T + bias. Float takes the skinny kernels for decode and the bf16 copy
// when there is one; double a plain product.
template <typename T>
void project(const Projection<T>& p, const T* x, int64_t n, int64_t in, int64_t out, T* y);

// The config's latent norm of n rows of width c, out may alias inp (in place). mean and rstd
// may be null when nothing is differentiated.
template <typename T>
void latent_norm_forward(const MlaConfig& config, T* out, T* mean, T* rstd, const T* inp,
                         const T* w, const T* b, int64_t n, int64_t c, int64_t inp_stride,
                         int64_t out_stride);
// dinp (stride inp_stride) += d/dinp, dw, db += ..., for the forward with the same inp, mean, rstd.
template <typename T>
void latent_norm_backward(const MlaConfig& config, T* dinp, T* dw, T* db, const T* dout,
                          const T* inp, const T* w, const T* mean, const T* rstd, int64_t n,
                          int64_t c, int64_t inp_stride, int64_t dout_stride);

// q and latent of n tokens of x (n, d); token i is rotated with row (i % rope_period) of
// rope_table ((rope_period, Dr), ops::rope_cos_sin rows).
template <typename T>
void project_inputs(const MlaConfig& config, const MlaChainWeights<T>& w, const T* x, int64_t n,
                    const float* rope_table, int64_t rope_period, const MlaProjected<T>& out);

// Absorbed path: q_absorbed (n, H, R + Dr) from q (n, H, Dqk). kv_b's key bias is left out on
// purpose: q_nope_h . b_UK_h is the same for every key of a query, and softmax does not change
// when a row of scores is shifted by a constant.
template <typename T>
void absorb_queries(const MlaConfig& config, const T* kv_b, const T* q, int64_t n, T* q_absorbed);

// Naive path: kv (n, H, Dn + Dv) = latent[:, :R] kv_b^T + bias; latent rows are R + Dr wide.
template <typename T>
void expand_kv(const MlaConfig& config, const T* kv_b, const T* kv_b_bias, const T* latent,
               int64_t n, T* kv);

// Naive path: the per-head keys [k_nope_h ; k_pe] (H, Dqk) of one token from its kv row
// (H, Dn + Dv) and its latent row (k_pe shared by every head); values, when not null, receive
// the per-head v_h (H, Dv).
template <typename T>
void naive_keys(const MlaConfig& config, const T* kv_row, const T* latent_row, T* keys, T* values);

// Absorbed path: o_h (n, Dv) = o~_h (n, R) W_UV_h^T + b_UV_h into o (n, H, Dv). The value bias
// passes through attention unchanged (the weights of a row sum to 1), so it is added here.
template <typename T>
void absorbed_values(const MlaConfig& config, const T* kv_b, const T* kv_b_bias, const T* o_latent,
                     int64_t n, T* o);

}  // namespace mla::detail
