/*
 * steps.c - the statements that say how a model trains, as opposed to
 * what it computes: `train LOSS [of PATTERN, ...] with OPT(...) [as NAME]`,
 * `schedule NAME [* TIMES], ...` and `constraint PATTERN, ... = clip(lo,
 * hi) | non_neg` (also `param ... constraint=` through parse.c), and the
 * optimizer a train statement names, with its hyperparameters
 * (parse_optimizer; the formulas are optimizer.c's).  Parsing
 * a statement only records it; the whole file must be read before the
 * steps get their names, parameter lists and state prefixes and the
 * schedule its step numbers (parse_finish_steps, parse_finish_schedule,
 * called by parse() in that order).  Uses parse.c's token helpers; parse.c
 * calls only the entry points declared in compiler.h.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compiler.h"

/* One `of` pattern: adjacent tokens (no space between them) of names and
 * glob characters, e.g. gen*, D.*, dense_?.kernel. */
static const char *train_pattern(Parser *p, Loc *loc) {
  Token *t = p->tok;
  if ((t->kind != T_IDENT && !tok_is(t, "*")) || tok_is(t, "with"))
    parse_expected(p, "a parameter name or pattern (e.g. gen.* or dense_1.kernel)");
  *loc = t->loc;
  const char *start = t->text;
  Token *last = t;
  for (t = t->next; (t->kind == T_IDENT || tok_is(t, "*") || tok_is(t, "?")) &&
                    t->text == last->text + last->len;
       t = t->next)
    last = t;
  p->tok = last->next;
  loc->len = (int)(last->text + last->len - start);
  return arena_strndup(p->arena, start, (size_t)loc->len);
}

static bool c_identifier(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_')) return false;
  return true;
}

/* train LOSS [of PATTERN, ...] with OPT(kwargs) [as NAME]; Keras defaults
 * for every hyperparameter.  Names and prefixes are settled in parse(),
 * once the number of steps is known. */
void parse_train_stmt(Parser *p, Token *kw) {
  Graph *g = p->g;
  if (g->nsteps == MAX_STEPS)
    parse_fail(p, kw->loc, "too many train statements (at most %d)", MAX_STEPS);
  if (parse_at(p, "with") || p->tok->kind != T_IDENT)
    parse_fail(p, p->tok->loc, "train needs the name of a loss: train <loss> [of <params>] "
            "with <optimizer>(...) [as <name>]");
  Token *name = p->tok;
  p->tok = p->tok->next;
  char *nm = parse_str(p, name);
  Sym *s = parse_lookup(p, nm);
  if (!s) parse_unknown(p, nm, name->loc);
  Node *loss = s->node;
  char b[SHAPE_STR_MAX];
  if (loss->shape.rank != 0)
    parse_fail(p, name->loc, "the loss '%s' must be a scalar, but it has shape %s; "
            "reduce it, e.g. mean(...)", nm, shape_str(g, &loss->shape, b, sizeof b));
  if (!dtype_is_float(loss->dtype))
    parse_fail(p, name->loc, "the loss '%s' must be floating-point, got %s", nm,
            dtype_names[loss->dtype]);
  TrainStep st = {.loss = loss, .loc = kw->loc};
  if (parse_accept(p, "of")) {
    enum { MAX_PATTERNS = 64 };
    st.patterns = arena_alloc(p->arena, sizeof(char *) * MAX_PATTERNS);
    st.pattern_locs = arena_alloc(p->arena, sizeof(Loc) * MAX_PATTERNS);
    do {
      if (st.npatterns == MAX_PATTERNS)
        parse_fail(p, p->tok->loc, "too many parameter patterns (at most %d)", MAX_PATTERNS);
      st.patterns[st.npatterns] = train_pattern(p, &st.pattern_locs[st.npatterns]);
      st.npatterns++;
    } while (parse_accept(p, ","));
  }
  if (!parse_accept(p, "with")) parse_expected(p, st.npatterns ? "',' or 'with' and an optimizer"
                                                  : "'of' and parameters, or 'with' and an optimizer");
  Token *ot = parse_ident(p, "an optimizer (sgd, rmsprop, adam, adagrad)");
  st.opt = parse_optimizer(p, ot);
  if (parse_accept(p, "as")) {
    Token *sn = parse_ident(p, "a name for the train step");
    st.name = parse_str(p, sn);
    if (!c_identifier(st.name))
      parse_fail(p, sn->loc, "a train step's name must be a C identifier (letters, digits, _), "
                 "got '%s'", st.name);
    for (int i = 0; i < g->nsteps; i++)
      if (g->steps[i].name && !strcmp(g->steps[i].name, st.name))
        parse_fail(p, sn->loc, "a train step named '%s' already exists", st.name);
  }
  TrainStep *grown = arena_alloc(p->arena, sizeof(TrainStep) * (size_t)(g->nsteps + 1));
  if (g->nsteps) memcpy(grown, g->steps, sizeof(TrainStep) * (size_t)g->nsteps);
  grown[g->nsteps++] = st;
  g->steps = grown;
  loss->flags |= N_LOSS;
}

