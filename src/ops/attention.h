// Causal softmax attention for one sequence, streaming keys in tiles with an online softmax so
// that no (context x heads) score matrix is ever held. Serves every layout we use:
//   - absorbed MLA: one shared "KV head" (the latent row, value = its first R entries), H queries;
//   - naive MLA / MHA: one KV head per query head; GQA/MQA: groups of query heads per KV head.
#pragma once

#include <cstdint>

#include "ops/kv_view.h"

namespace mla::ops {

// How the heads of one attention call sit in memory: head counts, widths and element strides
// of the queries and the output, and the offset between KV heads within a key/value row. The
// one layout struct of every attention: the inference kernels (AttentionParams) and training's
// attention (train::AttentionLayout, which adds the token strides of its contiguous K and V)
// derive from it, and the model derives it from its config (model/mla_projection.h).
struct AttentionHeads {
  int64_t num_heads = 0;     // query heads H
  int64_t num_kv_heads = 1;  // H must be a multiple; query head h uses KV head h / (H / G)
  int64_t qk_dim = 0;
  int64_t v_dim = 0;
  int64_t q_token_stride = 0;  // q[t * q_token_stride + h * q_head_stride + i], i < qk_dim
  int64_t q_head_stride = 0;
  int64_t k_head_stride = 0;  // KV head g of a key row at + g * k_head_stride (0: one shared)
  int64_t v_head_stride = 0;
  int64_t out_token_stride = 0;  // out[t * out_token_stride + h * out_head_stride + i]
  int64_t out_head_stride = 0;
};

struct AttentionParams : AttentionHeads {
  const float* q = nullptr;
  KvView k;  // key of token j, KV head g: k.row(j) + g * k_head_stride, qk_dim entries (F32/BF16)
  KvView v;  // value: v.row(j) + g * v_head_stride, v_dim entries (may alias k)
  float* out = nullptr;
  int64_t num_queries = 0;  // new tokens T
  int64_t context_before =
      0;  // keys cached before query 0; query t sees keys 0 .. context_before + t
  float scale = 1.0f;
};

// Runs in parallel (OpenMP) over queries and groups of heads, with the SIMD level of
// ops::simd_level() (AVX-512, AVX2+FMA or portable C++). No allocation after the first call
// on each thread for a given head width.
void attention_forward(const AttentionParams& p);

}  // namespace mla::ops
