/*
 * parse.c - tokens -> checked IR graph (the front end's entry point).
 *
 * A recursive-descent parser that builds graph nodes directly: every
 * expression becomes nodes through graph_node(), whose shape rules reject bad
 * operands at the operator's token.  The first error stops the parse (errors
 * cascade otherwise); warnings are collected and parsing goes on.
 *
 * Statements, one per line:
 *   input  NAME : type
 *   param  NAME : type (= init)?
 *   const  NAME (: type)? = literal
 *   output NAME (= expr)?          metric NAME (= expr)?
 *   state  NAME : type (= init)?   update NAME = expr
 *   train  NAME with optimizer(kwargs), schedule ..., constraint ...
 *   def NAME(args) { ... }
 *   NAME = expr
 * Function calls, layer sugar, initializers and optimizers are parsed by
 * call.c, the train, schedule and constraint statements by steps.c, and
 * functions by func.c, which share this file's Parser state through
 * compiler.h.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

_Noreturn void parse_fail(Parser *p, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(p->arena, p->diags, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
  longjmp(p->fail, 1);
}

/* Why refused: every node stays in memory until the compilation ends, and
 * later stages add the backward pass and the updates to it (compiler.h). */
static void node_budget(Parser *p, Loc loc) {
  if (p->g->nnodes >= MAX_PARSE_NODES)
    parse_fail(p, loc, "the model has more than %d operations; the limit bounds the "
               "compiler's memory", MAX_PARSE_NODES);
}

/* A node constructor that unwinds when the shape rule refused. */
Node *parse_mk(Parser *p, OpKind op, Node **src, int nsrc, const Attrs *a, Loc loc) {
  node_budget(p, loc);
  Node *n = graph_node(p->g, op, src, nsrc, a, loc);
  if (!n) longjmp(p->fail, 1);
  if (p->padded) tensor_follow_padding(p, n);
  return n;
}

Node *parse_mk1(Parser *p, OpKind op, Node *x, const Attrs *a, Loc loc) {
  return parse_mk(p, op, &x, 1, a, loc);
}

Node *parse_mk2(Parser *p, OpKind op, Node *x, Node *y, Loc loc) {
  Node *s[2] = {x, y};
  return parse_mk(p, op, s, 2, NULL, loc);
}

char *parse_str(Parser *p, const Token *t) {
  return arena_strndup(p->arena, t->text, (size_t)t->len);
}

static const char *describe(const Token *t, char *buf, size_t n) {
  if (t->kind == T_EOF) return "end of file";
  if (t->kind == T_NEWLINE) return "end of line";
  snprintf(buf, n, "'%.*s'", t->len > 40 ? 40 : t->len, t->text);
  return buf;
}

_Noreturn void parse_expected(Parser *p, const char *what) {
  char b[64];
  parse_fail(p, p->tok->loc, "expected %s, found %s", what,
          describe(p->tok, b, sizeof b));
}

bool parse_at(Parser *p, const char *s) { return tok_is(p->tok, s); }

bool parse_accept(Parser *p, const char *s) {
  if (!parse_at(p, s)) return false;
  p->tok = p->tok->next;
  return true;
}

void parse_skip(Parser *p, const char *s) {
  if (!parse_accept(p, s)) {
    char w[32];
    snprintf(w, sizeof w, "'%s'", s);
    parse_expected(p, w);
  }
}

Token *parse_ident(Parser *p, const char *what) {
  if (p->tok->kind != T_IDENT) parse_expected(p, what);
  Token *t = p->tok;
  p->tok = t->next;
  return t;
}

static void end_of_statement(Parser *p) {
  if (p->tok->kind == T_EOF) return;
  if (p->tok->kind != T_NEWLINE) parse_expected(p, "end of line");
  p->tok = p->tok->next;
}

/* ------------------------------------------------------------ names */

/* A symbol is in scope in the body (or top level) that made it, and a
 * top-level one also in the bodies of functions defined after it. */
static bool in_scope(const Parser *p, const Sym *s) {
  return s->scope == p->scope_id || (s->scope == 0 && s->seq <= p->visible_seq);
}

/* The hidden symbols under a name are at most one per enclosing call and
 * one top-level name, so this walk is short. */
static Sym *lookup_n(Parser *p, const char *name, size_t len) {
  Sym *s = names_get(p->names, name, len);
  while (s && !in_scope(p, s)) s = s->shadow;
  return s;
}

Sym *parse_lookup(Parser *p, const char *name) { return lookup_n(p, name, strlen(name)); }

static const char *const keywords[] = {"input", "param", "const", "output",
                                       "metric", "train", "with", "def", "return"};

static bool is_keyword(const char *name) {
  for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
    if (strcmp(name, keywords[i]) == 0) return true;
  return false;
}

