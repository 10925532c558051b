#include "train/gqa_block.h"

#include <cmath>

#include "model/attention_heads.h"
#include "model/rope_params.h"
#include "ops/rope.h"
#include "train/linear.h"

namespace mla::train {

template <typename T>
GqaBlock<T>::GqaBlock(const GqaConfig& config) : c_(config) {
  c_.validate();
}

template <typename T>
AttentionLayout GqaBlock<T>::layout() const {
  AttentionLayout l;
  static_cast<ops::AttentionHeads&>(l) = gqa_attention_heads(c_);
  l.batch = batch_;
  l.seq = seq_;
  l.k_token_stride = l.v_token_stride = c_.num_kv_heads * c_.head_dim;
  l.scale = 1.0 / std::sqrt(static_cast<double>(c_.head_dim));
  return l;
}

template <typename T>
void GqaBlock<T>::forward(T* out, const T* x, const GqaTensors<T>& w, int64_t batch, int64_t seq) {
  const int64_t n = batch * seq, d = c_.hidden_size, h = c_.num_heads, g = c_.num_kv_heads;
  const int64_t dh = c_.head_dim, dr = c_.rope_dim;
  batch_ = batch;
  seq_ = seq;
  if (static_cast<int64_t>(rope_.size()) < seq * dr) rope_ = ops::rope_table(rope_params(c_), seq);
  grow(q_, n * h * dh);
  grow(k_, n * g * dh);
  grow(v_, n * g * dh);
  linear_forward(q_.data(), x, w.wq, n, d, h * dh);
  linear_forward(k_.data(), x, w.wk, n, d, g * dh);
  linear_forward(v_.data(), x, w.wv, n, d, g * dh);
  if (dr > 0) {
    ops::rope_apply_rows(q_.data(), n, h * dh, h, dh, dr, rope_.data(), seq);
    ops::rope_apply_rows(k_.data(), n, g * dh, g, dh, dr, rope_.data(), seq);
  }
  grow(probs_, batch * h * seq * seq);
  grow(o_, n * h * dh);
  attention_forward(o_.data(), probs_.data(), q_.data(), k_.data(), v_.data(), layout());
  linear_forward(out, o_.data(), w.wo, n, h * dh, d);
}

template <typename T>
void GqaBlock<T>::backward(T* dx, const GqaTensors<T>& gr, const T* dout, const T* x,
                           const GqaTensors<T>& w, Scratch& s) {
  const int64_t batch = batch_, seq = seq_, n = batch * seq, d = c_.hidden_size;
  const int64_t h = c_.num_heads, g = c_.num_kv_heads, dh = c_.head_dim, dr = c_.rope_dim;
  zero_first(s.d_o, n * h * dh);
  linear_backward(s.d_o.data(), gr.wo, dout, o_.data(), w.wo, n, h * dh, d);
  zero_first(s.dq, n * h * dh);
  zero_first(s.dk, n * g * dh);
  zero_first(s.dv, n * g * dh);
  attention_backward(s.dq.data(), s.dk.data(), s.dv.data(), s.d_o.data(), probs_.data(), q_.data(),
                     k_.data(), v_.data(), layout());
  if (dr > 0) {
    constexpr auto kTranspose = ops::RopeDirection::kTranspose;
    ops::rope_apply_rows(s.dq.data(), n, h * dh, h, dh, dr, rope_.data(), seq, kTranspose);
    ops::rope_apply_rows(s.dk.data(), n, g * dh, g, dh, dr, rope_.data(), seq, kTranspose);
  }
  linear_backward(dx, gr.wq, s.dq.data(), x, w.wq, n, d, h * dh);
  linear_backward(dx, gr.wk, s.dk.data(), x, w.wk, n, d, g * dh);
  linear_backward(dx, gr.wv, s.dv.data(), x, w.wv, n, d, g * dh);
}

template class GqaBlock<float>;
template class GqaBlock<double>;

}  // namespace mla::train
