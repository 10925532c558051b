// Encode: added tokens out of the text first, then the pre-tokenizer steps, then BPE per piece.
// Decode: tokens' strings through the ByteLevel decoder, then lossy UTF-8 as the reference does.
#include <fstream>
#include <sstream>

#include "mla/error.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace mla {
namespace {

std::string read_file(const std::string& path, bool& found) {
  std::ifstream in(path, std::ios::binary);
  found = static_cast<bool>(in);
  if (!found) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read failed");
  return ss.str();
}

// A text piece (id < 0) or an added token (id >= 0).
struct Part {
  std::string_view text;
  int32_t id;
};

void split_added(const text::AddedTokenMatcher& matcher, std::vector<Part>& parts,
                 std::vector<Part>& next, std::vector<text::Split>& splits) {
  if (matcher.empty()) return;
  next.clear();
  for (const Part& part : parts) {
    if (part.id >= 0) {
      next.push_back(part);
      continue;
    }
    splits.clear();
    matcher.split(part.text, splits);
    for (const text::Split& s : splits) {
      if (s.id >= 0 || s.end > s.begin)
        next.push_back({part.text.substr(s.begin, s.end - s.begin), s.id});
    }
  }
  parts.swap(next);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               const std::string& source) {
  auto impl = std::make_unique<Impl>();
  load_tokenizer(*impl, tokenizer_json, config_json, source, "tokenizer_config.json");
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  const std::string json_path = dir + "/tokenizer.json";
  const std::string config_path = dir + "/tokenizer_config.json";
  bool found = false;
  const std::string tokenizer_json = read_file(json_path, found);
  if (!found) throw Error(json_path + ": cannot open (a model folder needs tokenizer.json)");
  const std::string config_json = read_file(config_path, found);
  if (found && config_json.empty()) throw Error(config_path + ": file is empty");
  auto impl = std::make_unique<Impl>();
  load_tokenizer(*impl, tokenizer_json, config_json, json_path, config_path);
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const size_t bad = text::first_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    throw Error("tokenizer: the text is not valid UTF-8 at byte " + std::to_string(bad));
  }
  const Impl& m = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special && m.add_bos) ids.push_back(*m.bos);

  std::vector<Part> parts{{text, -1}}, next;
  std::vector<text::Split> splits;
  split_added(m.raw_matcher, parts, next, splits);
  split_added(m.normalized_matcher, parts, next, splits);  // the normalizer is the identity

  text::PieceBuffers buffers;
  text::BpeScratch scratch;
  for (const Part& part : parts) {
    if (part.id >= 0) {
      ids.push_back(part.id);
      continue;
    }
    if (part.text.empty()) continue;
    buffers.pieces.assign(1, part.text);
    for (const text::PreTokenizerStep& step : m.steps) apply_step(step, buffers);
    for (std::string_view piece : buffers.pieces) m.model.encode_word(piece, ids, scratch);
    buffers.arena.clear();
  }
  if (add_special && m.add_eos) ids.push_back(*m.eos);
  return ids;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const Impl& m = *impl_;
  std::string token = id_to_token(id);
  if (!m.byte_level_decoder) return token;
  // ByteLevel decoder: a token whose characters are all byte stand-ins gives those bytes; any
  // other token (an added token such as "<｜User｜>") gives its own UTF-8.
  const auto& alphabet = text::byte_alphabet();
  std::string bytes;
  bytes.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    const uint32_t cp = text::next_code_point(token, i);
    if (cp >= alphabet.to_byte.size() || alphabet.to_byte[cp] < 0) return token;
    bytes += static_cast<char>(alphabet.to_byte[cp]);
  }
  return bytes;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::string bytes;
  bool first = true;
  for (const int32_t id : ids) {
    if (id < 0 || id >= m.vocab_size || id_to_token(id).empty()) {
      throw Error("tokenizer: token id " + std::to_string(id) + " is not in the vocabulary (" +
                  std::to_string(m.vocab_size) + " ids)");
    }
    if (skip_special && is_special(id)) continue;
    if (!m.byte_level_decoder && !first) bytes += ' ';  // no decoder: tokens joined by spaces
    bytes += token_bytes(id);
    first = false;
  }
  return text::utf8_lossy(bytes);
}

std::string TokenStream::push(int32_t id) {
  if (id < 0 || id >= tokenizer_->vocab_size() || tokenizer_->id_to_token(id).empty()) {
    throw Error("tokenizer: token id " + std::to_string(id) + " is not in the vocabulary (" +
                std::to_string(tokenizer_->vocab_size()) + " ids)");
  }
  if (skip_special_ && tokenizer_->is_special(id)) return {};
  if (!tokenizer_->impl_->byte_level_decoder && !first_) pending_ += ' ';  // as decode() joins
  first_ = false;
  pending_ += tokenizer_->token_bytes(id);
  return text::utf8_lossy_prefix(pending_);
}

std::string TokenStream::finish() {
  std::string out = text::utf8_lossy(pending_);
  pending_.clear();
  return out;
}

int32_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const auto added = impl_->added_by_content.find(token);
  if (added != impl_->added_by_content.end()) return added->second;
  const auto it = impl_->model.vocab.find(token);
  if (it != impl_->model.vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const auto added = impl_->added_by_id.find(id);
  if (added != impl_->added_by_id.end()) return impl_->added[added->second].content;
  if (id >= 0 && static_cast<size_t>(id) < impl_->model.id_to_token.size()) {
    return std::string(impl_->model.id_to_token[static_cast<size_t>(id)]);
  }
  return {};
}

bool Tokenizer::is_special(int32_t id) const {
  const auto added = impl_->added_by_id.find(id);
  return added != impl_->added_by_id.end() && impl_->added[added->second].special;
}

std::optional<int32_t> Tokenizer::bos_id() const {
  return impl_->bos;
}
std::optional<int32_t> Tokenizer::eos_id() const {
  return impl_->eos;
}
bool Tokenizer::add_bos() const {
  return impl_->add_bos;
}
bool Tokenizer::add_eos() const {
  return impl_->add_eos;
}

}  // namespace mla
