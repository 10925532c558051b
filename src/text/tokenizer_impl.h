// The parts of a loaded tokenizer (shared by the loader and encode/decode).
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mla/tokenizer.h"
#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/pre_tokenizer.h"

namespace mla {

struct Tokenizer::Impl {
  text::Bpe model;
  std::vector<text::AddedToken> added;              // as listed in tokenizer.json
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into added
  text::Vocab added_by_content;                     // content -> id
  text::AddedTokenMatcher raw_matcher;              // normalized == false: matched first
  text::AddedTokenMatcher normalized_matcher;       // normalized == true: after normalizing
  std::vector<text::PreTokenizerStep> steps;
  bool byte_level_decoder = false;  // else tokens are joined with spaces
  int32_t vocab_size = 0;
  std::optional<int32_t> bos, eos;
  bool add_bos = false, add_eos = false;
};

// Fills `impl` from the files' text (src/text/tokenizer_load.cc).
void load_tokenizer(Tokenizer::Impl& impl, std::string_view tokenizer_json,
                    std::string_view config_json, const std::string& source,
                    const std::string& config_source);

}  // namespace mla
