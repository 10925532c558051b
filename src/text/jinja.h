// A Jinja template engine for Hugging Face chat templates: the subset of Jinja2 they use, rendered
// as transformers renders them (trim_blocks, lstrip_blocks, loop controls, raise_exception,
// tojson without ASCII escaping). Errors are mla::Error "chat template L:C: what went wrong".
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "text/jinja_ast.h"
#include "text/jinja_value.h"

namespace mla::jinja {

class Template {
 public:
  explicit Template(std::string_view source);  // parses; throws on a syntax error
  // Renders with `variables` (a dict) visible as globals, next to range, namespace, dict and
  // raise_exception.
  std::string render(const Dict& variables) const;

 private:
  std::shared_ptr<const Body> body_;
  std::vector<std::string> locals_;  // names first assigned at the top level (jinja_scopes.cc)
};

// Builtins (jinja_builtins.cc). Each throws through fail(pos, ...) on bad arguments.
Value apply_filter(const std::string& name, const Value& operand, Args& args, Pos pos);
bool apply_test(const std::string& name, const Value& operand, Args& args, Pos pos);
// A method of a str, dict or list; sets `found` false (and returns undefined) when the type has
// no such method.
Value call_method(const Value& object, const std::string& name, Args& args, Pos pos, bool& found);

// Shared helpers of the evaluator and the builtins.
[[noreturn]] void fail_undefined(const Value& v, Pos pos);
std::vector<Value> iterate(const Value& v, Pos pos);  // for loops, list(), join, ...
int64_t length_of(const Value& v, Pos pos);
bool contains(const Value& container, const Value& item, Pos pos);

}  // namespace mla::jinja
