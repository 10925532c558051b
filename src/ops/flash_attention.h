// Tiled causal attention for every layout we use (absorbed MLA: one latent "KV head" whose
// value is the first R entries of the key row; naive MLA / MHA / GQA / MQA: G KV heads shared by
// groups of query heads). Keys are streamed in tiles once per KV head for all of its query
// heads and a block of queries: each tile is two dense products, S = Q K^T and O += P V, run by
// oneDNN's sgemm (which picks AVX-512 or AVX2 kernels at run time), with an online softmax in
// between. No context x heads score matrix exists; when the batch cannot keep every thread busy,
// a context is split across threads and the parts merged by their log-sum-exp (split-K).
// ops::attention_forward (attention.h) is the plain reference this kernel is tested against.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/attention.h"

namespace mla::ops {

// Scratch kept between calls so that decode steps allocate nothing once warm.
struct FlashWorkspace {
  struct Item {
    int64_t seq, group, t0, t1, k0, k1, part, parts;
    size_t partial;  // offset of this item's (acc, max, sum) in `partials` when split
  };
  std::vector<Item> items;
  std::vector<float> partials;
  int64_t force_split = 0;  // tests: split every context into this many parts (0 = automatic)
};

// Every sequence's parameters as for attention_forward; all run in one parallel region.
void flash_attention(std::span<const AttentionParams> seqs, FlashWorkspace& ws);

}  // namespace mla::ops
