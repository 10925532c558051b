// The Jinja parser: tokens to a syntax tree, with jinja2's operator precedence (lowest first):
// conditional, or, and, not, comparisons and `in`, + -, ~, * / // %, **, unary - +, then
// postfix (.attr, [item], [a:b:c], call) with filters `|` and tests `is` binding tightest.
#include <cstdlib>

#include "text/jinja_ast.h"

namespace mla::jinja {
namespace {

using TK = Token::Kind;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  std::vector<Token> t_;
  size_t k_ = 0;
  int depth_ = 0;  // nesting of expressions and blocks: hostile input must not overflow the stack

  struct Nesting {
    Parser& p;
    Nesting(Parser& parser, Pos pos) : p(parser) {
      if (++p.depth_ > 200) fail(pos, "nested deeper than 200 parser levels");
    }
    ~Nesting() { --p.depth_; }
  };

  const Token& peek(size_t ahead = 0) const { return t_[std::min(k_ + ahead, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(k_++, t_.size() - 1)]; }
  bool at_op(const char* op) const { return peek().kind == TK::kOp && peek().text == op; }
  bool at_name(const char* name) const { return peek().kind == TK::kName && peek().text == name; }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TK::kText:
        return "template text";
      case TK::kBlockBegin:
        return "'{%'";
      case TK::kBlockEnd:
        return "'%}'";
      case TK::kVarBegin:
        return "'{{'";
      case TK::kVarEnd:
        return "'}}'";
      case TK::kString:
        return "a string";
      case TK::kInt:
      case TK::kFloat:
        return "number " + t.text;
      case TK::kEnd:
        return "the end of the template";
      default:
        return "'" + t.text + "'";
    }
  }

  void expect_op(const char* op, const char* where) {
    if (!at_op(op))
      fail(peek().pos, std::string("expected '") + op + "' " + where + ", got " + describe(peek()));
    ++k_;
  }
  void expect(TK kind, const char* what) {
    if (peek().kind != kind)
      fail(peek().pos, std::string("expected ") + what + ", got " + describe(peek()));
    ++k_;
  }
  std::string expect_name(const char* what) {
    if (peek().kind != TK::kName)
      fail(peek().pos, std::string("expected ") + what + ", got " + describe(peek()));
    return next().text;
  }

