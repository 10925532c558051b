// Choosing the next token from logits. One Sampler per sequence: it owns its random generator
// (std::mt19937_64 seeded with `seed`, so a seed replays the same choices) and the history the
// repeat penalty looks at. Legend: V vocabulary size.
//
// Order of operations:
//   1. repeat penalty over the distinct tokens among the last `repeat_last_n` (llama.cpp's
//      semantics: a positive logit is divided by the penalty, a negative one multiplied);
//   2. temperature 0: the largest logit, ties to the lowest id (nothing else applies);
//   3. otherwise softmax(logits / temperature), then the filters, each on the survivors of the
//      previous one: top-k (the k most probable), top-p (the most probable tokens, in order, until
//      their mass reaches top_p), min-p (tokens with at least min_p times the best probability);
//   4. a draw from the survivors' probabilities renormalised.
// Ties in probability are ordered by lower id, so every filter's set is fully determined.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace mla {

struct SamplerParams {
  double temperature = 1.0;     // >= 0; 0 = greedy
  int64_t top_k = 0;            // >= 0; 0 = no limit
  double top_p = 1.0;           // in (0, 1]; 1 = no limit
  double min_p = 0.0;           // in [0, 1]; 0 = no limit
  double repeat_penalty = 1.0;  // > 0; 1 = none
  int64_t repeat_last_n = 64;   // >= 0 tokens of history the penalty looks at; 0 = none
  uint64_t seed = 1;
};

// Throws mla::Error naming the first invalid parameter and its value.
void validate(const SamplerParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);  // validates

  // Picks a token from `logits` (V values; -inf masks a token, NaN or +inf is an error) and
  // appends it to the penalty history. Allocates nothing once it has seen the vocabulary size.
  int32_t sample(std::span<const float> logits);
  // Appends tokens chosen elsewhere (the prompt) to the penalty history.
  void accept(std::span<const int32_t> tokens);
  // Clears the history and restarts the generator at `seed`.
  void reset(uint64_t seed);

  const SamplerParams& params() const { return params_; }

  // The probabilities the last sample() drew from: the survivors' ids and their renormalised
  // probabilities, most probable first (empty after a greedy choice). For tests and inspection.
  std::span<const int32_t> candidate_ids() const;
  std::span<const double> candidate_probs() const;

 private:
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;  // ring buffer of the last repeat_last_n tokens
  size_t history_next_ = 0, history_size_ = 0;
  std::vector<float> work_;     // (V) logits after the penalty
  std::vector<uint8_t> seen_;   // (V) distinct-token marks for the penalty
  std::vector<int32_t> order_;  // (V) ids; the first `kept_` are the survivors, sorted
  std::vector<double> probs_;   // (V) probabilities of order_[0 .. kept_)
  size_t kept_ = 0;

  void apply_penalty(std::span<const float> logits);
};

}  // namespace mla
