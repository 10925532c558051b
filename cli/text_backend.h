// What `mla generate` and `mla perplexity` run on: a whole DeepSeek checkpoint folder (its
// tokenizer and chat template), or a model `mla train` wrote (byte-level, no chat template),
// behind one interface, so there is one generation loop for every model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mla/chat_template.h"

namespace mla::cli {

class TextBackend {
 public:
  virtual ~TextBackend() = default;
  virtual std::vector<int32_t> encode_prompt(const std::string& text) const = 0;
  virtual std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages) const = 0;
  virtual std::string token_bytes(int32_t token) const = 0;
  virtual std::vector<int32_t> eos_tokens() const = 0;
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

// DIR with config.json naming a DeepSeek architecture, or a training checkpoint (file or
// folder). weight_dtype: "" (the checkpoint's), "f32" or "bf16"; cache_tokens bounds the cache.
std::unique_ptr<TextBackend> open_text_backend(const std::string& path,
                                               const std::string& weight_dtype,
                                               int64_t cache_tokens);

}  // namespace mla::cli
