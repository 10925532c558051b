// Fused absorbed-MLA attention over the latent cache, for decode and prefill, with SIMD chosen
// at run time (ops/cpu_features.h): AVX-512 (bf16 caches through VDPBF16PS where the CPU has
// AVX512_BF16), AVX2+FMA, or portable C++.
//
// One sequence: T new tokens x H heads of queries, each of width R + Dr (the absorbed q~ then
// q_pe), against latent rows [c_kv (R) ; k_pe (Dr)] whose first R entries are also the value
// (multi-query attention, one "KV head" shared by all heads). Keys are streamed in tiles once
// for a block of query rows (all heads of one or more tokens): each tile is a register-blocked
// [rows x (R+Dr)] x [(R+Dr) x tile] product, an online softmax in the log2 domain, then
// [rows x tile] x [tile x R]. There is no context x heads score matrix. When the batch has fewer
// blocks than threads, contexts are split (split-K) and the parts merged by log-sum-exp.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/attention.h"

namespace mla::ops {

// Scratch kept between calls so that, once warm, decode steps allocate nothing.
struct LatentWorkspace {
  struct Item {
    int64_t seq, t0, t1, h0, h1, k0, k1;
    int64_t parts;   // parts of this block's context; the first part leads the merge
    size_t partial;  // offset of this part's (acc, max, sum) in `partials` when split
    double cost;     // rows x keys, for scheduling the largest items first
  };
  std::vector<Item> items;
  std::vector<int64_t> order;  // items by decreasing cost
  std::vector<float> partials;
  int64_t force_split = 0;  // tests: split every context into this many parts (0 = automatic)
};

// True when p is the absorbed layout this kernel serves: one KV head, the value is the first
// v_dim entries of the key row (same view), F32 or BF16 storage.
bool is_latent_layout(const AttentionParams& p);

// Every sequence of a batch, each with its own query pointer, view, context and new tokens, in
// one parallel region. Throws mla::Error when a sequence is not in the latent layout.
void latent_attention(std::span<const AttentionParams> seqs, LatentWorkspace& ws);
// The same with a workspace owned by the calling thread.
void latent_attention(std::span<const AttentionParams> seqs);

}  // namespace mla::ops
