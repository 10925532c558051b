// The pre-tokenizer steps of tokenizer.json (Split, Digits, ByteLevel's regex and prefix space)
// applied to pieces of text: each step cuts every piece into smaller ones, as the reference's
// PreTokenizedString::split does, dropping empty pieces.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/regex.h"

namespace mla::text {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  std::unique_ptr<Regex> regex;  // null: no split (ByteLevel without use_regex)
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel: a space before every piece that lacks one
};

// Working buffers of one encode call; pieces point into the caller's text or into `arena`.
struct PieceBuffers {
  std::vector<std::string_view> pieces;
  std::vector<std::string_view> next;
  std::vector<std::pair<size_t, size_t>> matches;
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> marked;
  std::deque<std::string> arena;
};

// Replaces b.pieces by the result of the step.
void apply_step(const PreTokenizerStep& step, PieceBuffers& b);

}  // namespace mla::text
