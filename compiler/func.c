/*
 * func.c - functions of the model language: a named block of statements
 * with parameters of its own, applied several times with shared parameters.
 *
 *   def cell(x, h) {
 *     param W : f32[4, 3]
 *     out = tanh(x @ W + h)
 *     return out, out
 *   }
 *   o1, h1 = cell(x1, h0)               # parameters cell.W
 *   o2, h2 = cell(x2, h1)               # the same cell.W
 *   p1, q1 = cell(x1, h0, name=rnn1)    # another instance: rnn1.W
 *
 * A def is kept as its body's tokens, its arguments and its number of
 * results; it is checked for structure when it is read (a return, last;
 * no statement kind a body cannot hold) and its statements are parsed on
 * each call, on that call's arguments (fn_apply).  So a call's shapes are
 * checked by the ordinary shape rules, the arguments of two calls may have
 * different shapes where the body allows it, and the graph holds the body
 * expanded once per call: the IR has no functions, and every later stage
 * sees ordinary nodes.  An error inside the body is reported at the body's
 * token, followed by a note at each call that led there.
 *
 * Scope: a body reads its arguments, its own names, and the top-level
 * names defined before the def (its scope is a snapshot of the symbol list
 * at the def: later top-level names are not visible).  Its names may
 * shadow top-level ones.  Functions are looked up when a call is parsed,
 * so a body may call any def that precedes the top-level statement being
 * parsed; a call of a function already being applied is recursion, an
 * error.
 *
 * Parameters declared in a body (param, and the kernels of layer sugar)
 * belong to the instance: INSTANCE.NAME, INSTANCE being name= at the call
 * or else the function's name (prefixed by the enclosing instance when one
 * function calls another).  The first call of an instance makes them,
 * later calls get the same nodes (parse_param).  The layer counters start
 * at zero in every body, so an unnamed dense is INSTANCE.dense in every
 * call.  Model state cannot be updated in a body (parse_update says why).
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

struct Def {
  const char *name;
  Loc loc;
  const char **args;
  Loc *arg_locs;
  int nargs, nresults;
  Token *body;           /* the first token after "{" */
  Sym *scope;            /* the top-level names at the def */
  int scope_seq;         /* and how many there were */
  bool called;
  Def *next;
};

const Def *parse_find_def(Parser *p, const char *name) {
  return names_get(p->def_names, name, strlen(name));
}

void func_check_name(Parser *p, const char *name, Loc loc) {
  const Def *f = parse_find_def(p, name);
  if (f)
    parse_fail(p, loc, "'%s' is a function (defined at line %d) and cannot be a tensor's name",
               name, f->loc.line);
}

int def_nargs(const Def *f) { return f->nargs; }
int def_nresults(const Def *f) { return f->nresults; }
const char *def_name(const Def *f) { return f->name; }

/* "cell(x, h)" for messages. */
static const char *signature(Parser *p, const Def *f) {
  const char *s = arena_printf(p->arena, "%s(", f->name);
  for (int i = 0; i < f->nargs; i++)
    s = arena_printf(p->arena, "%s%s%s", s, i ? ", " : "", f->args[i]);
  return arena_printf(p->arena, "%s)", s);
}

/* ------------------------------------------------------------ def */

/* What a body cannot hold, and why. */
static const char *refused(const Token *t) {
  if (tok_is(t, "def"))
    return "a function cannot be defined inside another; define it at top level";
  if (tok_is(t, "input") || tok_is(t, "output") || tok_is(t, "metric") || tok_is(t, "train"))
    return "is not allowed inside a function: write it at top level (a function "
           "takes its inputs as arguments and returns its results)";
  if ((tok_is(t, "state") || tok_is(t, "update")) && t->next->kind == T_IDENT)
    return "is not allowed inside a function: each call would update the state again";
  if ((tok_is(t, "schedule") || tok_is(t, "constraint")) && t->next->kind == T_IDENT)
    return "is not allowed inside a function: write it at top level, after the calls";
  return NULL;
}

/* The statements from body to the closing brace: each allowed, the last
 * one return; sets f->nresults and returns the "}" token. */
