// Turns generated tokens into text as they arrive: bytes are released only as whole UTF-8
// sequences (a character split across tokens is held until complete), and text that may be the
// start of a stop string is held back until it is known not to be one. When a stop string is
// found, the text before it is released and the stream reports the stop.
#pragma once

#include <string>
#include <vector>

namespace mla::serve {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds a token's bytes; returns the text that is now final (maybe empty).
  std::string push(const std::string& bytes);
  // The end of the generation: whatever was held (an unfinished UTF-8 sequence becomes U+FFFD).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string bytes_;  // undecided bytes: an incomplete UTF-8 tail or a possible stop prefix
  bool stopped_ = false;
};

// Length of the longest prefix of `bytes` made of complete UTF-8 sequences, treating a byte that
// can never start or continue a valid sequence as complete (it is passed on as it is).
size_t complete_utf8_prefix(const std::string& bytes);
// `bytes` with each invalid UTF-8 sequence replaced by U+FFFD.
std::string sanitize_utf8(const std::string& bytes);

}  // namespace mla::serve
