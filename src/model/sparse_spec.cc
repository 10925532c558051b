#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "mla/error.h"
#include "mla/sparse.h"

namespace mla {
namespace {

// The integer field `key` of the text form, among those the spec's kind uses (nullptr: none).
struct KeyFinder {
  std::string_view key;
  int64_t* found = nullptr;
  template <class T>
  void operator()(const char* name, T& member, const FieldRule& rule = {}) {
    if constexpr (std::is_same_v<T, int64_t>) {
      if (rule.active && key == name) found = &member;
    }
  }
};

// "size=64,local=4,global=1": the active keys in list order, dense-heads only when set.
struct KeyPrinter {
  std::string text;
  template <class T>
  void operator()(const char* name, const T& value, const FieldRule& rule = {}) {
    if constexpr (std::is_same_v<T, int64_t>) {
      if (!rule.active || (rule.omit_default && value == 0)) return;
      if (!text.empty()) text.push_back(',');
      text.append(name).append("=").append(std::to_string(value));
    }
  }
};

}  // namespace

void SparseSpec::validate(int64_t num_heads) const {
  validate_fields(*this, "sparse");
  if (num_heads > 0 && dense_heads > num_heads) {
    throw Error("sparse: dense-heads: " + std::to_string(dense_heads) + " is more than the " +
                std::to_string(num_heads) + " heads");
  }
}

std::string SparseSpec::to_string() const {
  KeyPrinter keys;
  const_cast<SparseSpec*>(this)->visit_fields(keys);
  std::string s = enum_name(kind);
  if (!keys.text.empty()) s.append(":").append(keys.text);
  return s;
}

SparseSpec parse_sparse_spec(const std::string& text) {
  const auto fail = [&text](const std::string& why) {
    return Error("sparse: '" + text + "': " + why);
  };
  SparseSpec spec;
  const size_t colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  const std::optional<SparseKind> parsed = enum_from_name<SparseKind>(kind);
  if (!parsed) throw fail("unknown pattern '" + kind + "' (use dense, window, block, topk or dsa)");
  spec.kind = *parsed;
  if (colon == std::string::npos) {
    spec.validate();
    return spec;
  }
  std::string_view rest(text);
  rest.remove_prefix(colon + 1);
  if (rest.empty()) throw fail("nothing after ':'");
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (comma != std::string_view::npos && rest.empty()) throw fail("trailing ','");
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) throw fail("'" + std::string(item) + "' is not key=value");
    const std::string key(item.substr(0, eq));
    const std::string_view number = item.substr(eq + 1);
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size()) {
      throw fail(key + ": '" + std::string(number) + "' is not an integer");
    }
    KeyFinder finder{key};
    spec.visit_fields(finder);
    int64_t* field = finder.found;
    if (field == nullptr) throw fail("unknown key '" + key + "' for " + kind);
    *field = value;
  }
  spec.validate();
  return spec;
}

}  // namespace mla
