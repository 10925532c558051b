#include "prefix_cache.h"

#include <algorithm>

namespace mla::serve {
namespace {

int64_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<int64_t>(i);
}

}  // namespace

PrefixCache::PrefixCache(SequenceModel& model, int64_t max_entries)
    : model_(model), max_entries_(std::max<int64_t>(max_entries, 0)) {}

PrefixCache::~PrefixCache() {
  clear();
}

PrefixCache::Hit PrefixCache::lookup(std::span<const int32_t> prompt) {
  if (prompt.size() < 2) return {};
  const int64_t limit = static_cast<int64_t>(prompt.size()) - 1;
  auto best = entries_.end();
  int64_t best_len = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const int64_t len = std::min(common_prefix(it->tokens, prompt), limit);
    if (len > best_len) {
      best_len = len;
      best = it;
    }
  }
  if (best == entries_.end()) return {};
  entries_.splice(entries_.begin(), entries_, best);  // most recently used
  const SeqId seq = model_.fork_sequence(best->seq);
  model_.truncate_sequence(seq, best_len);
  return {seq, best_len};
}

void PrefixCache::insert(SeqId seq, std::vector<int32_t> tokens) {
  if (max_entries_ == 0 || tokens.empty()) {
    model_.remove_sequence(seq);
    return;
  }
  for (const Entry& e : entries_) {
    if (e.tokens.size() >= tokens.size() &&
        common_prefix(e.tokens, tokens) == static_cast<int64_t>(tokens.size())) {
      model_.remove_sequence(seq);  // an entry already serves every prompt this one would
      return;
    }
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool covered =
        it->tokens.size() <= tokens.size() &&
        common_prefix(it->tokens, tokens) == static_cast<int64_t>(it->tokens.size());
    if (covered) {
      model_.remove_sequence(it->seq);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  entries_.push_front({seq, std::move(tokens)});
  while (static_cast<int64_t>(entries_.size()) > max_entries_) evict_one();
}

bool PrefixCache::evict_one() {
  if (entries_.empty()) return false;
  model_.remove_sequence(entries_.back().seq);
  entries_.pop_back();
  return true;
}

void PrefixCache::clear() {
  while (evict_one()) {
  }
}

}  // namespace mla::serve
