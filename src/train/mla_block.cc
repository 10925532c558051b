#include "train/mla_block.h"

#include <algorithm>
#include <cstring>

#include "mla/error.h"
#include "train/linear.h"
#include "train/norm.h"
#include "train/rope.h"

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
  const int64_t dqk = c_.qk_head_dim();
  AttentionLayout l;
  l.batch = batch_;
  l.seq = seq_;
  l.heads = h;
  l.kv_heads = h;
  l.qk_dim = dqk;
  l.v_dim = dv;
  l.q_token = h * dqk;
  l.q_head = dqk;
  l.k_token = h * dqk;
  l.k_head = dqk;
  l.v_token = h * (dn + dv);  // values are read in place from kvb, after each head's k_nope
  l.v_head = dn + dv;
  l.o_token = h * dv;
  l.o_head = dv;
  l.scale = c_.softmax_scale();
  l.dropout = training_ ? c_.attention_dropout : 0.0;
  l.dropout_key = dropout_key_;
  l.sparse = sparse_;
  return l;
}

template <typename T>
void MlaBlock<T>::norm_forward(T* out, T* mean, T* rstd, std::vector<T>& raw, const T* inp,
                               const T* w, const T* b, int64_t n, int64_t c, int64_t stride) const {
  switch (c_.latent_norm) {
    case LatentNorm::kRmsNorm:
      rmsnorm_forward(out, rstd, inp, w, n, c, c_.rms_norm_eps, stride, c);
      return;
    case LatentNorm::kLayerNorm:
      // layernorm_forward reads contiguous rows and backward needs its input: keep a copy.
      grow(raw, n * c);
      for (int64_t i = 0; i < n; ++i) std::copy_n(inp + i * stride, c, raw.data() + i * c);
      layernorm_forward(out, mean, rstd, raw.data(), w, b, n, c, c_.rms_norm_eps);
      return;
    case LatentNorm::kNone:
      for (int64_t i = 0; i < n; ++i) std::copy_n(inp + i * stride, c, out + i * c);
      return;
  }
}

template <typename T>
void MlaBlock<T>::norm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp,
                                const std::vector<T>& raw, std::vector<T>& draw, const T* w,
                                const T* mean, const T* rstd, int64_t n, int64_t c,
                                int64_t stride) const {
  switch (c_.latent_norm) {
    case LatentNorm::kRmsNorm:
      rmsnorm_backward(dinp, dw, dout, inp, w, rstd, n, c, stride, c);
      return;
    case LatentNorm::kLayerNorm:
      zero_first(draw, n * c);
      layernorm_backward(draw.data(), dw, db, dout, raw.data(), w, mean, rstd, n, c);
      dout = draw.data();
      break;
    case LatentNorm::kNone:
      break;
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < c; ++k) dinp[i * stride + k] += dout[i * c + k];
  }
}

template <typename T>
void MlaBlock<T>::forward(T* out, const T* x, const MlaTensors<T>& w, int64_t batch, int64_t seq,
                          bool training, uint64_t dropout_key) {
  const int64_t n = batch * seq, d = c_.hidden_size, h = c_.num_heads;
  const int64_t dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim, dv = c_.v_head_dim;
  const int64_t r = c_.kv_lora_rank, rq = c_.q_lora_rank, dqk = dn + dr;
  batch_ = batch;
  seq_ = seq;
  training_ = training;
  dropout_key_ = dropout_key;
  if (static_cast<int64_t>(rope_.size()) < seq * dr) rope_ = rope_table(c_, seq);

  grow(q_, n * h * dqk);
  if (c_.has_q_lora()) {
    grow(cq_, n * rq);
    grow(cq_mean_, n);
    grow(cq_rstd_, n);
    grow(cqn_, n * rq);
    linear_forward(cq_.data(), x, w.wq_a, n, d, rq);
    bias_forward(cq_.data(), w.bq_a, n, rq);
    norm_forward(cqn_.data(), cq_mean_.data(), cq_rstd_.data(), cq_raw_, cq_.data(), w.q_norm,
                 w.q_norm_b, n, rq, rq);
    linear_forward(q_.data(), cqn_.data(), w.wq_b, n, rq, h * dqk);
    bias_forward(q_.data(), w.bq_b, n, h * dqk);
  } else {
    linear_forward(q_.data(), x, w.wq, n, d, h * dqk);
    bias_forward(q_.data(), w.bq, n, h * dqk);
  }
  grow(kv_, n * (r + dr));
  grow(ckv_, n * r);
  grow(ckv_mean_, n);
  grow(ckv_rstd_, n);
  linear_forward(kv_.data(), x, w.wkv_a, n, d, r + dr);
  bias_forward(kv_.data(), w.bkv_a, n, r + dr);
  norm_forward(ckv_.data(), ckv_mean_.data(), ckv_rstd_.data(), ckv_raw_, kv_.data(), w.kv_norm,
               w.kv_norm_b, n, r, r + dr);
  if (dr > 0) {
    rope_forward(q_.data() + dn, rope_.data(), RopeLayout{batch, seq, h, h * dqk, dqk, dr});
    rope_forward(kv_.data() + r, rope_.data(), RopeLayout{batch, seq, 1, r + dr, 0, dr});
  }
  if (absorbed_) {
    absorbed_forward(w);
    linear_forward(out, o_.data(), w.wo, n, h * dv, c_.out_size());
    return;
  }
  grow(kvb_, n * h * (dn + dv));
  linear_forward(kvb_.data(), ckv_.data(), w.wkv_b, n, r, h * (dn + dv));
  bias_forward(kvb_.data(), w.bkv_b, n, h * (dn + dv));

  grow(k_, n * h * dqk);
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t head = 0; head < h; ++head) {
      T* k = k_.data() + (row * h + head) * dqk;
      std::memcpy(k, kvb_.data() + (row * h + head) * (dn + dv), sizeof(T) * dn);
      std::memcpy(k + dn, kv_.data() + row * (r + dr) + r, sizeof(T) * dr);
    }
  }
  grow(probs_, batch * h * seq * seq);
  grow(o_, n * h * dv);
  attention_forward(o_.data(), probs_.data(), q_.data(), k_.data(), kvb_.data() + dn, layout());
  linear_forward(out, o_.data(), w.wo, n, h * dv, c_.out_size());
  bias_forward(out, w.bo, n, c_.out_size());
}

