#include "train/mla_block.h"

#include <algorithm>

#include "mla/error.h"
#include "model/attention_heads.h"
#include "model/mla_projection.h"
#include "model/rope_params.h"
#include "ops/gemm.h"
#include "ops/rope.h"
#include "train/linear.h"

namespace mla::train {

template <typename T>
MlaBlock<T>::MlaBlock(const MlaConfig& config) : c_(config) {
  c_.validate();
}

template <typename T>
void MlaBlock<T>::set_sparse(const SparseSpec& spec) {
  spec.validate(c_.num_heads);
  if (spec.kind == SparseKind::kDsa) throw Error("MlaBlock: DSA is not trainable here");
  sparse_ = spec;
}

template <typename T>
AttentionLayout MlaBlock<T>::layout() const {
  const int64_t h = c_.num_heads, dn = c_.qk_nope_head_dim, dv = c_.v_head_dim;
  AttentionLayout l;
  static_cast<ops::AttentionHeads&>(l) = mla_attention_heads(c_, false);
  l.batch = batch_;
  l.seq = seq_;
  l.k_token_stride = h * c_.qk_head_dim();
  l.v_token_stride = h * (dn + dv);  // values are read in place from kvb, after each k_nope
  l.v_head_stride = dn + dv;
  l.scale = c_.softmax_scale();
  l.dropout = training_ ? c_.attention_dropout : 0.0;
  l.dropout_key = dropout_key_;
  l.sparse = sparse_;
  return l;
}

template <typename T>
void MlaBlock<T>::forward(T* out, const T* x, const MlaTensors<T>& w, int64_t batch, int64_t seq,
                          bool training, uint64_t dropout_key) {
  const int64_t n = batch * seq, h = c_.num_heads;
  const int64_t dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim, dv = c_.v_head_dim;
  const int64_t r = c_.kv_lora_rank, rq = c_.q_lora_rank, dqk = dn + dr, lw = r + dr;
  batch_ = batch;
  seq_ = seq;
  training_ = training;
  dropout_key_ = dropout_key;
  if (static_cast<int64_t>(rope_.size()) < seq * dr) rope_ = ops::rope_table(rope_params(c_), seq);

  grow(q_, n * h * dqk);
  grow(cq_raw_, n * rq);
  grow(cq_, n * rq);
  grow(cq_mean_, n);
  grow(cq_rstd_, n);
  grow(kv_raw_, n * lw);
  grow(latent_, n * lw);
  grow(kv_mean_, n);
  grow(kv_rstd_, n);
  detail::MlaProjected<T> p;
  p.q = q_.data();
  p.latent = latent_.data();
  p.q_latent = cq_.data();
  p.q_latent_raw = cq_raw_.data();
  p.kv_raw = kv_raw_.data();
  p.q_mean = cq_mean_.data();
  p.q_rstd = cq_rstd_.data();
  p.kv_mean = kv_mean_.data();
  p.kv_rstd = kv_rstd_.data();
  const detail::MlaChainWeights<T> chain = detail::chain_weights<T>(w);
  detail::project_inputs(c_, chain, x, n, rope_.data(), seq, p);
  if (absorbed_) {
    absorbed_forward(w);
    detail::project(chain.o, o_.data(), n, h * dv, c_.out_size(), out);
    return;
  }
  grow(kvb_, n * h * (dn + dv));
  detail::expand_kv(c_, w.wkv_b, w.bkv_b, latent_.data(), n, kvb_.data());

  grow(k_, n * h * dqk);
  for (int64_t row = 0; row < n; ++row) {
    detail::naive_keys(c_, kvb_.data() + row * h * (dn + dv), latent_.data() + row * lw,
                       k_.data() + row * h * dqk, static_cast<T*>(nullptr));
  }
  grow(probs_, batch * h * seq * seq);
  grow(o_, n * h * dv);
  attention_forward(o_.data(), probs_.data(), q_.data(), k_.data(), kvb_.data() + dn, layout());
  detail::project(chain.o, o_.data(), n, h * dv, c_.out_size(), out);
}

template <typename T>
void MlaBlock<T>::backward(T* dx, const MlaTensors<T>& g, const T* dout, const T* x,
                           const MlaTensors<T>& w, Scratch& s) {
  const int64_t batch = batch_, seq = seq_, n = batch * seq, d = c_.hidden_size, h = c_.num_heads;
  const int64_t dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim, dv = c_.v_head_dim;
  const int64_t r = c_.kv_lora_rank, rq = c_.q_lora_rank, dqk = dn + dr, lw = r + dr;
  constexpr auto kTranspose = ops::RopeDirection::kTranspose;

  zero_first(s.d_o, n * h * dv);
  linear_backward(s.d_o.data(), g.wo, dout, o_.data(), w.wo, n, h * dv, c_.out_size());
  bias_backward(g.bo, dout, n, c_.out_size());

  // s.dlat: the gradient of the latent rows [c_kv ; k_pe] as the chain left them.
  zero_first(s.dq, n * h * dqk);
  zero_first(s.dlat, n * lw);
  if (absorbed_) {
    absorbed_backward(g, w, s);
  } else {
    zero_first(s.dk, n * h * dqk);
    zero_first(s.dkvb, n * h * (dn + dv));
    attention_backward(s.dq.data(), s.dk.data(), s.dkvb.data() + dn, s.d_o.data(), probs_.data(),
                       q_.data(), k_.data(), kvb_.data() + dn, layout());
    // Split the key gradient: k_nope goes back to kvb, the rotary part of every head to the one
    // shared k_pe (it was broadcast to all heads, so its gradient is the sum over heads).
    for (int64_t row = 0; row < n; ++row) {
      T* dpe = s.dlat.data() + row * lw + r;
      for (int64_t head = 0; head < h; ++head) {
        const T* dk = s.dk.data() + (row * h + head) * dqk;
        T* dkn = s.dkvb.data() + (row * h + head) * (dn + dv);
        for (int64_t i = 0; i < dn; ++i) dkn[i] += dk[i];
        for (int64_t i = 0; i < dr; ++i) dpe[i] += dk[dn + i];
      }
    }
    // kvb = latent[:, :R] W_kv_b^T + b: d latent[:, :R] += dkvb W, dW += dkvb^T latent[:, :R].
    const int64_t kvw = h * (dn + dv);
    ops::gemm(false, false, n, r, kvw, T(1), s.dkvb.data(), kvw, w.wkv_b, r, T(1), s.dlat.data(),
              lw);
    ops::gemm(true, false, kvw, r, n, T(1), s.dkvb.data(), kvw, latent_.data(), lw, T(1), g.wkv_b,
              r);
    bias_backward(g.bkv_b, s.dkvb.data(), n, kvw);
  }
  // Back through the chain's kv half: RoPE of k_pe (its transpose), the norm of c_kv, kv_a.
  zero_first(s.dkv, n * lw);
  if (dr > 0) {
    ops::rope_apply_rows(s.dlat.data() + r, n, lw, 1, lw, dr, rope_.data(), seq, kTranspose);
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(s.dlat.data() + i * lw + r, dr, s.dkv.data() + i * lw + r);
    }
  }
  detail::latent_norm_backward(c_, s.dkv.data(), g.kv_norm, g.kv_norm_bias, s.dlat.data(),
                               kv_raw_.data(), w.kv_norm, kv_mean_.data(), kv_rstd_.data(), n, r,
                               lw, lw);
  bias_backward(g.bkv_a, s.dkv.data(), n, lw);
  linear_backward(dx, g.wkv_a, s.dkv.data(), x, w.wkv_a, n, d, lw);

  ops::rope_apply_rows(s.dq.data() + dn, n, h * dqk, h, dqk, dr, rope_.data(), seq, kTranspose);
  if (c_.has_q_lora()) {
    zero_first(s.dcqn, n * rq);
    linear_backward(s.dcqn.data(), g.wq_b, s.dq.data(), cq_.data(), w.wq_b, n, rq, h * dqk);
    bias_backward(g.bq_b, s.dq.data(), n, h * dqk);
    zero_first(s.dcq, n * rq);
    detail::latent_norm_backward(c_, s.dcq.data(), g.q_norm, g.q_norm_bias, s.dcqn.data(),
                                 cq_raw_.data(), w.q_norm, cq_mean_.data(), cq_rstd_.data(), n, rq,
                                 rq, rq);
    bias_backward(g.bq_a, s.dcq.data(), n, rq);
    linear_backward(dx, g.wq_a, s.dcq.data(), x, w.wq_a, n, d, rq);
  } else {
    bias_backward(g.bq, s.dq.data(), n, h * dqk);
    linear_backward(dx, g.wq, s.dq.data(), x, w.wq, n, d, h * dqk);
  }
}

template class MlaBlock<float>;
template class MlaBlock<double>;

}  // namespace mla::train
