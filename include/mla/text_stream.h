// Streaming text out of a generator: Utf8Stream turns token byte strings into complete UTF-8,
// StopMatcher ends the stream at a stop string without ever showing part of one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mla {

// Takes bytes a token at a time and emits only complete UTF-8 sequences, holding a sequence split
// across tokens until it completes. Bytes that cannot become valid UTF-8 are replaced by U+FFFD
// as soon as that is certain, one replacement per maximal ill-formed subpart (Unicode's practice,
// which Rust's String::from_utf8_lossy - hence Hugging Face's ByteLevel decoder - and Python's
// errors="replace" follow). The concatenation of everything emitted, finish() included, equals
// decoding all the bytes at once.
class Utf8Stream {
 public:
  // Appends what became complete to `out`.
  void push(std::string_view bytes, std::string& out);
  std::string push(std::string_view bytes);
  // The end of the stream: a held incomplete sequence becomes one U+FFFD.
  void finish(std::string& out);
  std::string finish();
  // Bytes held back (0 to 3): a prefix of a sequence that may still complete.
  size_t pending() const { return held_size_; }

 private:
  unsigned char held_[4] = {0, 0, 0, 0};
  size_t held_size_ = 0;
};

// Holds back text that may be the start of a stop string and reports the first match. The text
// before the match is emitted, the stop string itself and anything after it are not (as OpenAI's
// `stop` and llama.cpp do).
class StopMatcher {
 public:
  // Throws mla::Error for an empty stop string.
  explicit StopMatcher(std::vector<std::string> stops);

  struct Result {
    std::string text;      // safe to show now
    bool stopped = false;  // a stop string was found; nothing more will be emitted
  };
  Result push(std::string_view text);
  // The stream ended without a stop: the held-back text is released.
  std::string finish();

  bool stopped() const { return stopped_; }
  // The stop string that matched (empty before a match).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace mla