void parse_define(Parser *p, const char *name, Node *n, Loc loc) {
  if (is_keyword(name)) parse_fail(p, loc, "'%s' is a keyword and cannot be a name", name);
  func_check_name(p, name, loc);
  /* A function body's names may shadow the top level's, not each other. */
  Sym *old = names_get(p->names, name, strlen(name));
  if (old && old->scope == p->scope_id)
    parse_fail(p, loc, "redefinition of '%s' (first defined at line %d)", name,
               old->loc.line);
  for (int i = 1; i <= p->g->nsym; i++)
    if (strcmp(p->g->sym[i], name) == 0)
      parse_fail(p, loc, "'%s' is already used as a symbolic dimension", name);
  Sym *s = arena_alloc(p->arena, sizeof *s);
  *s = (Sym){name, n, loc, p->syms, old, p->scope_id, p->scope_id ? 0 : ++p->nsyms};
  p->syms = s;
  names_put(p->names, name, strlen(name), s);
  /* A body's local names are not node names: two calls would give two
   * nodes one name, and a dump must write distinct names. */
  if (!n->name && !p->instance) n->name = name;
}

/* A parameter or a state (batch_norm's moving statistics): at top level
 * a new leaf; inside a function's instance, the one the instance's first
 * call made, so every call shares it. */
Node *parse_shared_leaf(Parser *p, OpKind op, const char *name, DType t, const Shape *s, Loc loc) {
  const char *what = op == OP_PARAM ? "parameter" : "state";
  if (shape_static_count(s) < 0)
    parse_fail(p, loc, "%s '%s' would have more than 2^40 elements", what, name);
  if (!p->instance) {
    Node *n = graph_leaf(p->g, op, op == OP_PARAM ? NULL : name, t, s, loc);
    parse_define(p, name, n, loc);
    return n;
  }
  const char *full = arena_printf(p->arena, "%s.%s", p->instance, name);
  Sym *made = names_get(p->instance_names, full, strlen(full));
  Node *n = made ? made->node : NULL;
  if (n && (n->op != op || n->dtype != t || !shape_eq(&n->shape, s))) {
    char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
    parse_fail(p, loc, "%s '%s' is %s%s here but %s%s as the instance's first call "
               "made it (line %d); calls that share parameters must give them one shape",
               what, full, dtype_names[t], shape_str(p->g, s, b1, sizeof b1), dtype_names[n->dtype],
               shape_str(p->g, &n->shape, b2, sizeof b2), n->loc.line);
  }
  if (!n) {
    n = graph_leaf(p->g, op, full, t, s, loc);
    Sym *q = arena_alloc(p->arena, sizeof *q);
    *q = (Sym){.name = full, .node = n, .loc = loc, .next = p->instance_params};
    p->instance_params = q;
    names_put(p->instance_names, full, strlen(full), q);
  }
  parse_define(p, name, n, loc);
  return n;
}

Node *parse_param(Parser *p, const char *name, DType t, const Shape *s, Loc loc) {
  return parse_shared_leaf(p, OP_PARAM, name, t, s, loc);
}

static const char *nearest_sym(Parser *p, const char *name) {
  const char *best = NULL;
  int bd = 1 << 30;
  for (Sym *s = p->syms; s; s = s->next) {
    int d = edit_distance(name, s->name);
    if (d < bd) bd = d, best = s->name;
  }
  size_t len = strlen(name);
  return bd <= (len < 4 ? 1 : 2) ? best : NULL;
}

/* The token that names `name` where the statement starting at t defines
 * it (NAME = ..., a, NAME = ..., input/param/const/state NAME, output or
 * metric NAME = ...), else NULL. */
static const Token *defining(const Token *t, const char *name) {
  size_t len = strlen(name);
  const Token *n = t;
  bool decl = tok_is(t, "input") || tok_is(t, "param") || tok_is(t, "const") || tok_is(t, "state");
  if (decl || tok_is(t, "output") || tok_is(t, "metric")) {
    n = t->next;
    if (n->kind != T_IDENT || (!decl && !tok_is(n->next, "="))) return NULL;
    return (size_t)n->len == len && !memcmp(n->text, name, len) ? n : NULL;
  }
  const Token *hit = NULL;
  for (; n->kind == T_IDENT; n = n->next->next) {
    if ((size_t)n->len == len && !memcmp(n->text, name, len)) hit = n;
    if (tok_is(n->next, "=")) return hit;
    if (!tok_is(n->next, ",")) return NULL;
  }
  return NULL;
}

/* The first statement after token t that defines name, up to the end of
 * the body t is in (stop_at_brace) or of the file, skipping the bodies of
 * functions; NULL if none.  Only an error is slow enough to call this. */