/* schedule NAME [* TIMES], ...: the order `gradc train` runs several
 * train steps in (WGAN-GP's critic * 5, generator).  The names are
 * resolved in parse_finish_schedule, once unnamed steps have their names. */
void parse_schedule_stmt(Parser *p, Token *kw) {
  if (p->schedule_names)
    parse_fail(p, kw->loc, "the model already has a schedule");
  enum { MAX_ENTRIES = 64 };
  Graph *g = p->g;
  p->schedule_loc = kw->loc;
  p->schedule_names = arena_alloc(p->arena, sizeof(Token *) * MAX_ENTRIES);
  g->schedule = arena_alloc(p->arena, sizeof(ScheduleEntry) * MAX_ENTRIES);
  do {
    if (g->nschedule == MAX_ENTRIES)
      parse_fail(p, p->tok->loc, "a schedule has at most %d entries", MAX_ENTRIES);
    Token *name = parse_ident(p, "the name of a train step");
    int64_t times = 1;
    if (parse_accept(p, "*")) {
      Token *t = p->tok;
      double v;
      bool is_int;
      Loc loc;
      if (!parse_number(p, &v, &is_int, &loc) || !is_int || v < 1 || v > 1000000)
        parse_fail(p, t->loc, "a schedule repeats a step a whole number of times from 1 to "
                   "1000000, got '%.*s'", t->len, t->text);
      times = (int64_t)v;
    }
    p->schedule_names[g->nschedule] = name;
    g->schedule[g->nschedule++] = (ScheduleEntry){.step = -1, .times = (int)times};
  } while (parse_accept(p, ","));
}

void parse_finish_schedule(Parser *p) {
  Graph *g = p->g;
  if (!g->nschedule) return;
  if (!g->nsteps) parse_fail(p, p->schedule_loc, "a schedule needs train statements");
  bool *used = arena_alloc(p->arena, sizeof(bool) * (size_t)g->nsteps);
  for (int i = 0; i < g->nschedule; i++) {
    Token *t = p->schedule_names[i];
    char *nm = parse_str(p, t);
    for (int k = 0; k < g->nsteps; k++)
      if (!strcmp(g->steps[k].name, nm)) g->schedule[i].step = k, used[k] = true;
    if (g->schedule[i].step >= 0) continue;
    char list[512] = "";
    size_t at = 0;
    for (int k = 0; k < g->nsteps && at < sizeof list - 64; k++)
      at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", k ? ", " : "", g->steps[k].name);
    parse_fail(p, t->loc, "the schedule names '%s', which is not a train step (the steps are: %s)",
               nm, list);
  }
  for (int k = 0; k < g->nsteps; k++)
    if (!used[k])
      diag_add(p->arena, p->diags, DIAG_WARNING, g->steps[k].loc,
               "train step '%s' is not in the schedule: gradc train never runs it", g->steps[k].name);
}

