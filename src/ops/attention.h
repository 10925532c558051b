// Causal softmax attention for one sequence, streaming keys in tiles with an online softmax so
// that no (context x heads) score matrix is ever held. Serves every layout we use:
//   - absorbed MLA: one shared "KV head" (the latent row, value = its first R entries), H queries;
//   - naive MLA / MHA: one KV head per query head; GQA/MQA: groups of query heads per KV head.
#pragma once

#include <cstdint>

#include "ops/kv_view.h"

namespace mla::ops {

struct AttentionParams {
  const float* q = nullptr;  // q[t * q_token_stride + h * q_head_stride + i], i < qk_dim
  int64_t q_token_stride = 0;
  int64_t q_head_stride = 0;
  KvView k;  // key of token j, KV head g: k.row(j) + g * k_head_stride, qk_dim entries (F32/BF16)
  int64_t k_head_stride = 0;
  KvView v;  // value: v.row(j) + g * v_head_stride, v_dim entries (may alias k)
  int64_t v_head_stride = 0;
  float* out = nullptr;  // out[t * out_token_stride + h * out_head_stride + i]
  int64_t out_token_stride = 0;
  int64_t out_head_stride = 0;
  int64_t num_queries = 0;   // new tokens T
  int64_t num_heads = 0;     // query heads H
  int64_t num_kv_heads = 1;  // H must be a multiple; query head h uses KV head h / (H / G)
  int64_t qk_dim = 0;
  int64_t v_dim = 0;
  int64_t context_before =
      0;  // keys cached before query 0; query t sees keys 0 .. context_before + t
  float scale = 1.0f;
};

// Runs in parallel (OpenMP) over queries and groups of heads, with the SIMD level of
// ops::simd_level() (AVX-512, AVX2+FMA or portable C++). No allocation after the first call
// on each thread for a given head width.
void attention_forward(const AttentionParams& p);

}  // namespace mla::ops