static const Token *defined_after(const Token *t, const char *name, bool stop_at_brace) {
  bool start = false;
  for (; t->kind != T_EOF; t = t->next) {
    if (t->kind == T_NEWLINE || tok_is(t, "{")) {
      start = true;
      continue;
    }
    if (tok_is(t, "}")) {
      if (stop_at_brace) return NULL;
      start = true;
      continue;
    }
    if (!start) continue;
    start = false;
    if (tok_is(t, "def")) {
      while (t->next->kind != T_EOF && !tok_is(t->next, "}")) t = t->next;
      continue;
    }
    const Token *d = defining(t, name);
    if (d) return d;
  }
  return NULL;
}

/* Why refused: statements run in file order, so the model is a DAG by
 * construction; a use before the definition (and so any cycle) is the
 * mistake, and the message says where the definition is. */
_Noreturn void parse_unknown(Parser *p, const char *name, Loc loc) {
  const char *order = "the model is evaluated in file order (a DAG), so a name must be "
                      "defined before it is used";
  if (p->stmt && defining(p->stmt, name))
    parse_fail(p, loc, "unknown identifier '%s': it is used in its own definition; %s", name,
               order);
  const Token *later = defined_after(p->tok, name, p->nactive > 0);
  if (later)
    parse_fail(p, loc, "unknown identifier '%s': it is defined later, at line %d; %s", name,
               later->loc.line, order);
  if (p->nactive > 0) {
    /* a top-level name made after the def: the body cannot see it */
    const Token *end = p->tok;
    while (end->kind != T_EOF && !tok_is(end, "}")) end = end->next;
    later = defined_after(end, name, false);
    if (later)
      parse_fail(p, loc, "unknown identifier '%s': it is defined at line %d, after the function "
                 "'%s'; a function's body sees the top-level names defined before its def", name,
                 later->loc.line, def_name(p->active[p->nactive - 1]));
  }
  const char *near = nearest_sym(p, name);
  if (near)
    parse_fail(p, loc, "unknown identifier '%s'; did you mean '%s'?", name, near);
  parse_fail(p, loc, "unknown identifier '%s'", name);
}

/* ------------------------------------------------------------ literals */

static Node *const_node(Parser *p, DType t, const Shape *s, double *values,
                        bool weak, Loc loc) {
  Node *n = graph_leaf(p->g, OP_CONST, NULL, t, s, loc);
  n->a.values = values;
  if (weak) n->flags |= N_WEAK;
  return n;
}

Node *parse_scalar(Parser *p, double v, bool is_int, Loc loc) {
  double *d = arena_alloc(p->arena, sizeof *d);
  *d = v;
  Shape s = {0};
  Node *n = const_node(p, is_int ? DT_I32 : DT_F32, &s, d, true, loc);
  if (!is_int) n->flags |= N_FLOAT_LIT;
  return n;
}

bool parse_number(Parser *p, double *v, bool *is_int, Loc *loc) {
  Token *t = p->tok;
  bool neg = false;
  if (tok_is(t, "-") && (t->next->kind == T_INT || t->next->kind == T_FLOAT)) {
    neg = true;
    t = t->next;
  }
  if (t->kind != T_INT && t->kind != T_FLOAT) return false;
  *loc = p->tok->loc;
  loc->len = (int)(t->loc.off + (size_t)t->len - p->tok->loc.off);
  *v = neg ? -t->fval : t->fval;
  *is_int = t->kind == T_INT;
  p->tok = t->next;
  return true;
}

/* list = "[" (list | item) ("," (list | item))* "]", rectangular;
 * item = NUMBER | NAME | dimexpr.c's integer arithmetic. */
static void parse_list(Parser *p, Val *v, int level, Item **buf, int64_t *n,
                       int64_t *cap) {
  Token *open = p->tok;
  parse_skip(p, "[");
  if (level >= MAX_RANK) parse_fail(p, open->loc, "list nested deeper than rank %d", MAX_RANK);
  int64_t count = 0;
  if (!parse_at(p, "]")) {
    do {
      if (parse_at(p, "[")) {
        parse_list(p, v, level + 1, buf, n, cap);
      } else {
        if (level + 1 < v->lshape.rank)
          parse_fail(p, p->tok->loc, "ragged list: expected a nested list here");
        if (v->lshape.rank == 0) v->lshape.rank = level + 1;
        if (level + 1 != v->lshape.rank)
          parse_fail(p, p->tok->loc, "ragged list: mixed nesting depths");
        Item it = {0};
        if (parse_dim_expr(p, &it.v, &it.loc)) {   /* [-1, 7*7*64] */
          it.is_int = true;
        } else if (!parse_number(p, &it.v, &it.is_int, &it.loc)) {
          if (p->tok->kind != T_IDENT) parse_expected(p, "a number");
          it.loc = p->tok->loc;
          it.name = parse_str(p, p->tok);
          p->tok = p->tok->next;
        }
        if (*n == MAX_LITERAL)
          parse_fail(p, it.loc, "list literal has more than %d elements", MAX_LITERAL);
        if (*n == *cap) {
          int64_t nc = *cap ? *cap * 2 : 16;
          Item *g = arena_alloc(p->arena, sizeof(Item) * (size_t)nc);
          if (*n) memcpy(g, *buf, sizeof(Item) * (size_t)*n);
          *buf = g, *cap = nc;
        }
        (*buf)[(*n)++] = it;
      }
      count++;
    } while (parse_accept(p, ","));
  }
  if (v->lshape.rank == 0) v->lshape.rank = level + 1;   /* [] or [[]] */
  Dim *d = &v->lshape.d[level];
  if (d->sym == 0 && d->n == 0 && count != 0 && level < v->lshape.rank) {
    /* first row at this depth fixes the length (sym marks "seen") */
  }
  if (d->sym == 1 && d->n != count)
    parse_fail(p, open->loc, "ragged list: %lld elements here, %lld in the first "
            "row at this depth", (long long)count, (long long)d->n);
  *d = (Dim){count, 1};
  parse_skip(p, "]");
}

