#include "model/attention_heads.h"

namespace mla {

ops::AttentionHeads mla_attention_heads(const MlaConfig& c, bool absorbed) {
  const int64_t h = c.num_heads;
  const int64_t q_width = absorbed ? c.latent_dim() : c.qk_head_dim();
  const int64_t out_width = absorbed ? c.kv_lora_rank : c.v_head_dim;
  ops::AttentionHeads a;
  a.num_heads = h;
  a.num_kv_heads = absorbed ? 1 : h;
  a.qk_dim = q_width;
  a.v_dim = out_width;
  a.q_token_stride = h * q_width;
  a.q_head_stride = q_width;
  a.k_head_stride = absorbed ? 0 : c.qk_head_dim();
  a.v_head_stride = absorbed ? 0 : c.v_head_dim;
  a.out_token_stride = h * out_width;
  a.out_head_stride = out_width;
  return a;
}

ops::AttentionHeads gqa_attention_heads(const GqaConfig& c) {
  const int64_t h = c.num_heads, g = c.num_kv_heads, dh = c.head_dim;
  ops::AttentionHeads a;
  a.num_heads = h;
  a.num_kv_heads = g;
  a.qk_dim = dh;
  a.v_dim = dh;
  a.q_token_stride = h * dh;
  a.q_head_stride = dh;
  a.k_head_stride = dh;
  a.v_head_stride = dh;
  a.out_token_stride = h * dh;
  a.out_head_stride = dh;
  return a;
}

}  // namespace mla
