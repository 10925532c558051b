// The absorbed form of the MLA training block (MlaBlock::set_absorbed): attention runs as
// multi-query attention over the latent rows [c_kv ; k_pe] with W_UK folded into the queries and
// W_UV applied after, exactly as inference's absorbed path; backward retraces the same products.
// Same function as the naive form (tested), other order of products.
#include <algorithm>

#include "model/attention_heads.h"
#include "model/mla_projection.h"
#include "ops/gemm.h"
#include "train/mla_block.h"

namespace mla::train {

template <typename T>
AttentionLayout MlaBlock<T>::absorbed_layout() const {
  AttentionLayout l;
  static_cast<ops::AttentionHeads&>(l) = mla_attention_heads(c_, true);
  l.batch = batch_;
  l.seq = seq_;
  l.k_token_stride = l.v_token_stride = c_.latent_dim();  // value: first R of the latent row
  l.scale = c_.softmax_scale();
  l.sparse = sparse_;
  return l;
}

template <typename T>
void MlaBlock<T>::absorbed_forward(const MlaTensors<T>& w) {
  const int64_t n = batch_ * seq_, h = c_.num_heads, dv = c_.v_head_dim, r = c_.kv_lora_rank;
  grow(qa_, n * h * c_.latent_dim());
  detail::absorb_queries(c_, w.wkv_b, q_.data(), n, qa_.data());
  grow(probs_, batch_ * h * seq_ * seq_);
  grow(oa_, n * h * r);
  attention_forward(oa_.data(), probs_.data(), qa_.data(), latent_.data(), latent_.data(),
                    absorbed_layout());
  grow(o_, n * h * dv);
  detail::absorbed_values(c_, w.wkv_b, static_cast<const T*>(nullptr), oa_.data(), n, o_.data());
}

template <typename T>
void MlaBlock<T>::absorbed_backward(const MlaTensors<T>& g, const MlaTensors<T>& w, Scratch& s) {
  const int64_t n = batch_ * seq_, h = c_.num_heads, dn = c_.qk_nope_head_dim;
  const int64_t dr = c_.qk_rope_head_dim, dv = c_.v_head_dim, r = c_.kv_lora_rank;
  const int64_t dqk = dn + dr, lw = r + dr;
  grow(s.doa, n * h * r);
  for (int64_t head = 0; head < h; ++head) {
    const T* wuv = w.wkv_b + (head * (dn + dv) + dn) * r;
    // d o~_h (N, R) = d o_h (N, Dv) W_UV_h (Dv, R);  dW_UV_h (Dv, R) += d o_h^T o~_h
    ops::gemm(false, false, n, r, dv, T(1), s.d_o.data() + head * dv, h * dv, wuv, r, T(0),
              s.doa.data() + head * r, h * r);
    ops::gemm(true, false, dv, r, n, T(1), s.d_o.data() + head * dv, h * dv, oa_.data() + head * r,
              h * r, T(1), g.wkv_b + (head * (dn + dv) + dn) * r, r);
  }
  zero_first(s.dqa, n * h * lw);
  // Keys and values are the same latent rows: both gradients accumulate into dlat (one KV head,
  // so one thread per sequence adds them in a fixed order).
  attention_backward(s.dqa.data(), s.dlat.data(), s.dlat.data(), s.doa.data(), probs_.data(),
                     qa_.data(), latent_.data(), latent_.data(), absorbed_layout());
  for (int64_t head = 0; head < h; ++head) {
    const T* wuk = w.wkv_b + head * (dn + dv) * r;
    // d q_nope_h (N, Dn) += d q~_h (N, R) W_UK_h^T;  dW_UK_h (Dn, R) += q_nope_h^T d q~_h
    ops::gemm(false, true, n, dn, r, T(1), s.dqa.data() + head * lw, h * lw, wuk, r, T(1),
              s.dq.data() + head * dqk, h * dqk);
    ops::gemm(true, false, dn, r, n, T(1), q_.data() + head * dqk, h * dqk,
              s.dqa.data() + head * lw, h * lw, T(1), g.wkv_b + head * (dn + dv) * r, r);
  }
  for (int64_t i = 0; i < n * h; ++i) {
    const T* dpe = s.dqa.data() + i * lw + r;
    T* dq = s.dq.data() + i * dqk + dn;
    for (int64_t j = 0; j < dr; ++j) dq[j] += dpe[j];
  }
}

template AttentionLayout MlaBlock<float>::absorbed_layout() const;
template AttentionLayout MlaBlock<double>::absorbed_layout() const;
template void MlaBlock<float>::absorbed_forward(const MlaTensors<float>&);
template void MlaBlock<double>::absorbed_forward(const MlaTensors<double>&);
template void MlaBlock<float>::absorbed_backward(const MlaTensors<float>&, const MlaTensors<float>&,
                                                 Scratch&);
template void MlaBlock<double>::absorbed_backward(const MlaTensors<double>&,
                                                  const MlaTensors<double>&, Scratch&);

}  // namespace mla::train
