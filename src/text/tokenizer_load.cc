// tokenizer.json / tokenizer_config.json -> Tokenizer::Impl. Every malformed or unsupported
// field is an mla::Error naming the file and the field's path.
#include <nlohmann/json.hpp>

#include "mla/error.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace mla {
namespace {

using nlohmann::json;

constexpr int64_t kMaxId = int64_t{1} << 22;  // 4M ids: far above any released vocabulary

struct Ctx {
  const std::string& source;
  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Error(source + ": " + field + ": " + why);
  }
};

const char* type_name(const json& j) {
  return j.type_name();
}

std::string join(const std::string& path, const char* key) {
  return path.empty() ? std::string(key) : path + "." + key;
}

const json& member(const Ctx& c, const json& obj, const std::string& path, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) c.fail(join(path, key), "missing");
  return *it;
}

bool get_bool(const Ctx& c, const json& obj, const std::string& path, const char* key,
              bool fallback) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    c.fail(join(path, key), std::string("expected true or false, got ") + type_name(*it));
  }
  return it->get<bool>();
}

std::string get_string(const Ctx& c, const json& v, const std::string& path) {
  if (!v.is_string()) c.fail(path, std::string("expected a string, got ") + type_name(v));
  std::string s = v.get<std::string>();
  return s;
}

std::string type_of(const Ctx& c, const json& obj, const std::string& path) {
  if (!obj.is_object()) c.fail(path, std::string("expected an object, got ") + type_name(obj));
  return get_string(c, member(c, obj, path, "type"), path + ".type");
}

int32_t get_id(const Ctx& c, const json& v, const std::string& path) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= kMaxId) {
    c.fail(path, "expected a token id (an integer from 0 to " + std::to_string(kMaxId - 1) + ")");
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

std::string quote_token(const std::string& s) {
  return "'" + s + "'";
}

void load_model(const Ctx& c, const json& root, text::Bpe& bpe) {
  const json& m = member(c, root, "", "model");
  if (!m.is_object()) c.fail("model", std::string("expected an object, got ") + type_name(m));
  const auto type_it = m.find("type");
  const std::string type = type_it == m.end() ? "BPE" : get_string(c, *type_it, "model.type");
  if (type != "BPE") c.fail("model.type", quote_token(type) + " is not supported (only BPE)");
  const auto dropout = m.find("dropout");
  if (dropout != m.end() && !dropout->is_null()) {
    if (!dropout->is_number()) c.fail("model.dropout", "expected a number or null");
    if (dropout->get<double>() != 0.0) c.fail("model.dropout", "BPE dropout is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = m.find(key);
    if (it != m.end() && !it->is_null() && get_string(c, *it, std::string("model.") + key) != "") {
      c.fail(std::string("model.") + key, "is not supported");
    }
  }
  if (get_bool(c, m, "model", "byte_fallback", false))
    c.fail("model.byte_fallback", "is not supported");
  bpe.fuse_unk = get_bool(c, m, "model", "fuse_unk", false);
  bpe.ignore_merges = get_bool(c, m, "model", "ignore_merges", false);

  const json& vocab = member(c, m, "model", "vocab");
  if (!vocab.is_object())
    c.fail("model.vocab", std::string("expected an object of token: id, got ") + type_name(vocab));
  bpe.vocab.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const json& v = it.value();
    // The field's name is built only for a message: 128k entries load faster without it.
    const int32_t id = v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < kMaxId
                           ? static_cast<int32_t>(v.get<int64_t>())
                           : get_id(c, v, "model.vocab[" + quote_token(it.key()) + "]");
    if (text::first_invalid_utf8(it.key()) != std::string::npos)
      c.fail("model.vocab", "a token is not valid UTF-8");
    bpe.vocab.emplace(it.key(), id);
    max_id = std::max(max_id, id);
  }
  bpe.id_to_token.assign(static_cast<size_t>(max_id + 1), std::string_view());
  std::vector<bool> used(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : bpe.vocab) {
    if (used[static_cast<size_t>(id)])
      c.fail("model.vocab", "id " + std::to_string(id) + " is given to two tokens");
    used[static_cast<size_t>(id)] = true;
    bpe.id_to_token[static_cast<size_t>(id)] = token;
  }

  const auto unk = m.find("unk_token");
  if (unk != m.end() && !unk->is_null()) {
    bpe.unk_token = get_string(c, *unk, "model.unk_token");
    const auto it = bpe.vocab.find(bpe.unk_token);
    if (it == bpe.vocab.end())
      c.fail("model.unk_token", quote_token(bpe.unk_token) + " is not in model.vocab");
    bpe.unk_id = it->second;
  }

  const json& merges = member(c, m, "model", "merges");
  if (!merges.is_array())
    c.fail("model.merges", std::string("expected an array, got ") + type_name(merges));
  bpe.merges.reserve(merges.size());
  std::string both;
  std::string_view left, right;
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto path = [i] { return "model.merges[" + std::to_string(i) + "]"; };
    const json& e = merges[i];
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        c.fail(path(), "expected two tokens separated by one space, got " + quote_token(s));
      }
      left = std::string_view(s).substr(0, space);
      right = std::string_view(s).substr(space + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      left = e[0].get_ref<const std::string&>();
      right = e[1].get_ref<const std::string&>();
    } else {
      c.fail(path(), "expected \"left right\" or [\"left\", \"right\"]");
    }
    const auto a = bpe.vocab.find(left), b = bpe.vocab.find(right);
    if (a == bpe.vocab.end())
      c.fail(path(), quote_token(std::string(left)) + " is not in model.vocab");
    if (b == bpe.vocab.end())
      c.fail(path(), quote_token(std::string(right)) + " is not in model.vocab");
    both.assign(left);
    both.append(right);
    const auto merged = bpe.vocab.find(both);
    if (merged == bpe.vocab.end())
      c.fail(path(), "the merged token " + quote_token(both) + " is not in model.vocab");
    bpe.merges.insert(a->second, b->second, static_cast<int32_t>(i), merged->second);
  }
}

