// The text side of a served model: prompt text to token ids, chat messages to prompt text, and
// token ids back to bytes. The server holds one; it is used from the HTTP threads (encode,
// render) and the scheduler thread (token_bytes), so implementations must be thread-safe for
// const use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mla/chat_template.h"

namespace mla::serve {

class TextModel {
 public:
  virtual ~TextModel() = default;
  // A plain prompt, with the bos token when the tokenizer adds one.
  virtual std::vector<int32_t> encode_prompt(const std::string& text) const = 0;
  // The chat template applied to the messages with the generation prompt, tokenized (the
  // template writes its own bos). Throws mla::Error when the template cannot render them.
  virtual std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages) const = 0;
  // The bytes a token stands for (possibly part of a UTF-8 sequence).
  virtual std::string token_bytes(int32_t token) const = 0;
  virtual std::vector<int32_t> eos_tokens() const = 0;
};

}  // namespace mla::serve
