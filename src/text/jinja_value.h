// Values of the Jinja template engine (src/text/jinja.h): Python's objects as Hugging Face chat
// templates see them. Lists and dicts are shared by reference, as in Python, so a namespace
// assigned in a loop is seen after it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>  // nlohmann::ordered_json: keys in file order, as Python reads them
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mla::jinja {

struct Value;
using List = std::vector<Value>;

// Insertion-ordered, as Python's dict; chat messages have a handful of keys, so a linear scan.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

struct Args;
using Function = std::function<Value(Args&)>;

struct Value {
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kFunction
  };
  Kind kind = Kind::kUndefined;
  bool b = false;  // a bool's value; for a list, whether it is a tuple (repr in parentheses)
  int64_t i = 0;
  double f = 0.0;
  std::string s;  // a string's text; for an undefined value, what was looked up (for errors)
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // kDict and kNamespace
  std::shared_ptr<Function> fn;

  static Value undefined(std::string what = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value make_list(List items = {});
  static Value make_dict(Dict items = {});
  static Value make_namespace(Dict items = {});
  static Value function(Function f);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  bool is_mapping() const { return kind == Kind::kDict || kind == Kind::kNamespace; }
};

// Positional and keyword arguments of a call.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

const char* kind_name(Value::Kind kind);     // Python's type name: 'str', 'int', 'NoneType', ...
bool truthy(const Value& v);                 // Python's bool()
std::string to_str(const Value& v);          // Python's str(); undefined prints as ''
std::string repr(const Value& v);            // Python's repr() (inside printed lists and dicts)
std::string repr_float(double v);            // Python's repr of a float: 1.0, 1e+16, 1.5e-07
bool equal(const Value& a, const Value& b);  // Python's ==

// Hugging Face's tojson filter: json.dumps(ensure_ascii=False) with optional indent and sorted
// keys. Throws std::invalid_argument for values JSON cannot hold.
std::string to_json(const Value& v, int indent, bool sort_keys);

Value from_json(const nlohmann::ordered_json& j);

}  // namespace mla::jinja