static Token *check_body(Parser *p, Def *f, Token *open) {
  Token *ret = NULL;
  Token *t = f->body;
  for (;;) {
    while (t->kind == T_NEWLINE) t = t->next;
    if (t->kind == T_EOF)
      parse_fail(p, open->loc, "unterminated '{': missing '}' before the end of the file");
    if (tok_is(t, "}")) break;
    if (ret) parse_fail(p, ret->loc, "return must be the last statement of '%s'", f->name);
    const char *why = refused(t);
    if (why && tok_is(t, "def")) parse_fail(p, t->loc, "%s", why);
    if (why) parse_fail(p, t->loc, "'%.*s' %s", t->len, t->text, why);
    if (tok_is(t, "return")) {
      ret = t;
      if (t->next->kind == T_NEWLINE || tok_is(t->next, "}") || t->next->kind == T_EOF)
        parse_fail(p, t->loc, "return needs a value: return EXPR (, EXPR)*");
      f->nresults = 1;
    }
    /* to the end of the statement; brackets hide newlines (the lexer) */
    int depth = 0;
    for (; t->kind != T_NEWLINE && t->kind != T_EOF && !tok_is(t, "}"); t = t->next) {
      if (tok_is(t, "{")) parse_fail(p, t->loc, "unexpected '{' inside the body of '%s'", f->name);
      if (tok_is(t, "(") || tok_is(t, "[")) depth++;
      if (tok_is(t, ")") || tok_is(t, "]")) depth--;
      if (ret && depth == 0 && tok_is(t, ",")) f->nresults++;
    }
  }
  if (!ret)
    parse_fail(p, t->loc, "function '%s' has no return statement; end its body with "
               "return EXPR", f->name);
  if (f->nresults > MAX_RESULTS)
    parse_fail(p, ret->loc, "too many results (at most %d)", MAX_RESULTS);
  return t;
}

/* def = "def" IDENT "(" (IDENT ("," IDENT)*)? ")" "{" body "}" */
void func_def(Parser *p, Token *kw) {
  (void)kw;
  if (p->instance)
    parse_fail(p, kw->loc, "a function cannot be defined inside another; define it at top level");
  Token *nt = parse_ident(p, "the function's name");
  Def *f = arena_alloc(p->arena, sizeof *f);
  f->name = parse_str(p, nt);
  f->loc = nt->loc;
  if (tok_is(nt, "def") || tok_is(nt, "return") || tok_is(nt, "input") || tok_is(nt, "param") ||
      tok_is(nt, "const") || tok_is(nt, "output") || tok_is(nt, "metric") || tok_is(nt, "train"))
    parse_fail(p, nt->loc, "'%s' is a keyword and cannot be a name", f->name);
  if (call_is_builtin(f->name) || !strcmp(f->name, "scan"))
    parse_fail(p, nt->loc, "'%s' is a builtin function; choose another name for the def",
               f->name);
  const Def *old = parse_find_def(p, f->name);
  if (old)
    parse_fail(p, nt->loc, "redefinition of function '%s' (first defined at line %d)",
               f->name, old->loc.line);
  Sym *s = parse_lookup(p, f->name);
  if (s)
    parse_fail(p, nt->loc, "'%s' is already a tensor (defined at line %d)", f->name,
               s->loc.line);
  parse_skip(p, "(");
  enum { MAX_FN_ARGS = 64 };
  f->args = arena_alloc(p->arena, sizeof(char *) * MAX_FN_ARGS);
  f->arg_locs = arena_alloc(p->arena, sizeof(Loc) * MAX_FN_ARGS);
  if (!parse_at(p, ")")) {
    do {
      Token *a = parse_ident(p, "an argument name");
      if (f->nargs == MAX_FN_ARGS)
        parse_fail(p, a->loc, "too many arguments (at most %d)", MAX_FN_ARGS);
      const char *an = parse_str(p, a);
      for (int i = 0; i < f->nargs; i++)
        if (!strcmp(f->args[i], an))
          parse_fail(p, a->loc, "'%s' is already an argument of '%s'", an, f->name);
      func_check_name(p, an, a->loc);
      if (!strcmp(an, "name"))
        parse_fail(p, a->loc, "'name' cannot be an argument: a call's name= names the "
                   "instance");
      f->arg_locs[f->nargs] = a->loc;
      f->args[f->nargs++] = an;
    } while (parse_accept(p, ","));
  }
  parse_skip(p, ")");
  Token *open = p->tok;
  parse_skip(p, "{");
  f->body = p->tok;
  f->scope = p->syms;
  f->scope_seq = p->nsyms;
  p->tok = check_body(p, f, open)->next;
  f->next = p->defs;
  p->defs = f;
  names_put(p->def_names, f->name, strlen(f->name), f);
}