// Ids follow the reference's AddedVocabulary, not the file's "id" field (which it only warns
// about): a token already in the vocabulary keeps that id, any other takes the next free one.
void load_added(const Ctx& c, const json& root, Tokenizer::Impl& impl) {
  const auto list = root.find("added_tokens");
  if (list == root.end() || list->is_null()) return;
  if (!list->is_array())
    c.fail("added_tokens", std::string("expected an array, got ") + type_name(*list));
  const int64_t model_size = static_cast<int64_t>(impl.model.vocab.size());
  int64_t max_id = -1;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    const json& e = (*list)[i];
    if (!e.is_object()) c.fail(path, std::string("expected an object, got ") + type_name(e));
    text::AddedToken t;
    (void)get_id(c, member(c, e, path, "id"), path + ".id");
    t.content = get_string(c, member(c, e, path, "content"), path + ".content");
    if (t.content.empty()) c.fail(path + ".content", "is empty");
    if (text::first_invalid_utf8(t.content) != std::string::npos)
      c.fail(path + ".content", "is not valid UTF-8");
    t.special = get_bool(c, e, path, "special", false);
    t.single_word = get_bool(c, e, path, "single_word", false);
    t.lstrip = get_bool(c, e, path, "lstrip", false);
    t.rstrip = get_bool(c, e, path, "rstrip", false);
    t.normalized = get_bool(c, e, path, "normalized", !t.special);
    const auto known = impl.added_by_content.find(t.content);
    if (known != impl.added_by_content.end()) {
      t.id = known->second;
      impl.added[impl.added_by_id.at(t.id)] = std::move(t);  // the later flags win
      continue;
    }
    const auto in_vocab = impl.model.vocab.find(t.content);
    if (in_vocab != impl.model.vocab.end()) {
      t.id = in_vocab->second;
    } else if (max_id < 0) {
      t.id = static_cast<int32_t>(model_size);
    } else {
      t.id =
          static_cast<int32_t>(max_id >= model_size || model_size == 0 ? max_id + 1 : model_size);
    }
    if (t.id >= kMaxId) c.fail(path, "too many added tokens");
    max_id = std::max<int64_t>(max_id, t.id);
    impl.added_by_id[t.id] = impl.added.size();
    impl.added_by_content.emplace(t.content, t.id);
    impl.added.push_back(std::move(t));
  }
  std::vector<const text::AddedToken*> raw, normalized;
  for (const text::AddedToken& t : impl.added) (t.normalized ? normalized : raw).push_back(&t);
  impl.raw_matcher = text::AddedTokenMatcher(raw);
  impl.normalized_matcher = text::AddedTokenMatcher(normalized);
}

