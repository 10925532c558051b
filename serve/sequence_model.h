// What the server needs from a model: many sequences over one paged cache, stepped together.
// A step appends any number of tokens to each listed sequence (a prefill chunk or one decoded
// token) and returns the logits of each sequence's last new token, so that one call serves
// chunked prefill and decode of a continuously changing batch. Sequences fork (sharing their
// cache pages, copy on write) and truncate, which is all prefix caching needs.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace mla::serve {

using SeqId = int64_t;

class SequenceModel {
 public:
  virtual ~SequenceModel() = default;

  virtual std::string name() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_positions() const = 0;  // tokens one sequence may hold

  // Cache pages, counted per sequence-page (a page shared by k sequences counts once).
  virtual int64_t page_size() const = 0;
  virtual int64_t pages_total() const = 0;
  virtual int64_t pages_free() const = 0;

  virtual SeqId add_sequence() = 0;
  virtual SeqId fork_sequence(SeqId parent) = 0;  // shares the parent's tokens
  virtual void truncate_sequence(SeqId seq, int64_t length) = 0;
  virtual void remove_sequence(SeqId seq) = 0;
  virtual int64_t sequence_length(SeqId seq) const = 0;

  // Appends tokens[i] (non-empty) to seqs[i] and writes the logits of its last new token to
  // logits[i * vocab_size(), (i + 1) * vocab_size()). All or nothing: throws mla::Error without
  // changing any sequence when the cache cannot hold the step.
  virtual void step(std::span<const SeqId> seqs, std::span<const std::span<const int32_t>> tokens,
                    std::span<float> logits) = 0;
};

}  // namespace mla::serve