/* ------------------------------------------------------------ calls */

int fn_apply(Parser *p, const Def *f, Node **args, int nargs, const char *instance,
             Loc call, Node **results) {
  if (nargs != f->nargs)
    parse_fail(p, call, "%s takes %d argument%s, got %d", signature(p, f), f->nargs,
               f->nargs == 1 ? "" : "s", nargs);
  for (int i = 0; i < p->nactive; i++)
    if (p->active[i] == f) {
      const char *chain = "";
      for (int k = i; k < p->nactive; k++)
        chain = arena_printf(p->arena, "%s%s -> ", chain, p->active[k]->name);
      parse_fail(p, call, "recursive call of '%s' (%s%s); a function cannot call itself",
                 f->name, chain, f->name);
    }
  if (p->nactive == (int)(sizeof p->active / sizeof *p->active))
    parse_fail(p, call, "functions nested too deeply (more than %d calls)", p->nactive);
  if (!instance) instance = f->name;
  /* What the body changes and the caller keeps: the scope, the position,
   * the instance, the layer counters, the error handler. */
  struct {
    Token *tok, *stmt;
    Sym *syms, *scope;
    int scope_id, visible_seq;
    const char *instance, *bind_name;
    int ndense, nconv, nbn, nembedding, nrnn[3];
    jmp_buf fail;
  } saved;
  saved.tok = p->tok, saved.stmt = p->stmt, saved.syms = p->syms, saved.scope = p->scope;
  saved.scope_id = p->scope_id, saved.visible_seq = p->visible_seq;
  saved.instance = p->instance, saved.bind_name = p->bind_name;
  saved.ndense = p->ndense, saved.nconv = p->nconv, saved.nbn = p->nbn;
  saved.nembedding = p->nembedding;
  memcpy(saved.nrnn, p->nrnn, sizeof p->nrnn);
  memcpy(saved.fail, p->fail, sizeof(jmp_buf));
  Sym *made_before = p->instance_params;
  ((Def *)f)->called = true;
  p->active[p->nactive++] = f;
  p->instance = p->instance ? arena_printf(p->arena, "%s.%s", p->instance, instance) : instance;
  p->syms = p->scope = f->scope;
  p->scope_id = ++p->nscopes;
  p->visible_seq = f->scope_seq;
  p->bind_name = NULL;
  p->ndense = p->nconv = p->nbn = p->nembedding = 0;
  memset(p->nrnn, 0, sizeof p->nrnn);
  if (setjmp(p->fail)) {
    memcpy(p->fail, saved.fail, sizeof(jmp_buf));
    diag_add(p->arena, p->diags, DIAG_NOTE, call, "in the call of '%s' at %s:%d:%d",
             f->name, call.src ? call.src->name : "", call.line, call.col);
    longjmp(p->fail, 1);
  }
  for (int i = 0; i < nargs; i++) parse_define(p, f->args[i], args[i], f->arg_locs[i]);
  p->tok = f->body;
  while (!tok_is(p->tok, "return")) parse_statement(p);
  p->tok = p->tok->next;
  int n = 0;
  do results[n++] = parse_expr(p);
  while (n < MAX_RESULTS && parse_accept(p, ","));
  /* check_body counted the results by commas outside brackets; unbalanced
   * brackets can make that count disagree with what parses. */
  if (n != f->nresults || !(p->tok->kind == T_NEWLINE || tok_is(p->tok, "}")))
    parse_expected(p, "the end of the return statement");
  /* The body's names go out of scope: each name's table entry gets back
   * the symbol it hid. */
  for (Sym *q = p->syms; q != f->scope; q = q->next)
    names_put(p->names, q->name, strlen(q->name), q->shadow);
  memcpy(p->fail, saved.fail, sizeof(jmp_buf));
  p->tok = saved.tok, p->stmt = saved.stmt, p->syms = saved.syms, p->scope = saved.scope;
  p->scope_id = saved.scope_id, p->visible_seq = saved.visible_seq;
  p->instance = saved.instance, p->bind_name = saved.bind_name;
  p->ndense = saved.ndense, p->nconv = saved.nconv, p->nbn = saved.nbn;
  p->nembedding = saved.nembedding;
  memcpy(p->nrnn, saved.nrnn, sizeof p->nrnn);
  p->nactive--;
  /* Back at top level: the instance's new parameters become top-level
   * names (cell.W can be read, trained by pattern, and not declared
   * again). */
  if (!p->instance)
    for (Sym *q = p->instance_params; q != made_before; q = q->next)
      parse_define(p, q->name, q->node, call);
  return n;
}