/* A constraint: clip(lo, hi) or non_neg (Keras' NonNeg). */
void parse_constraint(Parser *p, double *lo, double *hi) {
  Token *t = parse_ident(p, "a constraint: clip(min, max) or non_neg");
  if (tok_is(t, "non_neg")) {
    *lo = 0, *hi = INFINITY;
    return;
  }
  if (!tok_is(t, "clip"))
    parse_fail(p, t->loc, "unknown constraint '%.*s' (the constraints are clip(min, max) and non_neg)",
               t->len, t->text);
  parse_skip(p, "(");
  double v[2];
  for (int i = 0; i < 2; i++) {
    if (i) parse_skip(p, ",");
    bool is_int;
    Loc loc;
    Token *at = p->tok;
    if (!parse_number(p, &v[i], &is_int, &loc))
      parse_fail(p, at->loc, "clip needs two numbers: clip(min, max)");
  }
  parse_skip(p, ")");
  if (!(v[0] <= v[1]))
    parse_fail(p, t->loc, "clip needs min <= max, got (%g, %g)", v[0], v[1]);
  *lo = v[0], *hi = v[1];
}

void parse_add_constraint(Parser *p, Node *param, double lo, double hi, Loc loc) {
  Graph *g = p->g;
  for (int i = 0; i < g->nconstraints; i++)
    if (g->constraints[i].param == param)
      parse_fail(p, loc, "parameter '%s' already has a constraint (line %d)", param->name,
                 g->constraints[i].loc.line);
  Constraint *grown = arena_alloc(p->arena, sizeof(Constraint) * (size_t)(g->nconstraints + 1));
  if (g->nconstraints) memcpy(grown, g->constraints, sizeof(Constraint) * (size_t)g->nconstraints);
  grown[g->nconstraints++] = (Constraint){param, lo, hi, loc};
  g->constraints = grown;
}

/* constraint PATTERN, ... = clip(lo, hi) | non_neg: for the parameters
 * layers make (`constraint critic.* = clip(-0.01, 0.01)`). */
void parse_constraint_stmt(Parser *p) {
  enum { MAX_PATTERNS = 64 };
  const char *pat[MAX_PATTERNS];
  Loc locs[MAX_PATTERNS];
  int n = 0;
  do {
    if (n == MAX_PATTERNS)
      parse_fail(p, p->tok->loc, "too many parameter patterns (at most %d)", MAX_PATTERNS);
    pat[n] = train_pattern(p, &locs[n]);
    n++;
  } while (parse_accept(p, ","));
  parse_skip(p, "=");
  double lo, hi;
  Loc at = p->tok->loc;
  parse_constraint(p, &lo, &hi);
  Graph *g = p->g;
  for (int k = 0; k < n; k++) {
    bool any = false;
    for (int i = 0; i < g->nnodes; i++) {
      Node *x = g->nodes[i];
      if (x->op != OP_PARAM || fnmatch(pat[k], x->name, 0)) continue;
      any = true;
      parse_add_constraint(p, x, lo, hi, at);
    }
    if (!any)
      parse_fail(p, locs[k], "'%s' matches no parameter declared so far; a constraint comes after "
                 "the layers it constrains", pat[k]);
  }
}

/* The parameters step st's patterns match, each pattern at least one. */
static void match_params(Parser *p, TrainStep *st) {
  Graph *g = p->g;
  int nparams = 0;
  for (int i = 0; i < g->nnodes; i++) nparams += g->nodes[i]->op == OP_PARAM;
  st->params = arena_alloc(p->arena, sizeof(Node *) * (size_t)(nparams ? nparams : 1));
  for (int k = 0; k < st->npatterns; k++) {
    bool any = false;
    for (int i = 0; i < g->nnodes; i++) {
      Node *x = g->nodes[i];
      if (x->op != OP_PARAM || fnmatch(st->patterns[k], x->name, 0)) continue;
      any = true;
      bool seen = false;
      for (int j = 0; j < st->nparams && !seen; j++) seen = st->params[j] == x;
      if (!seen) st->params[st->nparams++] = x;
    }
    if (any) continue;
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < g->nnodes && used < sizeof list - 64; i++)
      if (g->nodes[i]->op == OP_PARAM)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                                 g->nodes[i]->name);
    parse_fail(p, st->pattern_locs[k], "'%s' matches no parameter (the parameters are: %s)",
               st->patterns[k], used ? list : "none");
  }
}