void parse_list_value(Parser *p, Val *v) {
  Item *buf = NULL;
  int64_t n = 0, cap = 0;
  v->kind = V_LIST;
  v->loc = p->tok->loc;
  parse_list(p, v, 0, &buf, &n, &cap);
  for (int i = 0; i < v->lshape.rank; i++) v->lshape.d[i].sym = 0;
  v->items = buf;
}

Node *parse_list_tensor(Parser *p, Val *v) {
  int64_t n = shape_static_count(&v->lshape);
  double *d = arena_alloc(p->arena, sizeof(double) * (size_t)(n ? n : 1));
  bool all_int = true;
  for (int64_t i = 0; i < n; i++) {
    if (v->items[i].name)
      parse_unknown(p, v->items[i].name, v->items[i].loc);
    d[i] = v->items[i].v;
    all_int &= v->items[i].is_int;
  }
  Node *t = const_node(p, all_int ? DT_I32 : DT_F32, &v->lshape, d, true, v->loc);
  if (!all_int) t->flags |= N_FLOAT_LIT;
  return t;
}

/* ------------------------------------------------------------ expressions */



/* primary = NUMBER | IDENT | call | "(" expr ")" | list */
static Node *primary(Parser *p) {
  Token *t = p->tok;
  if (t->kind == T_INT || t->kind == T_FLOAT) {
    p->tok = t->next;
    return parse_scalar(p, t->fval, t->kind == T_INT, t->loc);
  }
  if (parse_accept(p, "(")) {
    Node *n = parse_expr(p);
    parse_skip(p, ")");
    return n;
  }
  if (parse_at(p, "[")) {
    Val v = {0};
    parse_list_value(p, &v);
    return parse_list_tensor(p, &v);
  }
  if (t->kind == T_IDENT) {
    if (tok_is(t->next, "(")) {
      if (tok_is(t, "scan")) {
        Node *r[MAX_RESULTS];
        if (func_scan(p, r) != 1)
          parse_fail(p, t->loc, "this scan gives several results (the stacked outputs, then "
                     "the carries' last values); assign them with a tuple: a, b = scan(...)");
        return r[0];
      }
      const Def *f = parse_find_def(p, parse_str(p, t));
      if (!f) return parse_call(p);
      Node *r[MAX_RESULTS];
      if (func_call(p, f, r) != 1)
        parse_fail(p, t->loc, "'%s' returns %d results; assign them with a tuple: "
                   "a, b = %s(...)", def_name(f), def_nresults(f), def_name(f));
      return r[0];
    }
    Sym *s = lookup_n(p, t->text, (size_t)t->len);
    if (!s) parse_unknown(p, parse_str(p, t), t->loc);
    p->tok = t->next;
    return s->node;
  }
  parse_expected(p, "an expression");
}

static Node *postfix(Parser *p) {
  Node *n = primary(p);
  while (parse_at(p, "[")) n = parse_index(p, n);
  return n;
}

/* unary = "-" unary | postfix ("**" unary)? */
static Node *unary(Parser *p) {
  if (++p->depth > MAX_DEPTH)
    parse_fail(p, p->tok->loc, "expression nested too deeply (more than %d levels)",
            MAX_DEPTH);
  Node *n;
  Token *t = p->tok;
  Token *num = t->next;
  if (tok_is(t, "-") && (num->kind == T_INT || num->kind == T_FLOAT) && !tok_is(num->next, "**") &&
      !tok_is(num->next, "[")) {
    /* -0.5 is one literal (it adopts its partner's dtype); -2**2 is -(2**2) */
    double v = 0;
    bool is_int = false;
    Loc loc = t->loc;
    parse_number(p, &v, &is_int, &loc);
    n = parse_scalar(p, v, is_int, loc);
  } else if (parse_accept(p, "-")) {
    n = parse_mk1(p, OP_NEG, unary(p), NULL, t->loc);
  } else {
    n = postfix(p);
    Token *op = p->tok;
    if (parse_accept(p, "**")) n = parse_mk2(p, OP_POW, n, unary(p), op->loc);
  }
  p->depth--;
  return n;
}

