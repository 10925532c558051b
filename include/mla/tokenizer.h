// mla::Tokenizer: text <-> token ids from a Hugging Face tokenizer.json (+ tokenizer_config.json),
// as DeepSeek-V2/V3/R1 release them. Byte-level BPE with ranked merges, a pre-tokenizer Sequence
// of Split regexes (PCRE2, Unicode classes) and ByteLevel, added/special tokens matched in the
// text before BPE, the ByteLevel decoder. Ids equal Hugging Face's `tokenizers` library on the
// same file (docs/tokenizer.md says what is supported and how that is tested).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mla {

// tokenizer.json for the byte-level models that `mla train` writes (token id = byte value,
// vocabulary 256, no merges), in Hugging Face's layout: save it beside such a model and every
// text path (this class, Hugging Face's tokenizers) reads it the same way.
std::string byte_level_tokenizer_json();

class TokenStream;

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (bos/eos tokens and
  // add_bos_token / add_eos_token). Throws mla::Error naming the file and field.
  static Tokenizer from_dir(const std::string& dir);
  // The same from the files' text; `config_json` may be empty (no bos/eos). `source` names the
  // tokenizer.json in error messages.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json,
                             const std::string& source = "tokenizer.json");

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Text (valid UTF-8, else mla::Error with the byte offset) to ids. Added and special tokens
  // written in the text are matched. add_special: bos first when add_bos_token, eos last when
  // add_eos_token. Safe to call from several threads at once.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false) const;
  // Ids to text through the decoder; bytes that are not valid UTF-8 become U+FFFD exactly as
  // the reference does (per maximal invalid subsequence). An id outside the vocabulary throws.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes one token contributes to decoded text (may be an incomplete UTF-8 sequence):
  // streaming output holds them until a character is complete.
  std::string token_bytes(int32_t id) const;

  int32_t vocab_size() const;  // largest id + 1, added tokens included
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // the vocabulary string ("" if the id is unused)
  bool is_special(int32_t id) const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  bool add_bos() const;
  bool add_eos() const;

  struct Impl;  // src/text/tokenizer_impl.h

 private:
  friend class TokenStream;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Text of a growing id sequence, for streaming output: push() returns only complete characters
// and holds bytes that may still become one, so the pieces joined (finish() included) equal
// decode() of all the ids, and every piece is valid UTF-8.
class TokenStream {
 public:
  explicit TokenStream(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}
  std::string push(int32_t id);
  std::string finish();  // what is still held, with U+FFFD for an unfinished character

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace mla
