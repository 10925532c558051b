// A SequenceModel for scheduler tests whose next token is a hash of every token its cache rows
// hold: the cache stores token ids in a real PagedKvPool, and step() reads the whole sequence
// back from the pool. Any mix-up of sequences, a wrong fork or truncate, or a prefix-cache hit
// that left stale rows changes the output, which test_scheduler.cc compares with the same hash
// of the true token list.
#pragma once

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <span>
#include <vector>

#include "mla/error.h"
#include "mla/paged_cache.h"
#include "sequence_model.h"

namespace mla::serve::testing {

inline int32_t next_token_of(std::span<const int32_t> tokens, int64_t vocab) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < tokens.size(); ++i) {
    h ^= static_cast<uint64_t>(tokens[i]) + 0x9E3779B97F4A7C15ull * (i + 1);
    h *= 1099511628211ull;
  }
  return static_cast<int32_t>(h % static_cast<uint64_t>(vocab));
}

class RecallModel : public SequenceModel {
 public:
  RecallModel(int64_t vocab, int64_t max_positions, int64_t page_size, int64_t pages)
      : vocab_(vocab), max_positions_(max_positions), pool_(1, page_size, pages) {}

  std::string name() const override { return "recall"; }
  int64_t vocab_size() const override { return vocab_; }
  int64_t max_positions() const override { return max_positions_; }
  int64_t page_size() const override { return pool_.page_size(); }
  int64_t pages_total() const override { return pool_.pages_total(); }
  int64_t pages_free() const override { return pool_.pages_free(); }
  SeqId add_sequence() override { return pool_.add_sequence(); }
  SeqId fork_sequence(SeqId parent) override { return pool_.fork(parent); }
  void truncate_sequence(SeqId seq, int64_t length) override { pool_.truncate(seq, length); }
  void remove_sequence(SeqId seq) override { pool_.remove_sequence(seq); }
  int64_t sequence_length(SeqId seq) const override { return pool_.length(seq); }

  void step(std::span<const SeqId> seqs, std::span<const std::span<const int32_t>> tokens,
            std::span<float> logits) override {
    {
      std::unique_lock lock(gate_mutex_);
      gate_.wait(lock, [&] { return open_; });
      ++steps_;
      max_batch_seen_ = std::max<int64_t>(max_batch_seen_, static_cast<int64_t>(seqs.size()));
    }
    std::vector<int64_t> counts;
    for (const auto& t : tokens) counts.push_back(static_cast<int64_t>(t.size()));
    pool_.reserve(seqs, counts);
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int64_t start = pool_.length(seqs[i]);
      for (size_t k = 0; k < tokens[i].size(); ++k) {
        const float v = static_cast<float>(tokens[i][k]);
        std::memcpy(pool_.writable_row(seqs[i], start + static_cast<int64_t>(k)), &v, sizeof v);
      }
      pool_.commit(seqs[i], counts[i]);
      std::vector<int32_t> all;
      for (int64_t p = 0; p < pool_.length(seqs[i]); ++p) {
        float v;
        std::memcpy(&v, pool_.row(seqs[i], p), sizeof v);
        all.push_back(static_cast<int32_t>(v));
      }
      float* row = logits.data() + i * static_cast<size_t>(vocab_);
      std::fill(row, row + vocab_, 0.0f);
      row[next_token_of(all, vocab_)] = 10.0f;
    }
  }

  // Holds every step until open() (tests that fill the queue).
  void close() {
    std::lock_guard lock(gate_mutex_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(gate_mutex_);
      open_ = true;
    }
    gate_.notify_all();
  }
  int64_t max_batch_seen() {
    std::lock_guard lock(gate_mutex_);
    return max_batch_seen_;
  }

 private:
  int64_t vocab_, max_positions_;
  PagedKvPool pool_;
  std::mutex gate_mutex_;
  std::condition_variable gate_;
  bool open_ = true;
  int64_t steps_ = 0, max_batch_seen_ = 0;
};

}  // namespace mla::serve::testing
