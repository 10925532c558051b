#include "text/utf8.h"

namespace mla::text {
namespace {

// Length of the longest prefix of text[i..] that is a valid sequence or the start of one
// ("maximal subpart"), and whether it is complete.
struct Subpart {
  size_t length;
  bool complete;
};

Subpart scan(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = byte(i);
  if (b < 0x80) return {1, true};
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return {1, false};
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= text.size()) return {k, false};
    const unsigned char c = byte(i + k);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return {k, false};
  }
  return {need + 1, true};
}

ByteAlphabet make_alphabet() {
  ByteAlphabet a;
  a.to_byte.fill(-1);
  uint32_t extra = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    a.to_code_point[b] = printable ? b : 256 + extra++;
    a.to_byte[a.to_code_point[b]] = static_cast<int16_t>(b);
    append_utf8(a.to_utf8[b], a.to_code_point[b]);
  }
  return a;
}

}  // namespace

size_t first_invalid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const Subpart s = scan(text, i);
    if (!s.complete) return i;
    i += s.length;
  }
  return std::string_view::npos;
}

uint32_t next_code_point(std::string_view text, size_t& i) {
  const auto b = static_cast<unsigned char>(text[i]);
  const size_t n = utf8_length(b);
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3Fu);
  i += n;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const Subpart s = scan(bytes, i);
    if (s.complete) {
      out.append(bytes.substr(i, s.length));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
    }
    i += s.length;
  }
  return out;
}

std::string utf8_lossy_prefix(std::string& bytes) {
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    const Subpart s = scan(bytes, i);
    if (!s.complete && i + s.length == bytes.size() &&
        static_cast<unsigned char>(bytes[i]) >= 0xC2 &&
        static_cast<unsigned char>(bytes[i]) <= 0xF4) {
      break;  // a valid start cut short by the end of the bytes so far: wait for more
    }
    if (s.complete) {
      out.append(bytes, i, s.length);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += s.length;
  }
  bytes.erase(0, i);
  return out;
}

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet = make_alphabet();
  return alphabet;
}

}  // namespace mla::text