  // Parses nodes until a block tag whose keyword is in `ends` (left unconsumed after '{%'),
  // which is returned in `end`; at the top level (ends empty) until the end of the template.
  Body parse_body(const std::vector<std::string>& ends, std::string& end, Pos opened = {}) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.kind == TK::kEnd) {
        if (!ends.empty())
          fail(opened, "missing '{% " + ends.back() + " %}' for the block opened here");
        return body;
      }
      if (t.kind == TK::kText) {
        Node n;
        n.kind = Node::Kind::kText;
        n.pos = t.pos;
        n.text = t.text;
        body.push_back(std::move(n));
        ++k_;
      } else if (t.kind == TK::kVarBegin) {
        ++k_;
        Node n;
        n.kind = Node::Kind::kOutput;
        n.pos = peek().pos;
        n.expr = parse_expression();
        expect(TK::kVarEnd, "'}}'");
        body.push_back(std::move(n));
      } else if (t.kind == TK::kBlockBegin) {
        const Token& keyword = peek(1);
        if (keyword.kind != TK::kName)
          fail(keyword.pos, "expected a tag name after '{%', got " + describe(keyword));
        for (const std::string& e : ends) {
          if (keyword.text == e) {
            k_ += 2;
            end = e;
            return body;
          }
        }
        k_ += 2;
        body.push_back(parse_statement(keyword));
      } else {
        fail(t.pos, "unexpected " + describe(t));
      }
    }
  }

  Node parse_statement(const Token& keyword) {
    const Nesting guard(*this, keyword.pos);
    Node n;
    n.pos = keyword.pos;
    const std::string& kw = keyword.text;
    std::string end;
    if (kw == "if") {
      n.kind = Node::Kind::kIf;
      ExprPtr cond = parse_expression(/*allow_condition=*/false);  // jinja2 refuses `if a if b`
      expect(TK::kBlockEnd, "'%}'");
      while (true) {
        Body body = parse_body({"elif", "else", "endif"}, end, n.pos);
        n.branches.emplace_back(std::move(cond), std::move(body));
        if (end != "elif") break;
        cond = parse_expression(false);
        expect(TK::kBlockEnd, "'%}'");
      }
      if (end == "else") {
        expect(TK::kBlockEnd, "'%}'");
        n.else_body = parse_body({"endif"}, end, n.pos);
      }
      expect(TK::kBlockEnd, "'%}'");
    } else if (kw == "for") {
      n.kind = Node::Kind::kFor;
      n.targets.push_back(expect_name("a loop variable"));
      while (at_op(",")) {
        ++k_;
        n.targets.push_back(expect_name("a loop variable"));
      }
      if (!at_name("in")) fail(peek().pos, "expected 'in' in for loop, got " + describe(peek()));
      ++k_;
      n.expr = parse_expression(/*allow_condition=*/false);
      if (at_name("if")) {
        ++k_;
        n.filter = parse_expression(false);
      }
      if (at_name("recursive")) fail(peek().pos, "recursive for loops are not supported");
      expect(TK::kBlockEnd, "'%}'");
      n.body = parse_body({"else", "endfor"}, end, n.pos);
      if (end == "else") {
        expect(TK::kBlockEnd, "'%}'");
        n.else_body = parse_body({"endfor"}, end, n.pos);
      }
      expect(TK::kBlockEnd, "'%}'");
    } else if (kw == "set") {
      n.text = expect_name("a variable name after 'set'");
      if (at_op(".")) {
        ++k_;
        n.attribute = expect_name("an attribute name");
      } else {
        n.targets.push_back(n.text);
        while (at_op(",")) {
          ++k_;
          n.targets.push_back(expect_name("a variable name"));
        }
        if (n.targets.size() == 1) n.targets.clear();
      }
      if (peek().kind == TK::kBlockEnd && n.attribute.empty() && n.targets.empty()) {
        ++k_;
        n.kind = Node::Kind::kSetBlock;
        n.body = parse_body({"endset"}, end, n.pos);
        expect(TK::kBlockEnd, "'%}'");
      } else {
        n.kind = Node::Kind::kSet;
        expect_op("=", "in set");
        n.expr = parse_tuple_or_expression();
        expect(TK::kBlockEnd, "'%}'");
      }
    } else if (kw == "macro") {
      n.kind = Node::Kind::kMacro;
      n.text = expect_name("a macro name");
      expect_op("(", "after the macro name");
      while (!at_op(")")) {
        std::string param = expect_name("a parameter name");
        ExprPtr def;
        if (at_op("=")) {
          ++k_;
          def = parse_expression();
        }
        n.params.emplace_back(std::move(param), std::move(def));
        if (!at_op(",")) break;
        ++k_;
      }
      expect_op(")", "to close the macro's parameters");
      expect(TK::kBlockEnd, "'%}'");
      n.body = parse_body({"endmacro"}, end, n.pos);
      expect(TK::kBlockEnd, "'%}'");
    } else if (kw == "break" || kw == "continue") {
      n.kind = kw == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      expect(TK::kBlockEnd, "'%}'");
    } else if (kw.rfind("end", 0) == 0 || kw == "elif" || kw == "else") {
      fail(keyword.pos, "'" + kw + "' without an open block it could close");
    } else {
      fail(keyword.pos, "unknown or unsupported tag '" + kw + "'");
    }
    return n;
  }

  static ExprPtr make(Expr::Kind kind, Pos pos, std::string name = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    e->name = std::move(name);
    return e;
  }

  // `a, b` without brackets (as in `set x = 1, 2`) is a tuple, which we hold as a list.
  ExprPtr parse_tuple_or_expression() {
    const Pos pos = peek().pos;
    ExprPtr first = parse_expression();
    if (!at_op(",")) return first;
    ExprPtr list = make(Expr::Kind::kList, pos, "tuple");
    list->children.push_back(std::move(first));
    while (at_op(",")) {
      ++k_;
      if (peek().kind == TK::kBlockEnd) break;
      list->children.push_back(parse_expression());
    }
    return list;
  }

  ExprPtr parse_expression(bool allow_condition = true) {
    const Nesting guard(*this, peek().pos);
    ExprPtr e = parse_or();
    while (allow_condition && at_name("if")) {
      const Pos pos = next().pos;
      ExprPtr cond = make(Expr::Kind::kCond, pos);
      cond->children.push_back(std::move(e));
      cond->children.push_back(parse_or());
      if (at_name("else")) {
        ++k_;
        cond->children.push_back(parse_expression());
      } else {
        cond->children.push_back(nullptr);
      }
      e = std::move(cond);
    }
    return e;
  }

  ExprPtr binary(std::string op, Pos pos, ExprPtr a, ExprPtr b) {
    ExprPtr e = make(Expr::Kind::kBinary, pos, std::move(op));
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (at_name("or")) {
      const Pos pos = next().pos;
      e = binary("or", pos, std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (at_name("and")) {
      const Pos pos = next().pos;
      e = binary("and", pos, std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    const Nesting guard(*this, peek().pos);
    if (at_name("not")) {
      ExprPtr e = make(Expr::Kind::kUnary, next().pos, "not");
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      const Pos pos = peek().pos;
      std::string op;
      if (peek().kind == TK::kOp &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
           peek().text == "<=" || peek().text == ">=")) {
        op = next().text;
      } else if (at_name("in")) {
        ++k_;
        op = "in";
      } else if (at_name("not") && peek(1).kind == TK::kName && peek(1).text == "in") {
        k_ += 2;
        op = "not in";
      } else {
        return e;
      }
      // a < b < c chains as (a < b) and (b < c) in Jinja; chat templates do not chain, so the
      // left-to-right reading is kept simple.
      e = binary(op, pos, std::move(e), parse_math1());
    }
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (at_op("+") || at_op("-")) {
      const Token& t = next();
      e = binary(t.text, t.pos, std::move(e), parse_concat());
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (at_op("~")) {
      const Pos pos = next().pos;
      e = binary("~", pos, std::move(e), parse_math2());
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const Token& t = next();
      e = binary(t.text, t.pos, std::move(e), parse_pow());
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (at_op("**")) {
      const Pos pos = next().pos;
      e = binary("**", pos, std::move(e), parse_unary());
    }
    return e;
  }

  // As jinja2: `-x | f` is `(-x) | f`, the sign binding tighter than filters and tests.
  ExprPtr parse_unary(bool with_filters = true) {
    const Nesting guard(*this, peek().pos);
    ExprPtr e;
    if (at_op("-") || at_op("+")) {
      const Token& t = next();
      e = make(Expr::Kind::kUnary, t.pos, t.text);
      e->children.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    if (!with_filters) return e;
    return parse_filters(std::move(e));
  }

  void parse_call_args(Expr& call) {
    expect_op("(", "to open the arguments");
    while (!at_op(")")) {
      if (peek().kind == TK::kName && peek(1).kind == TK::kOp && peek(1).text == "=") {
        std::string name = next().text;
        ++k_;
        call.keyword.emplace_back(std::move(name), parse_expression());
      } else {
        if (!call.keyword.empty())
          fail(peek().pos, "a positional argument follows a keyword argument");
        call.children.push_back(parse_expression());
      }
      if (!at_op(",")) break;
      ++k_;
    }
    expect_op(")", "to close the arguments");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (at_op(".")) {
        const Pos pos = next().pos;
        ExprPtr a = make(Expr::Kind::kAttr, pos);
        if (peek().kind == TK::kInt) {  // `x.0` is x[0]
          a->kind = Expr::Kind::kItem;
          a->children.push_back(std::move(e));
          ExprPtr index = make(Expr::Kind::kLiteral, peek().pos);
          const Token& digits = next();
          try {
            index->literal = Value::integer(std::stoll(digits.text));
          } catch (const std::exception&) {
            fail(digits.pos, "integer literal " + digits.text + " does not fit in 64 bits");
          }
          a->children.push_back(std::move(index));
        } else {
          a->name = expect_name("an attribute name after '.'");
          a->children.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (at_op("[")) {
        const Pos pos = next().pos;
        ExprPtr bounds[3];
        int colons = 0;
        while (true) {
          if (at_op(":")) {
            if (colons == 2) fail(peek().pos, "a slice has at most two ':'");
            ++colons;
            ++k_;
          } else if (at_op("]")) {
            break;
          } else {
            if (bounds[colons])
              fail(peek().pos, "expected ':' or ']' in subscript, got " + describe(peek()));
            bounds[colons] = parse_expression();
          }
        }
        ++k_;
        if (colons == 0) {
          if (!bounds[0]) fail(pos, "empty subscript '[]'");
          ExprPtr item = make(Expr::Kind::kItem, pos);
          item->children.push_back(std::move(e));
          item->children.push_back(std::move(bounds[0]));
          e = std::move(item);
        } else {
          ExprPtr slice = make(Expr::Kind::kSlice, pos);
          slice->children.push_back(std::move(e));
          for (ExprPtr& b : bounds) slice->children.push_back(std::move(b));
          e = std::move(slice);
        }
      } else if (at_op("(")) {
        ExprPtr call = make(Expr::Kind::kCall, e->pos);
        call->children.push_back(std::move(e));
        parse_call_args(*call);
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (at_op("|")) {
        ++k_;
        const Pos pos = peek().pos;
        ExprPtr f = make(Expr::Kind::kFilter, pos, expect_name("a filter name after '|'"));
        f->children.push_back(std::move(e));
        if (at_op("(")) parse_call_args(*f);
        e = parse_postfix(std::move(f));
      } else if (at_name("is")) {
        ++k_;
        const Pos pos = peek().pos;
        bool negated = false;
        if (at_name("not")) {
          ++k_;
          negated = true;
        }
        ExprPtr t = make(Expr::Kind::kTest, pos, expect_name("a test name after 'is'"));
        t->negated = negated;
        t->children.push_back(std::move(e));
        if (at_op("(")) {
          parse_call_args(*t);
        } else if (peek().kind == TK::kString || peek().kind == TK::kInt ||
                   peek().kind == TK::kFloat ||
                   (peek().kind == TK::kName && peek().text != "and" && peek().text != "or" &&
                    peek().text != "else" && peek().text != "if" && peek().text != "in" &&
                    peek().text != "is" && peek().text != "not")) {
          t->children.push_back(parse_postfix(parse_primary()));  // `is divisibleby 3`
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    const Pos pos = t.pos;
    switch (t.kind) {
      case TK::kName: {
        ++k_;
        ExprPtr e = make(Expr::Kind::kLiteral, pos);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value::boolean(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value::boolean(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        return e;
      }
      case TK::kString: {
        ExprPtr e = make(Expr::Kind::kLiteral, pos);
        std::string s;
        while (peek().kind == TK::kString) s += next().text;  // adjacent literals concatenate
        e->literal = Value::string(std::move(s));
        return e;
      }
      case TK::kInt: {
        ExprPtr e = make(Expr::Kind::kLiteral, pos);
        try {
          e->literal = Value::integer(std::stoll(t.text));
        } catch (const std::exception&) {
          fail(pos, "integer literal " + t.text + " does not fit in 64 bits");
        }
        ++k_;
        return e;
      }
      case TK::kFloat: {
        ExprPtr e = make(Expr::Kind::kLiteral, pos);
        // strtod, not stod: beyond double's range is inf or 0 (as Python's float() gives), not an
        // exception.
        e->literal = Value::number(std::strtod(t.text.c_str(), nullptr));
        ++k_;
        return e;
      }
      case TK::kOp:
        if (t.text == "(") {
          ++k_;
          if (at_op(")")) {
            ++k_;
            return make(Expr::Kind::kList, pos, "tuple");  // () is an empty tuple
          }
          ExprPtr first = parse_expression();
          if (at_op(")")) {
            ++k_;
            return first;
          }
          ExprPtr list = make(Expr::Kind::kList, pos, "tuple");
          list->children.push_back(std::move(first));
          while (at_op(",")) {
            ++k_;
            if (at_op(")")) break;
            list->children.push_back(parse_expression());
          }
          expect_op(")", "to close the parenthesis");
          return list;
        }
        if (t.text == "[") {
          ++k_;
          ExprPtr list = make(Expr::Kind::kList, pos);
          while (!at_op("]")) {
            list->children.push_back(parse_expression());
            if (!at_op(",")) break;
            ++k_;
          }
          expect_op("]", "to close the list");
          return list;
        }
        if (t.text == "{") {
          ++k_;
          ExprPtr dict = make(Expr::Kind::kDict, pos);
          while (!at_op("}")) {
            dict->children.push_back(parse_expression());
            expect_op(":", "after a dict key");
            dict->children.push_back(parse_expression());
            if (!at_op(",")) break;
            ++k_;
          }
          expect_op("}", "to close the dict");
          return dict;
        }
        break;
      default:
        break;
    }
    fail(pos, "unexpected " + describe(t) + " in expression");
  }
};

}  // namespace

Body parse(std::string_view source) {
  return Parser(lex(source)).parse_template();
}

}  // namespace mla::jinja
