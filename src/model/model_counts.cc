// Sizes of a whole model from its config alone: parameters (all and active per token) and cache
// numbers per token (mla info, the benches' memory floor).
#include "mla/model.h"

namespace mla {

ModelCounts count_model(const DeepseekConfig& c) {
  ModelCounts n;
  const MlaConfig& a = c.attention;
  const int64_t d = a.hidden_size, h = a.num_heads;
  int64_t attn = a.has_q_lora()
                     ? a.q_lora_rank * d + a.q_lora_rank + h * a.qk_head_dim() * a.q_lora_rank
                     : h * a.qk_head_dim() * d;
  attn += a.latent_dim() * d + a.kv_lora_rank +
          h * (a.qk_nope_head_dim + a.v_head_dim) * a.kv_lora_rank;
  attn += d * h * a.v_head_dim;
  int64_t dsa = 0;
  if (c.dsa) {
    const int64_t q_in = a.has_q_lora() ? a.q_lora_rank : d;
    const DsaConfig& x = c.dsa_config;
    dsa = x.num_heads * x.head_dim * q_in + x.head_dim * d + 2 * x.head_dim + x.num_heads * d;
  }
  n.attention_parameters_per_layer = attn + dsa;
  const int64_t dense_mlp = 3 * d * c.intermediate_size;
  const int64_t expert = 3 * d * c.moe_intermediate_size;
  const int64_t E = c.router.num_experts;
  const int64_t moe_all = expert * (E + c.n_shared_experts) + E * d + (c.router.has_bias() ? E : 0);
  const int64_t moe_active =
      expert * (c.router.top_k + c.n_shared_experts) + E * d + (c.router.has_bias() ? E : 0);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const bool moe = c.is_moe_layer(l);
    (moe ? n.moe_layers : n.dense_layers) += 1;
    const int64_t base = attn + dsa + 2 * d;
    n.parameters += base + (moe ? moe_all : dense_mlp);
    n.active_parameters += base + (moe ? moe_active : dense_mlp);
  }
  const int64_t table = c.vocab_size * d;
  n.parameters += table + d + (c.tie_word_embeddings ? 0 : table);
  n.active_parameters += d + table;  // the head is read whole; the embedding row is a lookup
  n.cache_numbers_per_token = c.num_layers * (a.latent_dim() + (c.dsa ? c.dsa_config.head_dim : 0));
  return n;
}

}  // namespace mla
