// The Jinja engine's tokens and syntax tree: the lexer (jinja_lexer.cc) turns template text into
// tokens with Hugging Face's whitespace rules applied, the parser (jinja_parser.cc) builds the
// tree, the evaluator (jinja_eval.cc) renders it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/jinja_value.h"

namespace mla::jinja {

struct Pos {
  int line = 1, column = 1;
};

// Throws mla::Error "chat template L:C: message".
[[noreturn]] void fail(Pos pos, const std::string& message);

struct Token {
  enum class Kind {
    kText,
    kBlockBegin,
    kBlockEnd,
    kVarBegin,
    kVarEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEnd
  };
  Kind kind = Kind::kEnd;
  std::string text;  // text data, a name, a string's decoded value, an operator, a number's digits
  Pos pos;
};

// Lexes with trim_blocks and lstrip_blocks on (as transformers renders chat templates), '-' and
// '+' whitespace control, comments dropped, and one trailing newline of the source removed.
std::vector<Token> lex(std::string_view source);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // children: items
    kDict,     // children: key, value, key, value, ...
    kAttr,     // children[0].name
    kItem,     // children[0][children[1]]
    kSlice,    // children[0][children[1]:children[2]:children[3]], each bound may be null
    kCall,     // children[0](children[1..], keyword)
    kFilter,   // children[0] | name(children[1..], keyword)
    kTest,     // children[0] is [not] name(children[1..])
    kUnary,    // name: "-", "+", "not"; children[0]
    kBinary,   // name: the operator; children[0], children[1]
    kCond,     // children[0] if children[1] else children[2] (may be null)
  };
  Kind kind = Kind::kLiteral;
  Pos pos;
  Value literal;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Node;
using Body = std::vector<Node>;

struct Node {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue };
  Kind kind = Kind::kText;
  Pos pos;
  std::string text;                  // kText; kSet/kSetBlock: the variable; kMacro: its name
  std::string attribute;             // kSet: `set ns.attribute = ...`
  std::vector<std::string> targets;  // kFor: loop variables; kSet: several names to unpack
  ExprPtr expr;                      // kOutput, kSet value, kFor iterable
  ExprPtr filter;                    // kFor: `for x in xs if filter`
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: (condition, body) for if and each elif
  Body body;                                       // kFor, kSetBlock, kMacro body
  Body else_body;                                  // kIf, kFor
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro: name and default (may be null)
  // kFor, kMacro: names whose first use in the body is an assignment. As in jinja2, such a name
  // is local to the body from its start: undefined until assigned, hiding any outer value.
  std::vector<std::string> locals;
};

Body parse(std::string_view source);

// jinja2's compile-time scoping (jinja_scopes.cc): fills each loop's and macro's `locals` and
// returns the template's own (names first assigned at the top level).
std::vector<std::string> resolve_scopes(Body& root);

}  // namespace mla::jinja
