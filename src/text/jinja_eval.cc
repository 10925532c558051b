// The Jinja evaluator: renders a syntax tree with Python's semantics for values and jinja2's
// scoping (each loop iteration and macro call has its own scope; `set` inside a loop does not
// leak out of it, which is why templates carry state in namespace() objects).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "mla/error.h"
#include "text/jinja.h"

namespace mla::jinja {

void fail_undefined(const Value& v, Pos pos) {
  fail(pos, v.s.empty() ? std::string("undefined value") : v.s);
}

namespace {

// Bounds on hostile templates: a macro calling itself twice per level would otherwise run 2^64
// times within the depth limit, and doubling a string in a loop exhausts memory.
constexpr int kMaxCallDepth = 64;
constexpr size_t kMaxOutputBytes = size_t{256} << 20;  // any string, the rendering included
constexpr size_t kMaxListItems = size_t{1} << 20;
constexpr uint64_t kMaxSteps = 10'000'000;  // statements run plus loop iterations

enum class Flow { kNormal, kBreak, kContinue };

int64_t checked_index(int64_t index, int64_t size, bool& ok) {
  if (index < 0) index += size;
  ok = index >= 0 && index < size;
  return index;
}

// Byte offsets of the code points of s, and s.size() at the end: Python indexes str by code point.
std::vector<size_t> code_point_offsets(const std::string& s) {
  std::vector<size_t> offsets;
  for (size_t k = 0; k < s.size(); ++k) {
    if ((static_cast<unsigned char>(s[k]) & 0xc0) != 0x80) offsets.push_back(k);
  }
  offsets.push_back(s.size());
  return offsets;
}

// Python's slice.indices(): the positions a[start:stop:step] visits.
std::vector<int64_t> slice_positions(int64_t size, const Value* start, const Value* stop,
                                     const Value* step, Pos pos) {
  auto as_int = [&](const Value* v, const char* what) -> std::optional<int64_t> {
    if (v == nullptr || v->is_none() || v->is_undefined()) return std::nullopt;
    if (v->kind != Value::Kind::kInt && v->kind != Value::Kind::kBool)
      fail(pos, std::string("slice ") + what + " must be an integer, not " + kind_name(v->kind));
    return v->kind == Value::Kind::kInt ? v->i : static_cast<int64_t>(v->b);
  };
  const int64_t st = as_int(step, "step").value_or(1);
  if (st == 0) fail(pos, "slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v < 0 ? *v + size : *v;
    if (st > 0) return std::clamp<int64_t>(x, 0, size);
    return std::clamp<int64_t>(x, -1, size - 1);
  };
  const int64_t a = clamp(as_int(start, "start"), st > 0 ? 0 : size - 1);
  const int64_t b = clamp(as_int(stop, "stop"), st > 0 ? size : -1);
  std::vector<int64_t> out;
  for (int64_t k = a; st > 0 ? k < b : k > b; k += st) out.push_back(k);
  return out;
}

double as_double(const Value& v) {
  return v.kind == Value::Kind::kFloat ? v.f
         : v.kind == Value::Kind::kInt ? static_cast<double>(v.i)
                                       : static_cast<double>(v.b);
}

bool numeric(const Value& v) {
  return v.kind == Value::Kind::kInt || v.kind == Value::Kind::kFloat ||
         v.kind == Value::Kind::kBool;
}

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b, Pos pos) {
  fail(pos, "unsupported operand type(s) for " + op + ": '" + kind_name(a.kind) + "' and '" +
                kind_name(b.kind) + "'");
}

Value arithmetic(const std::string& op, const Value& a, const Value& b, Pos pos) {
  if (a.is_undefined()) fail_undefined(a, pos);
  if (b.is_undefined()) fail_undefined(b, pos);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (a.s.size() + b.s.size() > kMaxOutputBytes) fail(pos, "string longer than 256 MiB");
      return Value::string(a.s + b.s);
    }
    if (a.is_string() || b.is_string()) {
      const Value& other = a.is_string() ? b : a;
      fail(pos,
           std::string("can only concatenate str (not \"") + kind_name(other.kind) + "\") to str");
    }
    if (a.kind == Value::Kind::kList && b.kind == Value::Kind::kList) {
      if (a.list->size() + b.list->size() > kMaxListItems) fail(pos, "list longer than 2^20 items");
      List items = *a.list;
      items.insert(items.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(items));
    }
  }
  if (op == "*" && (a.is_string() || a.kind == Value::Kind::kList) && b.kind == Value::Kind::kInt) {
    const int64_t n = std::max<int64_t>(b.i, 0);
    const size_t unit = a.is_string() ? a.s.size() : a.list->size();
    const size_t limit = a.is_string() ? kMaxOutputBytes : kMaxListItems;
    if (unit > 0 && static_cast<size_t>(n) > limit / unit) fail(pos, "repetition result too large");
    if (a.is_string()) {
      std::string s;
      for (int64_t k = 0; k < n; ++k) s += a.s;
      return Value::string(std::move(s));
    }
    List items;
    for (int64_t k = 0; k < n; ++k) items.insert(items.end(), a.list->begin(), a.list->end());
    return Value::make_list(std::move(items));
  }
  if (!numeric(a) || !numeric(b)) unsupported(op, a, b, pos);
  const bool ints = a.kind != Value::Kind::kFloat && b.kind != Value::Kind::kFloat;
  // Integers exactly (a double would round the largest ones past int64's range); bools as 0/1.
  auto as_int = [](const Value& v) {
    return v.kind == Value::Kind::kInt ? v.i : static_cast<int64_t>(as_double(v));
  };
  const int64_t x = ints ? as_int(a) : 0;
  const int64_t y = ints ? as_int(b) : 0;
  const double p = as_double(a), q = as_double(b);
  // Python's integers do not overflow; ours are 64 bits, and a result beyond them is an error
  // naming the operator rather than a wrapped number.
  int64_t r = 0;
  auto checked = [&](bool overflowed) {
    if (overflowed)
      fail(pos, "integer overflow in '" + op + "' (the result needs more than 64 bits)");
    return Value::integer(r);
  };
  if (op == "+") return ints ? checked(__builtin_add_overflow(x, y, &r)) : Value::number(p + q);
  if (op == "-") return ints ? checked(__builtin_sub_overflow(x, y, &r)) : Value::number(p - q);
  if (op == "*") return ints ? checked(__builtin_mul_overflow(x, y, &r)) : Value::number(p * q);
  if (op == "/") {
    if (q == 0.0) fail(pos, "division by zero");
    return Value::number(p / q);
  }
  if (op == "//" || op == "%") {
    if (q == 0.0) fail(pos, op == "//" ? "integer division or modulo by zero" : "modulo by zero");
    if (ints) {
      if (x == std::numeric_limits<int64_t>::min() && y == -1) checked(true);
      int64_t d = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --d;
        m += y;
      }
      return Value::integer(op == "//" ? d : m);
    }
    const double d = std::floor(p / q);
    return Value::number(op == "//" ? d : p - d * q);
  }
  if (op == "**") {
    if (ints && y >= 0) {
      // 0, 1 and -1 in closed form (y may be huge); any other base overflows within 64 steps.
      if (x == 0 || x == 1 || x == -1) {
        r = x == 0 ? (y == 0 ? 1 : 0) : (x == 1 || y % 2 == 0 ? 1 : -1);
        return Value::integer(r);
      }
      r = 1;
      bool overflowed = false;
      for (int64_t k = 0; k < y && !overflowed; ++k) overflowed = __builtin_mul_overflow(r, x, &r);
      return checked(overflowed);
    }
    return Value::number(std::pow(p, q));
  }
  unsupported(op, a, b, pos);
}

