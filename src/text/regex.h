// A compiled PCRE2 pattern (UTF, UCP, JIT where available) that iterates matches the way the
// reference tokenizer does with Oniguruma: tokenizer.json's regexes are written in Oniguruma's
// Ruby syntax, translated here where PCRE2 reads them differently.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mla::text {

class Regex {
 public:
  // `where` names the pattern's field in error messages. literal: the pattern is plain text.
  Regex(std::string_view pattern, bool literal, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [start, end) byte ranges of every match in `subject` (valid UTF-8) to `out`.
  // After an empty match at the end of the previous match the search moves on one character,
  // as Oniguruma's find_iter in the reference does.
  void find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8
  std::string where_;
};

// The pattern translated from Oniguruma to PCRE2 syntax (exposed for tests).
std::string onig_to_pcre2(std::string_view pattern);

}  // namespace mla::text
