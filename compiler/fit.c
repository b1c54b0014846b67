/*
 * fit.c - what Keras' fit adds to a model file's training (issue 22):
 * weight penalties (kernel_regularizer=, regularizer= on param) folded into
 * each train step's loss after the last statement, the warning for a
 * cross-entropy whose operands look swapped, and the learning-rate
 * schedules an optimizer's lr may be (parsed here, built in the step by
 * optimizer.c).
 *
 * Input: the parser, after (regularize_steps, warn_swapped_losses) or
 * during (parse_regularizer, parse_schedule) the statements.  Output: the
 * graph's regularizers and the steps' penalised losses; an LrSchedule;
 * warnings.  Invariant: nothing here runs after parsing.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

/* ------------------------------------------------ regularizers */

/* regularizer = l1 ("(" NUM ")")? | l2 ("(" NUM ")")?
 *             | l1_l2 ("(" (l1=)? NUM, (l2=)? NUM ")")?
 * Keras' tf.keras.regularizers: L1(0.01), L2(0.01), l1_l2(0.01, 0.01);
 * the penalty is factor * sum(|w|) or factor * sum(w^2) (no 1/2). */
void parse_regularizer(Parser *p, double reg[2]) {
  Token *t = parse_ident(p, "a regularizer: l1(x), l2(x) or l1_l2(l1=x, l2=y)");
  bool l1 = tok_is(t, "l1"), l2 = tok_is(t, "l2"), both = tok_is(t, "l1_l2");
  if (!l1 && !l2 && !both)
    parse_fail(p, t->loc, "unknown regularizer '%.*s' (the regularizers are l1(x), l2(x) and "
               "l1_l2(l1=x, l2=y))", t->len, t->text);
  reg[0] = l1 || both ? 0.01 : 0;
  reg[1] = l2 || both ? 0.01 : 0;
  if (!parse_accept(p, "(")) return;
  for (int i = 0; i < (both ? 2 : 1) && !parse_at(p, ")"); i++) {
    if (i) parse_skip(p, ",");
    int slot = both ? i : l2;
    if (p->tok->kind == T_IDENT && tok_is(p->tok->next, "=")) {
      Token *k = p->tok;
      bool ok1 = tok_is(k, "l1") && (l1 || both), ok2 = tok_is(k, "l2") && (l2 || both);
      if (!ok1 && !ok2)
        parse_fail(p, k->loc, "%.*s has no argument '%.*s'", t->len, t->text, k->len, k->text);
      slot = ok2;
      p->tok = k->next->next;
    }
    bool is_int;
    Loc at = p->tok->loc;
    double x;
    if (!parse_number(p, &x, &is_int, &at))
      parse_fail(p, at, "%.*s needs a number, e.g. %.*s(0.001)", t->len, t->text, t->len, t->text);
    if (!(x >= 0))
      parse_fail(p, at, "%.*s: the factor must not be negative, got %g", t->len, t->text, x);
    reg[slot] = x;
  }
  parse_skip(p, ")");
}

void call_regularize(Parser *p, Node *param, const double reg[2], Loc loc) {
  Graph *g = p->g;
  for (int i = 0; i < g->nregularizers; i++)
    if (g->regularizers[i].param == param)
      parse_fail(p, loc, "parameter '%s' already has a regularizer (line %d)", param->name,
                 g->regularizers[i].loc.line);
  Regularizer *grown = arena_alloc(p->arena, sizeof(Regularizer) * (size_t)(g->nregularizers + 1));
  if (g->nregularizers)
    memcpy(grown, g->regularizers, sizeof(Regularizer) * (size_t)g->nregularizers);
  grown[g->nregularizers++] = (Regularizer){param, reg[0], reg[1], loc};
  g->regularizers = grown;
}

/* A layer's kernel_regularizer= / bias_regularizer= for the parameter it
 * made. */
void call_regularizer_arg(Parser *p, Call *c, const char *key, Node *param) {
  Val *v = call_kwarg(c, key);
  if (!v) return;
  if (v->kind != V_NAME || !v->name || strcmp(v->name, "regularizer"))
    parse_fail(p, v->loc, "%s: %s must be a regularizer such as l2(0.001)", call_name(p, c), key);
  call_regularize(p, param, v->reg, v->keyloc);
}