/* call = IDENT "(" (expr ("," expr)*)? ("," "name" "=" IDENT)? ")" */
int func_call(Parser *p, const Def *f, Node **results) {
  Token *fn = p->tok;
  const char *outer = p->bind_name;
  p->bind_name = NULL;
  p->tok = fn->next;
  parse_skip(p, "(");
  Node *args[MAX_OPERANDS];
  int nargs = 0;
  const char *instance = NULL;
  if (!parse_at(p, ")")) {
    do {
      Token *t = p->tok;
      if (t->kind == T_IDENT && tok_is(t->next, "=")) {
        if (!tok_is(t, "name"))
          parse_fail(p, t->loc, "%s has no argument '%.*s'; a function call takes its "
                     "arguments and name=INSTANCE", signature(p, f), t->len, t->text);
        p->tok = t->next->next;
        instance = parse_str(p, parse_ident(p, "an instance name (an identifier)"));
        if (strchr(instance, '.'))
          parse_fail(p, p->tok->loc, "an instance name cannot contain '.'");
        continue;
      }
      if (instance) parse_fail(p, t->loc, "positional argument after name=");
      if (nargs == MAX_OPERANDS)
        parse_fail(p, t->loc, "too many arguments (at most %d)", MAX_OPERANDS);
      args[nargs++] = parse_expr(p);
    } while (parse_accept(p, ","));
  }
  parse_skip(p, ")");
  Token *after = p->tok;
  int n = fn_apply(p, f, args, nargs, instance, fn->loc, results);
  p->tok = after;
  p->bind_name = outer;
  return n;
}

/* scan = "scan" "(" NAME ("," expr)+ ("," key "=" value)* ")"
 *   keys: init = expr | "[" expr ("," expr)* "]", axis = INT,
 *         reverse = true|false, name = INSTANCE
 * The loop (compiler.h: Scan): f applied once per index along axis of the
 * sequences, to their slices at the index and the carried values; f
 * returns the per-step outputs, then the carries' next values.  The
 * results: each output stacked along axis, then each carry's last value.
 * Without init=, the last positional argument is the one carry. */
