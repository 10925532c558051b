// The tokenizer.json of byte-level models: id b is the symbol of byte b in GPT-2's alphabet.
#include <nlohmann/json.hpp>

#include "mla/tokenizer.h"
#include "text/utf8.h"

namespace mla {

std::string byte_level_tokenizer_json() {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  const auto& alphabet = text::byte_alphabet();
  for (int b = 0; b < 256; ++b) vocab[alphabet.to_utf8[static_cast<size_t>(b)]] = b;
  const nlohmann::ordered_json spec = {{"version", "1.0"},
                                       {"truncation", nullptr},
                                       {"padding", nullptr},
                                       {"added_tokens", nlohmann::ordered_json::array()},
                                       {"normalizer", nullptr},
                                       {"pre_tokenizer",
                                        {{"type", "ByteLevel"},
                                         {"add_prefix_space", false},
                                         {"trim_offsets", true},
                                         {"use_regex", false}}},
                                       {"post_processor", nullptr},
                                       {"decoder",
                                        {{"type", "ByteLevel"},
                                         {"add_prefix_space", false},
                                         {"trim_offsets", true},
                                         {"use_regex", false}}},
                                       {"model",
                                        {{"type", "BPE"},
                                         {"dropout", nullptr},
                                         {"unk_token", nullptr},
                                         {"continuing_subword_prefix", nullptr},
                                         {"end_of_word_suffix", nullptr},
                                         {"fuse_unk", false},
                                         {"byte_fallback", false},
                                         {"vocab", vocab},
                                         {"merges", nlohmann::ordered_json::array()}}}};
  return spec.dump(1, ' ', /*ensure_ascii=*/false) + "\n";
}

}  // namespace mla