template <typename T>
void MlaBlock<T>::backward(T* dx, const MlaTensors<T>& g, const T* dout, const T* x,
                           const MlaTensors<T>& w, Scratch& s) {
  const int64_t batch = batch_, seq = seq_, n = batch * seq, d = c_.hidden_size, h = c_.num_heads;
  const int64_t dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim, dv = c_.v_head_dim;
  const int64_t r = c_.kv_lora_rank, rq = c_.q_lora_rank, dqk = dn + dr;

  zero_first(s.d_o, n * h * dv);
  linear_backward(s.d_o.data(), g.wo, dout, o_.data(), w.wo, n, h * dv, c_.out_size());
  bias_backward(g.bo, dout, n, c_.out_size());

  zero_first(s.dq, n * h * dqk);
  zero_first(s.dkv, n * (r + dr));
  zero_first(s.dckv, n * r);
  if (absorbed_) {
    absorbed_backward(g, w, s);
    // The latent rows were [c_kv ; k_pe]: split their gradient back into the two.
    for (int64_t row = 0; row < n; ++row) {
      const T* dl = s.dlat.data() + row * (r + dr);
      std::copy(dl, dl + r, s.dckv.data() + row * r);
      std::copy(dl + r, dl + r + dr, s.dkv.data() + row * (r + dr) + r);
    }
  } else {
    zero_first(s.dk, n * h * dqk);
    zero_first(s.dkvb, n * h * (dn + dv));
    attention_backward(s.dq.data(), s.dk.data(), s.dkvb.data() + dn, s.d_o.data(), probs_.data(),
                       q_.data(), k_.data(), kvb_.data() + dn, layout());
    // Split the key gradient: k_nope goes back to kvb, the rotary part of every head to the one
    // shared k_pe (it was broadcast to all heads, so its gradient is the sum over heads).
    for (int64_t row = 0; row < n; ++row) {
      T* dpe = s.dkv.data() + row * (r + dr) + r;
      for (int64_t head = 0; head < h; ++head) {
        const T* dk = s.dk.data() + (row * h + head) * dqk;
        T* dkn = s.dkvb.data() + (row * h + head) * (dn + dv);
        for (int64_t i = 0; i < dn; ++i) dkn[i] += dk[i];
        for (int64_t i = 0; i < dr; ++i) dpe[i] += dk[dn + i];
      }
    }
    linear_backward(s.dckv.data(), g.wkv_b, s.dkvb.data(), ckv_.data(), w.wkv_b, n, r,
                    h * (dn + dv));
    bias_backward(g.bkv_b, s.dkvb.data(), n, h * (dn + dv));
  }
  if (dr > 0)
    rope_backward(s.dkv.data() + r, rope_.data(), RopeLayout{batch, seq, 1, r + dr, 0, dr});
  norm_backward(s.dkv.data(), g.kv_norm, g.kv_norm_b, s.dckv.data(), kv_.data(), ckv_raw_,
                s.dnorm_raw, w.kv_norm, ckv_mean_.data(), ckv_rstd_.data(), n, r, r + dr);
  bias_backward(g.bkv_a, s.dkv.data(), n, r + dr);
  linear_backward(dx, g.wkv_a, s.dkv.data(), x, w.wkv_a, n, d, r + dr);

  if (dr > 0)
    rope_backward(s.dq.data() + dn, rope_.data(), RopeLayout{batch, seq, h, h * dqk, dqk, dr});
  if (c_.has_q_lora()) {
    zero_first(s.dcqn, n * rq);
    linear_backward(s.dcqn.data(), g.wq_b, s.dq.data(), cqn_.data(), w.wq_b, n, rq, h * dqk);
    bias_backward(g.bq_b, s.dq.data(), n, h * dqk);
    zero_first(s.dcq, n * rq);
    norm_backward(s.dcq.data(), g.q_norm, g.q_norm_b, s.dcqn.data(), cq_.data(), cq_raw_,
                  s.dnorm_raw, w.q_norm, cq_mean_.data(), cq_rstd_.data(), n, rq, rq);
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
