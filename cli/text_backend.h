// What `mla generate` and `mla perplexity` run on: a whole DeepSeek checkpoint folder (its
// tokenizer and chat template), or a model `mla train` wrote (byte-level, no chat template),
// behind one interface, so there is one generation loop for every model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "text_model.h"

namespace mla::cli {

// The text side (encode_prompt, encode_chat, token_bytes, eos_tokens) is the server's TextModel;
// a backend adds the model and its one sequence.
class TextBackend : public serve::TextModel {
 public:
  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_positions() const = 0;
  // Appends tokens to the one sequence and returns the logits after its last one.
  virtual std::span<const float> feed(std::span<const int32_t> tokens) = 0;
  // Appends tokens and writes the logits after each of them (tokens.size() x vocab).
  virtual void feed_all(std::span<const int32_t> tokens, std::vector<float>& logits) = 0;
  // Drops cached tokens past `length` (chat history reuse); throws when the model cannot.
  virtual void truncate(int64_t length) = 0;
  virtual int64_t length() const = 0;
  virtual void reset() = 0;  // an empty sequence
  virtual std::string describe() const = 0;
};

struct TextBackendOptions {
  std::string weight_dtype;  // "" (the checkpoint's), "f32", "bf16" or "int8": DeepSeek folders
  std::string cache_dtype;   // "" (the default), "f32", "bf16", "fp8" or "int8": DeepSeek folders
  int64_t cache_tokens = 16384;
};

// DIR with config.json naming a DeepSeek architecture, or a training checkpoint (file or
// folder). The dtypes apply to DeepSeek folders only (an error names the option otherwise).
std::unique_ptr<TextBackend> open_text_backend(const std::string& path,
                                               const TextBackendOptions& options);

}  // namespace mla::cli
