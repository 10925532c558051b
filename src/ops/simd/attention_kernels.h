// The per-instruction-set half of ops::attention_forward (ops/attention.h): one task = one query
// token x a run of query heads sharing one KV head, over all the keys it may see. The driver
// (attention.cc) splits and threads the tasks and keeps the portable path; the files here are
// compiled with their own -m flags and called only when the CPU has them. The rules of
// latent_kernels.h apply: nothing inline or templated is shared with other files.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/attention.h"

namespace mla::ops::simd {

// Keys per tile; scores of a tile are (heads, kAttentionTile) floats.
inline constexpr int64_t kAttentionTile = 64;

// Scratch floats a task of `heads` heads needs (64-byte aligned base).
size_t attention_scratch_floats(int64_t heads, int64_t v_dim);

// Query token t, query heads [h0, h1) of KV head g; writes their normalised outputs.
void attention_task_avx2(const AttentionParams& p, int64_t t, int64_t g, int64_t h0, int64_t h1,
                         float* scratch);
void attention_task_avx512(const AttentionParams& p, int64_t t, int64_t g, int64_t h0, int64_t h1,
                           float* scratch);

// One query row's online-softmax step over a tile of scores (ops/flash_attention.cc): s[0, n)
// holds scale * q.k, keys from `visible` on are hidden, and s has room for n rounded up to 16.
// Afterwards s[j] = exp(s[j] - m') for the visible keys and 0 for the others (padding
// included), with m' = max(*row_max, visible scores); *row_max = m', *row_sum = *row_sum * c +
// the tile's sum, and acc[0, dv) is scaled by c = exp(old *row_max - m'). exp is 2^(x log2 e)
// by attention's polynomial; a NaN score makes the sum NaN, as the scalar pass does.
void softmax_tile_row_avx2(float* s, int64_t visible, int64_t n, float* row_max, float* row_sum,
                           float* acc, int64_t dv);
void softmax_tile_row_avx512(float* s, int64_t visible, int64_t n, float* row_max, float* row_sum,
                             float* acc, int64_t dv);

}  // namespace mla::ops::simd
