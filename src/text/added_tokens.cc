#include "text/added_tokens.h"

#include "text/regex.h"
#include "text/utf8.h"

namespace mla::text {
namespace {

// Rust's char::is_whitespace (the White_Space property), which the reference's lstrip/rstrip use.
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// The code point that ends at byte `end` (text valid UTF-8, end > 0).
uint32_t code_point_before(std::string_view text, size_t end, size_t& start) {
  start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t i = start;
  return next_code_point(text, i);
}

// Word characters for single_word tokens: the reference tests its neighbours with Rust regex's
// Unicode \w (Alphabetic, marks, decimal digits, connector punctuation, joiners).
bool is_word_char(uint32_t c) {
  static const Regex word("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]", false,
                          "single_word");
  std::string one;
  append_utf8(one, c);
  std::vector<std::pair<size_t, size_t>> found;
  word.find_all(one, found);
  return !found.empty();
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<const AddedToken*>& tokens) {
  nodes_.emplace_back();
  for (const AddedToken* token : tokens) {
    if (token->content.empty()) continue;
    int32_t node = 0;
    for (const char ch : token->content) {
      const auto b = static_cast<unsigned char>(ch);
      int32_t next = -1;
      for (const auto& [byte, child] : nodes_[node].children) {
        if (byte == b) next = child;
      }
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(b, next);
        nodes_.emplace_back();
      }
      node = next;
    }
    // A second token with the same content: the first one stays (the reference keeps one id).
    if (nodes_[node].token < 0) {
      nodes_[node].token = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(token);
      first_byte_[static_cast<unsigned char>(token->content[0])] = true;
    }
  }
}

std::pair<int32_t, size_t> AddedTokenMatcher::longest_at(std::string_view text, size_t pos) const {
  int32_t best = -1;
  size_t best_length = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    int32_t next = -1;
    for (const auto& [byte, child] : nodes_[node].children) {
      if (byte == b) {
        next = child;
        break;
      }
    }
    if (next < 0) break;
    node = next;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      best_length = i + 1 - pos;
    }
  }
  return {best, best_length};
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Split>& out) const {
  size_t start_offset = 0;  // end of the previous match
  size_t pos = 0;           // where the leftmost-longest search goes on
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [index, length] = longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = *tokens_[index];
    size_t start = pos, stop = pos + length;
    pos = stop;  // matches never overlap
    if (token.single_word) {
      size_t before = 0;
      const bool start_ok = start == 0 || !is_word_char(code_point_before(text, start, before));
      size_t after = stop;
      const bool stop_ok = stop == text.size() || !is_word_char(next_code_point(text, after));
      if (!start_ok || !stop_ok) continue;
    }
    if (token.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t prev = 0;
        if (!is_white_space(code_point_before(text, s, prev))) break;
        s = prev;
      }
      start = s > start_offset ? s : start_offset;
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!is_white_space(next_code_point(text, next))) break;
        stop = next;
      }
      if (stop > pos) pos = stop;
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset < text.size() || out.empty()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace mla::text
