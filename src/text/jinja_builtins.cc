// The Jinja engine's filters, tests and the Python methods of str, dict and list that chat
// templates call. Semantics follow jinja2 and Python; transformers' own tojson replaces jinja2's.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "mla/error.h"
#include "text/jinja.h"

namespace mla::jinja {
namespace {

// Python's str.isspace() characters, as UTF-8.
bool space_at(std::string_view s, size_t i, size_t& n) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) {
    n = 1;
    return true;
  }
  static const char* const kSpaces[] = {"\u0085", "\u00a0", "\u1680", "\u2000", "\u2001",
                                        "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
                                        "\u2007", "\u2008", "\u2009", "\u200a", "\u2028",
                                        "\u2029", "\u202f", "\u205f", "\u3000"};
  for (const char* sp : kSpaces) {
    const std::string_view w(sp);
    if (s.substr(i, w.size()) == w) {
      n = w.size();
      return true;
    }
  }
  return false;
}

// Length of the UTF-8 sequence starting at s[i].
size_t char_len(std::string_view s, size_t i) {
  size_t n = 1;
  while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xc0) == 0x80) ++n;
  return n;
}

bool in_chars(std::string_view s, size_t i, std::string_view chars, size_t& n) {
  n = char_len(s, i);
  const std::string_view c = s.substr(i, n);
  for (size_t k = 0; k < chars.size(); k += char_len(chars, k)) {
    if (chars.substr(k, char_len(chars, k)) == c) return true;
  }
  return false;
}

// str.strip / lstrip / rstrip: whitespace, or any of `chars` when given.
std::string strip(const std::string& s, bool left, bool right, const Value* chars) {
  auto strippable = [&](size_t i, size_t& n) {
    return chars ? in_chars(s, i, chars->s, n) : space_at(s, i, n);
  };
  size_t begin = 0, end = s.size();
  size_t n = 0;
  while (left && begin < end && strippable(begin, n)) begin += n;
  while (right && end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
    if (!strippable(start, n) || start + n != end) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::vector<std::string> split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep == nullptr || sep->is_none()) {  // runs of whitespace, no empty parts
    size_t i = 0, n = 0;
    while (true) {
      while (i < s.size() && space_at(s, i, n)) i += n;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(strip(s.substr(i), false, true, nullptr));
        break;
      }
      size_t j = i;
      while (j < s.size() && !space_at(s, j, n)) j += char_len(s, j);
      parts.push_back(s.substr(i, j - i));
      i = j;
    }
    return parts;
  }
  if (!sep->is_string()) throw Error("split() separator must be a string");
  if (sep->s.empty()) throw Error("empty separator");
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep->s, start);
    if (at == std::string::npos ||
        (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, at - start));
    start = at + sep->s.size();
  }
}

