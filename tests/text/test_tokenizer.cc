// The tokenizer on small hand-made tokenizer.json files: BPE merge order, added-token matching,
// lossy UTF-8 decoding, bos/eos from tokenizer_config.json, and the exact error for each kind
// of malformed file. (Equality with Hugging Face's tokenizers on DeepSeek-V3's real file:
// tests/cli/test_tokenizer_reference.py.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mla/error.h"
#include "mla/tokenizer.h"
#include "text/utf8.h"

namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// A byte-level tokenizer: the 256 byte symbols (ids 0..255, in byte order), then the merges.
json byte_level_spec(const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  const auto& alphabet = mla::text::byte_alphabet();
  for (int b = 0; b < 256; ++b) vocab[alphabet.to_utf8[static_cast<size_t>(b)]] = b;
  json merge_list = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = static_cast<int>(vocab.size());
    merge_list.push_back(a + " " + b);
  }
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             json::array(
                 {{{"type", "Split"},
                   {"pattern", {{"Regex", "\\p{N}{1,3}"}}},
                   {"behavior", "Isolated"},
                   {"invert", false}},
                  {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
}

mla::Tokenizer make(const json& spec, const json& config = nullptr) {
  return mla::Tokenizer::from_json(spec.dump(), config.is_null() ? "" : config.dump());
}

int32_t id_of(const mla::Tokenizer& t, const std::string& token) {
  const auto id = t.token_to_id(token);
  EXPECT_TRUE(id.has_value()) << token;
  return id.value_or(-1);
}

std::string error_of(const json& spec, const json& config = nullptr) {
  try {
    make(spec, config);
  } catch (const mla::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Tokenizer, MergesApplyLowestRankFirst) {
  const auto t = make(byte_level_spec({{"a", "b"}, {"b", "c"}}));
  EXPECT_EQ(t.encode("abc"), (Ids{id_of(t, "ab"), 'c'}));
  const auto u = make(byte_level_spec({{"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(u.encode("abc"), (Ids{'a', id_of(u, "bc")}));
}

TEST(Tokenizer, EqualRanksMergeLeftmostFirst) {
  const auto t = make(byte_level_spec({{"a", "a"}}));
  EXPECT_EQ(t.encode("aaa"), (Ids{id_of(t, "aa"), 'a'}));
  EXPECT_EQ(t.encode("aaaa"), (Ids{id_of(t, "aa"), id_of(t, "aa")}));
}

TEST(Tokenizer, BytesMapThroughTheByteLevelAlphabet) {
  const auto t = make(byte_level_spec({}));
  // ' ' is drawn as U+0120 'Ġ' and has id 32 here (ids are byte values).
  EXPECT_EQ(t.id_to_token(' '), "\xC4\xA0");
  EXPECT_EQ(t.encode("a \xC3\xA9"), (Ids{'a', ' ', 0xC3, 0xA9}));
  EXPECT_EQ(t.decode(Ids{'a', ' ', 0xC3, 0xA9}), "a \xC3\xA9");
  // Digits are split in runs of at most three before BPE: the pieces are still bytes.
  EXPECT_EQ(t.encode("12345"), (Ids{'1', '2', '3', '4', '5'}));
}

TEST(Tokenizer, DecodeReplacesBrokenUtf8LikeTheReference) {
  const auto t = make(byte_level_spec({}));
  const auto bytes = [](std::string s) {
    Ids ids;
    for (unsigned char c : s) ids.push_back(c);
    return ids;
  };
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(t.decode(bytes("\xE2\x82")), fffd);  // truncated: one U+FFFD
  EXPECT_EQ(t.decode(bytes("\xE2\x82"
                           "a")),
            fffd + "a");
  EXPECT_EQ(t.decode(bytes("\xC0\xAF")), fffd + fffd);             // overlong: each byte
  EXPECT_EQ(t.decode(bytes("\xED\xA0\x80")), fffd + fffd + fffd);  // surrogate
  EXPECT_EQ(t.decode(bytes("\xF4\x90\x80\x80")), fffd + fffd + fffd + fffd);
  EXPECT_EQ(t.decode(bytes("\xF0\x9F\x98"
                           "\xF0\x9F\x98\x80")),
            fffd + "\xF0\x9F\x98\x80");
  EXPECT_EQ(t.token_bytes(0xE2), "\xE2");
}

TEST(Tokenizer, AddedTokensMatchLongestFirstAndKeepTheirFlags) {
  json spec = byte_level_spec({{"a", "b"}});
  spec["added_tokens"] = json::array({
      {{"id", 0}, {"content", "<s>"}, {"special", true}},
      {{"id", 0}, {"content", "<s><s>"}, {"special", true}},
      {{"id", 0}, {"content", "<L>"}, {"special", true}, {"lstrip", true}},
      {{"id", 0}, {"content", "<R>"}, {"special", false}, {"rstrip", true}, {"normalized", true}},
      {{"id", 0}, {"content", "ab"}},
      {{"id", 0}, {"content", "ba"}, {"single_word", true}},
  });
  const auto t = make(spec);
  const int32_t s = id_of(t, "<s>"), ss = id_of(t, "<s><s>"), l = id_of(t, "<L>"),
                r = id_of(t, "<R>");
  // The file's ids are not used: "ab" is in the vocabulary, the others take the next free ids.
  EXPECT_EQ(id_of(t, "ab"), 256);
  EXPECT_EQ(s, 257);
  const int32_t ba = id_of(t, "ba");
  EXPECT_EQ(ba, 261);
  EXPECT_EQ(t.encode("x<s><s><s>"), (Ids{'x', ss, s}));
  EXPECT_EQ(t.encode("<s"), (Ids{'<', 's'}));
  EXPECT_EQ(t.encode("x  <L>y"), (Ids{'x', l, 'y'}));    // lstrip takes the spaces before
  EXPECT_EQ(t.encode("x<R> \t y"), (Ids{'x', r, 'y'}));  // rstrip the spaces after
  EXPECT_EQ(t.encode("ba cba ba_"),
            (Ids{ba, ' ', 'c', 'b', 'a', ' ', 'b', 'a', '_'}));  // single_word
  EXPECT_TRUE(t.is_special(s));
  EXPECT_FALSE(t.is_special(r));
  EXPECT_EQ(t.decode(Ids{'x', s, 'y'}), "x<s>y");
  EXPECT_EQ(t.decode(Ids{'x', s, 'y'}, /*skip_special=*/true), "xy");
}

TEST(Tokenizer, BosAndEosComeFromTokenizerConfig) {
  json spec = byte_level_spec({});
  spec["added_tokens"] = json::array({{{"id", 256}, {"content", "<bos>"}, {"special", true}},
                                      {{"id", 257}, {"content", "<eos>"}, {"special", true}}});
  const json config = {{"add_bos_token", true},
                       {"add_eos_token", false},
                       {"bos_token", {{"__type", "AddedToken"}, {"content", "<bos>"}}},
                       {"eos_token", "<eos>"}};
  const auto t = make(spec, config);
  EXPECT_EQ(t.bos_id(), 256);
  EXPECT_EQ(t.eos_id(), 257);
  EXPECT_EQ(t.encode("a", /*add_special=*/true), (Ids{256, 'a'}));
  EXPECT_EQ(t.encode("a"), (Ids{'a'}));
  EXPECT_EQ(t.vocab_size(), 258);
  EXPECT_EQ(error_of(spec, {{"bos_token", "<nope>"}}),
            "tokenizer_config.json: bos_token: '<nope>' is not in the vocabulary");
  EXPECT_EQ(error_of(spec, {{"add_bos_token", 1}}),
            "tokenizer_config.json: add_bos_token: expected true or false, got number");
  EXPECT_EQ(error_of(spec, {{"add_bos_token", true}}),
            "tokenizer_config.json: add_bos_token: is true but bos_token is not set");
}

TEST(Tokenizer, BadInputIsAnErrorNotAnAlteredText) {
  const auto t = make(byte_level_spec({}));
  try {
    t.encode("ok\xFFno");
    FAIL();
  } catch (const mla::Error& e) {
    EXPECT_STREQ(e.what(), "tokenizer: the text is not valid UTF-8 at byte 2");
  }
  try {
    t.decode(Ids{1, 256});
    FAIL();
  } catch (const mla::Error& e) {
    EXPECT_STREQ(e.what(), "tokenizer: token id 256 is not in the vocabulary (256 ids)");
  }
  EXPECT_EQ(t.encode(""), Ids{});
  EXPECT_EQ(t.decode(Ids{}), "");
  const std::string nul("a\0b", 3);
  EXPECT_EQ(t.decode(t.encode(nul)), nul);
}

TEST(Tokenizer, MalformedFileErrors) {
  const json good = byte_level_spec({{"a", "b"}});
  const auto with = [&](const json::json_pointer& where, const json& value) {
    json spec = good;
    spec[where] = value;
    return error_of(spec);
  };
  json no_model = good;
  no_model.erase("model");
  EXPECT_EQ(error_of(no_model), "tokenizer.json: model: missing");
  EXPECT_EQ(with("/model/type"_json_pointer, "WordPiece"),
            "tokenizer.json: model.type: 'WordPiece' is not supported (only BPE)");
  EXPECT_EQ(
      with("/model/merges/0"_json_pointer, "ab"),
      "tokenizer.json: model.merges[0]: expected two tokens separated by one space, got 'ab'");
  EXPECT_EQ(with("/model/merges/0"_json_pointer, 7),
            "tokenizer.json: model.merges[0]: expected \"left right\" or [\"left\", \"right\"]");
  EXPECT_EQ(with("/model/merges/0"_json_pointer, "a zz"),
            "tokenizer.json: model.merges[0]: 'zz' is not in model.vocab");
  EXPECT_EQ(with("/model/merges"_json_pointer, json::array({"a c"})),
            "tokenizer.json: model.merges[0]: the merged token 'ac' is not in model.vocab");
  EXPECT_EQ(with("/model/vocab/a"_json_pointer, -3),
            "tokenizer.json: model.vocab['a']: expected a token id (an integer from 0 to 4194303)");
  EXPECT_EQ(with("/model/vocab/a"_json_pointer, 98),
            "tokenizer.json: model.vocab: id 98 is given to two tokens");
  EXPECT_EQ(with("/pre_tokenizer/pretokenizers/0/type"_json_pointer, "Whitespace"),
            "tokenizer.json: pre_tokenizer.pretokenizers[0].type: 'Whitespace' is not supported "
            "(Sequence, Split, Digits, ByteLevel)");
  EXPECT_EQ(with("/pre_tokenizer/pretokenizers/0/behavior"_json_pointer, "Sideways"),
            "tokenizer.json: pre_tokenizer.pretokenizers[0].behavior: 'Sideways' is not a split "
            "behavior (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
  EXPECT_EQ(
      with("/pre_tokenizer/pretokenizers/0/pattern"_json_pointer, {{"Regex", "(a"}}),
      "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex: invalid regex at offset 2: "
      "missing closing parenthesis");
  EXPECT_EQ(with("/pre_tokenizer/pretokenizers/0/pattern"_json_pointer, "x"),
            "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern: expected {\"Regex\": ...} or "
            "{\"String\": ...}");
  EXPECT_EQ(with("/normalizer"_json_pointer, {{"type", "NFKC"}}),
            "tokenizer.json: normalizer.type: 'NFKC' is not supported");
  EXPECT_EQ(with("/decoder"_json_pointer, {{"type", "WordPiece"}}),
            "tokenizer.json: decoder.type: 'WordPiece' is not supported (ByteLevel, Sequence)");
  EXPECT_EQ(with("/post_processor"_json_pointer, {{"type", "BertProcessing"}}),
            "tokenizer.json: post_processor.type: 'BertProcessing' is not supported (ByteLevel, "
            "TemplateProcessing, Sequence)");
  EXPECT_EQ(with("/added_tokens"_json_pointer, json::array({{{"id", 3}}})),
            "tokenizer.json: added_tokens[0].content: missing");
  EXPECT_EQ(with("/model/byte_fallback"_json_pointer, true),
            "tokenizer.json: model.byte_fallback: is not supported");
  json no_byte = good;
  no_byte["model"]["vocab"].erase("\xC4\xA0");
  EXPECT_EQ(
      error_of(no_byte),
      "tokenizer.json: model.vocab: the byte-level symbol '\xC4\xA0' of byte 0x20 is missing");
  EXPECT_EQ(error_of(json()), "tokenizer.json: top level: expected an object, got null");
  try {
    mla::Tokenizer::from_json("{\"model\": ", "");
    FAIL();
  } catch (const mla::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("tokenizer.json: invalid JSON: ", 0), 0u) << e.what();
  }
}

TEST(Tokenizer, ReadsAModelFolder) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("mla_tokenizer_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  try {
    mla::Tokenizer::from_dir(dir.string());
    FAIL();
  } catch (const mla::Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "tokenizer.json").string() +
                                         ": cannot open (a model folder needs tokenizer.json)");
  }
  std::ofstream(dir / "tokenizer.json") << byte_level_spec({{"a", "b"}}).dump();
  const auto t = mla::Tokenizer::from_dir(dir.string());  // tokenizer_config.json is optional
  EXPECT_EQ(t.encode("ab"), (Ids{256}));
  EXPECT_FALSE(t.bos_id().has_value());
  std::ofstream(dir / "tokenizer_config.json") << "{\"bos_token\": 5}";
  try {
    mla::Tokenizer::from_dir(dir.string());
    FAIL();
  } catch (const mla::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir / "tokenizer_config.json").string() +
                  ": bos_token: expected a string, an AddedToken object or null");
  }
  fs::remove_all(dir);
}

TEST(Tokenizer, ByteLevelModelsGetOneTokenPerByte) {
  const auto t = mla::Tokenizer::from_json(mla::byte_level_tokenizer_json(), "");
  const std::string text = "Hi \xE2\x82\xAC\n\x01";
  EXPECT_EQ(t.encode(text), (Ids{'H', 'i', ' ', 0xE2, 0x82, 0xAC, '\n', 1}));
  EXPECT_EQ(t.decode(t.encode(text)), text);
  EXPECT_EQ(t.vocab_size(), 256);
}

TEST(Tokenizer, StreamedTextEqualsDecodedText) {
  json spec = byte_level_spec({{"a", "b"}});
  spec["added_tokens"] = json::array({{{"id", 0}, {"content", "<s>"}, {"special", true}}});
  const auto t = make(spec);
  std::mt19937 rng(5);
  for (int round = 0; round < 300; ++round) {
    Ids ids;
    const int n = static_cast<int>(rng() % 12);
    // Mostly bytes >= 0x80, so characters start, continue and break across tokens.
    for (int i = 0; i < n; ++i)
      ids.push_back(rng() % 4 == 0 ? static_cast<int32_t>(rng() % 258)
                                   : static_cast<int32_t>(0x80 + rng() % 0x78));
    for (const bool skip : {false, true}) {
      mla::TokenStream stream(t, skip);
      std::string joined;
      for (const int32_t id : ids) {
        const std::string piece = stream.push(id);
        EXPECT_EQ(mla::text::first_invalid_utf8(piece), std::string::npos);
        joined += piece;
      }
      joined += stream.finish();
      EXPECT_EQ(joined, t.decode(ids, skip));
    }
  }
  mla::TokenStream stream(t);
  EXPECT_EQ(stream.push(0xE2), "");  // the first byte of a 3-byte character is held
  EXPECT_EQ(stream.push(0x82), "");
  EXPECT_EQ(stream.push(0xAC), "\xE2\x82\xAC");
  EXPECT_EQ(stream.push(0xE2), "");
  EXPECT_EQ(stream.push('x'), "\xEF\xBF\xBDx");  // broken by 'x': U+FFFD, then x
  EXPECT_EQ(stream.push(0xF0), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");
  EXPECT_THROW(stream.push(9999), mla::Error);
}

TEST(Tokenizer, EncodesFromSeveralThreadsAtOnce) {
  const auto t = make(byte_level_spec({{"a", "b"}, {"ab", "c"}, {"c", "d"}}));
  std::string text;
  for (int i = 0; i < 2000; ++i) text += (i % 3 ? "abcd " : "cdab 12345 ");
  const Ids expected = t.encode(text);
  std::vector<Ids> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) threads.emplace_back([&, i] { got[i] = t.encode(text); });
  for (auto& th : threads) th.join();
  for (const Ids& g : got) EXPECT_EQ(g, expected);
}

}  // namespace
