#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/regex.h"

#include <pcre2.h>

#include <algorithm>
#include <cstdint>

#include "mla/error.h"
#include "text/utf8.h"

namespace mla::text {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0)
    return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread match state: one match-data block and a JIT stack large enough for long runs of
// one character class, created once per thread instead of once per call.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  MatchState() {
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

MatchState& match_state() {
  thread_local MatchState state;
  if (!state.data || !state.context) throw Error("tokenizer: out of memory for regex matching");
  return state;
}

}  // namespace

std::string onig_to_pcre2(std::string_view p) {
  // Oniguruma's \s is the White_Space property (U+0085 NEL included, U+180E excluded); PCRE2's
  // differs on both. Oniguruma's \h is a hex digit (PCRE2: horizontal space).
  std::string out;
  out.reserve(p.size() + 16);
  int depth = 0;  // inside a character class ([...], nested in Oniguruma)
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's') {
        out += "\\p{White_Space}";
      } else if (e == 'S') {
        out += "\\P{White_Space}";
      } else if (e == 'h') {
        out += depth > 0 ? "0-9a-fA-F" : "[0-9a-fA-F]";
      } else if (e == 'H' && depth == 0) {
        out += "[^0-9a-fA-F]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[') {
      ++depth;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && depth > 0) --depth;
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view pattern, bool literal, const std::string& where) : where_(where) {
  const std::string translated = literal ? std::string(pattern) : onig_to_pcre2(pattern);
  // MULTILINE: in Oniguruma's Ruby syntax ^ and $ match at every line.
  uint32_t options = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
  options |= literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_MULTILINE;
  if (first_invalid_utf8(translated) != std::string::npos) {
    throw Error(where + ": pattern is not valid UTF-8");
  }
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), options, &error, &offset, nullptr);
  if (!code) {
    throw Error(where + ": invalid regex at offset " + std::to_string(offset) + ": " +
                pcre2_message(error));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // the interpreter runs where JIT is unavailable
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void Regex::find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const {
  MatchState& state = match_state();
  // PCRE2's default limit (10M backtracking steps) stops the linear backtracking of patterns such
  // as \s*[\r\n]+ over a run of a few million spaces; the limit grows with the subject instead,
  // which still stops a pattern that backtracks exponentially.
  const uint64_t limit = std::max<uint64_t>(10'000'000, 64 * static_cast<uint64_t>(subject.size()));
  pcre2_set_match_limit(state.context,
                        static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX)));
  auto* code = static_cast<pcre2_code*>(code_);
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t last_end = 0;
  bool have_match = false;
  size_t last_match_end = 0;
  while (last_end <= subject.size()) {
    const int rc = pcre2_match(code, text, subject.size(), last_end, PCRE2_NO_UTF_CHECK, state.data,
                               state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error(where_ + ": regex matching failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    const size_t start = ovector[0], end = ovector[1];
    if (end <= start && have_match && last_match_end == end) {
      last_end += last_end < subject.size()
                      ? utf8_length(static_cast<unsigned char>(subject[last_end]))
                      : 1;
      continue;
    }
    if (end < start) break;  // \K tricks: not a usable match
    last_end = end;
    last_match_end = end;
    have_match = true;
    out.emplace_back(start, end);
  }
}

}  // namespace mla::text