/* The penalty of the parameters a step trains, in the loss's dtype:
 * those its `of` patterns name, else those its loss depends on (Keras
 * adds every layer's losses to the model's). */
static Node *step_penalty(Parser *p, const TrainStep *st, unsigned char *mark) {
  Graph *g = p->g;
  Node *loss = st->loss;
  if (!st->npatterns) graph_mark_needed(g, &loss, 1, true, mark);
  Node *total = NULL;
  for (int i = 0; i < g->nregularizers; i++) {
    const Regularizer *r = &g->regularizers[i];
    bool trained = false;
    for (int k = 0; k < st->nparams && !trained; k++) trained = st->params[k] == r->param;
    if (!st->npatterns) trained = mark[r->param->id];
    if (!trained) continue;
    Node *w = r->param;
    Attrs all = {.axes = (1u << w->shape.rank) - 1};
    for (int k = 0; k < 2; k++) {
      double f = k ? r->l2 : r->l1;
      if (!(f > 0)) continue;
      Node *e = parse_mk1(p, k ? OP_SQUARE : OP_ABS, w, NULL, r->loc);
      if (w->shape.rank) e = parse_mk1(p, OP_SUM, e, &all, r->loc);
      e = parse_mk2(p, OP_MUL, graph_scalar(g, f, w->dtype, r->loc), e, r->loc);
      if (e->dtype != loss->dtype) {
        Attrs to = {.dtype = loss->dtype};
        e = parse_mk1(p, OP_CAST, e, &to, r->loc);
      }
      total = total ? parse_mk2(p, OP_ADD, total, e, r->loc) : e;
    }
  }
  return total;
}

/* After the last statement: each step trains loss + penalty, reported
 * under the loss's name (Keras' loss includes it), and the penalty alone
 * is the metric PREFIXregularization, so the progress line shows it. */
void regularize_steps(Parser *p) {
  Graph *g = p->g;
  if (!g->nregularizers) return;
  for (int s = 0; s < g->nsteps; s++) {
    TrainStep *st = &g->steps[s];
    /* per step: the previous step's penalty added nodes */
    unsigned char *mark = arena_alloc(p->arena, (size_t)g->nnodes + 1);
    Node *pen = step_penalty(p, st, mark);
    if (!pen) continue;
    const char *name = arena_printf(p->arena, "%sregularization", st->prefix);
    for (int i = 0; i < g->nmetrics; i++)
      if (!strcmp(g->metrics[i].name, name))
        parse_fail(p, st->loc, "the metric '%s' is the regularizers' penalty; rename yours", name);
    pen->flags |= N_METRIC;
    graph_add_output(g, &g->metrics, &g->nmetrics, name, pen);
    Node *total = parse_mk2(p, OP_ADD, st->loss, pen, st->loc);
    total->name = st->loss->name;
    total->flags |= N_LOSS;
    /* one node per name in dumps (the text dump must parse back); a
     * leaf keeps its own */
    if (op_info[st->loss->op].kind != K_LEAF) st->loss->name = NULL;
    st->loss = total;
  }
}

/* ------------------------------------------------ swapped loss operands */

/* softmax_cross_entropy(one_hot(y, 10), logits) - TensorFlow's order,
 * labels first - is a valid call here whose loss falls without bound
 * (issue 22: it trained to -8494).  The mistake shows in the data flow:
 * our first operand, the logits, depends on no parameter while the
 * second, the labels, does.  A warning, not an error: a model may mean
 * it (a distillation target computed from parameters). */
void warn_swapped_losses(Parser *p) {
  Graph *g = p->g;
  unsigned char *dep = arena_alloc(p->arena, (size_t)g->nnodes + 1);
  for (int i = 0; i < g->nnodes; i++) {      /* creation order is topological */
    Node *n = g->nodes[i];
    dep[i] = n->op == OP_PARAM;
    for (int k = 0; k < n->nsrc && !dep[i]; k++) dep[i] = dep[n->src[k]->id];
  }
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if ((n->op != OP_SOFTMAX_CE && n->op != OP_SIGMOID_CE) || dep[n->src[0]->id] || !dep[n->src[1]->id])
      continue;
    const char *name = op_info[n->op].name;
    diag_add(p->arena, p->diags, DIAG_WARNING, n->loc,
             "%s(logits, labels): the first operand depends on no parameter and the second does; "
             "are they swapped (TensorFlow's %s(labels, logits))?", name, name);
  }
}

