// UTF-8 helpers of the tokenizer: validation, lossy decoding as the reference does it, and
// GPT-2's byte-level alphabet (every byte drawn as a printable character).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mla::text {

// Byte offset of the first byte that does not start a valid UTF-8 sequence, or npos when the
// whole text is valid (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t first_invalid_utf8(std::string_view text);

// Length in bytes of the valid sequence starting at text[i] (text must be valid there).
inline size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Decodes one code point of valid UTF-8 at text[i], advancing i.
uint32_t next_code_point(std::string_view text, size_t& i);
void append_utf8(std::string& out, uint32_t code_point);

// Replaces every maximal invalid subsequence with U+FFFD, like Rust's String::from_utf8_lossy
// (the Unicode "substitution of maximal subparts" practice): what the reference's decoder does.
std::string utf8_lossy(std::string_view bytes);
// The same for a prefix of a longer text: converts what is final and leaves in `bytes` only a
// trailing incomplete sequence that later bytes could complete.
std::string utf8_lossy_prefix(std::string& bytes);

// GPT-2 bytes_to_unicode: byte -> code point of its printable stand-in, and back.
struct ByteAlphabet {
  std::array<uint32_t, 256> to_code_point{};
  std::array<std::string, 256> to_utf8;  // the stand-in character as UTF-8
  // Code points below 324 cover the whole alphabet; -1 where a code point is not a stand-in.
  std::array<int16_t, 324> to_byte{};
};
const ByteAlphabet& byte_alphabet();

}  // namespace mla::text
