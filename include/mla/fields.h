// Configs declared once. Every config struct lists its fields in one member template,
//
//   template <class V> void visit_fields(V& v) {
//     v("hidden_size", hidden_size, {.min = 1, .max = kMaxWidth, .required = true});
//     ...
//   }
//
// (gemma.cpp's VisitFields is the model), and that list drives validation (validate_fields),
// printing (fields_to_string), JSON in and out (src/core/fields_json.h) and the Python properties
// (get_field / set_field). Enum fields go by name through one table per enum (enum_names), and
// every config error reads "<where>: <field>: <reason>" (fail).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "mla/enum_names.h"

namespace mla {

// Throws mla::Error "<where>: <field>: <reason>".
[[noreturn]] void fail(std::string_view where, std::string_view field, std::string_view reason);

template <class T>
concept NamedEnum = std::is_enum_v<T> && requires(T t) {
  enum_names(t);
};
template <class T>
concept HasFields = requires(T& t, int& v) {
  t.visit_fields(v);
};

// ---- the rule of one field --------------------------------------------------------------------
struct FieldRule {
  static constexpr double kInf = std::numeric_limits<double>::infinity();
  double min = -kInf, max = kInf;  // numbers: the allowed range
  bool min_open = false;           // min itself excluded (floating-point fields)
  bool max_open = false;           // max itself excluded
  bool even = false;               // integers: RoPE rotates pairs
  bool zero_is_unset = false;      // integers: 0 means "not set" and is not checked
  bool null_when_unset = false;    // ... and is null in JSON ("must be null or positive")
  bool required = false;           // JSON: the key must be present
  bool omit_default = false;       // JSON out: left out when equal to the default
  bool active = true;              // false: a field the current kind does not use (not checked)
  const char* py_name = nullptr;   // the Python property where it differs from the JSON name
  bool between = false;            // messages "must be between min and max, got v"
};

// The reason a value breaks its rule, or "" when it keeps it (integers and floating point).
std::string int_rule_error(int64_t value, const FieldRule& rule);
std::string real_rule_error(double value, const FieldRule& rule);
std::string format_number(double value);  // as an ostream prints it: 1e-06, 0.5, 10000

// Checks every active field of `config` (nested ones as "<name>.<field>"); throws via fail.
template <class C>
void validate_fields(const C& config, std::string_view where);

// "name: value" per line, nested fields as "<name>.<field>"; enums by name, unset as null.
template <class C>
std::string fields_to_string(const C& config);

// Python and other dynamic front ends: the fields by name, as one of these values.
using FieldValue = std::variant<bool, int64_t, double, std::string>;
template <class C>
std::vector<std::string> field_names();
template <class C>
std::optional<FieldValue> get_field(const C& config, std::string_view name);
// Throws "<where>: <name>: <reason>" for a value of the wrong kind or outside an enum's table
// (ranges are left to validate); returns false when there is no such field.
template <class C>
bool set_field(C& config, std::string_view name, const FieldValue& value, std::string_view where);

// ---- implementation ---------------------------------------------------------------------------
namespace detail {

template <class C, class F>
void visit_const(const C& config, F&& f) {
  const_cast<C&>(config).visit_fields(f);  // the visitors below only read
}

struct Validator {
  std::string where, prefix;
  template <class T>
  void operator()(const char* name, const T& value, const FieldRule& rule = {}) {
    if (!rule.active) return;
    const std::string full = prefix + name;
    if constexpr (HasFields<T>) {
      Validator inner{where, full + "."};
      visit_const(value, inner);
    } else if constexpr (std::is_same_v<T, bool> || std::is_enum_v<T> ||
                         std::is_same_v<T, std::string>) {
    } else if constexpr (std::is_integral_v<T>) {
      const std::string why = int_rule_error(static_cast<int64_t>(value), rule);
      if (!why.empty()) fail(where, full, why);
    } else {
      const std::string why = real_rule_error(static_cast<double>(value), rule);
      if (!why.empty()) fail(where, full, why);
    }
  }
};

struct Printer {
  std::ostringstream* out;
  std::string prefix;
  template <class T>
  void operator()(const char* name, const T& value, const FieldRule& rule = {}) {
    if (!rule.active) return;
    if constexpr (HasFields<T>) {
      Printer inner{out, prefix + name + "."};
      visit_const(value, inner);
      return;
    } else {
      *out << prefix << name << ": ";
      if constexpr (std::is_same_v<T, bool>) {
        *out << (value ? "true" : "false");
      } else if constexpr (std::is_enum_v<T>) {
        *out << enum_name(value);
      } else if constexpr (std::is_integral_v<T>) {
        if (rule.null_when_unset && value == 0) {
          *out << "null";
        } else {
          *out << value;
        }
      } else {
        *out << value;
      }
      *out << "\n";
    }
  }
};

// Top-level scalar fields only: a nested struct is not a Python property.
struct NameLister {
  std::vector<std::string>* names;
  template <class T>
  void operator()(const char* name, const T&, const FieldRule& rule = {}) {
    if constexpr (!HasFields<T>) names->push_back(rule.py_name != nullptr ? rule.py_name : name);
  }
};

inline bool field_is(std::string_view wanted, const char* name, const FieldRule& rule) {
  return wanted == (rule.py_name != nullptr ? rule.py_name : name);
}

struct Getter {
  std::string_view wanted;
  std::optional<FieldValue>* found;
  template <class T>
  void operator()(const char* name, const T& value, const FieldRule& rule = {}) {
    if constexpr (!HasFields<T>) {
      if (!field_is(wanted, name, rule)) return;
      if constexpr (std::is_same_v<T, bool>) {
        *found = FieldValue(value);
      } else if constexpr (std::is_enum_v<T>) {
        *found = FieldValue(std::string(enum_name(value)));
      } else if constexpr (std::is_integral_v<T>) {
        *found = FieldValue(static_cast<int64_t>(value));
      } else if constexpr (std::is_floating_point_v<T>) {
        *found = FieldValue(static_cast<double>(value));
      } else {
        *found = FieldValue(value);
      }
    }
  }
};

struct Setter {
  std::string_view wanted;
  const FieldValue* value;
  std::string_view where;
  bool* found;
  template <class T>
  void operator()(const char* name, T& member, const FieldRule& rule = {}) {
    if constexpr (!HasFields<T>) {
      if (!field_is(wanted, name, rule)) return;
      *found = true;
      const auto wrong = [&](const char* kind) {
        fail(where, wanted, std::string("must be ") + kind);
      };
      if constexpr (std::is_same_v<T, bool>) {
        if (!std::holds_alternative<bool>(*value)) wrong("true or false");
        member = std::get<bool>(*value);
      } else if constexpr (std::is_enum_v<T>) {
        const std::string* s = std::get_if<std::string>(value);
        const std::optional<T> e = s != nullptr ? enum_from_name<T>(*s) : std::nullopt;
        if (!e) {
          fail(where, wanted,
               "must be one of " + enum_choices<T>() + ", got '" + (s != nullptr ? *s : "?") + "'");
        }
        member = *e;
      } else if constexpr (std::is_integral_v<T>) {
        if (!std::holds_alternative<int64_t>(*value)) wrong("an integer");
        member = static_cast<T>(std::get<int64_t>(*value));
      } else if constexpr (std::is_floating_point_v<T>) {
        if (const int64_t* i = std::get_if<int64_t>(value)) {
          member = static_cast<T>(*i);
        } else if (const double* d = std::get_if<double>(value)) {
          member = static_cast<T>(*d);
        } else {
          wrong("a number");
        }
      } else {
        if (!std::holds_alternative<std::string>(*value)) wrong("a string");
        member = std::get<std::string>(*value);
      }
    }
  }
};

}  // namespace detail

template <class C>
void validate_fields(const C& config, std::string_view where) {
  detail::Validator v{std::string(where), ""};
  detail::visit_const(config, v);
}

template <class C>
std::string fields_to_string(const C& config) {
  std::ostringstream out;
  detail::Printer p{&out, ""};
  detail::visit_const(config, p);
  return out.str();
}

template <class C>
std::vector<std::string> field_names() {
  std::vector<std::string> names;
  detail::NameLister l{&names};
  C config{};
  config.visit_fields(l);
  return names;
}

template <class C>
std::optional<FieldValue> get_field(const C& config, std::string_view name) {
  std::optional<FieldValue> found;
  detail::Getter g{name, &found};
  detail::visit_const(config, g);
  return found;
}

template <class C>
bool set_field(C& config, std::string_view name, const FieldValue& value, std::string_view where) {
  bool found = false;
  detail::Setter s{name, &value, where, &found};
  config.visit_fields(s);
  return found;
}

}  // namespace mla
