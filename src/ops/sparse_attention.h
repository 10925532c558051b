// Attention over a selected subset of the cached tokens: per query (or per query and head) a
// list of key numbers is gathered from the cache and attended to with an ordinary softmax over
// the list, so the work grows with the list length k, not with the context. Serves the absorbed
// layout (one latent KV head whose value is the first R entries of the key row, all heads of a
// token sharing one gather) and the naive/MHA/GQA layouts (G KV heads). The selected keys are
// gathered in tiles of kSparseTile rows and each tile is two oneDNN products with an online
// softmax in between, as in flash_attention.h; no context x heads matrix exists.
//
// With top_k > 0 the lists are not given but chosen here, per query and head, as the top_k keys
// of highest score q.k among all keys the query may see (exact top-k). Choosing needs every score
// of the head, one head at a time, so that mode's cost grows with the context; DSA
// (include/mla/dsa.h) chooses with a cheaper indexer instead and passes lists.
#pragma once

#include <cstdint>
#include <span>

#include "ops/attention.h"

namespace mla::ops {

inline constexpr int64_t kSparseTile = 256;

// List l holds counts[l] ascending key numbers at indices + l * capacity. With per_head the list
// of query token t and head h is l = t * num_heads + h; otherwise l = t, shared by all heads.
struct KeyLists {
  const int32_t* indices = nullptr;
  const int32_t* counts = nullptr;
  int64_t capacity = 0;
  bool per_head = false;
};

struct SparseAttentionParams {
  AttentionParams attn;  // queries, cache views, output and causal context as for dense attention
  KeyLists lists;        // used when top_k == 0
  int64_t top_k = 0;     // > 0: exact per-(query, head) top-k, lists ignored
};

// Validates everything first (throws mla::Error naming the sequence, the list and the problem:
// empty or overlong list, key out of the causal range, keys not strictly ascending, bad layout),
// then runs every sequence in one OpenMP region.
void sparse_attention(std::span<const SparseAttentionParams> seqs);

}  // namespace mla::ops