void load_normalizer(const Ctx& c, const json& n, const std::string& path) {
  if (n.is_null()) return;
  const std::string type = type_of(c, n, path);
  if (type != "Sequence") c.fail(path + ".type", quote_token(type) + " is not supported");
  const json& list = member(c, n, path, "normalizers");
  if (!list.is_array()) c.fail(path + ".normalizers", "expected an array");
  for (size_t i = 0; i < list.size(); ++i)
    load_normalizer(c, list[i], path + ".normalizers[" + std::to_string(i) + "]");
}

text::SplitBehavior behavior_of(const Ctx& c, const json& v, const std::string& path) {
  const std::string b = get_string(c, v, path);
  if (b == "Removed") return text::SplitBehavior::kRemoved;
  if (b == "Isolated") return text::SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return text::SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return text::SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return text::SplitBehavior::kContiguous;
  c.fail(path, quote_token(b) +
                   " is not a split behavior (Removed, Isolated, MergedWithPrevious, "
                   "MergedWithNext, Contiguous)");
}

// GPT-2's pattern, which ByteLevel applies itself when use_regex is true.
constexpr const char* kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void load_pre_tokenizer(const Ctx& c, const json& p, const std::string& path,
                        Tokenizer::Impl& impl) {
  if (p.is_null()) return;
  const std::string type = type_of(c, p, path);
  if (impl.model.byte_level) c.fail(path, "ByteLevel must be the last pre-tokenizer");
  if (type == "Sequence") {
    const json& list = member(c, p, path, "pretokenizers");
    if (!list.is_array()) c.fail(path + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      load_pre_tokenizer(c, list[i], path + ".pretokenizers[" + std::to_string(i) + "]", impl);
    }
  } else if (type == "Split") {
    const json& pattern = member(c, p, path, "pattern");
    if (!pattern.is_object() || pattern.size() != 1 ||
        (!pattern.contains("Regex") && !pattern.contains("String"))) {
      c.fail(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    const bool literal = pattern.contains("String");
    const std::string key = literal ? "String" : "Regex";
    const std::string text = get_string(c, pattern[key], path + ".pattern." + key);
    text::PreTokenizerStep step;
    step.behavior = behavior_of(c, member(c, p, path, "behavior"), path + ".behavior");
    step.invert = get_bool(c, p, path, "invert", false);
    if (!(literal && text.empty())) {
      step.regex =
          std::make_unique<text::Regex>(text, literal, c.source + ": " + path + ".pattern." + key);
    }
    impl.steps.push_back(std::move(step));
  } else if (type == "Digits") {
    text::PreTokenizerStep step;
    step.behavior = get_bool(c, p, path, "individual_digits", false)
                        ? text::SplitBehavior::kIsolated
                        : text::SplitBehavior::kContiguous;
    step.regex = std::make_unique<text::Regex>("\\p{N}", false, c.source + ": " + path);
    impl.steps.push_back(std::move(step));
  } else if (type == "ByteLevel") {
    text::PreTokenizerStep step;
    step.add_prefix_space = get_bool(c, p, path, "add_prefix_space", true);
    if (get_bool(c, p, path, "use_regex", true)) {
      step.regex = std::make_unique<text::Regex>(kByteLevelPattern, false, c.source + ": " + path);
    }
    impl.steps.push_back(std::move(step));
    impl.model.byte_level = true;
  } else {
    c.fail(path + ".type",
           quote_token(type) + " is not supported (Sequence, Split, Digits, ByteLevel)");
  }
}

void load_decoder(const Ctx& c, const json& d, const std::string& path, Tokenizer::Impl& impl) {
  if (d.is_null()) return;
  const std::string type = type_of(c, d, path);
  if (type == "ByteLevel") {
    impl.byte_level_decoder = true;
  } else if (type == "Sequence") {
    const json& list = member(c, d, path, "decoders");
    if (!list.is_array()) c.fail(path + ".decoders", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      load_decoder(c, list[i], path + ".decoders[" + std::to_string(i) + "]", impl);
  } else {
    c.fail(path + ".type", quote_token(type) + " is not supported (ByteLevel, Sequence)");
  }
}

// The post-processor only adds special tokens, which this library takes from
// tokenizer_config.json (add_bos_token) instead; known kinds are accepted.
void check_post_processor(const Ctx& c, const json& p, const std::string& path) {
  if (p.is_null()) return;
  const std::string type = type_of(c, p, path);
  if (type == "Sequence") {
    const json& list = member(c, p, path, "processors");
    if (!list.is_array()) c.fail(path + ".processors", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      check_post_processor(c, list[i], path + ".processors[" + std::to_string(i) + "]");
  } else if (type != "ByteLevel" && type != "TemplateProcessing") {
    c.fail(path + ".type",
           quote_token(type) + " is not supported (ByteLevel, TemplateProcessing, Sequence)");
  }
}

json parse(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(source + ": invalid JSON: " + e.what());
  }
}

std::optional<int32_t> special_token(const Ctx& c, const json& cfg, const char* key,
                                     const Tokenizer::Impl& impl) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  std::string content;
  if (it->is_string()) {
    content = it->get<std::string>();
  } else if (it->is_object()) {
    content = get_string(c, member(c, *it, key, "content"), std::string(key) + ".content");
  } else {
    c.fail(key, "expected a string, an AddedToken object or null");
  }
  const auto added = impl.added_by_content.find(content);
  if (added != impl.added_by_content.end()) return added->second;
  const auto v = impl.model.vocab.find(content);
  if (v != impl.model.vocab.end()) return v->second;
  c.fail(key, quote_token(content) + " is not in the vocabulary");
}

}  // namespace

void load_tokenizer(Tokenizer::Impl& impl, std::string_view tokenizer_json,
                    std::string_view config_json, const std::string& source,
                    const std::string& config_source) {
  const json root = parse(tokenizer_json, source);
  const Ctx c{source};
  if (!root.is_object())
    c.fail("top level", std::string("expected an object, got ") + type_name(root));
  load_model(c, root, impl.model);
  load_added(c, root, impl);
  const auto field = [&](const char* key) -> const json& {
    static const json null_value;
    const auto it = root.find(key);
    return it == root.end() ? null_value : *it;
  };
  load_normalizer(c, field("normalizer"), "normalizer");
  load_pre_tokenizer(c, field("pre_tokenizer"), "pre_tokenizer", impl);
  load_decoder(c, field("decoder"), "decoder", impl);
  check_post_processor(c, field("post_processor"), "post_processor");

  if (impl.model.byte_level) {
    const auto& alphabet = text::byte_alphabet();
    for (int b = 0; b < 256; ++b) {
      const auto it = impl.model.vocab.find(alphabet.to_utf8[static_cast<size_t>(b)]);
      if (it == impl.model.vocab.end()) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", b);
        c.fail("model.vocab", "the byte-level symbol " +
                                  quote_token(alphabet.to_utf8[static_cast<size_t>(b)]) +
                                  " of byte " + hex + " is missing");
      }
      impl.model.byte_ids[b] = it->second;
    }
  }
  impl.vocab_size = static_cast<int32_t>(impl.model.id_to_token.size());
  for (const text::AddedToken& t : impl.added)
    impl.vocab_size = std::max(impl.vocab_size, t.id + 1);

  if (config_json.empty()) return;
  const json cfg = parse(config_json, config_source);
  const Ctx cc{config_source};
  if (!cfg.is_object()) cc.fail("top level", "expected an object");
  impl.add_bos = get_bool(cc, cfg, "", "add_bos_token", false);
  impl.add_eos = get_bool(cc, cfg, "", "add_eos_token", false);
  impl.bos = special_token(cc, cfg, "bos_token", impl);
  impl.eos = special_token(cc, cfg, "eos_token", impl);
  if (impl.add_bos && !impl.bos) cc.fail("add_bos_token", "is true but bos_token is not set");
  if (impl.add_eos && !impl.eos) cc.fail("add_eos_token", "is true but eos_token is not set");
}

}  // namespace mla
