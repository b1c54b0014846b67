/*
 * dimexpr.c - integer arithmetic inside brackets (issue 22): the seeds
 * write shapes the way Keras code does, `reshape(x, [-1, 7*7*64])`,
 * `f32[batch, 28*28]`, `random_normal([batch, 2*latent])`.
 *
 * An item of a bracketed list (parse.c's parse_list: every list argument,
 * shape lists included) or a dimension of a type is evaluated here when it
 * is more than one number or name: integer literals and integer constants
 * (`const k = 7`, or a function's parameter bound to an integer) under
 * + - * and // (floor division, Python's), with parentheses and unary
 * minus.  The result is an integer literal to the caller, which checks it
 * as it checks a written number (a dimension must be positive, ...) at the
 * location of the whole expression.  Symbolic dimensions take no part:
 * `[batch * 2]` would be a shape the rest of the compiler cannot express.
 *
 *   dim   = term (("+" | "-") term)*
 *   term  = unary (("*" | "//") unary)*
 *   unary = "-" unary | INT | NAME | "(" dim ")"
 */
#include <string.h>

#include "compiler.h"

/* The value of an integer: whole, and within 2^53 so that the double the
 * list items carry holds it exactly. */
enum { DIM_LIMIT_LOG2 = 53 };
#define DIM_LIMIT ((int64_t)1 << DIM_LIMIT_LOG2)

static bool is_op(const Token *t) {
  return tok_is(t, "+") || tok_is(t, "-") || tok_is(t, "*") || tok_is(t, "/") || tok_is(t, "//");
}

/* A scalar integer constant (a const statement, an integer literal bound
 * to a name or passed to a function's parameter). */
static bool is_int_const(const Node *n) {
  return n && n->op == OP_CONST && n->dtype == DT_I32 && n->shape.rank == 0 && n->a.values;
}

/* Does the item at p->tok need evaluating: an operator after its first
 * token, a parenthesis, or a name that is an integer constant?  A lone
 * number or symbolic name is the callers' as before. */
static bool is_dim_expr(Parser *p) {
  const Token *t = p->tok;
  if (tok_is(t, "(")) return true;
  int depth = 0, n = 0;
  for (; t->kind != T_EOF && t->kind != T_NEWLINE; t = t->next, n++) {
    if (!depth && (tok_is(t, ",") || tok_is(t, "]"))) break;
    if (tok_is(t, "(")) depth++;
    else if (tok_is(t, ")") && depth) depth--;
    else if (n > 0 && is_op(t)) return true;
  }
  if (n == 1 && p->tok->kind == T_IDENT) {
    Sym *s = parse_lookup(p, parse_str(p, p->tok));
    return s && is_int_const(s->node);
  }
  return n == 2 && tok_is(p->tok, "-") && p->tok->next->kind == T_IDENT;   /* -k */
}

static int64_t dim_sum(Parser *p);

static _Noreturn void overflow(Parser *p, const Token *op) {
  parse_fail(p, op->loc, "integer overflow: the result is beyond 2^%d", DIM_LIMIT_LOG2);
}

static int64_t checked(Parser *p, const Token *op, int64_t v) {
  if (v > DIM_LIMIT || v < -DIM_LIMIT) overflow(p, op);
  return v;
}

static int64_t dim_unary(Parser *p) {
  Token *t = p->tok;
  if (++p->depth > MAX_DEPTH)
    parse_fail(p, t->loc, "expression nested too deeply (more than %d levels)", MAX_DEPTH);
  int64_t v;
  if (parse_accept(p, "-")) {
    v = -dim_unary(p);
  } else if (parse_accept(p, "(")) {
    v = dim_sum(p);
    parse_skip(p, ")");
  } else if (t->kind == T_INT) {
    if (t->fval > (double)DIM_LIMIT) overflow(p, t);
    v = (int64_t)t->fval;
    p->tok = t->next;
  } else if (t->kind == T_FLOAT) {
    parse_fail(p, t->loc, "arithmetic in brackets takes integers, but %.*s is not one", t->len, t->text);
  } else if (t->kind == T_IDENT) {
    char *name = parse_str(p, t);
    Sym *s = parse_lookup(p, name);
    bool symbolic = false;
    for (int i = 1; i <= p->g->nsym; i++) symbolic |= !strcmp(p->g->sym[i], name);
    if (!s && symbolic)
      parse_fail(p, t->loc, "'%s' is a symbolic dimension, which takes no part in arithmetic (a shape holds "
                 "names or integers); only integers and integer constants can", name);
    if (!s) parse_unknown(p, name, t->loc);
    if (!is_int_const(s->node))
      parse_fail(p, t->loc, "'%s' is %s, not an integer constant: arithmetic in brackets takes integers and "
                 "scalar i32 constants", name, s->node->op == OP_CONST ? dtype_names[s->node->dtype] : "a tensor");
    v = (int64_t)s->node->a.values[0];
    p->tok = t->next;
  } else {
    parse_expected(p, "an integer, an integer constant or '('");
  }
  p->depth--;
  return v;
}

/* term = unary (("*" | "//") unary)* */
static int64_t dim_term(Parser *p) {
  int64_t v = dim_unary(p);
  for (;;) {
    Token *op = p->tok;
    if (parse_accept(p, "*")) {
      int64_t r = dim_unary(p), out;
      if (__builtin_mul_overflow(v, r, &out)) overflow(p, op);
      v = checked(p, op, out);
    } else if (tok_is(op, "/") || tok_is(op, "//")) {
      if (tok_is(op, "/"))
        parse_fail(p, op->loc, "use // for division in brackets: / makes a fraction, and a dimension is whole");
      p->tok = op->next;
      Token *rhs = p->tok;
      int64_t r = dim_unary(p);
      if (r == 0) parse_fail(p, rhs->loc, "division by zero");
      int64_t q = v / r;
      if ((v % r != 0) && ((v < 0) != (r < 0))) q--;   /* floor, as Python's // */
      v = q;
    } else {
      return v;
    }
  }
}

/* dim = term (("+" | "-") term)* */
static int64_t dim_sum(Parser *p) {
  int64_t v = dim_term(p);
  for (;;) {
    Token *op = p->tok;
    if (parse_accept(p, "+")) v = checked(p, op, v + dim_term(p));
    else if (parse_accept(p, "-")) v = checked(p, op, v - dim_term(p));
    else return v;
  }
}

bool parse_dim_expr(Parser *p, double *v, Loc *loc) {
  if (!is_dim_expr(p)) return false;
  Token *start = p->tok, *last = start;
  int64_t x = dim_sum(p);
  for (Token *t = start; t != p->tok; t = t->next) last = t;
  *loc = start->loc;
  loc->len = (int)(last->loc.off + (size_t)last->len - start->loc.off);
  *v = (double)x;
  return true;
}