/* term = unary (("*" | "/" | "//" | "%" | "@") unary)*   (Python's precedence) */
static Node *term(Parser *p) {
  Node *n = unary(p);
  for (;;) {
    Token *op = p->tok;
    if (parse_accept(p, "*")) n = parse_mk2(p, OP_MUL, n, unary(p), op->loc);
    else if (parse_accept(p, "/")) n = parse_mk2(p, OP_DIV, n, unary(p), op->loc);
    else if (parse_accept(p, "//")) n = parse_mk2(p, OP_FLOORDIV, n, unary(p), op->loc);
    else if (parse_accept(p, "%")) n = parse_mk2(p, OP_FLOORMOD, n, unary(p), op->loc);
    else if (parse_accept(p, "@")) n = parse_mk2(p, OP_MATMUL, n, unary(p), op->loc);
    else return n;
  }
}

/* additive = term (("+" | "-") term)* */
static Node *additive(Parser *p) {
  Node *n = term(p);
  for (;;) {
    Token *op = p->tok;
    if (parse_accept(p, "+")) n = parse_mk2(p, OP_ADD, n, term(p), op->loc);
    else if (parse_accept(p, "-")) n = parse_mk2(p, OP_SUB, n, term(p), op->loc);
    else return n;
  }
}

/* expr = additive (("==" | "!=" | "<" | "<=" | ">" | ">=") additive)? */
Node *parse_expr(Parser *p) {
  static const struct { const char *s; OpKind op; } cmp[] = {
      {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
      {"<", OP_LT}, {">", OP_GT},
  };
  Node *n = additive(p);
  for (size_t i = 0; i < sizeof cmp / sizeof *cmp; i++) {
    Token *op = p->tok;
    if (parse_accept(p, cmp[i].s)) {
      n = parse_mk2(p, cmp[i].op, n, additive(p), op->loc);
      break;
    }
  }
  return n;
}

/* ------------------------------------------------------------ declarations */

/* type = DTYPE ("[" (dim ("," dim)*)? "]")?   dim = INT | IDENT | dimexpr.c's dim */
static void parse_type(Parser *p, DType *t, Shape *s) {
  Token *tt = parse_ident(p, "a dtype (f32, f64, i32, bool)");
  bool ok;
  *t = parse_dtype(parse_str(p, tt), &ok);
  if (!ok) parse_fail(p, tt->loc, "unknown dtype '%.*s'; use f32, f64, i32 or bool",
                   tt->len, tt->text);
  memset(s, 0, sizeof *s);
  if (!parse_accept(p, "[")) return;
  if (!parse_at(p, "]")) {
    do {
      if (s->rank == MAX_RANK)
        parse_fail(p, p->tok->loc, "rank exceeds the limit of %d", MAX_RANK);
      Token *d = p->tok;
      double num;
      bool is_int;
      Loc nl;
      bool arith = parse_dim_expr(p, &num, &nl);   /* f32[batch, 28*28] */
      if (arith || parse_number(p, &num, &is_int, &nl)) {
        if (arith) is_int = true;
        if (!is_int || num < 1)
          parse_fail(p, nl, "dimension %g must be a positive integer", num);
        if (num > (double)MAX_ELEMENTS)
          parse_fail(p, nl, "dimension %.0f exceeds the limit of 2^40 elements", num);
        s->d[s->rank++] = (Dim){(int64_t)num, 0};
        continue;
      } else if (d->kind == T_IDENT) {
        char *name = parse_str(p, d);
        if (parse_lookup(p, name))
          parse_fail(p, d->loc, "'%s' is a tensor, not a dimension", name);
        int k = graph_sym(p->g, name);
        if (!k) parse_fail(p, d->loc, "too many symbolic dimensions (at most %d)", MAX_SYMS);
        s->d[s->rank++] = (Dim){1, k};
      } else {
        parse_expected(p, "a dimension (an integer or a name such as batch)");
      }
      p->tok = d->next;
    } while (parse_accept(p, ","));
  }
  parse_skip(p, "]");
  if (shape_static_count(s) < 0)
    parse_fail(p, tt->loc, "tensor has more than 2^40 elements");
}

/* state = keep * state + add after each step (batch_norm's moving
 * averages).  Inside a function several calls may update one state: each
 * call's update follows the one before, in call order, as Keras'
 * layer.__call__ does; optimizer.c chains those of each train step. */
void parse_update_ema(Parser *p, Node *state, double keep, Node *add, Loc loc) {
  Node *value = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, state, parse_scalar(p, keep, false, loc), loc), add, loc);
  parse_update(p, state, value, loc);
}