/* Unnamed steps: "train" when it is the only one, else its loss's name;
 * the state of each step is prefixed by its name when there are several;
 * patterns become parameter lists. */
void parse_finish_steps(Parser *p) {
  Graph *g = p->g;
  for (int i = 0; i < g->nsteps; i++) {
    TrainStep *st = &g->steps[i];
    if (st->npatterns) match_params(p, st);
    if (!st->name && g->nsteps == 1) st->name = "train";
    if (!st->name) {
      char *n = arena_strdup(p->arena, st->loss->name ? st->loss->name : "loss");
      for (char *q = n; *q; q++)
        if (!isalnum((unsigned char)*q) && *q != '_') *q = '_';
      for (int k = 0; k < g->nsteps; k++)
        if (k != i && g->steps[k].name && !strcmp(g->steps[k].name, n))
          parse_fail(p, st->loc, "two train steps would be named '%s'; name this one with "
                     "'as <name>'", n);
      st->name = n;
    }
    st->prefix = g->nsteps == 1 ? "" : arena_printf(p->arena, "%s/", st->name);
  }
}

/* The accepted keys of an optimizer, comma-separated: every hyperparameter
 * by its name and Keras' spelling, then the switches. */
static const char *opt_keys(Parser *p, const OptInfo *info) {
  const char *keys = "";
  for (int i = 0; i < info->nhyper; i++) {
    const OptHyper *h = &info->hyper[i];
    keys = arena_printf(p->arena, "%s%s%s%s%s", keys, *keys ? "," : "", h->name,
                        h->alias ? "," : "", h->alias ? h->alias : "");
  }
  for (int i = 0; i < OPT_MAX_SWITCHES && info->switches[i]; i++)
    keys = arena_printf(p->arena, "%s%s%s", keys, *keys ? "," : "", info->switches[i]);
  return keys;
}

static const OptHyper *opt_hyper_named(const OptInfo *info, const char *key) {
  for (int i = 0; i < info->nhyper; i++) {
    const OptHyper *h = &info->hyper[i];
    if (!strcmp(key, h->name) || (h->alias && !strcmp(key, h->alias))) return h;
  }
  return NULL;
}

/* optimizer = NAME ("(" args ")")?  with Keras defaults for every
 * hyperparameter (tf.keras.optimizers, TF 2.x); names, keys, defaults and
 * ranges come from opt_info (optimizer.c). */