int func_scan(Parser *p, Node **results) {
  Token *kw = p->tok;
  Loc loc = kw->loc;
  p->tok = kw->next;
  parse_skip(p, "(");
  Token *ft = parse_ident(p, "the function to loop (a def)");
  const Def *f = parse_find_def(p, parse_str(p, ft));
  if (!f) {
    if (call_is_builtin(parse_str(p, ft)))
      parse_fail(p, ft->loc, "scan loops a function defined with def, not the builtin '%.*s'",
                 ft->len, ft->text);
    parse_fail(p, ft->loc, "scan: '%.*s' is not a function defined with def", ft->len, ft->text);
  }
  Node *pos[MAX_OPERANDS], *init[MAX_RESULTS];
  Loc pos_loc[MAX_OPERANDS];
  int npos = 0, ninit = -1, axis = 1;
  bool reverse = false, axis_given = false;
  const char *instance = NULL;
  while (parse_accept(p, ",")) {
    Token *t = p->tok;
    if (t->kind == T_IDENT && tok_is(t->next, "=")) {
      p->tok = t->next->next;
      if (tok_is(t, "init")) {
        ninit = 0;
        bool list = parse_accept(p, "[");
        do {
          if (ninit == MAX_RESULTS) parse_fail(p, p->tok->loc, "scan: at most %d carries", MAX_RESULTS);
          init[ninit++] = parse_expr(p);
        } while (list && parse_accept(p, ","));
        if (list) parse_skip(p, "]");
      } else if (tok_is(t, "axis")) {
        double v;
        bool is_int;
        Loc nl;
        if (!parse_number(p, &v, &is_int, &nl) || !is_int || fabs(v) > MAX_RANK)
          parse_fail(p, p->tok->loc, "scan: axis must be an integer");
        axis = (int)v, axis_given = true;
      } else if (tok_is(t, "reverse")) {
        Token *b = parse_ident(p, "true or false");
        if (!tok_is(b, "true") && !tok_is(b, "false"))
          parse_fail(p, b->loc, "scan: reverse must be true or false");
        reverse = tok_is(b, "true");
      } else if (tok_is(t, "name")) {
        instance = parse_str(p, parse_ident(p, "an instance name (an identifier)"));
      } else {
        parse_fail(p, t->loc, "scan has no argument '%.*s'; it takes the function, the "
                   "sequences, init=, axis=, reverse= and name=", t->len, t->text);
      }
      continue;
    }
    if (npos == MAX_OPERANDS) parse_fail(p, t->loc, "scan: too many sequences");
    pos_loc[npos] = t->loc;
    pos[npos++] = parse_expr(p);
  }
  parse_skip(p, ")");
  Token *after = p->tok;
  if (ninit < 0) {
    if (npos < 2)
      parse_fail(p, loc, "scan needs a sequence and an initial value: scan(%s, xs, init)", f->name);
    init[0] = pos[--npos], ninit = 1;
  }
  if (npos < 1) parse_fail(p, loc, "scan needs at least one sequence to loop over");
  if (npos + ninit != f->nargs)
    parse_fail(p, loc, "scan: %s takes %d argument%s, but scan passes %d (%d slice%s of the "
               "sequences, then %d carr%s)", signature(p, f), f->nargs, f->nargs == 1 ? "" : "s",
               npos + ninit, npos, npos == 1 ? "" : "s", ninit, ninit == 1 ? "y" : "ies");
  if (f->nresults < ninit)
    parse_fail(p, loc, "scan: %s returns %d result%s, fewer than its %d carr%s' next values",
               f->name, f->nresults, f->nresults == 1 ? "" : "s", ninit, ninit == 1 ? "y" : "ies");
  if (p->g->cur_loop) parse_fail(p, loc, "a scan inside the body of a loop is not supported");
  Graph *g = p->g;
  const Shape *s0 = &pos[0]->shape;
  int ax = axis < 0 ? axis + s0->rank : axis;
  if (ax < 0 || ax >= s0->rank) {
    char b[SHAPE_STR_MAX];
    parse_fail(p, pos_loc[0], "scan: a sequence of shape %s has no axis %d%s",
               shape_str(g, s0, b, sizeof b), axis, axis_given ? "" : " (the default, time "
               "after batch: give axis=0 for a time-major sequence)");
  }
  int l = graph_new_scan(g, s0->d[ax], reverse, loc);
  g->cur_loop = l;
  Node *args[MAX_OPERANDS + MAX_RESULTS];
  Attrs sa = {.axis = ax};
  for (int i = 0; i < npos; i++) args[i] = parse_mk1(p, OP_SCAN_SLICE, pos[i], &sa, pos_loc[i]);
  for (int i = 0; i < ninit; i++) {
    Attrs ca = {.slot = i};
    args[npos + i] = parse_mk1(p, OP_CARRY, init[i], &ca, loc);
  }
  Node *r[MAX_RESULTS];
  int nr = fn_apply(p, f, args, npos + ninit, instance, loc, r), ny = nr - ninit;
  Node *ends[MAX_RESULTS];
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  for (int i = 0; i < ninit; i++) {
    Node *c = args[npos + i], *next = r[ny + i];
    if (next->dtype != c->dtype || !shape_eq(&next->shape, &c->shape))
      parse_fail(p, loc, "scan: %s's result %d, the next value of carry %d, is %s%s; the "
                 "carry's initial value is %s%s", f->name, ny + i + 1, i + 1,
                 dtype_names[next->dtype], shape_str(g, &next->shape, b1, sizeof b1),
                 dtype_names[c->dtype], shape_str(g, &c->shape, b2, sizeof b2));
    for (int k = 0; k < ninit; k++)
      if (k != i && next == args[npos + k])
        parse_fail(p, loc, "scan: %s returns carry %d unchanged as the next value of carry "
                   "%d; exchanging carries is not supported", f->name, k + 1, i + 1);
    ends[i] = next;
  }
  for (int j = 0; j < ny; j++) {
    if (ax > r[j]->shape.rank || r[j]->shape.rank + 1 > MAX_RANK)
      parse_fail(p, loc, "scan: %s's output %d (rank %d) cannot be stacked along axis %d",
                 f->name, j + 1, r[j]->shape.rank, ax);
    ends[ninit + j] = r[j];
  }
  Attrs ea = {.slot = ninit};
  Node *e = parse_mk(p, OP_LOOP_END, ends, ninit + ny, &ea, loc);
  scan_results(p, e, ax, results);
  p->tok = after;
  return nr;
}

