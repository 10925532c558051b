#include "text_stream.h"

#include <algorithm>

namespace mla::serve {
namespace {

// The well-formed part of the UTF-8 sequence starting at bytes[i] (Unicode's "maximal
// subpart"): how many bytes belong to it and whether it is a whole character. A sequence that
// stops early at the end of `bytes` may still complete.
struct Subpart {
  size_t length;
  bool whole;
};

Subpart subpart_at(const std::string& bytes, size_t i) {
  const unsigned char lead = static_cast<unsigned char>(bytes[i]);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (lead < 0x80) return {1, true};
  if (lead >= 0xC2 && lead <= 0xDF) n = 2;
  if (lead >= 0xE0 && lead <= 0xEF) n = 3;
  if (lead >= 0xF0 && lead <= 0xF4) n = 4;
  if (n == 0) return {1, false};
  if (lead == 0xE0) lo = 0xA0;
  if (lead == 0xED) hi = 0x9F;  // no surrogates
  if (lead == 0xF0) lo = 0x90;
  if (lead == 0xF4) hi = 0x8F;  // nothing beyond U+10FFFF
  size_t have = 1;
  while (have < n && i + have < bytes.size()) {
    const unsigned char c = static_cast<unsigned char>(bytes[i + have]);
    const bool ok = have == 1 ? (c >= lo && c <= hi) : (c & 0xC0) == 0x80;
    if (!ok) break;
    ++have;
  }
  return {have, have == n};
}

}  // namespace

size_t complete_utf8_prefix(const std::string& bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const Subpart p = subpart_at(bytes, i);
    if (!p.whole && i + p.length == bytes.size()) {
      // The tail may still complete, unless it is a byte that never starts a sequence.
      return p.length == 1 && static_cast<unsigned char>(bytes[i]) >= 0x80 &&
                     (static_cast<unsigned char>(bytes[i]) < 0xC2 ||
                      static_cast<unsigned char>(bytes[i]) > 0xF4)
                 ? bytes.size()
                 : i;
    }
    i += p.length;
  }
  return i;
}

std::string sanitize_utf8(const std::string& bytes) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const Subpart p = subpart_at(bytes, i);
    if (p.whole) {
      out.append(bytes, i, p.length);
    } else {
      out += kReplacement;  // one per maximal subpart, as Rust's and Python's decoders do
    }
    i += p.length;
  }
  return out;
}

std::string TextStream::push(const std::string& bytes) {
  if (stopped_) return {};
  bytes_ += bytes;
  const size_t complete = complete_utf8_prefix(bytes_);
  // A stop string anywhere in the decided text ends the stream there.
  size_t earliest = std::string::npos;
  for (const std::string& stop : stops_) {
    const size_t at = bytes_.find(stop);
    if (at != std::string::npos && at + stop.size() <= bytes_.size()) {
      earliest = std::min(earliest, at);
    }
  }
  if (earliest != std::string::npos) {
    stopped_ = true;
    std::string out = sanitize_utf8(bytes_.substr(0, earliest));
    bytes_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of a stop string.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    for (size_t len = std::min(stop.size() - 1, bytes_.size()); len > hold; --len) {
      if (bytes_.compare(bytes_.size() - len, len, stop, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  const size_t release = std::min(complete, bytes_.size() - hold);
  std::string out = sanitize_utf8(bytes_.substr(0, release));
  bytes_.erase(0, release);
  return out;
}

std::string TextStream::flush() {
  if (stopped_) return {};
  std::string out = sanitize_utf8(bytes_);
  bytes_.clear();
  return out;
}

}  // namespace mla::serve
