// JSON in and out of any config with visit_fields (include/mla/fields.h): one reader and one
// writer for every config, so a field's JSON name, type, default and rule are written once.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>

#include "io/json_text.h"
#include "mla/error.h"
#include "mla/fields.h"

namespace mla {
namespace detail {

struct JsonReader {
  const nlohmann::json* j;
  std::string source, prefix;

  template <class T>
  void operator()(const char* name, T& member, const FieldRule& rule = {}) {
    const std::string field = prefix + name;
    auto it = j->find(name);
    if (it == j->end()) {
      if (rule.required) fail(source, field, "missing");
      return;
    }
    const nlohmann::json& value = *it;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (value.is_null()) {
        if (!rule.null_when_unset) fail(source, field, "must be an integer, got null");
        member = 0;
        return;
      }
      member = static_cast<T>(read_integer(value, field));
      if (rule.zero_is_unset && member == 0) {  // a given 0 is not "unset": check it
        FieldRule given = rule;
        given.zero_is_unset = false;
        fail(source, field, int_rule_error(0, given));
      }
    } else if (value.is_null()) {
      return;  // the default
    } else if constexpr (HasFields<T>) {
      if (!value.is_object()) fail(source, field, "must be an object or null");
      JsonReader inner{&value, source, field + "."};
      member.visit_fields(inner);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!value.is_boolean())
        fail(source, field, "must be true or false, got " + json_text(value));
      member = value.get<bool>();
    } else if constexpr (std::is_enum_v<T>) {
      const std::string choices = "must be one of " + enum_choices<T>() + ", got ";
      if (!value.is_string()) fail(source, field, choices + json_text(value));
      const std::string text = value.get<std::string>();
      const std::optional<T> e = enum_from_name<T>(text);
      if (!e) fail(source, field, choices + "'" + text + "'");
      member = *e;
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!value.is_number()) fail(source, field, "must be a number, got " + json_text(value));
      member = value.get<T>();
    } else {
      if (!value.is_string()) fail(source, field, "must be a string, got " + json_text(value));
      member = value.get<std::string>();
    }
  }

  int64_t read_integer(const nlohmann::json& value, const std::string& field) const {
    if (value.is_number_integer()) return value.get<int64_t>();
    if (value.is_number_float()) {
      const double v = value.get<double>();
      if (v == std::floor(v) && std::fabs(v) < 9e15) return static_cast<int64_t>(v);
    }
    fail(source, field, "must be an integer, got " + json_text(value));
  }
};

struct JsonWriter {
  nlohmann::ordered_json* out;
  std::set<std::string>* omit_if_default;

  template <class T>
  void operator()(const char* name, const T& value, const FieldRule& rule = {}) {
    if (!rule.active) return;
    if (rule.omit_default && omit_if_default != nullptr) omit_if_default->insert(name);
    nlohmann::ordered_json& slot = (*out)[name];
    if constexpr (HasFields<T>) {
      slot = nlohmann::ordered_json::object();
      JsonWriter inner{&slot, nullptr};
      visit_const(value, inner);
    } else if constexpr (std::is_enum_v<T>) {
      slot = enum_name(value);
    } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (rule.null_when_unset && value == 0) {
        slot = nullptr;
      } else {
        slot = static_cast<int64_t>(value);
      }
    } else {
      slot = value;
    }
  }
};

}  // namespace detail

// Reads the fields of `config` present in the object `j` (absent ones keep their values; nested
// configs are objects). Errors: "<source>: <field>: <reason>", with nested fields as "a.b".
template <class C>
void read_json_fields(C& config, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": malformed JSON: the top level must be an object");
  detail::JsonReader r{&j, source, ""};
  config.visit_fields(r);
}

// Every active field in list order; fields marked omit_default are left out at their default.
template <class C>
nlohmann::ordered_json write_json_fields(const C& config) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object(), defaults = j;
  std::set<std::string> omit;
  detail::JsonWriter w{&j, &omit};
  detail::visit_const(config, w);
  detail::JsonWriter d{&defaults, nullptr};
  detail::visit_const(C{}, d);
  for (const std::string& name : omit) {
    if (defaults.contains(name) && j[name] == defaults[name]) j.erase(name);
  }
  return j;
}

}  // namespace mla
