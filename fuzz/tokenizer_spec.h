// A small DeepSeek-style tokenizer.json for the tokenizer fuzzers: byte-level vocabulary with a
// few merges, DeepSeek-V3's pre-tokenizer regexes, special and non-special added tokens.
#pragma once

#include <string>

#include "text/utf8.h"

inline std::string fuzz_tokenizer_json() {
  const auto& alphabet = mla::text::byte_alphabet();
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    std::string symbol = alphabet.to_utf8[static_cast<size_t>(b)];
    if (symbol == "\"" || symbol == "\\") symbol = "\\" + symbol;
    vocab += "\"" + symbol + "\": " + std::to_string(b) + ", ";
  }
  vocab += "\"th\": 256, \"the\": 257, \"\xC4\xA0th\": 258, \"\xC4\xA0the\": 259, \"12\": 260";
  return R"({"version": "1.0", "added_tokens": [
  {"id": 261, "content": "<｜begin▁of▁sentence｜>", "special": true, "normalized": false},
  {"id": 262, "content": "<｜User｜>", "special": false, "normalized": true},
  {"id": 263, "content": "<｜User｜><｜Assistant｜>", "special": true, "normalized": false},
  {"id": 264, "content": "word", "special": false, "single_word": true}],
 "normalizer": {"type": "Sequence", "normalizers": []},
 "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
  {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
  {"type": "Split", "pattern": {"Regex": "[一-龥぀-ゟ゠-ヿ]+"}, "behavior": "Isolated", "invert": false},
  {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
  {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
 "post_processor": {"type": "ByteLevel"},
 "decoder": {"type": "ByteLevel"},
 "model": {"type": "BPE", "vocab": {)" +
         vocab + R"(}, "merges": ["t h", "th e", "Ġ th", "Ġth e", "1 2"]}})";
}
