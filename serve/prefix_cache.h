// Prefix cache: finished sequences kept with the tokens their cache rows hold, so that a new
// request whose prompt starts with the same tokens (a system prompt, a chat history) forks that
// sequence, truncates it to the shared part and prefills only the rest. Forking shares pages,
// and the first write into a shared partial page copies it (PagedKvPool's copy on write), so a
// hit never changes another sequence's rows. Entries nobody uses are evicted least recently
// used first when the cache needs pages or the entry limit is reached.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <vector>

#include "sequence_model.h"

namespace mla::serve {

class PrefixCache {
 public:
  PrefixCache(SequenceModel& model, int64_t max_entries);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  struct Hit {
    SeqId seq = -1;      // a new sequence holding the first `tokens` tokens of the prompt
    int64_t tokens = 0;  // 0: no hit; the caller starts a fresh sequence
  };
  // Longest cached prefix of `prompt`, at most prompt.size() - 1 tokens (the last prompt token
  // is always computed, its logits start the generation).
  Hit lookup(std::span<const int32_t> prompt);

  // Takes ownership of `seq`, whose cache rows hold `tokens`. An entry that is a prefix of the
  // new one is dropped (the new one serves every prompt the old one did).
  void insert(SeqId seq, std::vector<int32_t> tokens);

  // Frees the least recently used entry; false when there is none.
  bool evict_one();
  void clear();
  int64_t entries() const { return static_cast<int64_t>(entries_.size()); }

 private:
  struct Entry {
    SeqId seq;
    std::vector<int32_t> tokens;
  };
  SequenceModel& model_;
  int64_t max_entries_;
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace mla::serve