bool less(const Value& a, const Value& b, const std::string& op, Pos pos) {
  if (a.is_undefined()) fail_undefined(a, pos);
  if (b.is_undefined()) fail_undefined(b, pos);
  if (numeric(a) && numeric(b)) return as_double(a) < as_double(b);
  if (a.is_string() && b.is_string()) return a.s < b.s;  // UTF-8 byte order = code point order
  fail(pos, "'" + op + "' not supported between instances of '" + kind_name(a.kind) + "' and '" +
                kind_name(b.kind) + "'");
}

class Renderer {
 public:
  Renderer(const Dict& variables, const std::vector<std::string>& locals) {
    auto globals = std::make_shared<Dict>(variables);
    add_builtins(*globals);
    frames_.push_back(std::move(globals));
    frames_.push_back(std::make_shared<Dict>());  // the template's own top-level variables
    bind_locals(locals);
  }

  std::string render(const Body& body) {
    std::string out;
    out_ = &out;
    if (exec(body) != Flow::kNormal) fail(Pos{}, "'break' or 'continue' outside a for loop");
    return out;
  }

 private:
  std::vector<std::shared_ptr<Dict>> frames_;
  std::string* out_ = nullptr;
  int call_depth_ = 0;
  uint64_t steps_ = 0;

  // A scope's locals start undefined, hiding outer values (jinja2's compile-time scoping).
  void bind_locals(const std::vector<std::string>& names) {
    for (const std::string& name : names)
      frames_.back()->set(name, Value::undefined("'" + name + "' is undefined"));
  }

