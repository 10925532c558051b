// One name table per enum: enum_name, enum_from_name and enum_choices work for every enum that
// declares its table (found by argument-dependent lookup), so no enum spells its names twice:
//   inline constexpr EnumName<LatentNorm> kLatentNormNames[] = {{LatentNorm::kRmsNorm,
//   "rmsnorm"},..}; constexpr std::span<const EnumName<LatentNorm>> enum_names(LatentNorm) { return
//   kLatentNormNames; }
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mla {

template <class E>
struct EnumName {
  E value;
  const char* name;
};

template <class E>
const char* enum_name(E value) {
  for (const EnumName<E>& e : enum_names(E{})) {
    if (e.value == value) return e.name;
  }
  return "?";
}

template <class E>
std::optional<E> enum_from_name(std::string_view name) {
  for (const EnumName<E>& e : enum_names(E{})) {
    if (name == e.name) return e.value;
  }
  return std::nullopt;
}

// "rmsnorm, layernorm, none"
template <class E>
std::string enum_choices() {
  std::string s;
  for (const EnumName<E>& e : enum_names(E{})) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

}  // namespace mla
