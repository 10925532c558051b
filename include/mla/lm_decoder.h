// Generating text from a trained LmModel. LmDecoder serves the model through the inference
// layers with a cache: MLA models through mla::MlaLayer's absorbed path and its LatentCache
// (R + Dr numbers per token and layer), MHA/GQA/MQA models through mla::GqaLayer and a paged
// K/V pool. Legend: V vocabulary, d width.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mla/model_lm.h"

namespace mla {

class LmDecoder {
 public:
  // Serves the model's parameters in place (no copy: the model must outlive the decoder, and a
  // change to its parameters shows at the next feed) with room for `capacity` tokens.
  LmDecoder(const LmModel& model, int64_t capacity);
  ~LmDecoder();
  LmDecoder(LmDecoder&&) noexcept;
  LmDecoder& operator=(LmDecoder&&) noexcept;

  // Appends tokens (attending to everything before them) and returns the logits (V) of the last
  // one. Throws when the capacity would be exceeded.
  std::span<const float> feed(std::span<const int32_t> tokens);
  int64_t length() const;
  int64_t cache_bytes_per_token() const;  // all layers, float32

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sampling goes through mla::Sampler (include/mla/sampler.h) with these of its parameters.
struct SampleOptions {
  int64_t max_tokens = 100;
  double temperature = 1.0;  // <= 0: greedy (the first largest logit)
  int64_t top_k = 0;         // 0: the whole vocabulary
  uint64_t seed = 1;
  bool recompute =
      false;  // no cache: run the whole sequence through the training forward each step
};

// Returns the generated tokens (not the prompt). The prompt must not be empty.
std::vector<int32_t> generate(const LmModel& model, std::span<const int32_t> prompt,
                              const SampleOptions& options);

}  // namespace mla
