// The non-template half of include/mla/fields.h: the one error helper and the rule messages.
#include "mla/fields.h"

#include <bit>
#include <cmath>
#include <sstream>

#include "mla/error.h"

namespace mla {
namespace {

// 1048576 -> "2^20"; other bounds as they are.
std::string bound_text(double bound) {
  const auto b = static_cast<int64_t>(bound);
  if (b >= 1024 && (b & (b - 1)) == 0) return "2^" + std::to_string(std::countr_zero(uint64_t(b)));
  return std::to_string(b);
}

}  // namespace

void fail(std::string_view where, std::string_view field, std::string_view reason) {
  throw Error(std::string(where) + ": " + std::string(field) + ": " + std::string(reason));
}

std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

std::string int_rule_error(int64_t value, const FieldRule& rule) {
  if (rule.zero_is_unset && value == 0) return "";
  const std::string got = ", got " + std::to_string(value);
  const auto v = static_cast<double>(value);
  if (rule.between && (v < rule.min || v > rule.max)) {
    return "must be between " + std::to_string(static_cast<int64_t>(rule.min)) + " and " +
           std::to_string(static_cast<int64_t>(rule.max)) + got;
  }
  if (v < rule.min) {
    if (rule.null_when_unset) return "must be null or positive" + got;
    if (rule.min == 1) return "must be positive" + got;
    if (rule.min == 0) return "must not be negative" + got;
    return "must be at least " + std::to_string(static_cast<int64_t>(rule.min)) + got;
  }
  if (v > rule.max) return "too large (> " + bound_text(rule.max) + ")" + got;
  if (rule.even && value % 2 != 0) return "must be even (RoPE rotates pairs)" + got;
  return "";
}

std::string real_rule_error(double value, const FieldRule& rule) {
  const bool above = rule.min_open ? value > rule.min : value >= rule.min;
  const bool below = rule.max_open ? value < rule.max : value <= rule.max;
  if (std::isfinite(value) && above && below) return "";
  const bool has_min = std::isfinite(rule.min), has_max = std::isfinite(rule.max);
  if (has_min && has_max) {
    return std::string("must be in ") + (rule.min_open ? "(" : "[") + format_number(rule.min) +
           ", " + format_number(rule.max) + (rule.max_open ? ")" : "]") + ", got " +
           format_number(value);
  }
  if (has_min && rule.min_open) {
    return rule.min == 0 ? "must be a positive finite number"
                         : "must be a finite number greater than " + format_number(rule.min);
  }
  if (has_min) return "must be a finite number >= " + format_number(rule.min);
  return "must be finite";
}

}  // namespace mla