  void step(Pos pos) {
    if (++steps_ > kMaxSteps) fail(pos, "rendering takes more than 10000000 steps");
  }

  void add_builtins(Dict& g) {
    if (!g.find("range")) g.set("range", Value::function([](Args& a) { return range(a); }));
    if (!g.find("namespace")) {
      g.set("namespace", Value::function([](Args& a) {
              Dict d;
              for (const Value& p : a.positional) {
                if (!p.is_mapping()) throw Error("namespace() takes only a dict positionally");
                for (const auto& [k, v] : p.dict->items) d.set(k, v);
              }
              for (auto& [k, v] : a.keyword) d.set(k, v);
              return Value::make_namespace(std::move(d));
            }));
    }
    if (!g.find("dict")) {
      g.set("dict", Value::function([](Args& a) {
              Dict d;
              for (auto& [k, v] : a.keyword) d.set(k, v);
              return Value::make_dict(std::move(d));
            }));
    }
    if (!g.find("raise_exception")) {
      g.set("raise_exception", Value::function([](Args& a) -> Value {
              throw Error("raise_exception: " +
                          (a.positional.empty() ? std::string() : to_str(a.positional[0])));
            }));
    }
  }

  static Value range(Args& a) {
    std::vector<int64_t> p;
    for (const Value& v : a.positional) {
      if (v.kind != Value::Kind::kInt) throw Error("range() takes integers");
      p.push_back(v.i);
    }
    if (p.empty() || p.size() > 3) throw Error("range() takes 1 to 3 arguments");
    const int64_t start = p.size() == 1 ? 0 : p[0];
    const int64_t stop = p.size() == 1 ? p[0] : p[1];
    const int64_t step = p.size() == 3 ? p[2] : 1;
    if (step == 0) throw Error("range() arg 3 must not be zero");
    List items;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
      if (items.size() >= (1u << 20)) throw Error("range() longer than 1048576 items");
      items.push_back(Value::integer(k));
    }
    return Value::make_list(std::move(items));
  }

  Value lookup(const std::string& name) const {
    for (auto f = frames_.rbegin(); f != frames_.rend(); ++f) {
      if (const Value* v = (*f)->find(name)) return *v;
    }
    return Value::undefined("'" + name + "' is undefined");
  }

  void emit(const std::string& s, Pos pos) {
    if (out_->size() + s.size() > kMaxOutputBytes) fail(pos, "rendered text exceeds 256 MiB");
    *out_ += s;
  }

  // Builtin functions signal bad arguments with mla::Error; give them the call's position.
  template <typename F>
  static Value at(Pos pos, F&& f) {
    try {
      return f();
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.rfind("chat template ", 0) == 0) throw;
      fail(pos, what);
    }
  }

  Flow exec(const Body& body) {
    for (const Node& n : body) {
      const Flow f = exec(n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  void assign(const std::vector<std::string>& names, const Value& v, Pos pos) {
    if (names.size() == 1) {
      frames_.back()->set(names[0], v);
      return;
    }
    std::vector<Value> items = iterate(v, pos);
    if (items.size() != names.size()) {
      fail(pos, "cannot unpack " + std::to_string(items.size()) + " values into " +
                    std::to_string(names.size()) + " names");
    }
    for (size_t k = 0; k < names.size(); ++k) frames_.back()->set(names[k], items[k]);
  }

  Flow exec(const Node& n) {
    step(n.pos);
    switch (n.kind) {
      case Node::Kind::kText:
        emit(n.text, n.pos);
        return Flow::kNormal;
      case Node::Kind::kOutput:
        emit(to_str(eval(*n.expr)), n.pos);
        return Flow::kNormal;
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches) {
          if (truthy(eval(*cond))) return exec(body);
        }
        return exec(n.else_body);
      case Node::Kind::kFor:
        return exec_for(n);
      case Node::Kind::kSet: {
        Value v = eval(*n.expr);
        if (!n.attribute.empty()) {
          Value target = lookup(n.text);
          if (target.kind != Value::Kind::kNamespace)
            fail(n.pos, "cannot assign attribute '" + n.attribute + "' on non-namespace object '" +
                            n.text + "'");
          target.dict->set(n.attribute, std::move(v));
        } else if (n.targets.empty()) {
          frames_.back()->set(n.text, std::move(v));
        } else {
          assign(n.targets, v, n.pos);
        }
        return Flow::kNormal;
      }
      case Node::Kind::kSetBlock: {
        std::string captured;
        std::string* saved = out_;
        out_ = &captured;
        exec(n.body);
        out_ = saved;
        frames_.back()->set(n.text, Value::string(std::move(captured)));
        return Flow::kNormal;
      }
      case Node::Kind::kMacro: {
        const Node* macro = &n;
        frames_.back()->set(
            n.text, Value::function([this, macro](Args& a) { return call_macro(*macro, a); }));
        return Flow::kNormal;
      }
      case Node::Kind::kBreak:
        return Flow::kBreak;
      case Node::Kind::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  Flow exec_for(const Node& n) {
    const Value iterable = eval(*n.expr);
    std::vector<Value> items = iterate(iterable, n.expr->pos);
    if (n.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        step(n.pos);
        frames_.push_back(std::make_shared<Dict>());
        assign(n.targets, item, n.pos);
        const bool keep = truthy(eval(*n.filter));
        frames_.pop_back();
        if (keep) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(n.else_body);
    const auto count = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < count; ++k) {
      step(n.pos);
      auto frame = std::make_shared<Dict>();
      Dict loop;
      loop.set("index", Value::integer(k + 1));
      loop.set("index0", Value::integer(k));
      loop.set("revindex", Value::integer(count - k));
      loop.set("revindex0", Value::integer(count - k - 1));
      loop.set("first", Value::boolean(k == 0));
      loop.set("last", Value::boolean(k == count - 1));
      loop.set("length", Value::integer(count));
      loop.set("previtem", k > 0 ? items[static_cast<size_t>(k - 1)]
                                 : Value::undefined("there is no previous item"));
      loop.set("nextitem", k + 1 < count ? items[static_cast<size_t>(k + 1)]
                                         : Value::undefined("there is no next item"));
      frames_.push_back(std::move(frame));
      bind_locals(n.locals);
      frames_.back()->set("loop", Value::make_dict(std::move(loop)));
      assign(n.targets, items[static_cast<size_t>(k)], n.pos);
      const Flow f = exec(n.body);
      frames_.pop_back();
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  Value call_macro(const Node& macro, Args& a) {
    step(macro.pos);
    if (call_depth_ >= kMaxCallDepth)
      fail(macro.pos, "macro '" + macro.text + "' nested deeper than 64 calls");
    if (a.positional.size() > macro.params.size()) {
      fail(macro.pos, "macro '" + macro.text + "' takes not more than " +
                          std::to_string(macro.params.size()) + " argument(s)");
    }
    // A macro sees the globals and the template's top-level variables, not its caller's locals.
    std::vector<std::shared_ptr<Dict>> saved = frames_;
    frames_ = {saved[0], saved[1], std::make_shared<Dict>()};
    bind_locals(macro.locals);
    for (size_t k = 0; k < macro.params.size(); ++k) {
      const auto& [name, def] = macro.params[k];
      Value v;
      bool given = false;
      if (k < a.positional.size()) {
        v = a.positional[k];
        given = true;
      }
      for (const auto& [kw, kv] : a.keyword) {
        if (kw == name) {
          v = kv;
          given = true;
        }
      }
      if (!given) v = def ? eval(*def) : Value::undefined("'" + name + "' is undefined");
      frames_.back()->set(name, std::move(v));
    }
    for (const auto& [kw, kv] : a.keyword) {
      bool known = false;
      for (const auto& p : macro.params) known = known || p.first == kw;
      if (!known)
        fail(macro.pos, "macro '" + macro.text + "' takes no keyword argument '" + kw + "'");
    }
    std::string captured;
    std::string* saved_out = out_;
    out_ = &captured;
    ++call_depth_;
    exec(macro.body);
    --call_depth_;
    out_ = saved_out;
    frames_ = std::move(saved);
    return Value::string(std::move(captured));
  }

  Args eval_args(const Expr& e, size_t first) {
    Args a;
    for (size_t k = first; k < e.children.size(); ++k) a.positional.push_back(eval(*e.children[k]));
    for (const auto& [name, arg] : e.keyword) a.keyword.emplace_back(name, eval(*arg));
    return a;
  }

  static Value get_attr(const Value& obj, const std::string& name, Pos pos) {
    if (obj.is_undefined()) fail_undefined(obj, pos);
    if (obj.is_mapping()) {
      if (const Value* v = obj.dict->find(name)) return *v;
    }
    return Value::undefined(std::string("'") + kind_name(obj.kind) + " object' has no attribute '" +
                            name + "'");
  }

  static Value get_item(const Value& obj, const Value& key, Pos pos) {
    if (obj.is_undefined()) fail_undefined(obj, pos);
    if (obj.is_mapping() && key.is_string()) {
      if (const Value* v = obj.dict->find(key.s)) return *v;
    } else if (obj.kind == Value::Kind::kList && key.kind == Value::Kind::kInt) {
      bool ok = false;
      const int64_t i = checked_index(key.i, static_cast<int64_t>(obj.list->size()), ok);
      if (ok) return (*obj.list)[static_cast<size_t>(i)];
    } else if (obj.is_string() && key.kind == Value::Kind::kInt) {
      const std::vector<size_t> offsets = code_point_offsets(obj.s);
      bool ok = false;
      const int64_t i = checked_index(key.i, static_cast<int64_t>(offsets.size()) - 1, ok);
      if (ok) {
        const auto u = static_cast<size_t>(i);
        return Value::string(obj.s.substr(offsets[u], offsets[u + 1] - offsets[u]));
      }
    } else if (obj.is_string() && key.is_string()) {
      return Value::undefined("'str object' has no attribute '" + key.s + "'");
    }
    return Value::undefined(std::string("'") + kind_name(obj.kind) + " object' has no element " +
                            repr(key));
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return lookup(e.name);
      case Expr::Kind::kList: {
        List items;
        for (const ExprPtr& c : e.children) items.push_back(eval(*c));
        Value v = Value::make_list(std::move(items));
        v.b = e.name == "tuple";
        return v;
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.children.size(); k += 2) {
          const Value key = eval(*e.children[k]);
          if (!key.is_string()) fail(e.children[k]->pos, "dict keys must be strings here");
          d.set(key.s, eval(*e.children[k + 1]));
        }
        return Value::make_dict(std::move(d));
      }
      case Expr::Kind::kAttr:
        return get_attr(eval(*e.children[0]), e.name, e.children[0]->pos);
      case Expr::Kind::kItem: {
        const Value obj = eval(*e.children[0]);
        return get_item(obj, eval(*e.children[1]), e.children[0]->pos);
      }
      case Expr::Kind::kSlice:
        return eval_slice(e);
      case Expr::Kind::kCall:
        return eval_call(e);
      case Expr::Kind::kFilter: {
        const Value operand = eval(*e.children[0]);
        Args a = eval_args(e, 1);
        return at(e.pos, [&] { return apply_filter(e.name, operand, a, e.pos); });
      }
      case Expr::Kind::kTest: {
        const Value operand = eval(*e.children[0]);
        Args a = eval_args(e, 1);
        const bool r = apply_test(e.name, operand, a, e.pos);
        return Value::boolean(e.negated ? !r : r);
      }
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.children[0]);
        if (e.name == "not") return Value::boolean(!truthy(v));
        if (v.is_undefined()) fail_undefined(v, e.pos);
        if (!numeric(v))
          fail(e.pos, "bad operand type for unary " + e.name + ": '" + kind_name(v.kind) + "'");
        if (e.name == "+") return v.kind == Value::Kind::kBool ? Value::integer(v.b) : v;
        return v.kind == Value::Kind::kFloat ? Value::number(-v.f)
                                             : Value::integer(-static_cast<int64_t>(as_double(v)));
      }
      case Expr::Kind::kBinary:
        return eval_binary(e);
      case Expr::Kind::kCond:
        if (truthy(eval(*e.children[1]))) return eval(*e.children[0]);
        return e.children[2] ? eval(*e.children[2]) : Value::undefined("the condition was false");
    }
    return Value::undefined();
  }

  Value eval_binary(const Expr& e) {
    const std::string& op = e.name;
    const Value a = eval(*e.children[0]);
    if (op == "and") return truthy(a) ? eval(*e.children[1]) : a;
    if (op == "or") return truthy(a) ? a : eval(*e.children[1]);
    const Value b = eval(*e.children[1]);
    if (op == "==") return Value::boolean(equal(a, b));
    if (op == "!=") return Value::boolean(!equal(a, b));
    if (op == "~") {
      std::string joined = to_str(a) + to_str(b);
      if (joined.size() > kMaxOutputBytes) fail(e.pos, "string longer than 256 MiB");
      return Value::string(std::move(joined));
    }
    if (op == "in") return Value::boolean(contains(b, a, e.pos));
    if (op == "not in") return Value::boolean(!contains(b, a, e.pos));
    if (op == "<") return Value::boolean(less(a, b, op, e.pos));
    if (op == ">") return Value::boolean(less(b, a, op, e.pos));
    if (op == "<=") return Value::boolean(!less(b, a, op, e.pos));
    if (op == ">=") return Value::boolean(!less(a, b, op, e.pos));
    return arithmetic(op, a, b, e.pos);
  }

  Value eval_slice(const Expr& e) {
    const Value obj = eval(*e.children[0]);
    if (obj.is_undefined()) fail_undefined(obj, e.children[0]->pos);
    Value bounds[3];
    const Value* ptr[3] = {nullptr, nullptr, nullptr};
    for (int k = 0; k < 3; ++k) {
      if (e.children[static_cast<size_t>(k + 1)]) {
        bounds[k] = eval(*e.children[static_cast<size_t>(k + 1)]);
        ptr[k] = &bounds[k];
      }
    }
    if (obj.kind == Value::Kind::kList) {
      List items;
      for (int64_t k :
           slice_positions(static_cast<int64_t>(obj.list->size()), ptr[0], ptr[1], ptr[2], e.pos))
        items.push_back((*obj.list)[static_cast<size_t>(k)]);
      return Value::make_list(std::move(items));
    }
    if (obj.is_string()) {
      const std::vector<size_t> offsets = code_point_offsets(obj.s);
      std::string s;
      for (int64_t k : slice_positions(static_cast<int64_t>(offsets.size()) - 1, ptr[0], ptr[1],
                                       ptr[2], e.pos)) {
        const auto u = static_cast<size_t>(k);
        s.append(obj.s, offsets[u], offsets[u + 1] - offsets[u]);
      }
      return Value::string(std::move(s));
    }
    fail(e.pos, std::string("'") + kind_name(obj.kind) + "' object is not subscriptable");
  }

  Value eval_call(const Expr& e) {
    const Expr& callee = *e.children[0];
    if (callee.kind == Expr::Kind::kAttr) {
      const Value obj = eval(*callee.children[0]);
      if (obj.is_undefined()) fail_undefined(obj, callee.children[0]->pos);
      if (obj.is_string() || obj.kind == Value::Kind::kList || obj.kind == Value::Kind::kDict) {
        Args a = eval_args(e, 1);
        bool found = true;
        Value r = at(e.pos, [&] { return call_method(obj, callee.name, a, e.pos, found); });
        if (found) return r;
      }
      return call(get_attr(obj, callee.name, callee.pos), e, callee.name);
    }
    return call(eval(callee), e, callee.kind == Expr::Kind::kName ? callee.name : "expression");
  }

  Value call(const Value& f, const Expr& e, const std::string& what) {
    if (f.is_undefined()) fail_undefined(f, e.pos);
    if (f.kind != Value::Kind::kFunction)
      fail(e.pos, "'" + what + "' is not callable (it is a " + kind_name(f.kind) + ")");
    Args a = eval_args(e, 1);
    return at(e.pos, [&] { return (*f.fn)(a); });
  }
};

}  // namespace

