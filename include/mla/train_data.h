// Training data: a byte-level tokenizer (token = byte, vocabulary 256), sequences generated in
// code from a seed by a front end (the `mla` program's tasks: cli/train_tasks.h), and plain text
// files split into a training and a held-out validation part.
// Legend: B batch, S tokens per sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mla {

constexpr int64_t kByteVocab = 256;

std::vector<int32_t> encode_bytes(std::string_view text);
// Tokens outside [0, 256) become '?'.
std::string decode_bytes(std::span<const int32_t> tokens);

struct TrainBatch {
  int64_t batch = 0, seq = 0;
  std::vector<int32_t> tokens;   // (B, S)
  std::vector<int32_t> targets;  // (B, S); -1 = not scored
};

// Writes one generated sequence: inputs tokens[0..S) and targets[0..S) (-1 = not scored), drawing
// only from rng, so that a checkpoint of rng resumes the exact stream.
using SequenceGenerator =
    std::function<void(std::mt19937_64& rng, int64_t seq, int32_t* tokens, int32_t* targets)>;

class TrainData {
 public:
  // Batches of sequences made by `generator` (training and validation alike, from their rngs).
  static TrainData generated(std::string name, SequenceGenerator generator);
  // The last val_fraction of the file (at least S + 1 bytes of it) is the validation split.
  // Throws "<path>: ..." when the file is unreadable or too short for either split.
  static TrainData from_file(const std::string& path, double val_fraction, int64_t seq);
  static TrainData from_text(std::string text, double val_fraction, int64_t seq, std::string name);

  bool is_text() const { return !generator_; }
  const std::string& name() const { return name_; }  // task name or file path
  // A 64-bit FNV-1a hash of the text (0 for generated data): a resumed run checks it has the same
  // data.
  uint64_t fingerprint() const { return fingerprint_; }
  int64_t train_tokens() const { return static_cast<int64_t>(train_.size()); }
  int64_t val_tokens() const { return static_cast<int64_t>(val_.size()); }

  // A training batch drawn with rng (the only state: a checkpoint saves rng to resume exactly).
  TrainBatch train_batch(std::mt19937_64& rng, int64_t batch, int64_t seq) const;
  // Batch `index` of the fixed validation set: the same numbers on every call and every run.
  TrainBatch val_batch(int64_t index, int64_t batch, int64_t seq) const;

 private:
  void fill(std::mt19937_64& rng, const std::vector<int32_t>& text, int64_t seq, int32_t* tokens,
            int32_t* targets) const;

  SequenceGenerator generator_;  // empty for text
  std::string name_;
  uint64_t fingerprint_ = 0;
  std::vector<int32_t> train_, val_;  // text only
};

}  // namespace mla