/* ------------------------------------------------ learning-rate schedules */

/* The schedule named by t, or SCHED_NONE. */
ScheduleKind parse_schedule_named(Parser *p, Token *t) {
  if (t->kind != T_IDENT || !tok_is(t->next, "(")) return SCHED_NONE;
  const char *n = parse_str(p, t);
  for (int k = 1; k < SCHED_COUNT; k++)
    if (!strcmp(n, sched_info[k].name) || !strcmp(n, sched_info[k].alias)) return (ScheduleKind)k;
  return SCHED_NONE;
}

/* Keras' keyword, or the short one the issue and most tutorials write. */
static Val *sched_arg(Call *c, int i, const char *key, const char *shorter) {
  Val *v = call_arg(c, i, key);
  return v ? v : shorter ? call_kwarg(c, shorter) : NULL;
}

static double sched_num(Parser *p, Call *c, int i, const char *key, const char *shorter,
                        bool required, double dflt) {
  Val *v = sched_arg(c, i, key, shorter);
  if (!v && required)
    parse_fail(p, c->fn->loc, "%s: missing argument %s", call_name(p, c), key);
  return v ? call_num(p, c, v, false) : dflt;
}

/* A list of numbers: piecewise's boundaries and values. */
static int sched_list(Parser *p, Call *c, int i, const char *key, double *out, int max) {
  Val *v = call_arg(c, i, key);
  if (!v) parse_fail(p, c->fn->loc, "%s: missing argument %s", call_name(p, c), key);
  if (v->kind != V_LIST || v->lshape.rank != 1)
    parse_fail(p, v->loc, "%s: %s must be a list of numbers, e.g. [1000, 2000]",
               call_name(p, c), key);
  int n = (int)v->lshape.d[0].n;
  if (n > max) parse_fail(p, v->loc, "%s: at most %d %s", call_name(p, c), max, key);
  for (int k = 0; k < n; k++) {
    if (v->items[k].name)
      parse_fail(p, v->items[k].loc, "%s: %s must be numbers", call_name(p, c), key);
    out[k] = v->items[k].v;
  }
  return n;
}

/* schedule = NAME "(" args ")", Keras' schedules and arguments
 * (tf.keras.optimizers.schedules), short keys in brackets:
 *   exponential_decay(initial_learning_rate [initial], decay_steps [steps],
 *                     decay_rate [rate], staircase=false)
 *   inverse_time_decay(the same)
 *   polynomial_decay(initial_learning_rate, decay_steps,
 *                    end_learning_rate=0.0001 [end], power=1)
 *   piecewise_constant_decay(boundaries, values)       (alias piecewise)
 *   cosine_decay(initial_learning_rate, decay_steps, alpha=0,
 *                warmup_target=none, warmup_steps=0)    (alias cosine)
 * Keras' PolynomialDecay(cycle=True) is not offered. */