std::vector<Value> iterate(const Value& v, Pos pos) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return *v.list;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& item : v.dict->items) keys.push_back(Value::string(item.first));
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::vector<size_t> offsets = code_point_offsets(v.s);
      for (size_t k = 0; k + 1 < offsets.size(); ++k)
        chars.push_back(Value::string(v.s.substr(offsets[k], offsets[k + 1] - offsets[k])));
      return chars;
    }
    default:
      fail(pos, std::string("'") + kind_name(v.kind) + "' object is not iterable");
  }
}

int64_t length_of(const Value& v, Pos pos) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kList:
      return static_cast<int64_t>(v.list->size());
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      return static_cast<int64_t>(v.dict->items.size());
    case Value::Kind::kString:
      return static_cast<int64_t>(code_point_offsets(v.s).size()) - 1;
    default:
      fail(pos, std::string("object of type '") + kind_name(v.kind) + "' has no len()");
  }
}

bool contains(const Value& container, const Value& item, Pos pos) {
  switch (container.kind) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        fail(pos, std::string("'in <string>' requires string as left operand, not ") +
                      kind_name(item.kind));
      }
      return container.s.find(item.s) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : *container.list) {
        if (equal(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      return item.is_string() && container.dict->find(item.s) != nullptr;
    default:
      fail(pos,
           std::string("argument of type '") + kind_name(container.kind) + "' is not iterable");
  }
}

Template::Template(std::string_view source) {
  auto body = std::make_shared<Body>(parse(source));
  locals_ = resolve_scopes(*body);
  body_ = std::move(body);
}

std::string Template::render(const Dict& variables) const {
  return Renderer(variables, locals_).render(*body_);
}

}  // namespace mla::jinja