/* Is value state * k + add, k a number?  (What parse_update_ema builds,
 * and what an nn dump of it reads back as.) */
static bool ema_form(const Node *value, const Node *state, double *keep, Node **add) {
  if (value->op != OP_ADD || value->src[0]->op != OP_MUL) return false;
  const Node *m = value->src[0];
  if (m->src[0] != state || m->src[1]->op != OP_CONST || shape_static_count(&m->src[1]->shape) != 1) return false;
  *keep = m->src[1]->a.values[0];
  *add = value->src[1];
  return true;
}

void parse_update(Parser *p, Node *state, Node *value, Loc loc) {
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  if (state->op != OP_STATE)
    parse_fail(p, loc, "update needs a state declared with 'state', not a %s",
               op_info[state->op].name);
  if (value->flags & N_WEAK) value->dtype = state->dtype;
  if (value->dtype != state->dtype || !shape_eq(&value->shape, &state->shape))
    parse_fail(p, loc, "update of '%s' (%s%s) with a value of type %s%s", state->name,
               dtype_names[state->dtype], shape_str(p->g, &state->shape, b1, sizeof b1),
               dtype_names[value->dtype], shape_str(p->g, &value->shape, b2, sizeof b2));
  double keep = 0;
  Node *add = NULL;
  bool ema = ema_form(value, state, &keep, &add);
  for (int i = 0; i < p->g->nupdates; i++)
    if (p->g->updates[i].state == state && (!ema || !p->g->updates[i].add))
      parse_fail(p, loc, "'%s' already has an update (a state may have several only as moving averages, "
                 "state * k + x, each following the one before)", state->name);
  graph_add_update(p->g, state, value);
  if (ema) p->g->updates[p->g->nupdates - 1].add = add, p->g->updates[p->g->nupdates - 1].keep = keep;
}

/* update NAME "=" expr */
static void stmt_update(Parser *p) {
  Token *name = parse_ident(p, "the name of a state");
  char *nm = parse_str(p, name);
  Sym *s = parse_lookup(p, nm);
  if (!s) parse_unknown(p, nm, name->loc);
  parse_skip(p, "=");
  Node *v = parse_expr(p);
  parse_update(p, s->node, v, name->loc);
}

/* input NAME ":" type | param NAME ":" type ("=" init)?
 * | state NAME ":" type ("=" init)?   (non-trainable, see update) */
static void stmt_input(Parser *p, bool is_param, bool is_state) {
  Token *name = parse_ident(p, "a name");
  parse_skip(p, ":");
  DType t;
  Shape s;
  parse_type(p, &t, &s);
  if (is_state) {
    for (int i = 0; i < s.rank; i++)
      if (s.d[i].sym)
        parse_fail(p, name->loc, "state shapes must be static, but '%s' is symbolic",
                   p->g->sym[s.d[i].sym]);
    Node *n = graph_leaf(p->g, OP_STATE, NULL, t, &s, name->loc);
    n->name = parse_str(p, name);
    parse_define(p, n->name, n, name->loc);
    n->a.init.kind = INIT_ZEROS;
    if (parse_accept(p, "=")) parse_init(p, n);
    return;
  }
  if (is_param) {
    for (int i = 0; i < s.rank; i++)
      if (s.d[i].sym)
        parse_fail(p, name->loc, "parameter shapes must be static, but '%s' is "
                "symbolic", p->g->sym[s.d[i].sym]);
    if (!dtype_is_float(t))
      parse_fail(p, name->loc, "parameters must be floating-point, got %s",
              dtype_names[t]);
  }
  Node *n;
  if (is_param) {
    n = parse_param(p, parse_str(p, name), t, &s, name->loc);
  } else {
    n = graph_leaf(p->g, OP_INPUT, NULL, t, &s, name->loc);
    parse_define(p, parse_str(p, name), n, name->loc);
  }
  if (is_param) {
    /* Keras Dense defaults when no initializer is given. */
    n->a.init.kind = s.rank >= 2 ? INIT_GLOROT_UNIFORM : INIT_ZEROS;
    if (parse_accept(p, "=")) parse_init(p, n);
    /* constraint=... and regularizer=..., in either order */
    for (int k = 0; k < 2; k++) {
      if (tok_is(p->tok, "constraint")) {
        Loc at = p->tok->loc;
        p->tok = p->tok->next;
        parse_skip(p, "=");
        double lo, hi;
        parse_constraint(p, &lo, &hi);
        parse_add_constraint(p, n, lo, hi, at);
      }
      if (tok_is(p->tok, "regularizer")) {
        Loc at = p->tok->loc;
        p->tok = p->tok->next;
        parse_skip(p, "=");
        double reg[2];
        parse_regularizer(p, reg);
        call_regularize(p, n, reg, at);
      }
    }
  }
}

