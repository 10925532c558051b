// Argument checks shared by every layer's batched step over a page pool.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "mla/error.h"
#include "mla/paged_cache.h"

namespace mla::detail {

// One count >= 1 per sequence, x of (sum of counts) x hidden values and y of (sum of counts) x
// out values (out = hidden unless given). Returns the sum.
inline int64_t check_paged_step(std::span<const float> x, std::span<const float> y,
                                std::span<const PagedKvPool::SeqId> seqs,
                                std::span<const int64_t> new_tokens, int64_t hidden,
                                int64_t out = 0) {
  if (out <= 0) out = hidden;
  if (seqs.size() != new_tokens.size()) {
    throw Error("forward: one new-token count per sequence is needed");
  }
  if (seqs.empty()) throw Error("forward: batch must be at least 1, got 0");
  int64_t n = 0;
  for (int64_t count : new_tokens) {
    if (count < 1) {
      throw Error("forward: every sequence needs at least 1 new token, got " +
                  std::to_string(count));
    }
    if (count > (int64_t{1} << 30)) throw Error("forward: too many new tokens");
    n += count;
  }
  const auto expected = static_cast<size_t>(n * hidden);
  const auto expected_y = static_cast<size_t>(n * out);
  if (x.size() != expected || y.size() != expected_y) {
    throw Error("forward: x and y need total new tokens x hidden = " + std::to_string(expected) +
                (out == hidden
                     ? std::string()
                     : " and total new tokens x output_size = " + std::to_string(expected_y)) +
                " values, got " + std::to_string(x.size()) + " and " + std::to_string(y.size()));
  }
  return n;
}

}  // namespace mla::detail
