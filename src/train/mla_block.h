// The MLA attention layer for training, in the naive form, forward and backward, on the weights
// of mla::MlaWeights. The forward IS mla::MlaLayer's projection chain (src/model/mla_projection.h:
// the same code, in float or double), asked to keep the norms' inputs and statistics; only the
// attention that keeps its probabilities (train/attention.h) and the backward are the training
// block's own. Legend: B batch, S tokens, N = B*S, d hidden, H heads, Dn/Dr/Dv nope/rope/value
// head widths, Dqk = Dn + Dr, R kv_lora_rank, Rq q_lora_rank.
//
//   q      = RoPE_Dr( q_b(Norm(q_a x)) )  or  RoPE_Dr(q_proj x)         (N, H, Dqk)
//   latent = [ Norm(kv_a x [:, :R]) ; RoPE(kv_a x [:, R:]) ]             (N, R + Dr)
//   kvb    = kv_b latent[:, :R]                 (N, H, Dn + Dv): per head k_nope then v
//   k_h    = [kvb_h[:Dn] ; k_pe],  v_h = kvb_h[Dn:]   (one rotary key shared by all heads)
//   out    = o_proj( causal_attention(q, k, v) )                         (N, d_out)
// Norm is the config's latent_norm (RMSNorm, LayerNorm or none); every projection may carry a
// bias (projection_bias); in training the attention probabilities may be dropped
// (attention_dropout).
#pragma once

#include <cstdint>
#include <vector>

#include "mla/config.h"
#include "mla/error.h"
#include "mla/weights.h"
#include "train/attention.h"
#include "train/buffers.h"

namespace mla::train {

// Pointers into a parameter (or gradient) buffer, by mla::MlaTensorSet's one list; unused
// tensors stay null.
template <typename T>
using MlaTensors = MlaTensorSet<T*>;

template <typename T>
class MlaBlock {
 public:
  // Gradients of intermediate activations: needed only during one block's backward, so one set
  // is shared by all layers of a model.
  struct Scratch {
    std::vector<T> d_o, dq, dk, dkvb, dkv, dlat, dcqn, dcq;
    std::vector<T> doa, dqa;  // absorbed form: d o~, d q~
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
  AttentionLayout absorbed_layout() const;
  void absorbed_forward(const MlaTensors<T>& w);  // q_, latent_ -> o_ (N, H, Dv)
  // d_o (N, H, Dv) -> s.dq (N, H, Dqk), s.dlat (N, R + Dr) accumulated, g.wkv_b accumulated.
  void absorbed_backward(const MlaTensors<T>& g, const MlaTensors<T>& w, Scratch& s);

  MlaConfig c_;
  SparseSpec sparse_;
  bool absorbed_ = false;
  std::vector<float> rope_;  // (S, Dr)
  int64_t batch_ = 0, seq_ = 0;
  bool training_ = false;
  uint64_t dropout_key_ = 0;
  std::vector<T> cq_raw_, cq_mean_, cq_rstd_, cq_;  // (N, Rq), (N), (N), (N, Rq) normed
  std::vector<T> q_;                                // (N, H, Dqk) after RoPE
  std::vector<T> kv_raw_;                           // (N, R+Dr): kv_a x + b, before norm and RoPE
  std::vector<T> latent_;             // (N, R+Dr): normed c_kv, roped k_pe (inference's rows)
  std::vector<T> kv_mean_, kv_rstd_;  // (N), (N)
  std::vector<T> kvb_;                // (N, H, Dn+Dv)
  std::vector<T> k_;                  // (N, H, Dqk)
  std::vector<T> probs_;              // (B, H, S, S)
  std::vector<T> o_;                  // (N, H, Dv)
  std::vector<T> qa_, oa_;            // absorbed: (N, H, R+Dr), (N, H, R)
};

}  // namespace mla::train
