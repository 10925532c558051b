// The Jinja lexer: template text to tokens, with jinja2's whitespace rules for the settings
// transformers uses (trim_blocks, lstrip_blocks, keep_trailing_newline off).
#include <cstring>

#include "mla/error.h"
#include "text/jinja_ast.h"
#include "text/utf8.h"

namespace mla::jinja {

void fail(Pos pos, const std::string& message) {
  throw Error("chat template " + std::to_string(pos.line) + ":" + std::to_string(pos.column) +
              ": " + message);
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // Newlines normalised to \n and one trailing newline dropped, as jinja2 does.
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    bool line_starting = true;
    while (i_ < src_.size()) {
      const size_t open = find_open(i_);
      std::string text = src_.substr(i_, open - i_);
      const Pos text_pos = pos_of(i_);
      if (open == src_.size()) {
        emit_text(std::move(text), text_pos);
        i_ = open;
        break;
      }
      const char type = src_[open + 1];  // '{', '%' or '#'
      const char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (type != '{' && sign != '+') {
        // lstrip_blocks: a block or comment tag alone after the indentation of its line.
        const size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (line_start > 0 || line_starting) {
          bool blank = line_start < text.size();
          for (size_t k = line_start; k < text.size(); ++k) blank = blank && is_space(text[k]);
          if (blank) text.resize(line_start);
        }
      }
      emit_text(std::move(text), text_pos);
      const Pos tag_pos = pos_of(open);
      i_ = open + 2 + (sign == '-' || sign == '+' ? 1 : 0);
      if (type == '#') {
        const size_t close = src_.find("#}", i_);
        if (close == std::string::npos) fail(tag_pos, "unterminated comment");
        const bool strip = close > i_ && src_[close - 1] == '-';
        const bool keep = close > i_ && src_[close - 1] == '+';
        i_ = close + 2;
        line_starting = after_tag_end(strip, !keep);
        continue;
      }
      const bool block = type == '%';
      tokens_.push_back({block ? Token::Kind::kBlockBegin : Token::Kind::kVarBegin, "", tag_pos});
      line_starting = lex_tag(block, tag_pos);
    }
    tokens_.push_back({Token::Kind::kEnd, "", pos_of(src_.size())});
    return std::move(tokens_);
  }

 private:
  std::string src_;
  size_t i_ = 0;
  std::vector<Token> tokens_;
  size_t pos_offset_ = 0;
  Pos pos_;

  size_t find_open(size_t from) const {
    for (size_t k = from; k + 1 < src_.size(); ++k) {
      if (src_[k] == '{' && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#'))
        return k;
    }
    return src_.size();
  }

  // Offsets are asked for in increasing order, so the position advances from the last answer.
  Pos pos_of(size_t offset) {
    if (offset < pos_offset_) {
      pos_offset_ = 0;
      pos_ = Pos{};
    }
    for (; pos_offset_ < offset && pos_offset_ < src_.size(); ++pos_offset_) {
      const char c = src_[pos_offset_];
      if (c == '\n') {
        ++pos_.line;
        pos_.column = 1;
      } else if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) {
        ++pos_.column;  // columns count characters, not UTF-8 bytes
      }
    }
    return pos_;
  }

  void emit_text(std::string text, Pos pos) {
    if (!text.empty()) tokens_.push_back({Token::Kind::kText, std::move(text), pos});
  }

  // After a tag's end at i_: '-' strips all whitespace, trim_blocks drops one newline. Returns
  // whether what was consumed ends a line (jinja2's line_starting for lstrip_blocks).
  bool after_tag_end(bool strip, bool trim) {
    const size_t start = i_;
    if (strip) {
      while (i_ < src_.size() && is_space(src_[i_])) ++i_;
    } else if (trim && i_ < src_.size() && src_[i_] == '\n') {
      ++i_;
    }
    return i_ > start && src_[i_ - 1] == '\n';
  }

