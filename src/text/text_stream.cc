// Utf8Stream and StopMatcher (include/mla/text_stream.h).
#include "mla/text_stream.h"

#include "mla/error.h"

namespace mla {
namespace {

constexpr char kReplacement[] = "\xef\xbf\xbd";  // U+FFFD

// Bytes a sequence starting with `lead` has in all (0: the byte cannot start one).
size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;  // a continuation byte, an overlong lead (C0, C1) or beyond U+10FFFF (F5..FF)
}

// Whether `b` may be byte `index` (1, 2 or 3) of a sequence led by `lead`: the second byte's
// range excludes overlongs (E0, F0), surrogates (ED) and code points beyond U+10FFFF (F4).
bool continues(unsigned char lead, size_t index, unsigned char b) {
  if (index == 1) {
    if (lead == 0xe0) return b >= 0xa0 && b <= 0xbf;
    if (lead == 0xed) return b >= 0x80 && b <= 0x9f;
    if (lead == 0xf0) return b >= 0x90 && b <= 0xbf;
    if (lead == 0xf4) return b >= 0x80 && b <= 0x8f;
  }
  return b >= 0x80 && b <= 0xbf;
}

}  // namespace

void Utf8Stream::push(std::string_view bytes, std::string& out) {
  size_t k = 0;
  // First complete (or give up on) the sequence held from earlier calls.
  while (held_size_ > 0 && k < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[k]);
    if (!continues(held_[0], held_size_, b)) {
      out += kReplacement;  // the held bytes are a maximal subpart; `b` starts afresh
      held_size_ = 0;
      break;
    }
    held_[held_size_++] = b;
    ++k;
    if (held_size_ == sequence_length(held_[0])) {
      out.append(reinterpret_cast<const char*>(held_), held_size_);
      held_size_ = 0;
    }
  }
  while (k < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[k]);
    const size_t n = sequence_length(lead);
    if (n == 1) {
      out += static_cast<char>(lead);
      ++k;
      continue;
    }
    if (n == 0) {
      out += kReplacement;
      ++k;
      continue;
    }
    size_t valid = 1;  // lead plus the continuation bytes that fit so far
    while (valid < n && k + valid < bytes.size() &&
           continues(lead, valid, static_cast<unsigned char>(bytes[k + valid])))
      ++valid;
    if (valid == n) {
      out.append(bytes.substr(k, n));
    } else if (k + valid == bytes.size()) {
      for (size_t j = 0; j < valid; ++j) held_[j] = static_cast<unsigned char>(bytes[k + j]);
      held_size_ = valid;  // may still complete with the next token's bytes
    } else {
      out += kReplacement;
    }
    k += valid;
  }
}

std::string Utf8Stream::push(std::string_view bytes) {
  std::string out;
  push(bytes, out);
  return out;
}

void Utf8Stream::finish(std::string& out) {
  if (held_size_ > 0) out += kReplacement;
  held_size_ = 0;
}

std::string Utf8Stream::finish() {
  std::string out;
  finish(out);
  return out;
}

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& s : stops_) {
    if (s.empty()) throw Error("stop: a stop string must not be empty");
  }
}

StopMatcher::Result StopMatcher::push(std::string_view text) {
  Result r;
  if (stopped_) return r;
  held_ += text;
  // The earliest match wins; among matches at the same place, the first stop string given.
  size_t best = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t at = held_.find(s);
    if (at < best) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    r.stopped = true;
    r.text = held_.substr(0, best);
    held_.clear();
    return r;
  }
  // Hold back the longest tail of the text that a stop string begins with.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, held_.size()); len > hold; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  r.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return r;
}

std::string StopMatcher::finish() {
  std::string out = stopped_ ? std::string() : std::move(held_);
  held_.clear();
  return out;
}

}  // namespace mla
