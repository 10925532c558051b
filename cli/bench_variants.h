// The attention variants `mla bench` compares, each behind one step function over a paged pool.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/paged_cache.h"

namespace mla::cli {

struct BenchVariant {
  std::string name;         // mla, mla-naive, mla-sparse, mha, gqa<N>, mqa
  int64_t token_width = 0;  // numbers per cached token
  int64_t index_width = 0;  // mla-sparse: numbers per token of the indexer's own key cache
  int64_t hidden_size = 0;
  DType weight_dtype = DType::kF32;
  int64_t weight_bytes = 0;  // the layer's weights as stored (what a decode step streams)
  // One batched step: packed x (sum counts, hidden) -> y, appending to the pool.
  std::function<void(std::span<const float>, std::span<const PagedKvPool::SeqId>,
                     std::span<const int64_t>, PagedKvPool&, std::span<float>)>
      step;
  // FLOPs of one sequence's step that appends `new_tokens` to `context_before` cached tokens,
  // counted with mla-math.md's formulas (causal: token t sees context_before + t + 1 keys).
  std::function<double(int64_t context_before, int64_t new_tokens)> flops;
  std::shared_ptr<void> layer;  // keeps the layer alive
};

// Throws mla::Error naming an unknown variant or a group count that does not divide the heads.
// weight_dtype (F32 or BF16) applies to the MLA variants; the baselines keep float32 weights.
// mla-sparse is absorbed MLA with DSA: DeepSeek-V3.2's indexer shape (64 heads of 128, random
// weights) choosing sparse_top_k keys per query. Its indexer keys live in a pool the variant
// owns; rows the bench writes straight into the cache get random index keys.
BenchVariant make_bench_variant(const std::string& name, const MlaConfig& config, uint64_t seed,
                                DType weight_dtype = DType::kF32, int64_t sparse_top_k = 2048);

}  // namespace mla::cli