std::string replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count) {
  std::string out;
  size_t start = 0;
  int64_t done = 0;
  if (from.empty()) {  // Python inserts `to` between every character
    for (size_t i = 0; i < s.size(); i += char_len(s, i)) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out.append(s, i, char_len(s, i));
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  while (count < 0 || done < count) {
    const size_t at = s.find(from, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += to;
    start = at + from.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string case_map(const std::string& s, bool upper) {
  std::string out = s;  // ASCII only: chat templates lower-case role names
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Argument `index` by position or `name` by keyword; nullptr when absent.
const Value* arg(Args& a, size_t index, const char* name) {
  for (const auto& [k, v] : a.keyword) {
    if (k == name) return &v;
  }
  return index < a.positional.size() ? &a.positional[index] : nullptr;
}

const std::string& string_arg(Args& a, size_t index, const char* name, const char* what) {
  const Value* v = arg(a, index, name);
  if (v == nullptr) throw Error(std::string(what) + " needs the argument '" + name + "'");
  if (!v->is_string())
    throw Error(std::string(what) + ": '" + name + "' must be a string, not " + kind_name(v->kind));
  return v->s;
}

int64_t int_arg(Args& a, size_t index, const char* name, int64_t def) {
  const Value* v = arg(a, index, name);
  if (v == nullptr || v->is_none()) return def;
  if (v->kind != Value::Kind::kInt) throw Error(std::string("'") + name + "' must be an integer");
  return v->i;
}

bool prefix_test(const std::string& s, const Value& p, bool prefix) {
  auto one = [&](const std::string& x) {
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0
                  : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (p.is_string()) return one(p.s);
  if (p.kind == Value::Kind::kList) {
    for (const Value& x : *p.list) {
      if (!x.is_string()) throw Error("startswith/endswith take strings");
      if (one(x.s)) return true;
    }
    return false;
  }
  throw Error("startswith/endswith take a string or a tuple of strings");
}

Value attribute_of(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (cur.is_mapping()) {
      const Value* next = cur.dict->find(key);
      cur = next ? *next : Value::undefined("no attribute '" + key + "'");
    } else {
      return Value::undefined("no attribute '" + key + "'");
    }
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

}  // namespace

Value call_method(const Value& obj, const std::string& name, Args& a, Pos pos, bool& found) {
  found = true;
  if (obj.is_string()) {
    const std::string& s = obj.s;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const Value* chars = arg(a, 0, "chars");
      if (chars && chars->is_none()) chars = nullptr;
      if (chars && !chars->is_string()) throw Error(name + " arg must be None or str");
      return Value::string(strip(s, name != "rstrip", name != "lstrip", chars));
    }
    if (name == "split") {
      List parts;
      for (std::string& p : split(s, arg(a, 0, "sep"), int_arg(a, 1, "maxsplit", -1)))
        parts.push_back(Value::string(std::move(p)));
      return Value::make_list(std::move(parts));
    }
    if (name == "startswith" || name == "endswith") {
      const Value* p = arg(a, 0, "prefix");
      if (p == nullptr) throw Error(name + "() takes at least 1 argument");
      return Value::boolean(prefix_test(s, *p, name == "startswith"));
    }
    if (name == "replace") {
      return Value::string(replace(s, string_arg(a, 0, "old", "replace()"),
                                   string_arg(a, 1, "new", "replace()"),
                                   int_arg(a, 2, "count", -1)));
    }
    if (name == "lower" || name == "upper") return Value::string(case_map(s, name == "upper"));
    if (name == "capitalize" || name == "title") {
      std::string out = case_map(s, false);
      bool start = true;
      for (char& c : out) {
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        start = name == "title" ? !letter : false;
      }
      return Value::string(std::move(out));
    }
    if (name == "find" || name == "count") {
      const std::string& needle = string_arg(a, 0, "sub", name.c_str());
      if (name == "find") {
        const size_t at = s.find(needle);
        if (at == std::string::npos) return Value::integer(-1);
        int64_t chars = 0;
        for (size_t k = 0; k < at; ++k) chars += (static_cast<unsigned char>(s[k]) & 0xc0) != 0x80;
        return Value::integer(chars);
      }
      if (needle.empty()) return Value::integer(length_of(obj, pos) + 1);
      int64_t n = 0;
      for (size_t at = s.find(needle); at != std::string::npos;
           at = s.find(needle, at + needle.size()))
        ++n;
      return Value::integer(n);
    }
    if (name == "join") {
      const Value* items = arg(a, 0, "iterable");
      if (items == nullptr) throw Error("join() takes exactly one argument");
      std::string out;
      bool first = true;
      for (const Value& v : iterate(*items, pos)) {
        if (!v.is_string())
          throw Error("sequence item: expected str instance, " + std::string(kind_name(v.kind)) +
                      " found");
        if (!first) out += s;
        out += v.s;
        first = false;
      }
      return Value::string(std::move(out));
    }
  } else if (obj.kind == Value::Kind::kDict) {
    if (name == "get") {
      const Value* key = arg(a, 0, "key");
      if (key == nullptr) throw Error("get() takes at least 1 argument");
      if (key->is_string()) {
        if (const Value* v = obj.dict->find(key->s)) return *v;
      }
      const Value* def = arg(a, 1, "default");
      return def ? *def : Value::none();
    }
    if (name == "items" || name == "keys" || name == "values") {
      List out;
      for (const auto& [k, v] : obj.dict->items) {
        if (name == "items") {
          out.push_back(Value::make_list({Value::string(k), v}));
          out.back().b = true;  // (key, value) tuples
        } else {
          out.push_back(name == "keys" ? Value::string(k) : v);
        }
      }
      return Value::make_list(std::move(out));
    }
  }
  found = false;
  return Value::undefined();
}

bool apply_test(const std::string& name, const Value& v, Args& a, Pos pos) {
  using K = Value::Kind;
  const Value* other = arg(a, 0, "value");
  auto need_other = [&]() -> const Value& {
    if (other == nullptr) fail(pos, "test '" + name + "' needs an argument");
    return *other;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.kind == K::kInt || v.kind == K::kFloat;
  if (name == "integer") return v.kind == K::kInt;
  if (name == "float") return v.kind == K::kFloat;
  if (name == "boolean") return v.kind == K::kBool;
  if (name == "true") return v.kind == K::kBool && v.b;
  if (name == "false") return v.kind == K::kBool && !v.b;
  if (name == "mapping") return v.kind == K::kDict;
  if (name == "sequence") return v.kind == K::kList || v.is_string() || v.kind == K::kDict;
  if (name == "iterable") return v.kind == K::kList || v.is_string() || v.kind == K::kDict;
  if (name == "callable") return v.kind == K::kFunction;
  if (name == "lower") return v.is_string() && case_map(v.s, false) == v.s;
  if (name == "upper") return v.is_string() && case_map(v.s, true) == v.s;
  if (name == "even" || name == "odd" || name == "divisibleby") {
    if (v.kind != K::kInt) fail(pos, "test '" + name + "' needs an integer");
    if (name == "divisibleby") {
      const Value& d = need_other();
      if (d.kind != K::kInt || d.i == 0) fail(pos, "divisibleby needs a non-zero integer");
      return v.i % d.i == 0;
    }
    return (v.i % 2 == 0) == (name == "even");
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, need_other());
  if (name == "ne" || name == "!=") return !equal(v, need_other());
  if (name == "sameas") {
    const Value& o = need_other();
    if (v.kind != o.kind) return false;
    if (v.kind == K::kNone || v.kind == K::kUndefined) return true;
    if (v.kind == K::kBool) return v.b == o.b;
    return equal(v, o) && (v.kind != K::kList || v.list == o.list) &&
           (!v.is_mapping() || v.dict == o.dict);
  }
  if (name == "in") return contains(need_other(), v, pos);
  if (name == "lt" || name == "gt" || name == "le" || name == "ge" || name == "<" || name == ">" ||
      name == "<=" || name == ">=") {
    const Value& o = need_other();
    if (!(v.is_number() && o.is_number()) && !(v.is_string() && o.is_string()))
      fail(pos, "test '" + name + "' compares numbers or strings");
    const bool lt = v.is_string() ? v.s < o.s
                                  : (v.kind == K::kInt ? static_cast<double>(v.i) : v.f) <
                                        (o.kind == K::kInt ? static_cast<double>(o.i) : o.f);
    const bool eq = v.is_string() ? v.s == o.s : equal(v, o);
    if (name == "lt" || name == "<") return lt;
    if (name == "le" || name == "<=") return lt || eq;
    if (name == "gt" || name == ">") return !lt && !eq;
    return !lt;
  }
  fail(pos, "unknown test '" + name + "'");
}

Value apply_filter(const std::string& name, const Value& v, Args& a, Pos pos) {
  using K = Value::Kind;
  auto need_string = [&]() -> const std::string& {
    if (v.is_undefined()) fail_undefined(v, pos);
    if (!v.is_string())
      throw Error("filter '" + name + "' needs a string, not " + kind_name(v.kind));
    return v.s;
  };
  if (name == "trim") {
    const Value* chars = arg(a, 0, "chars");
    if (chars && chars->is_none()) chars = nullptr;
    return Value::string(strip(v.is_string() ? v.s : to_str(v), true, true, chars));
  }
  if (name == "length" || name == "count") return Value::integer(length_of(v, pos));
  if (name == "tojson") {
    const Value* indent = arg(a, 0, "indent");
    const Value* sort_keys = arg(a, 3, "sort_keys");
    if (arg(a, 1, "separators") && !arg(a, 1, "separators")->is_none())
      throw Error("tojson: the separators argument is not supported");
    if (indent && !indent->is_none() && indent->kind != K::kInt)
      throw Error("tojson: indent must be an integer");
    try {
      return Value::string(
          to_json(v, indent && indent->kind == K::kInt ? static_cast<int>(indent->i) : -1,
                  sort_keys && truthy(*sort_keys)));
    } catch (const std::invalid_argument& e) {
      throw Error(std::string("tojson: ") + e.what());
    }
  }
  if (name == "default" || name == "d") {
    const Value* def = arg(a, 0, "default_value");
    const Value* boolean = arg(a, 1, "boolean");
    const bool use_default = v.is_undefined() || (boolean && truthy(*boolean) && !truthy(v));
    if (!use_default) return v;
    return def ? *def : Value::string("");
  }
  if (name == "lower" || name == "upper")
    return Value::string(case_map(to_str(v), name == "upper"));
  if (name == "capitalize" || name == "title") {
    Args none;
    bool found = false;
    return call_method(Value::string(to_str(v)), name, none, pos, found);
  }
  if (name == "string") return Value::string(to_str(v));
  if (name == "safe" || name == "e" || name == "escape") {
    if (name != "safe") throw Error("filter '" + name + "' (HTML escaping) is not supported");
    return v;
  }
  if (name == "replace") {
    const std::string& s = need_string();
    return Value::string(replace(s, string_arg(a, 0, "old", "replace"),
                                 string_arg(a, 1, "new", "replace"), int_arg(a, 2, "count", -1)));
  }
  if (name == "list") return Value::make_list(iterate(v, pos));
  if (name == "first" || name == "last") {
    std::vector<Value> items = iterate(v, pos);
    if (items.empty()) return Value::undefined("no first or last item of an empty sequence");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<Value> chars = iterate(v, pos);
      std::string s;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) s += it->s;
      return Value::string(std::move(s));
    }
    std::vector<Value> items = iterate(v, pos);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "join") {
    const Value* sep = arg(a, 0, "d");
    const Value* attribute = arg(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v, pos)) {
      if (!first) out += sep ? to_str(*sep) : "";
      out += to_str(attribute ? attribute_of(item, to_str(*attribute)) : item);
      first = false;
    }
    return Value::string(std::move(out));
  }
  if (name == "int") {
    if (v.kind == K::kInt) return v;
    if (v.kind == K::kFloat) return Value::integer(static_cast<int64_t>(v.f));
    if (v.kind == K::kBool) return Value::integer(v.b);
    if (v.is_string()) {
      try {
        size_t used = 0;
        const std::string t = strip(v.s, true, true, nullptr);
        const int64_t i = std::stoll(t, &used);
        if (used == t.size()) return Value::integer(i);
      } catch (const std::exception&) {
      }
    }
    return Value::integer(int_arg(a, 0, "default", 0));
  }
  if (name == "float") {
    if (v.kind == K::kFloat) return v;
    if (v.kind == K::kInt || v.kind == K::kBool)
      return Value::number(v.kind == K::kInt ? static_cast<double>(v.i) : v.b);
    if (v.is_string()) {
      try {
        size_t used = 0;
        const std::string t = strip(v.s, true, true, nullptr);
        const double f = std::stod(t, &used);
        if (used == t.size()) return Value::number(f);
      } catch (const std::exception&) {
      }
    }
    return Value::number(0.0);
  }
  if (name == "abs") {
    if (v.kind == K::kInt) return Value::integer(v.i < 0 ? -v.i : v.i);
    if (v.kind == K::kFloat) return Value::number(std::fabs(v.f));
    throw Error("bad operand type for abs(): '" + std::string(kind_name(v.kind)) + "'");
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (!v.is_mapping()) throw Error("filter 'items' needs a mapping");
    List out;
    for (const auto& [k, x] : v.dict->items) {
      out.push_back(Value::make_list({Value::string(k), x}));
      out.back().b = true;
    }
    return Value::make_list(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool by_attribute = name == "selectattr" || name == "rejectattr";
    const bool keep_match = name == "selectattr" || name == "select";
    const Value* attribute = by_attribute ? arg(a, 0, "attribute") : nullptr;
    if (by_attribute && (attribute == nullptr || !attribute->is_string()))
      throw Error(name + " needs an attribute name");
    const size_t first_test_arg = by_attribute ? 1 : 0;
    const Value* test =
        first_test_arg < a.positional.size() ? &a.positional[first_test_arg] : nullptr;
    if (test && !test->is_string()) throw Error(name + ": the test name must be a string");
    Args test_args;
    for (size_t k = first_test_arg + 1; k < a.positional.size(); ++k)
      test_args.positional.push_back(a.positional[k]);
    List out;
    for (const Value& item : iterate(v, pos)) {
      const Value subject = by_attribute ? attribute_of(item, attribute->s) : item;
      const bool match = test ? apply_test(test->s, subject, test_args, pos) : truthy(subject);
      if (match == keep_match) out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "map") {
    const Value* attribute = arg(a, 99, "attribute");
    List out;
    if (attribute) {
      const Value* def = arg(a, 99, "default");
      for (const Value& item : iterate(v, pos)) {
        Value x = attribute_of(item, to_str(*attribute));
        out.push_back(x.is_undefined() && def ? *def : x);
      }
      return Value::make_list(std::move(out));
    }
    if (a.positional.empty() || !a.positional[0].is_string())
      throw Error("map needs a filter name or attribute=");
    const std::string filter = a.positional[0].s;
    Args rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    for (const Value& item : iterate(v, pos)) out.push_back(apply_filter(filter, item, rest, pos));
    return Value::make_list(std::move(out));
  }
  if (name == "unique") {
    List out;
    for (const Value& item : iterate(v, pos)) {
      bool seen = false;
      for (const Value& o : out) seen = seen || equal(o, item);
      if (!seen) out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "sum") {
    Value total = Value::integer(0);
    for (const Value& item : iterate(v, pos)) {
      if (!item.is_number()) throw Error("sum: items must be numbers");
      total = total.kind == K::kInt && item.kind == K::kInt
                  ? Value::integer(total.i + item.i)
                  : Value::number((total.kind == K::kInt ? static_cast<double>(total.i) : total.f) +
                                  (item.kind == K::kInt ? static_cast<double>(item.i) : item.f));
    }
    return total;
  }
  if (name == "indent") {
    const std::string& s = need_string();
    const Value* width = arg(a, 0, "width");
    const Value* first = arg(a, 1, "first");
    const Value* blank = arg(a, 2, "blank");
    const std::string pad = width && width->is_string()
                                ? width->s
                                : std::string(static_cast<size_t>(int_arg(a, 0, "width", 4)), ' ');
    std::string out;
    size_t start = 0;
    bool first_line = true;
    while (true) {
      const size_t nl = s.find('\n', start);
      const std::string line = s.substr(start, nl == std::string::npos ? nl : nl - start);
      const bool pad_it =
          first_line ? (first && truthy(*first)) : (!line.empty() || (blank && truthy(*blank)));
      if (pad_it) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      start = nl + 1;
      first_line = false;
    }
    return Value::string(std::move(out));
  }
  fail(pos, "unknown filter '" + name + "'");
}

}  // namespace mla::jinja
