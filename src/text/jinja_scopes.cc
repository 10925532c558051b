// jinja2 decides at compile time which names are local to a scope (the template, a loop body, a
// macro body): a name whose first use in the scope, in source order, is an assignment belongs
// to the scope from its start, so reading it earlier in a nested loop or macro gives undefined
// rather than the outer or context value. A name read first, or first used inside an `if`,
// keeps resolving outwards.
// A name first assigned in a nested scope starts from the outer value when an enclosing scope
// uses the name anywhere (jinja2 aliases it), and undefined otherwise. Enclosing scopes are
// analysed completely before the scopes nested in them, as jinja2 does.
#include <map>
#include <set>

#include "text/jinja_ast.h"

namespace mla::jinja {
namespace {

enum class First { kLoad, kStore };
using Uses = std::map<std::string, First>;

void load(const std::string& name, Uses& uses) {
  uses.emplace(name, First::kLoad);  // no effect when already used
}

void store(const std::string& name, Uses& uses) {
  uses.emplace(name, First::kStore);
}

void visit(const Expr* e, Uses& uses) {
  if (e == nullptr) return;
  if (e->kind == Expr::Kind::kName) load(e->name, uses);
  for (const ExprPtr& c : e->children) visit(c.get(), uses);
  for (const auto& kw : e->keyword) visit(kw.second.get(), uses);
}

void visit_body(Body& body, Uses& uses, std::vector<Node*>& nested);

std::vector<std::string> scope_locals(Body& body, const std::vector<std::string>& bound,
                                      const Expr* filter, const std::set<std::string>& outer) {
  Uses uses;
  std::vector<Node*> nested;
  for (const std::string& name : bound) store(name, uses);
  visit(filter, uses);
  visit_body(body, uses, nested);
  std::vector<std::string> locals;
  std::set<std::string> refs = outer;
  for (const auto& [name, first] : uses) {
    if (first == First::kStore && !outer.count(name)) locals.push_back(name);
    refs.insert(name);
  }
  for (Node* n : nested) {
    if (n->kind == Node::Kind::kFor) {
      n->locals = scope_locals(n->body, n->targets, n->filter.get(), refs);
    } else {
      std::vector<std::string> params;
      for (const auto& p : n->params) params.push_back(p.first);
      n->locals = scope_locals(n->body, params, nullptr, refs);
    }
  }
  return locals;
}

void visit_node(Node& n, Uses& uses, std::vector<Node*>& nested) {
  switch (n.kind) {
    case Node::Kind::kText:
    case Node::Kind::kBreak:
    case Node::Kind::kContinue:
      return;
    case Node::Kind::kOutput:
      visit(n.expr.get(), uses);
      return;
    case Node::Kind::kSet:
      visit(n.expr.get(), uses);  // the value is evaluated before the name is bound
      if (!n.attribute.empty()) {
        load(n.text, uses);  // `set ns.x = ...` reads ns
      } else if (n.targets.empty()) {
        store(n.text, uses);
      } else {
        for (const std::string& t : n.targets) store(t, uses);
      }
      return;
    case Node::Kind::kSetBlock:
      visit_body(n.body, uses, nested);
      store(n.text, uses);
      return;
    case Node::Kind::kIf: {
      // A name first used inside a branch, even assigned in every branch, keeps resolving
      // outwards (what jinja2 does: only a direct assignment makes a name local from the start).
      for (auto& [cond, body] : n.branches) {
        visit(cond.get(), uses);
        Uses b = uses;
        visit_body(body, b, nested);
        for (const auto& entry : b) load(entry.first, uses);
      }
      Uses e = uses;
      visit_body(n.else_body, e, nested);
      for (const auto& entry : e) load(entry.first, uses);
      return;
    }
    case Node::Kind::kFor:
      visit(n.expr.get(), uses);  // the iterable belongs to the enclosing scope
      nested.push_back(&n);
      visit_body(n.else_body, uses, nested);  // runs in the enclosing scope
      return;
    case Node::Kind::kMacro:
      for (auto& p : n.params) visit(p.second.get(), uses);
      nested.push_back(&n);
      store(n.text, uses);
      return;
  }
}

void visit_body(Body& body, Uses& uses, std::vector<Node*>& nested) {
  for (Node& n : body) visit_node(n, uses, nested);
}

}  // namespace

std::vector<std::string> resolve_scopes(Body& root) {
  return scope_locals(root, {}, nullptr, {});
}

}  // namespace mla::jinja