static void stmt_const(Parser *p) {
  Token *name = parse_ident(p, "a name");
  DType t = DT_F32;
  Shape s = {0};
  bool typed = parse_accept(p, ":");
  if (typed) parse_type(p, &t, &s);
  parse_skip(p, "=");
  Loc loc = p->tok->loc;
  double num;
  bool is_int;
  Node *n;
  if (parse_number(p, &num, &is_int, &loc)) {
    int64_t count = shape_static_count(&s);
    for (int i = 0; i < s.rank; i++)
      if (s.d[i].sym) parse_fail(p, name->loc, "constants must have static shapes");
    if (count > MAX_LITERAL)
      parse_fail(p, name->loc, "constant has more than %d elements", MAX_LITERAL);
    double *d = arena_alloc(p->arena, sizeof(double) * (size_t)(count ? count : 1));
    for (int64_t i = 0; i < count; i++) d[i] = num;
    if (!typed) t = is_int ? DT_I32 : DT_F32;
    n = const_node(p, t, &s, d, false, loc);
  } else if (parse_at(p, "[")) {
    Val v = {0};
    parse_list_value(p, &v);
    n = parse_list_tensor(p, &v);
    n->flags &= ~(unsigned)N_WEAK;
    if (typed) {
      if (!shape_eq(&n->shape, &s)) {
        char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
        parse_fail(p, loc, "the values have shape %s but the declared shape is %s",
                shape_str(p->g, &n->shape, b1, sizeof b1),
                shape_str(p->g, &s, b2, sizeof b2));
      }
      n->dtype = t;
    }
  } else {
    parse_expected(p, "a number or a list of values");
  }
  if (!dtype_is_float(n->dtype))
    for (int64_t i = 0, c = shape_static_count(&n->shape); i < c; i++)
      if (n->a.values[i] != floor(n->a.values[i]))
        parse_fail(p, loc, "value %g is not an integer but the constant is %s",
                n->a.values[i], dtype_names[n->dtype]);
  parse_define(p, parse_str(p, name), n, name->loc);
}

static void stmt_bind(Parser *p, Token *name, unsigned flag) {
  char *nm = parse_str(p, name);
  Node *n;
  if (flag && !parse_at(p, "=")) {
    Sym *s = parse_lookup(p, nm);         /* output h: mark an existing binding */
    if (!s) parse_unknown(p, nm, name->loc);
    n = s->node;
  } else {
    parse_skip(p, "=");
    p->bind_name = nm;
    n = parse_expr(p);
    p->bind_name = NULL;
    parse_define(p, nm, n, name->loc);
  }
  NameMap *bound = flag == N_OUTPUT ? p->output_names : flag == N_METRIC ? p->metric_names : NULL;
  if (bound && names_get(bound, nm, strlen(nm)))
    parse_fail(p, name->loc, "'%s' is already %s", nm, flag == N_OUTPUT ? "an output" : "a metric");
  if (bound) names_put(bound, nm, strlen(nm), n);
  if (flag == N_METRIC && n->shape.rank != 0) {
    char b[SHAPE_STR_MAX];
    parse_fail(p, name->loc, "metric '%s' must be a scalar, but it has shape %s; reduce it, "
               "e.g. mean(...)", nm, shape_str(p->g, &n->shape, b, sizeof b));
  }
  n->flags |= flag;
  if (flag == N_OUTPUT) graph_add_output(p->g, &p->g->outputs, &p->g->noutputs, nm, n);
  /* a padded result's valid extent goes out beside it (tensor.c) */
  const Padded *pad = flag == N_OUTPUT ? tensor_padded(p, n) : NULL;
  if (pad) {
    char *vn = arena_alloc(p->arena, strlen(nm) + sizeof "#valid");
    strcpy(vn, nm), strcat(vn, "#valid");
    pad->valid->flags |= N_OUTPUT;
    graph_add_output(p->g, &p->g->outputs, &p->g->noutputs, vn, pad->valid);
  }
  if (flag == N_METRIC) graph_add_output(p->g, &p->g->metrics, &p->g->nmetrics, nm, n);
}

