// The attention head layouts of the model's layers, from their configs: the one place the
// strides of an attention call are derived, for inference (MlaLayer, GqaLayer) and training
// (train::MlaBlock, train::GqaBlock) alike.
#pragma once

#include "mla/config.h"
#include "mla/gqa_layer.h"
#include "ops/attention.h"

namespace mla {

// Attention over the MLA projection chain's outputs (model/mla_projection.h).
//   absorbed: q~ (N, H, R + Dr) against one latent row per token shared by all heads (the value
//             is its first R entries), output o~ (N, H, R);
//   naive:    q (N, H, Dqk) against per-head keys [k_nope ; k_pe] (Dqk apart) and values (Dv
//             apart), output o (N, H, Dv).
ops::AttentionHeads mla_attention_heads(const MlaConfig& config, bool absorbed);

// q and out (N, H, Dh); keys and values (N, G, Dh) each.
ops::AttentionHeads gqa_attention_heads(const GqaConfig& config);

}  // namespace mla
