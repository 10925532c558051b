// SparseSpec: which cached tokens each query attends to (docs/sparse.md has the math).
//
// A query at absolute position t sees keys 0..t causally; a sparse pattern keeps a subset:
//   window  keys j with t - size < j <= t                                  (sliding window)
//   block   query block qb = t / size sees key block kb = j / size (j <= t) when
//           qb - kb < local or kb < global                                 (block-sparse layout)
//   topk    per query and head, the k keys of highest attention score     (exact top-k)
//   dsa     per query, the k keys of highest lightning-indexer score, shared by all heads
//           (DeepSeek-V3.2's DeepSeek Sparse Attention; include/mla/dsa.h)
// Hybrid: heads 0 .. dense_heads - 1 stay dense, the others follow the pattern (LatentAttention's
// LatentSparseAttention). Hybrids over layers are a per-layer choice: give each layer its spec.
// Every selected key gets its ordinary softmax weight renormalised over the selection; every
// other key gets exactly zero.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "mla/fields.h"

namespace mla {

enum class SparseKind { kDense, kWindow, kBlock, kTopK, kDsa };
inline constexpr EnumName<SparseKind> kSparseKindNames[] = {{SparseKind::kDense, "dense"},
                                                            {SparseKind::kWindow, "window"},
                                                            {SparseKind::kBlock, "block"},
                                                            {SparseKind::kTopK, "topk"},
                                                            {SparseKind::kDsa, "dsa"}};
constexpr std::span<const EnumName<SparseKind>> enum_names(SparseKind) {
  return kSparseKindNames;
}

struct SparseSpec {
  SparseKind kind = SparseKind::kDense;
  int64_t window = 4096;      // window: keys per query, the query itself included
  int64_t block_size = 64;    // block: tokens per block
  int64_t local_blocks = 4;   // block: the query's own block and the local - 1 before it
  int64_t global_blocks = 1;  // block: the first blocks, seen by every query
  int64_t top_k = 2048;       // topk, dsa: keys per query (DeepSeek-V3.2 uses 2048)
  int64_t dense_heads = 0;    // hybrid: heads [0, dense_heads) attend densely

  // The keys of the text form, each active only under the kinds that use it.
  template <class V>
  void visit_fields(V& v) {
    constexpr double kMax = (int64_t{1} << 31) - 1;  // products with head counts stay in range
    const bool block = kind == SparseKind::kBlock;
    v("kind", kind);
    v("size", window,
      {.min = 1, .max = kMax, .active = kind == SparseKind::kWindow, .between = true});
    v("size", block_size, {.min = 1, .max = kMax, .active = block, .between = true});
    // The own block keeps every query's row non-empty.
    v("local", local_blocks, {.min = 1, .max = kMax, .active = block, .between = true});
    v("global", global_blocks, {.min = 0, .max = kMax, .active = block, .between = true});
    v("k", top_k,
      {.min = 1,
       .max = kMax,
       .active = kind == SparseKind::kTopK || kind == SparseKind::kDsa,
       .between = true});
    v("dense-heads", dense_heads, {.min = 0, .max = kMax, .omit_default = true, .between = true});
  }
  bool operator==(const SparseSpec&) const = default;

  bool is_sparse() const { return kind != SparseKind::kDense; }
  // Throws mla::Error "sparse: <field>: <reason>". num_heads bounds dense_heads (0: unchecked).
  void validate(int64_t num_heads = 0) const;
  // "dense", "window:size=256", "block:size=64,local=4,global=1", "topk:k=2048", "dsa:k=2048",
  // each optionally followed by ",dense-heads=N". Round-trips through parse_sparse_spec.
  std::string to_string() const;
};

// Parses to_string's form; fields left out keep their defaults. Throws mla::Error
// "sparse: '<text>': <reason>" on anything else, and validates the result.
SparseSpec parse_sparse_spec(const std::string& text);

}  // namespace mla