Optimizer parse_optimizer(Parser *p, Token *ot) {
  char *on = parse_str(p, ot);
  Optimizer o = {.loc = ot->loc, .eps = 1e-7};
  Loc lr_loc = ot->loc;
  bool found = false;
  for (int k = 0; k < OPT_COUNT; k++)
    if (strcmp(on, opt_info[k].name) == 0) o.kind = (OptKind)k, found = true;
  if (!found) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (int k = 0; k < OPT_COUNT; k++) {
      int d = edit_distance(on, opt_info[k].name);
      if (d < bd) bd = d, best = opt_info[k].name;
    }
    if (bd <= 2)
      parse_fail(p, ot->loc, "unknown optimizer '%s'; did you mean '%s'?", on, best);
    const char *names = "";
    for (int k = 0; k < OPT_COUNT; k++)
      names = arena_printf(p->arena, "%s%s%s", names,
                           k == 0 ? "" : k == OPT_COUNT - 1 ? " or " : ", ", opt_info[k].name);
    parse_fail(p, ot->loc, "unknown optimizer '%s'; use %s", on, names);
  }
  const OptInfo *info = &opt_info[o.kind];
  for (int i = 0; i < info->nhyper; i++)
    opt_set_hyper(&o, &info->hyper[i], info->hyper[i].keras_default);
  const char *keys = opt_keys(p, info);
  Call *c = arena_alloc(p->arena, sizeof *c);
  c->fn = ot;
  /* lr may be a schedule, lr=exponential_decay(...) or positional first;
   * then optimizer/lr starts at the schedule's nominal rate. */
  bool sched_first = false;
  if (parse_accept(p, "(")) {
    if (!parse_at(p, ")")) {
      do {
        Token *t = p->tok;
        bool keyed = t->kind == T_IDENT && tok_is(t->next, "=");
        Token *at = keyed ? t->next->next : t;
        const OptHyper *h = keyed ? opt_hyper_named(info, parse_str(p, t)) : NULL;
        bool lr_place = keyed ? h && h->field == offsetof(Optimizer, lr) : c->nargs == 0;
        ScheduleKind sk = parse_schedule_named(p, at);
        if (sk == SCHED_NONE || !lr_place) {
          call_parse_arg(p, c);
          continue;
        }
        if (o.sched.kind != SCHED_NONE) parse_fail(p, t->loc, "%s: the learning rate is given twice", on);
        sched_first = !keyed;
        p->tok = at;
        o.sched = parse_schedule(p, sk);
        o.lr = opt_schedule_nominal(&o.sched);
        lr_loc = at->loc;
      } while (parse_accept(p, ","));
    }
    parse_skip(p, ")");
  }
  for (int i = 0; i < c->nargs; i++) {
    Val *v = &c->args[i];
    if (o.sched.kind != SCHED_NONE && (!v->key || opt_hyper_named(info, v->key) ==
                                                      opt_hyper_named(info, "lr")))
      parse_fail(p, v->key ? v->keyloc : v->loc, "%s: the learning rate is given twice (a "
                 "schedule and a number)", on);
    if (!v->key) {
      if (i > 0 || sched_first) parse_fail(p, v->loc, "%s: only the learning rate may be positional", on);
      o.lr = call_num(p, c, v, false);
      lr_loc = v->loc;
      continue;
    }
    if (!call_in_list(keys, v->key))
      parse_fail(p, v->keyloc, "%s has no argument '%s'; it takes: %s", on, v->key, keys);
    const char *k = v->key;
    const OptHyper *h = opt_hyper_named(info, k);
    if (!h) {
      bool on_off = call_bool(p, c, v);
      if (!strcmp(k, "nesterov")) o.nesterov = on_off;
      else o.centered = on_off;
      continue;
    }
    opt_set_hyper(&o, h, call_num(p, c, v, false));
    if (h->field == offsetof(Optimizer, lr)) lr_loc = v->loc;
    if (h->range == RANGE_CLIP && !(opt_hyper_value(&o, h) > 0))
      parse_fail(p, v->loc, "%s: %s must be positive, got %g", on, h->name, opt_hyper_value(&o, h));
  }
  if (o.clipnorm > 0 && o.global_clipnorm > 0)
    parse_fail(p, ot->loc, "%s: clipnorm and global_clipnorm exclude each other (as in Keras); "
               "choose one", on);
  for (int i = 0; i < info->nhyper; i++) {
    const OptHyper *h = &info->hyper[i];
    double x = opt_hyper_value(&o, h);
    if (h->range == RANGE_POSITIVE && !(x > 0))
      parse_fail(p, lr_loc, "%s: the learning rate must be positive, got %g", on, x);
    if (h->range == RANGE_UNIT && !(x >= 0 && x < 1))
      parse_fail(p, ot->loc, "%s: momentum, rho and betas must lie in [0, 1)", on);
    if (h->range == RANGE_NONNEGATIVE && !(x >= 0))
      parse_fail(p, ot->loc, "%s: eps must not be negative", on);
    if (h->range == RANGE_OPTIONAL && !(x >= 0))
      parse_fail(p, ot->loc, "%s: %s must not be negative, got %g", on, h->name, x);
  }
  return o;
}