void parse_statement(Parser *p) {
  Token *t = p->tok;
  p->stmt = t;
  node_budget(p, t->loc);
  if (t->kind == T_NEWLINE) {
    p->tok = t->next;
    return;
  }
  if (t->kind != T_IDENT) parse_expected(p, "a statement");
  if (tok_is(t->next, ",")) {        /* a, b = f(...) */
    func_assign(p);
    end_of_statement(p);
    return;
  }
  p->tok = t->next;
  if (tok_is(t, "return"))
    parse_fail(p, t->loc, "return outside a function");
  if (parse_at(p, "=") && is_keyword(parse_str(p, t)))
    parse_fail(p, t->loc, "'%.*s' is a keyword and cannot be a name", t->len, t->text);
  if (tok_is(t, "input")) stmt_input(p, false, false);
  else if (tok_is(t, "param")) stmt_input(p, true, false);
  else if (tok_is(t, "state") && p->tok->kind == T_IDENT) stmt_input(p, false, true);
  else if (tok_is(t, "update") && p->tok->kind == T_IDENT) stmt_update(p);
  else if (tok_is(t, "const")) stmt_const(p);
  else if (tok_is(t, "output") || tok_is(t, "metric"))
    stmt_bind(p, parse_ident(p, "a name"), tok_is(t, "output") ? N_OUTPUT : N_METRIC);
  else if (tok_is(t, "train")) parse_train_stmt(p, t);
  else if (tok_is(t, "schedule") && p->tok->kind == T_IDENT) parse_schedule_stmt(p, t);
  else if (tok_is(t, "constraint") && p->tok->kind == T_IDENT) parse_constraint_stmt(p);
  else if (tok_is(t, "def")) func_def(p, t);
  else if (parse_at(p, "=")) {
    stmt_bind(p, t, 0);
  } else {
    char *nm = parse_str(p, t);
    static const char *const stmts[] = {"input", "param", "const", "output",
                                        "metric", "train"};
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
      if (edit_distance(nm, stmts[i]) <= 2 && strlen(nm) > 3)
        parse_fail(p, t->loc, "unknown statement '%s'; did you mean '%s'?", nm, stmts[i]);
    p->tok = t;
    parse_expected(p, "a statement (input, param, const, output, metric, train or "
             "NAME = expression)");
  }
  end_of_statement(p);
}

/* Every literal must be a value of the dtype it ended up with - its own,
 * its declaration's or the one it adopted from the other operand, known
 * only once the whole model is read: an i32 literal past 2^31 wrapped and
 * an f32 one past FLT_MAX became inf, silently. */
static void check_literals(Parser *p) {
  for (int i = 0; i < p->g->nnodes; i++) {
    const Node *n = p->g->nodes[i];
    if (n->op != OP_CONST) continue;
    for (int64_t k = 0, c = shape_static_count(&n->shape); k < c; k++) {
      double v = n->a.values[k];
      if (dtype_holds(n->dtype, v)) continue;
      if (c == 1)
        parse_fail(p, n->loc, "literal %.*s is out of range for %s (%s)", n->loc.len,
                   n->loc.src->text + n->loc.off, dtype_names[n->dtype], dtype_range(n->dtype));
      parse_fail(p, n->loc, "value %g (element %lld) is out of range for %s (%s)", v,
                 (long long)k, dtype_names[n->dtype], dtype_range(n->dtype));
    }
  }
}

static const char *stem(Arena *a, const char *path) {
  const char *s = strrchr(path, '/');
  s = s ? s + 1 : path;
  const char *dot = strrchr(s, '.');
  size_t n = dot && dot != s ? (size_t)(dot - s) : strlen(s);
  char *r = arena_strndup(a, s, n);
  for (char *q = r; *q; q++)
    if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
          (*q >= '0' && *q <= '9') || *q == '_'))
      *q = '_';
  return r;
}

Graph *parse(Arena *a, const Source *src, Diags *d) {
  Parser *p = arena_alloc(a, sizeof *p);
  p->arena = a;
  p->diags = d;
  p->names = names_new(a);
  p->def_names = names_new(a);
  p->instance_names = names_new(a);
  p->output_names = names_new(a);
  p->metric_names = names_new(a);
  p->visible_seq = INT_MAX;
  if (src->len > MAX_SOURCE_BYTES) {
    diag_add(a, d, DIAG_ERROR, (Loc){0},
             "%s: model file is %zu bytes; the limit is %u", src->name, src->len,
             MAX_SOURCE_BYTES);
    return NULL;
  }
  p->g = graph_new(a, d, src);
  p->g->model_name = stem(a, src->name);
  Token *toks = lex(a, src, d);
  if (!toks) return NULL;
  p->tok = toks;
  if (setjmp(p->fail)) return NULL;
  while (p->tok->kind != T_EOF) parse_statement(p);
  parse_finish_steps(p);
  regularize_steps(p);
  warn_swapped_losses(p);
  parse_finish_schedule(p);
  check_literals(p);
  func_finish(p);
  for (int i = 0; i < p->g->nnodes; i++) {
    Node *n = p->g->nodes[i];
    if (n->op == OP_PARAM && !(n->flags & (N_USED | N_OUTPUT | N_METRIC | N_LOSS)))
      diag_add(a, d, DIAG_WARNING, n->loc, "parameter '%s' is never used", n->name);
  }
  return p->g;
}