int scan_results(Parser *p, Node *e, int axis, Node **results) {
  int nc = e->a.slot, ny = e->nsrc - nc;
  p->g->cur_loop = 0;
  for (int j = 0; j < ny; j++) {
    Attrs a = {.slot = nc + j, .axis = axis};
    results[j] = parse_mk1(p, OP_SCAN_STACK, e, &a, e->loc);
  }
  for (int i = 0; i < nc; i++) {
    Attrs a = {.slot = i};
    results[ny + i] = parse_mk1(p, OP_SCAN_LAST, e, &a, e->loc);
  }
  graph_sort(p->g);
  return e->nsrc;
}

/* assign = IDENT ("," IDENT)+ "=" values
 * values = call of a def (the only expression with several results) */
void func_assign(Parser *p) {
  /* as many names as a builtin may give results (unstack over 80 steps) */
  int n = 1;
  for (Token *t = p->tok; tok_is(t->next, ",") && t->next->next->kind == T_IDENT; t = t->next->next) n++;
  if (n > MAX_CALL_RESULTS) parse_fail(p, p->tok->loc, "too many names (at most %d)", MAX_CALL_RESULTS);
  Token **names = arena_alloc(p->arena, sizeof(Token *) * (size_t)n);
  int counted = n;
  n = 0;
  do {
    Token *t = parse_ident(p, "a name");
    GRADC_ASSERT(n < counted);   /* the same NAME "," NAME ... as counted */
    names[n++] = t;
  } while (parse_accept(p, ","));
  parse_skip(p, "=");
  Token *fn = p->tok;
  if (tok_is(fn, "scan") && tok_is(fn->next, "(")) {
    Node *r[MAX_RESULTS];
    int nr = func_scan(p, r);
    if (nr != n)
      parse_fail(p, fn->loc, "scan gives %d result%s (the stacked outputs, then the carries' "
                 "last values), but %d names are assigned", nr, nr == 1 ? "" : "s", n);
    for (int i = 0; i < n; i++) parse_define(p, parse_str(p, names[i]), r[i], names[i]->loc);
    return;
  }
  const Def *f = fn->kind == T_IDENT && tok_is(fn->next, "(") ? parse_find_def(p, parse_str(p, fn))
                                                             : NULL;
  if (!f && fn->kind == T_IDENT && tok_is(fn->next, "(")) {   /* unstack, split, top_k, meshgrid */
    Node **r;
    int nr = parse_call_results(p, &r);
    if (nr != n)
      parse_fail(p, fn->loc, "%s gives %d result%s here, but %d names are assigned", parse_str(p, fn), nr,
                 nr == 1 ? "" : "s", n);
    for (int i = 0; i < n; i++) parse_define(p, parse_str(p, names[i]), r[i], names[i]->loc);
    return;
  }
  if (!f)
    parse_fail(p, fn->loc, "%d names are assigned, but only a call of a function defined "
               "with def gives several results", n);
  if (f->nresults != n)
    parse_fail(p, fn->loc, "'%s' returns %d result%s, but %d names are assigned", f->name,
               f->nresults, f->nresults == 1 ? "" : "s", n);
  Node *r[MAX_RESULTS];
  func_call(p, f, r);
  for (int i = 0; i < n; i++) parse_define(p, parse_str(p, names[i]), r[i], names[i]->loc);
}

void func_finish(Parser *p) {
  for (Def *f = p->defs; f; f = f->next)
    if (!f->called)
      diag_add(p->arena, p->diags, DIAG_WARNING, f->loc, "function '%s' is never called "
               "(its body is checked only by a call)", f->name);
}