LrSchedule parse_schedule(Parser *p, ScheduleKind kind) {
  LrSchedule s = {.kind = kind, .loc = p->tok->loc, .power = 1, .end = 0.0001};
  Call *c = call_begin(p, p->tok);
  const char *name = call_name(p, c);
  p->tok = p->tok->next;
  parse_skip(p, "(");
  if (!parse_at(p, ")")) {
    do call_parse_arg(p, c);
    while (parse_accept(p, ","));
  }
  parse_skip(p, ")");
  const char *keys = "";
  switch (kind) {
  case SCHED_EXPONENTIAL:
  case SCHED_INVERSE_TIME:
    keys = "initial_learning_rate,initial,decay_steps,steps,decay_rate,rate,staircase";
    s.initial = sched_num(p, c, 0, "initial_learning_rate", "initial", true, 0);
    s.decay_steps = sched_num(p, c, 1, "decay_steps", "steps", true, 0);
    s.rate = sched_num(p, c, 2, "decay_rate", "rate", true, 0);
    {
      Val *v = call_arg(c, 3, "staircase");
      s.staircase = v && call_bool(p, c, v);
    }
    if (!(s.rate > 0)) parse_fail(p, c->fn->loc, "%s: decay_rate must be positive, got %g", name, s.rate);
    break;
  case SCHED_POLYNOMIAL:
    keys = "initial_learning_rate,initial,decay_steps,steps,end_learning_rate,end,power";
    s.initial = sched_num(p, c, 0, "initial_learning_rate", "initial", true, 0);
    s.decay_steps = sched_num(p, c, 1, "decay_steps", "steps", true, 0);
    s.end = sched_num(p, c, 2, "end_learning_rate", "end", false, 0.0001);
    s.power = sched_num(p, c, 3, "power", NULL, false, 1);
    if (!(s.end >= 0)) parse_fail(p, c->fn->loc, "%s: end_learning_rate must not be negative", name);
    break;
  case SCHED_PIECEWISE: {
    keys = "boundaries,values";
    double bounds[SCHED_MAX_VALUES];
    int nb = sched_list(p, c, 0, "boundaries", bounds, SCHED_MAX_VALUES - 1);
    s.nvalues = sched_list(p, c, 1, "values", s.values, SCHED_MAX_VALUES);
    if (s.nvalues != nb + 1)
      parse_fail(p, c->fn->loc, "%s: needs one value more than boundaries (Keras), got %d "
                 "boundaries and %d values", name, nb, s.nvalues);
    for (int i = 0; i < nb; i++) {
      s.boundaries[i] = bounds[i];
      if (i && !(bounds[i] > bounds[i - 1]))
        parse_fail(p, c->fn->loc, "%s: boundaries must increase, got %g after %g", name,
                   bounds[i], bounds[i - 1]);
    }
    for (int i = 0; i < s.nvalues; i++)
      if (!(s.values[i] > 0))
        parse_fail(p, c->fn->loc, "%s: learning rates must be positive, got %g", name, s.values[i]);
    s.initial = s.values[0];
    break;
  }
  case SCHED_COSINE: {
    keys = "initial_learning_rate,initial,decay_steps,steps,alpha,warmup_target,warmup_steps";
    s.initial = sched_num(p, c, 0, "initial_learning_rate", "initial", true, 0);
    s.decay_steps = sched_num(p, c, 1, "decay_steps", "steps", true, 0);
    s.alpha = sched_num(p, c, 2, "alpha", NULL, false, 0);
    Val *t = call_kwarg(c, "warmup_target");
    s.warmup = t != NULL;
    s.warmup_target = t ? call_num(p, c, t, false) : 0;
    s.warmup_steps = sched_num(p, c, 4, "warmup_steps", NULL, false, 0);
    if (!(s.alpha >= 0 && s.alpha <= 1))
      parse_fail(p, c->fn->loc, "%s: alpha must lie in [0, 1], got %g", name, s.alpha);
    if (s.warmup && !(s.warmup_target > 0))
      parse_fail(p, t->loc, "%s: warmup_target must be positive, got %g", name, s.warmup_target);
    if (!(s.warmup_steps >= 0) || (s.warmup_steps > 0 && !s.warmup))
      parse_fail(p, c->fn->loc, "%s: warmup_steps needs warmup_target, the rate warm-up ends at",
                 name);
    break;
  }
  case SCHED_NONE:
  case SCHED_COUNT: GRADC_ASSERT(!"no such schedule");
  }
  /* A warm-up may start from 0 (Keras' usual CosineDecay(0.0, ...,
   * warmup_target=...)); every other rate must be positive. */
  if (!(s.initial > 0) && !(kind == SCHED_COSINE && s.warmup && s.initial >= 0))
    parse_fail(p, c->fn->loc, "%s: the initial learning rate must be positive, got %g", name, s.initial);
  if (kind != SCHED_PIECEWISE && !(s.decay_steps > 0))
    parse_fail(p, c->fn->loc, "%s: decay_steps must be positive, got %g", name, s.decay_steps);
  for (int i = 0; i < c->nargs; i++) {
    if (c->args[i].key && !call_in_list(keys, c->args[i].key))
      parse_fail(p, c->args[i].keyloc, "%s has no argument '%s'; it takes: %s", name,
                 c->args[i].key, keys);
    if (!c->args[i].used) parse_fail(p, c->args[i].loc, "%s: too many arguments", name);
  }
  call_end(p, c);
  return s;
}

