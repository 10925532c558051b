// The MLA attention layer for training, in the naive form, forward and backward, on the weights
// of mla::MlaWeights (same names, shapes and math as mla::MlaLayer, so that a trained model is
// served by the absorbed latent cache). Legend: B batch, S tokens, N = B*S, d hidden, H heads,
// Dn/Dr/Dv nope/rope/value head widths, Dqk = Dn + Dr, R kv_lora_rank, Rq q_lora_rank.
//
//   q    = RoPE_Dr( q_b(Norm(q_a x)) )  or  RoPE_Dr(q_proj x)         (N, H, Dqk)
//   kv   = kv_a x                                                      (N, R + Dr)
//   ckv  = Norm(kv[:, :R]);  kpe = RoPE(kv[:, R:])  (one rotary key shared by all heads)
//   kvb  = kv_b ckv                            (N, H, Dn + Dv): per head k_nope then v
//   k_h  = [kvb_h[:Dn] ; kpe],  v_h = kvb_h[Dn:]
//   out  = o_proj( causal_attention(q, k, v) )                         (N, d_out)
// Norm is the config's latent_norm (RMSNorm, LayerNorm or none); every projection may carry a
// bias (projection_bias); in training the attention probabilities may be dropped
// (attention_dropout).
#pragma once

#include <cstdint>
#include <vector>

#include "mla/config.h"
#include "mla/error.h"
#include "train/attention.h"
#include "train/buffers.h"

namespace mla::train {

// Pointers into a parameter (or gradient) buffer; the unused query path stays null.
template <typename T>
struct MlaTensors {
  T* wq = nullptr;       // (H*Dqk, d)    without query compression
  T* wq_a = nullptr;     // (Rq, d)
  T* q_norm = nullptr;   // (Rq)
  T* wq_b = nullptr;     // (H*Dqk, Rq)
  T* wkv_a = nullptr;    // (R+Dr, d)
  T* kv_norm = nullptr;  // (R)
  T* wkv_b = nullptr;    // (H*(Dn+Dv), R)
  T* wo = nullptr;       // (d_out, H*Dv)
  // LayerNorm latents only.
  T* q_norm_b = nullptr;   // (Rq)
  T* kv_norm_b = nullptr;  // (R)
  // projection_bias only: one per projection, the width of its output.
  T* bq = nullptr;
  T* bq_a = nullptr;
  T* bq_b = nullptr;
  T* bkv_a = nullptr;
  T* bkv_b = nullptr;
  T* bo = nullptr;
};

template <typename T>
class MlaBlock {
 public:
  // Gradients of intermediate activations: needed only during one block's backward, so one set
  // is shared by all layers of a model.
  struct Scratch {
    std::vector<T> d_o, dq, dk, dkvb, dkv, dckv, dnorm_raw, dcqn, dcq;
    std::vector<T> doa, dqa, dlat;  // absorbed form: d o~, d q~, d latent rows
  };

  explicit MlaBlock(const MlaConfig& config);
  // Sparse attention for later forward/backward calls (window, block or topk; see attention.h).
  void set_sparse(const SparseSpec& spec);
  // The absorbed form instead of the naive one (same function, other order of products):
  //   q~_h = W_UK_h^T q_nope_h, attention of [q~_h; q_pe_h] over the latent rows
  //   [c_kv; k_pe] (one KV head, value = c_kv), o_h = W_UV_h o~_h.
  // The absorbed form has no place for kv_b's biases or attention dropout: refused with them.
  void set_absorbed(bool absorbed) {
    if (absorbed && (c_.projection_bias || c_.attention_dropout > 0)) {
      throw Error("mla_form absorbed: projection_bias and attention_dropout need the naive form");
    }
    absorbed_ = absorbed;
  }

  // out (N, d_out) from x (N, d). Keeps the activations backward needs. training applies the
  // config's attention_dropout with masks keyed by dropout_key.
  void forward(T* out, const T* x, const MlaTensors<T>& w, int64_t batch, int64_t seq,
               bool training = false, uint64_t dropout_key = 0);
  // dx (N, d) += d/dx, g += d/dweights, for the last forward's x (passed again, not copied).
  void backward(T* dx, const MlaTensors<T>& g, const T* dout, const T* x, const MlaTensors<T>& w,
                Scratch& scratch);

 private:
  AttentionLayout layout() const;
  // The latent norm of n rows of width c: inp has row stride `stride`, out is contiguous. raw
  // receives a contiguous copy of inp when the norm needs one (LayerNorm).
  void norm_forward(T* out, T* mean, T* rstd, std::vector<T>& raw, const T* inp, const T* w,
                    const T* b, int64_t n, int64_t c, int64_t stride) const;
  // dinp (row stride `stride`) += ..., dw, db += ... for the forward call with the same inp,
  // raw, mean and rstd; draw is scratch.
  void norm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const std::vector<T>& raw,
                     std::vector<T>& draw, const T* w, const T* mean, const T* rstd, int64_t n,
                     int64_t c, int64_t stride) const;
  AttentionLayout absorbed_layout() const;
  void absorbed_forward(const MlaTensors<T>& w);  // q_, ckv_, kv_ -> o_ (N, H, Dv)
  // d_o (N, H, Dv) -> s.dq (N, H, Dqk), s.dlat (N, R + Dr), g.wkv_b accumulated.
  void absorbed_backward(const MlaTensors<T>& g, const MlaTensors<T>& w, Scratch& s);

  MlaConfig c_;
  SparseSpec sparse_;
  bool absorbed_ = false;
  std::vector<float> rope_;  // (S, Dr)
  int64_t batch_ = 0, seq_ = 0;
  bool training_ = false;
  uint64_t dropout_key_ = 0;
  std::vector<T> cq_, cq_raw_, cq_mean_, cq_rstd_, cqn_;  // (N, Rq), (N, Rq), (N), (N), (N, Rq)
  std::vector<T> q_;                                      // (N, H, Dqk) after RoPE
  std::vector<T> kv_;                         // (N, R+Dr): raw c_kv part, roped k_pe part
  std::vector<T> ckv_raw_;                    // (N, R) kv[:, :R] contiguous (LayerNorm's input)
  std::vector<T> ckv_, ckv_mean_, ckv_rstd_;  // (N, R), (N), (N)
  std::vector<T> kvb_;                        // (N, H, Dn+Dv)
  std::vector<T> k_;                          // (N, H, Dqk)
  std::vector<T> probs_;                      // (B, H, S, S)
  std::vector<T> o_;                          // (N, H, Dv)
  std::vector<T> qa_, lat_, oa_;              // absorbed: (N, H, R+Dr), (N, R+Dr), (N, H, R)
};

}  // namespace mla::train