  // Tokens of one {% ... %} or {{ ... }} up to and including its end.
  bool lex_tag(bool block, Pos tag_pos) {
    const char* close = block ? "%}" : "}}";
    int depth = 0;  // brackets, so that `{{ {'a': 1}}}` ends at the right braces
    while (true) {
      while (i_ < src_.size() && is_space(src_[i_])) ++i_;
      if (i_ >= src_.size()) fail(tag_pos, block ? "unterminated block tag" : "unterminated '{{'");
      const Pos p = pos_of(i_);
      const char c = src_[i_];
      if (depth == 0) {
        const bool sign = (c == '-' || c == '+') && src_.compare(i_ + 1, 2, close) == 0;
        if (sign || src_.compare(i_, 2, close) == 0) {
          i_ += sign ? 3 : 2;
          tokens_.push_back({block ? Token::Kind::kBlockEnd : Token::Kind::kVarEnd, "", p});
          return after_tag_end(sign && c == '-', block && !(sign && c == '+'));
        }
      }
      if (c == '\'' || c == '"') {
        tokens_.push_back({Token::Kind::kString, lex_string(p), p});
      } else if (is_digit(c)) {
        lex_number(p);
      } else if (is_name_start(c)) {
        const size_t start = i_;
        while (i_ < src_.size() && (is_name_start(src_[i_]) || is_digit(src_[i_]))) ++i_;
        tokens_.push_back({Token::Kind::kName, src_.substr(start, i_ - start), p});
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                           "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                           "]",  "{",  "}",  ",",  ".",  ":",  "|"};
        const char* op = nullptr;
        for (const char* candidate : kOps) {
          if (src_.compare(i_, std::strlen(candidate), candidate) == 0) {
            op = candidate;
            break;
          }
        }
        if (op == nullptr) fail(p, std::string("unexpected character '") + c + "'");
        if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++depth;
        if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && depth > 0) --depth;
        i_ += std::strlen(op);
        tokens_.push_back({Token::Kind::kOp, op, p});
      }
    }
  }

  std::string lex_string(Pos p) {
    const char quote = src_[i_++];
    std::string out;
    while (true) {
      if (i_ >= src_.size()) fail(p, "unterminated string literal");
      const char c = src_[i_++];
      if (c == quote) return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= src_.size()) fail(p, "unterminated string literal");
      const char e = src_[i_++];
      auto hex = [&](int digits) {
        uint32_t v = 0;
        for (int k = 0; k < digits; ++k) {
          const char h = i_ < src_.size() ? src_[i_] : '\0';
          const int d = is_digit(h)              ? h - '0'
                        : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                 : -1;
          if (d < 0) fail(p, "truncated \\x, \\u or \\U escape in string literal");
          v = v * 16 + static_cast<uint32_t>(d);
          ++i_;
        }
        return v;
      };
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '0':
          out += '\0';
          break;
        case '\\':
        case '\'':
        case '"':
          out += e;
          break;
        case '\n':
          break;  // a backslash before a newline continues the line
        case 'x':
          text::append_utf8(out, hex(2));
          break;
        case 'u':
          text::append_utf8(out, hex(4));
          break;
        case 'U': {
          const uint32_t cp = hex(8);
          if (cp > 0x10ffff) fail(p, "\\U escape beyond U+10FFFF in string literal");
          text::append_utf8(out, cp);
          break;
        }
        default:  // Python keeps unknown escapes as written
          out += '\\';
          out += e;
      }
    }
  }

  void lex_number(Pos p) {
    const size_t start = i_;
    auto digits = [&] {
      while (i_ < src_.size() && (is_digit(src_[i_]) || src_[i_] == '_')) ++i_;
    };
    digits();
    bool is_float = false;
    if (i_ + 1 < src_.size() && src_[i_] == '.' && is_digit(src_[i_ + 1])) {
      is_float = true;
      ++i_;
      digits();
    }
    if (i_ < src_.size() && (src_[i_] == 'e' || src_[i_] == 'E')) {
      size_t k = i_ + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        is_float = true;
        i_ = k;
        digits();
      }
    }
    std::string text;
    for (size_t k = start; k < i_; ++k) {
      if (src_[k] != '_') text += src_[k];
    }
    tokens_.push_back({is_float ? Token::Kind::kFloat : Token::Kind::kInt, text, p});
  }
};

}  // namespace

std::vector<Token> lex(std::string_view source) {
  return Lexer(source).run();
}

}  // namespace mla::jinja
