// Absorbed-MLA attention over the latent cache, for decode and prefill: H query heads per token
// against rows [c_kv (R) ; k_pe (Dr)] whose first R entries are also the value. Keys are
// streamed in tiles, once for all heads of a sequence (and for a block of its queries): each
// tile is two dense products, S = Q K^T and O += P V, run by oneDNN's sgemm (which picks
// AVX-512 or AVX2 kernels at run time), with an online softmax in between. No context x heads
// score matrix exists; when the batch cannot keep every thread busy, a sequence's context is
// split across threads and the parts merged by their log-sum-exp (split-K).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/kv_view.h"

namespace mla::ops {

struct LatentAttentionParams {
  const float* q = nullptr;  // (T, H, R + Dr): absorbed query then rotary query, contiguous
  KvView kv;                 // rows of R + Dr numbers, F32 or BF16
  float* out = nullptr;      // (T, H, R)
  int64_t num_queries = 0;     // T
  int64_t context_before = 0;  // query t sees keys 0 .. context_before + t
};

struct LatentAttentionShape {
  int64_t num_heads = 0;  // H
  int64_t rank = 0;       // R: value width
  int64_t rope_dim = 0;   // Dr
  float scale = 1.0f;
};

// Scratch kept between calls so that decode steps allocate nothing once warm.
struct LatentAttentionWorkspace {
  struct Item {
    int64_t seq, t0, t1, k0, k1, part, parts;
    size_t partial;  // offset of this item's (acc, max, sum) in `partials` when split
  };
  std::vector<Item> items;
  std::vector<float> partials;
  int64_t force_split = 0;  // tests: split every sequence into this many parts (0 = automatic)
};

void latent_attention(std::span<const LatentAttentionParams> seqs, const LatentAttentionShape& shape,
                      LatentAttentionWorkspace& ws);

}  // namespace mla::ops
