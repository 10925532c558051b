#include "text/pre_tokenizer.h"

#include <algorithm>

namespace mla::text {
namespace {

using Range = std::pair<size_t, size_t>;

// The reference's SplitDelimiterBehavior on a list of (range, is_match): which ranges remain
// as pieces (second = true marks a range to drop).
void apply_behavior(SplitBehavior behavior, std::vector<std::pair<Range, bool>>& marked) {
  std::vector<std::pair<Range, bool>> out;
  out.reserve(marked.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      return;  // matches keep their mark: dropped
    case SplitBehavior::kIsolated:
      for (auto& m : marked) m.second = false;
      return;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& [range, is_match] : marked) {
        if (is_match && !previous_match && !out.empty()) {
          out.back().first.second = range.second;
        } else {
          out.push_back({range, false});
        }
        previous_match = is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = marked.rbegin(); it != marked.rend(); ++it) {
        if (it->second && !previous_match && !out.empty()) {
          out.back().first.first = it->first.first;
        } else {
          out.push_back({it->first, false});
        }
        previous_match = it->second;
      }
      std::reverse(out.begin(), out.end());
      break;
    case SplitBehavior::kContiguous:
      for (const auto& [range, is_match] : marked) {
        if (is_match == previous_match && !out.empty()) {
          out.back().first.second = range.second;
        } else {
          out.push_back({range, false});
        }
        previous_match = is_match;
      }
      break;
  }
  marked.swap(out);
}

}  // namespace

void apply_step(const PreTokenizerStep& step, PieceBuffers& b) {
  b.next.clear();
  for (std::string_view piece : b.pieces) {
    if (step.add_prefix_space && (piece.empty() || piece.front() != ' ')) {
      b.arena.push_back(" ");
      b.arena.back().append(piece);
      piece = b.arena.back();
    }
    if (!step.regex) {
      if (!piece.empty()) b.next.push_back(piece);
      continue;
    }
    b.matches.clear();
    step.regex->find_all(piece, b.matches);
    // Pattern::find_matches: ranges between and at the matches, each marked as match or not.
    b.marked.clear();
    size_t prev = 0;
    for (const auto& [start, end] : b.matches) {
      if (prev != start) b.marked.push_back({{prev, start}, false});
      b.marked.push_back({{start, end}, true});
      prev = end;
    }
    if (prev != piece.size()) b.marked.push_back({{prev, piece.size()}, false});
    if (step.invert) {
      for (auto& m : b.marked) m.second = !m.second;
    }
    apply_behavior(step.behavior, b.marked);
    for (const auto& [range, drop] : b.marked) {
      if (!drop && range.second > range.first) {
        b.next.push_back(piece.substr(range.first, range.second - range.first));
      }
    }
  }
  b.pieces.swap(b.next);
}

}  // namespace mla::text
