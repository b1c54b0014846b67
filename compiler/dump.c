/*
 * dump.c - the graph as text people read and tools diff.
 *
 *   text  one node per line: id, op, operands, attributes, dtype[shape], the
 *         bound name and the source position; stable across runs.
 *   dot   Graphviz; inputs, params, constants and outputs drawn differently.
 *   nn    the graph written back as a model file of primitive ops, which the
 *         parser reads into the same graph (tests check the fixed point).
 *
 * dump_summary prints the Keras-style parameter table.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

static void put_num(FILE *out, double v) { fprintf(out, "%.9g", v); }

static void put_axes(FILE *out, uint32_t axes) {
  fputc('[', out);
  for (int i = 0, first = 1; i < MAX_RANK; i++)
    if (axes & (1u << i)) fprintf(out, "%s%d", first ? "" : ",", i), first = 0;
  fputc(']', out);
}

static void put_init(FILE *out, const Node *n) {
  const Init *in = &n->a.init;
  fputs(init_names[in->kind], out);
  switch (in->kind) {
  case INIT_CONSTANT: fprintf(out, "(%.9g)", in->a); break;
  case INIT_UNIFORM:
  case INIT_NORMAL: fprintf(out, "(%.9g, %.9g)", in->a, in->b); break;
  case INIT_TRUNCATED_NORMAL:
    if (in->a != 0) fprintf(out, "(%.9g, mean=%.9g)", in->b, in->a);
    else fprintf(out, "(%.9g)", in->b);
    break;
  case INIT_ORTHOGONAL:
    if (in->a != 1) fprintf(out, "(%.9g)", in->a);
    break;
  default: break;
  }
}

/* Nested list literal of a const's values (at most `limit` shown, 0 = all). */
static void put_values(FILE *out, const Node *n, int64_t limit) {
  const Shape *s = &n->shape;
  int64_t count = shape_static_count(s);
  if (s->rank == 0) {
    put_num(out, n->a.values[0]);
    return;
  }
  int64_t idx[MAX_RANK] = {0};
  for (int i = 0; i < s->rank; i++) fputc('[', out);
  for (int64_t k = 0; k < count; k++) {
    if (limit && k == limit) {
      fputs(", ...", out);
      for (int i = 0; i < s->rank; i++) fputc(']', out);
      return;
    }
    put_num(out, n->a.values[k]);
    int closed = 0;
    for (int i = s->rank - 1; i >= 0; i--) {
      if (++idx[i] < s->d[i].n) break;
      idx[i] = 0;
      closed++;
    }
    for (int i = 0; i < closed; i++) fputc(']', out);
    if (k + 1 < count) {
      fputs(", ", out);
      for (int i = 0; i < closed; i++) fputc('[', out);
    }
  }
  if (count == 0)
    for (int i = 0; i < s->rank; i++) fputc(']', out);
}

/* Attributes as "key=value" words; text and nn share the spelling. */
static void put_attrs(FILE *out, const Graph *g, const Node *n, bool nn) {
  const Attrs *a = &n->a;
  switch (n->op) {
  case OP_CLIP:
    if (nn) fprintf(out, ", %.9g, %.9g", a->lo, a->hi);
    else fprintf(out, " min=%.9g max=%.9g", a->lo, a->hi);
    break;
  case OP_CAST: fprintf(out, "%s%s", nn ? ", " : " to=", dtype_names[a->dtype]); break;
  case OP_LEAKY_RELU: fprintf(out, "%salpha=%.9g", nn ? ", " : " ", a->alpha); break;
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX:
  case OP_ARGSORT:
  case OP_CUMSUM:
  case OP_CUMPROD:
  case OP_CONCAT: fprintf(out, "%saxis=%d", nn ? ", " : " ", a->axis); break;
  case OP_ARGMAX:
  case OP_ARGMIN:
    fprintf(out, "%saxis=%d", nn ? ", " : " ", a->axis);
    if (a->keepdims) fprintf(out, "%skeepdims=true", nn ? ", " : " ");
    break;
  case OP_SUM:
  case OP_MEAN:
  case OP_MAX:
  case OP_MIN:
  case OP_NORM:
    fprintf(out, "%saxis=", nn ? ", " : " ");
    put_axes(out, a->axes);
    if (a->keepdims) fprintf(out, "%skeepdims=true", nn ? ", " : " ");
    break;
  case OP_RESHAPE:
  case OP_TAKE_ADD:
  case OP_BROADCAST: {
    fprintf(out, "%s[", nn ? ", " : " shape=");
    for (int i = 0; i < a->to.rank; i++) {
      Dim d = a->to.d[i];
      char b[48];
      /* n*sym products are not spelled in model files: -1 infers them. */
      if (nn && d.sym && d.n != 1) fprintf(out, "%s-1", i ? ", " : "");
      else fprintf(out, "%s%s", i ? ", " : "", dim_str(g, d, b, sizeof b));
    }
    fputc(']', out);
    break;
  }
  case OP_TRANSPOSE:
    fprintf(out, "%s[", nn ? ", perm=" : " perm=");
    for (int i = 0; i < n->shape.rank; i++) fprintf(out, "%s%d", i ? ", " : "", a->perm[i]);
    fputc(']', out);
    break;
  case OP_ONE_HOT:
  case OP_SCATTER_ADD: fprintf(out, "%s%" PRId64, nn ? ", " : " depth=", a->depth); break;
  case OP_MATMUL:
    if (a->ta) fprintf(out, "%stranspose_a=true", nn ? ", " : " ");
    if (a->tb) fprintf(out, "%stranspose_b=true", nn ? ", " : " ");
    break;
  case OP_SIZE: {
    char b[SHAPE_STR_MAX];
    fprintf(out, " of=%s", shape_str(g, &a->to, b, sizeof b));
    break;
  }
  case OP_UNSLICE: {
    char b[SHAPE_STR_MAX];
    fprintf(out, " into=%s", shape_str(g, &a->to, b, sizeof b));
    break;
  }
  case OP_CARRY: case OP_SCAN_LAST: fprintf(out, " slot=%d", a->slot); break;
  case OP_SCAN_SLICE: fprintf(out, " axis=%d", a->axis); break;
  case OP_SCAN_STACK: fprintf(out, " slot=%d axis=%d", a->slot, a->axis); break;
  case OP_LOOP_END: fprintf(out, " carries=%d", a->slot); break;
  case OP_ASSIGN:
    if (g->nsteps > 1) fprintf(out, " step=%s", g->steps[n->a.owner].name);
    break;
  case OP_RANDOM_NORMAL: case OP_RANDOM_UNIFORM: case OP_TRUNCATED_NORMAL: {
    bool u = n->op == OP_RANDOM_UNIFORM;
    fprintf(out, "%s[", nn ? "" : " shape=");    /* the shape is the first argument */
    for (int i = 0; i < a->to.rank; i++) {
      char b[48];
      fprintf(out, "%s%s", i ? ", " : "", dim_str(g, a->to.d[i], b, sizeof b));
    }
    fprintf(out, "]%s%s=%.17g%s%s=%.17g%sseed=%" PRId64 "%sdtype=%s", nn ? ", " : " ", u ? "minval" : "mean",
            a->lo, nn ? ", " : " ", u ? "maxval" : "stddev", a->hi, nn ? ", " : " ", a->seed,
            nn ? ", " : " ", dtype_names[n->dtype]);
    break;
  }
  case OP_DROPOUT_MASK:
    fprintf(out, "%srate=%.17g%sseed=%" PRId64, nn ? ", " : " ", a->lo, nn ? ", " : " ", a->seed);
    break;
  case OP_IM2COL: case OP_COL2IM: case OP_MAXPOOL: case OP_MAXPOOL_GRAD:
  case OP_AVGPOOL: case OP_AVGPOOL_GRAD: {
    const Window *w = &a->win;
    bool pool = n->op != OP_IM2COL && n->op != OP_COL2IM;
    fprintf(out, "%s%s=[%" PRId64 ", %" PRId64 "]", nn ? ", " : " ", pool ? "pool" : "kernel",
            w->k[0], w->k[1]);
    fprintf(out, "%sstrides=[%" PRId64 ", %" PRId64 "]", nn ? ", " : " ", w->stride[0], w->stride[1]);
    if (!pool) fprintf(out, "%sdilation=[%" PRId64 ", %" PRId64 "]", nn ? ", " : " ", w->dil[0], w->dil[1]);
    fprintf(out, "%spadding=[%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]", nn ? ", " : " ",
            w->pad[0], w->pad[1], w->pad[2], w->pad[3]);
    if (n->op == OP_COL2IM) {     /* the image it adds the patches into */
      char b[SHAPE_STR_MAX];
      fprintf(out, "%s%s", nn ? ", shape=" : " into=", shape_str(g, &a->to, b, sizeof b));
    }
    break;
  }
  default: break;
  }
}

static void put_slice(FILE *out, const Node *n) {
  const Shape *s = n->op == OP_UNSLICE ? &n->a.to : &n->src[0]->shape;
  fputc('[', out);
  for (int i = 0; i < s->rank; i++) {
    int64_t b = n->a.begin[i], e = n->a.end[i], st = n->a.step[i];
    if (i) fputs(", ", out);
    if (s->d[i].sym) {
      fputc(':', out);
      continue;
    }
    fprintf(out, "%" PRId64 ":", b);
    if (!(st < 0 && e == -1)) fprintf(out, "%" PRId64, e);
    fprintf(out, ":%" PRId64, st);
  }
  fputc(']', out);
}

/* Unnamed nodes are written as <prefix><id>, with a prefix that no name in
 * the model starts with, so a user's own _t3 cannot collide. */
static void temp_prefix(const Graph *g, char *prefix, size_t n) {
  snprintf(prefix, n, "_t");
  for (bool clash = true; clash && strlen(prefix) + 2 < n;) {
    clash = false;
    for (int i = 0; i < g->nnodes && !clash; i++) {
      /* a name the prefix would give the node anyway is no clash (a
       * model written back names its temporaries so; unnamed values, such
       * as a function body's, keep their numbers) */
      const char *nm = g->nodes[i]->name;
      char own[48];
      snprintf(own, sizeof own, "%s%d", prefix, i);
      clash = nm && !strncmp(nm, prefix, strlen(prefix)) && strcmp(nm, own);
    }
    if (clash) strcat(prefix, "_");
  }
}

static const char *nn_name(const char *prefix, const Node *n, char *buf, size_t len) {
  if (n->name) return n->name;
  snprintf(buf, len, "%s%d", prefix, n->id);
  return buf;
}

/* The learning rate: a number, or its schedule as the language writes it
 * (issue 22). */
static void print_lr(FILE *out, const Optimizer *o, int d) {
  const LrSchedule *s = &o->sched;
  if (s->kind == SCHED_NONE) {
    fprintf(out, "%.*g", d, o->lr);
    return;
  }
  fprintf(out, "%s(", sched_info[s->kind].name);
  switch (s->kind) {
  case SCHED_EXPONENTIAL:
  case SCHED_INVERSE_TIME:
    fprintf(out, "%.*g, %.*g, %.*g, staircase=%s", d, s->initial, d, s->decay_steps, d, s->rate,
            s->staircase ? "true" : "false");
    break;
  case SCHED_POLYNOMIAL:
    fprintf(out, "%.*g, %.*g, end_learning_rate=%.*g, power=%.*g", d, s->initial, d, s->decay_steps,
            d, s->end, d, s->power);
    break;
  case SCHED_PIECEWISE:
    for (int i = 0; i < 2; i++) {
      int n = i ? s->nvalues : s->nvalues - 1;
      const double *v = i ? s->values : s->boundaries;
      fprintf(out, "%s%s=[", i ? ", " : "", i ? "values" : "boundaries");
      for (int k = 0; k < n; k++) fprintf(out, "%s%.*g", k ? ", " : "", d, v[k]);
      fputc(']', out);
    }
    break;
  case SCHED_COSINE:
    fprintf(out, "%.*g, %.*g, alpha=%.*g", d, s->initial, d, s->decay_steps, d, s->alpha);
    if (s->warmup)
      fprintf(out, ", warmup_target=%.*g, warmup_steps=%.*g", d, s->warmup_target, d, s->warmup_steps);
    break;
  case SCHED_NONE:
  case SCHED_COUNT: break;
  }
  fputc(')', out);
}

/* A train statement as the language writes it: loss, `of` patterns,
 * the optimizer with every setting (digits significant digits), the name. */
static void print_train(FILE *out, const Graph *g, const TrainStep *st, const char *loss, int d) {
  const Optimizer *o = &st->opt;
  fprintf(out, "train %s", loss);
  for (int k = 0; k < st->npatterns; k++) fprintf(out, "%s%s", k ? ", " : " of ", st->patterns[k]);
  fprintf(out, " with %s(lr=", opt_info[o->kind].name);
  print_lr(out, o, d);
  switch (o->kind) {
  case OPT_SGD:
    fprintf(out, ", momentum=%.*g, nesterov=%s", d, o->momentum, o->nesterov ? "true" : "false");
    break;
  case OPT_RMSPROP:
    fprintf(out, ", rho=%.*g, momentum=%.*g, eps=%.*g, centered=%s", d, o->rho, d, o->momentum, d,
            o->eps, o->centered ? "true" : "false");
    break;
  case OPT_ADAM:
    fprintf(out, ", beta1=%.*g, beta2=%.*g, eps=%.*g", d, o->beta1, d, o->beta2, d, o->eps);
    break;
  case OPT_ADAGRAD:
    fprintf(out, ", initial_accumulator=%.*g, eps=%.*g", d, o->initial_accumulator, d, o->eps);
    break;
  case OPT_COUNT: break;
  }
  /* the clipping options and weight decay, where given (RANGE_CLIP and
   * RANGE_OPTIONAL rows) */
  const OptInfo *info = &opt_info[o->kind];
  for (int k = 0; k < info->nhyper; k++)
    if ((info->hyper[k].range == RANGE_CLIP || info->hyper[k].range == RANGE_OPTIONAL) &&
        opt_hyper_value(o, &info->hyper[k]) > 0)
      fprintf(out, ", %s=%.*g", info->hyper[k].name, d, opt_hyper_value(o, &info->hyper[k]));
  fputc(')', out);
  if (g->nsteps > 1 || strcmp(st->name, "train")) fprintf(out, " as %s", st->name);
  fputc('\n', out);
}

/* The schedule and the constraints, as the language writes them. */
static void print_schedule(FILE *out, const Graph *g, int d, const char *lead) {
  for (int i = 0; i < g->nconstraints; i++) {
    const Constraint *c = &g->constraints[i];
    if (c->lo == 0 && isinf(c->hi)) fprintf(out, "constraint %s = non_neg\n", c->param->name);
    else fprintf(out, "constraint %s = clip(%.*g, %.*g)\n", c->param->name, d, c->lo, d, c->hi);
  }
  for (int i = 0; i < g->nschedule; i++) {
    fprintf(out, "%s%s", i ? ", " : lead, g->steps[g->schedule[i].step].name);
    if (g->schedule[i].times != 1) fprintf(out, " * %d", g->schedule[i].times);
  }
  if (g->nschedule) fputc('\n', out);
}

/* "%L: N iterations, reverse, gradient of %F" */
static void put_loop(FILE *out, const Graph *g, int l) {
  const Scan *sc = &g->scans[l - 1];
  char b[48];
  fprintf(out, "%d: %s iterations", l, dim_str(g, sc->len, b, sizeof b));
  if (sc->reverse) fputs(", reverse", out);
  if (sc->fwd) fprintf(out, ", the gradient of loop %d", sc->fwd);
}

static void dump_text(FILE *out, const Graph *g, const char *stage) {
  fprintf(out, "# gradc graph '%s', stage %s: %d nodes", g->model_name, stage,
          g->nnodes);
  if (g->nsym) {
    fputs(", symbolic dims:", out);
    for (int i = 1; i <= g->nsym; i++) fprintf(out, " %s", g->sym[i]);
  }
  fputc('\n', out);
  int open = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->a.loop && n->a.loop != open) {
      open = n->a.loop;
      fputs("loop ", out);
      put_loop(out, g, open);
      fputs(" {\n", out);
    }
    char head[512];
    FILE *mem = fmemopen(head, sizeof head, "w");
    fprintf(mem, "%s%%%d = %s", open ? "  " : "", n->id, op_info[n->op].name);
    for (int k = 0; k < n->nsrc; k++) fprintf(mem, "%s%%%d", k ? ", " : " ", n->src[k]->id);
    if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE) fprintf(mem, " %s", n->name);
    if (n->op == OP_PARAM || n->op == OP_STATE) {
      fputs(" init=", mem);
      if (n->a.init.kind == INIT_VALUES) fputs("values", mem);
      else put_init(mem, n);
    }
    if (n->op == OP_CONST) {
      fputc(' ', mem);
      put_values(mem, n, 8);
    }
    if (n->op == OP_SLICE || n->op == OP_UNSLICE) {
      fputc(' ', mem);
      put_slice(mem, n);
    }
    put_attrs(mem, g, n, false);
    fputc(0, mem);
    fclose(mem);
    head[sizeof head - 1] = 0;
    char b[SHAPE_STR_MAX], ty[SHAPE_STR_MAX + 8];
    snprintf(ty, sizeof ty, "%s%s", dtype_names[n->dtype],
             shape_str(g, &n->shape, b, sizeof b));
    fprintf(out, "%-44s : %-20s", head, ty);
    fprintf(out, " @%d:%d", n->loc.line, n->loc.col);
    if (n->name && n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_STATE)
      fprintf(out, " %s", n->name);
    if (n->fwd) fprintf(out, " <- %s %%%d", n->rule, n->fwd->id);
    if (n->flags & N_GRAD) fputs(" [grad]", out);
    if (n->inlined_into && n->storage && n->storage != n)
      fprintf(out, " {fused into %%%d, in place: %s}", n->inlined_into->id,
              n->storage->name ? n->storage->name : "?");
    else if (n->inlined_into)
      fprintf(out, " {fused into %%%d%s}", n->inlined_into->id, n->storage ? ", stored" : "");
    else if (n->storage && n->storage != n && n->op != OP_RESHAPE)
      fprintf(out, " {in place: %s}", n->storage->name ? n->storage->name : "?");
    if (n->flags & N_OUTPUT) fputs(" [output]", out);
    if (n->flags & N_METRIC) fputs(" [metric]", out);
    if (n->flags & N_LOSS) fputs(" [loss]", out);
    fputc('\n', out);
    if (n->op == OP_LOOP_END) {
      fputs("}\n", out);
      open = 0;
    }
  }
  for (int i = 0; i < g->noutputs; i++)
    fprintf(out, "output %s = %%%d\n", g->outputs[i].name, g->outputs[i].node->id);
  for (int i = 0; i < g->nmetrics; i++)
    fprintf(out, "metric %s = %%%d\n", g->metrics[i].name, g->metrics[i].node->id);
  for (int i = 0; i < g->nupdates; i++)
    fprintf(out, "update %s = %%%d\n", g->updates[i].state->name, g->updates[i].value->id);
  for (int i = 0; i < g->nsteps; i++)
    for (int k = 0; k < g->steps[i].ngrads; k++)
      fprintf(out, "grad %s%s = %%%d\n", g->steps[i].prefix, g->steps[i].grads[k].param->name,
              g->steps[i].grads[k].grad->id);
  for (int i = 0; i < g->nsteps; i++) {
    char lb[32];
    snprintf(lb, sizeof lb, "%%%d", g->steps[i].loss->id);
    print_train(out, g, &g->steps[i], lb, 9);
  }
  print_schedule(out, g, 9, "schedule ");
}

static void dot_node(FILE *out, const Graph *g, const Node *n, const char *indent) {
  char b[SHAPE_STR_MAX];
  const char *style = "shape=box, style=rounded";
  if (n->op == OP_INPUT) style = "shape=invhouse, style=filled, fillcolor=\"#c8e6c9\"";
  else if (n->op == OP_PARAM) style = "shape=box, style=filled, fillcolor=\"#bbdefb\"";
  else if (n->op == OP_CONST) style = "shape=plaintext";
  else if (n->op == OP_STATE) style = "shape=box, style=\"filled,dashed\", fillcolor=\"#e1bee7\"";
  else if (n->op == OP_ASSIGN) style = "shape=cds, style=filled, fillcolor=\"#e1bee7\"";
  else if (n->fwd) style = "shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\"";
  if (n->flags & N_LOSS) style = "shape=doubleoctagon, style=filled, fillcolor=\"#ffcdd2\"";
  else if (n->flags & (N_OUTPUT | N_METRIC))
    style = "shape=octagon, style=filled, fillcolor=\"#fff9c4\"";
  fprintf(out, "%sn%d [%s, label=\"%s", indent, n->id, style, op_info[n->op].name);
  if (n->name) fprintf(out, "\\n%s", n->name);
  if (n->op == OP_CONST && n->shape.rank == 0) fprintf(out, "\\n%.6g", n->a.values[0]);
  fprintf(out, "\\n%s%s\"];\n", dtype_names[n->dtype], shape_str(g, &n->shape, b, sizeof b));
}

static const Node *kernel_of(const Node *n) {
  while (n->inlined_into) n = n->inlined_into;
  return n;
}

/* Graphviz: inputs, parameters, state, constants and outputs drawn apart;
 * after fusion one cluster per fused kernel (a loop and what it computes). */
static void dump_dot(FILE *out, const Graph *g, const char *stage) {
  fprintf(out, "digraph \"%s\" {\n  label=\"%s (stage %s)\";\n  rankdir=TB;\n"
          "  node [fontname=\"Helvetica\", fontsize=10];\n",
          g->model_name, g->model_name, stage);
  int open = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->a.loop != open && !n->inlined_into) {
      /* a loop's body is a cluster of its own */
      if (open) fputs("  }\n", out);
      open = n->a.loop;
      if (open) {
        fprintf(out, "  subgraph cluster_loop%d {\n    label=\"loop ", open);
        put_loop(out, g, open);
        fputs("\";\n    style=rounded;\n    color=\"#1565c0\";\n", out);
      }
    }
    bool has_fused = false;
    for (int k = 0; k < g->nnodes && !has_fused; k++)
      has_fused = g->nodes[k] != n && kernel_of(g->nodes[k]) == n;
    if (n->inlined_into) continue;             /* drawn in its kernel's cluster */
    if (!has_fused) {
      dot_node(out, g, n, "  ");
      continue;
    }
    fprintf(out, "  subgraph cluster_%d {\n    label=\"kernel %%%d\";\n    style=dashed;\n", n->id, n->id);
    for (int k = 0; k < g->nnodes; k++)
      if (kernel_of(g->nodes[k]) == n) dot_node(out, g, g->nodes[k], "    ");
    fputs("  }\n", out);
  }
  if (open) fputs("  }\n", out);
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nsrc; k++)
      fprintf(out, "  n%d -> n%d;\n", g->nodes[i]->src[k]->id, g->nodes[i]->id);
  fputs("}\n", out);
}

/* NAME = op(operands, attributes)  # type, indented by ind */
static void nn_statement(FILE *out, const Graph *g, const char *pre, const Node *n, const char *ind) {
  char nb[48], sb[48], b[SHAPE_STR_MAX];
  const char *name = nn_name(pre, n, nb, sizeof nb);
  fputs(ind, out);
  fprintf(out, "%s = ", name);
  bool steps1 = n->op == OP_UNSLICE;
  for (int k = 0; steps1 && k < n->shape.rank; k++) steps1 = n->a.step[k] == 1;
  if (n->op == OP_SLICE) {
    fputs(nn_name(pre, n->src[0], sb, sizeof sb), out);
    put_slice(out, n);
  } else if (steps1) {
    /* an unslice with unit steps is zero padding, which pad() reads back */
    fprintf(out, "pad(%s, [", nn_name(pre, n->src[0], sb, sizeof sb));
    for (int k = 0; k < n->shape.rank; k++) {
      const Dim *in = &n->src[0]->shape.d[k], *o = &n->shape.d[k];
      int64_t before = in->sym ? 0 : n->a.begin[k], after = in->sym ? 0 : o->n - in->n - before;
      fprintf(out, "%s[%" PRId64 ", %" PRId64 "]", k ? ", " : "", before, after);
    }
    fputs("])", out);
  } else {
    fprintf(out, "%s(", op_info[n->op].name);
    for (int k = 0; k < n->nsrc; k++)
      fprintf(out, "%s%s", k ? ", " : "", nn_name(pre, n->src[k], sb, sizeof sb));
    put_attrs(out, g, n, true);
    fputc(')', out);
  }
  fprintf(out, "  # %s%s\n", dtype_names[n->dtype], shape_str(g, &n->shape, b, sizeof b));
}

/* A loop as the function it runs and the scan that runs it:
 *   def PRE loopL(slices..., carries...) { body  return stacked..., next... }
 *   stacks..., lasts... = scan(PRE loopL, sequences..., init=[...], axis=A)
 * Returns the loop_end's id; done marks the stacks and last values. */
static int nn_loop(FILE *out, const Graph *g, const char *pre, int l, int begin, bool *done) {
  const Node *e = graph_loop_end(g, l);
  const Scan *sc = &g->scans[l - 1];
  int nc = e->a.slot, axis = 1;
  char nb[48];
  fprintf(out, "def %sloop%d(", pre, l);
  int nargs = 0;
  for (int i = begin; i < e->id; i++)
    if (g->nodes[i]->op == OP_SCAN_SLICE) {
      axis = g->nodes[i]->a.axis;
      fprintf(out, "%s%s", nargs++ ? ", " : "", nn_name(pre, g->nodes[i], nb, sizeof nb));
    }
  for (int k = 0; k < nc; k++) {
    const Node *c = graph_loop_carry(g, l, k);
    fprintf(out, "%s%s", nargs++ ? ", " : "", c ? nn_name(pre, c, nb, sizeof nb) : "_");
  }
  fputs(") {\n", out);
  for (int i = begin; i < e->id; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_SCAN_SLICE && n->op != OP_CARRY) nn_statement(out, g, pre, n, "  ");
  }
  fputs("  return ", out);
  for (int k = 0; k < e->nsrc; k++) {
    int slot = k < e->nsrc - nc ? nc + k : k - (e->nsrc - nc);
    fprintf(out, "%s%s", k ? ", " : "", nn_name(pre, e->src[slot], nb, sizeof nb));
  }
  fputs("\n}\n", out);
  /* the results: stacked outputs, then last values, in slot order */
  for (int k = 0; k < e->nsrc; k++) {
    int slot = k < e->nsrc - nc ? nc + k : k - (e->nsrc - nc);
    const Node *r = NULL;
    for (int i = e->id + 1; i < g->nnodes && !r; i++) {
      const Node *x = g->nodes[i];
      if ((x->op == OP_SCAN_STACK || x->op == OP_SCAN_LAST) && x->src[0] == e && x->a.slot == slot)
        r = x;
    }
    if (r) done[r->id] = true;
    if (r) fprintf(out, "%s%s", k ? ", " : "", nn_name(pre, r, nb, sizeof nb));
    else fprintf(out, "%s%sunused%d_%d", k ? ", " : "", pre, l, slot);
  }
  fprintf(out, " = scan(%sloop%d", pre, l);
  for (int i = begin; i < e->id; i++)
    if (g->nodes[i]->op == OP_SCAN_SLICE)
      fprintf(out, ", %s", nn_name(pre, g->nodes[i]->src[0], nb, sizeof nb));
  fputs(", init=[", out);
  for (int k = 0; k < nc; k++) {
    const Node *c = graph_loop_carry(g, l, k);
    fprintf(out, "%s%s", k ? ", " : "", nn_name(pre, c->src[0], nb, sizeof nb));
  }
  fprintf(out, "], axis=%d%s)\n", axis, sc->reverse ? ", reverse=true" : "");
  return e->id;
}

static void dump_nn(FILE *out, const Graph *g) {
  char pre[24];
  temp_prefix(g, pre, sizeof pre);
  fprintf(out, "# %s, written back by gradc dump --format nn\n", g->model_name);
  bool *done = calloc((size_t)g->nnodes + 1, 1);
  GRADC_ASSERT(done);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->a.loop) {
      i = nn_loop(out, g, pre, n->a.loop, i, done);
      continue;
    }
    if (done[i]) continue;
    char nb[48], b[SHAPE_STR_MAX];
    const char *name = nn_name(pre, n, nb, sizeof nb);
    switch (n->op) {
    case OP_STATE:
    case OP_INPUT:
    case OP_PARAM:
      fprintf(out, "%s %s : %s%s", n->op == OP_INPUT ? "input" : n->op == OP_PARAM ? "param" : "state",
              name, dtype_names[n->dtype], shape_str(g, &n->shape, b, sizeof b));
      if (n->op != OP_INPUT) {
        fputs(" = ", out);
        if (n->a.init.kind == INIT_VALUES) {
          /* a bare number would read back as constant(v): keep the list */
          if (n->shape.rank == 0) fputc('[', out);
          put_values(out, n, 0);
          if (n->shape.rank == 0) fputc(']', out);
        } else {
          put_init(out, n);
        }
      }
      fputc('\n', out);
      continue;
    case OP_CONST:
      fprintf(out, "const %s : %s%s = ", name, dtype_names[n->dtype],
              shape_str(g, &n->shape, b, sizeof b));
      put_values(out, n, 0);
      fputc('\n', out);
      continue;
    default: break;
    }
    nn_statement(out, g, pre, n, "");
  }
  free(done);
  /* Outputs and metrics are bound last, in their order, by name: a binding
   * may name a node under another name (output z = h) or a leaf. */
  for (int i = 0; i < g->noutputs + g->nmetrics; i++) {
    const Binding *bd = i < g->noutputs ? &g->outputs[i] : &g->metrics[i - g->noutputs];
    char nb[48];
    const char *target = nn_name(pre, bd->node, nb, sizeof nb);
    /* A padded result's valid extent (tensor.c) cannot be bound by that
     * name in a model file: written as a comment, the dump reads back,
     * its outputs without the extents. */
    const char *hash = strchr(bd->name, '#');
    if (hash) fputs("# ", out);
    fprintf(out, "%s %s", i < g->noutputs ? "output" : "metric", bd->name);
    if (strcmp(bd->name, target)) fprintf(out, " = %s", target);
    if (hash) fprintf(out, " (the valid extent of %.*s)", (int)(hash - bd->name), bd->name);
    fputc('\n', out);
  }
  for (int i = 0; i < g->nupdates; i++) {
    char nb[48];
    fprintf(out, "update %s = %s\n", g->updates[i].state->name,
            nn_name(pre, g->updates[i].value, nb, sizeof nb));
  }
  for (int i = 0; i < g->nsteps; i++) {
    char lb[48];
    print_train(out, g, &g->steps[i], nn_name(pre, g->steps[i].loss, lb, sizeof lb), 17);
  }
  print_schedule(out, g, 17, "schedule ");
}

void dump_graph(FILE *out, const Graph *g, DumpFormat f, const char *stage) {
  switch (f) {
  case DUMP_TEXT: dump_text(out, g, stage); break;
  case DUMP_DOT: dump_dot(out, g, stage); break;
  case DUMP_NN: dump_nn(out, g); break;
  }
}

int64_t graph_param_count(const Graph *g) {
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_PARAM) total += shape_static_count(&g->nodes[i]->shape);
  return total;
}

/* 407050 -> "407,050" */
static char *grouped(int64_t v, char *buf, size_t n) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%" PRId64, v), o = 0;
  for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
    if (i && (len - i) % 3 == 0 && tmp[i - 1] != '-') buf[o++] = ',';
    buf[o++] = tmp[i];
  }
  buf[o] = 0;
  return buf;
}

/* Keras prints shapes as Python tuples: (784, 512), (512,), (). */
static char *tuple_str(const Graph *g, const Shape *s, char *buf, size_t n) {
  size_t o = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < s->rank && o < n; i++) {
    char d[48];
    const char *ds = s->d[i].sym ? "None" : dim_str(g, s->d[i], d, sizeof d);
    o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", ds);
  }
  if (o < n) snprintf(buf + o, n - o, s->rank == 1 ? ",)" : ")");
  return buf;
}

void dump_summary(FILE *out, const Graph *g) {
  /* Keras' 30 columns for names, wider when a name is longer (a def's
   * parameters: generator.batch_normalization.moving_variance), so the
   * columns stay aligned; the rules span the table. */
  int w = 30;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if ((n->op == OP_PARAM || is_model_state(n)) && (int)strlen(n->name) > w) w = (int)strlen(n->name);
  }
  char rule[300], dbl[300];
  int rl = w + 43 < (int)sizeof rule ? w + 43 : (int)sizeof rule - 1;
  memset(rule, '_', (size_t)rl), rule[rl] = 0;
  memset(dbl, '=', (size_t)rl), dbl[rl] = 0;
  fprintf(out, "Model: \"%s\"\n%s\n", g->model_name, rule);
  fprintf(out, " %-*s %-18s %-12s %s\n%s\n", w, "Parameter", "Shape", "Param #", "Initializer", dbl);
  int64_t total = 0, frozen = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_PARAM && !is_model_state(n)) continue;
    char sb[SHAPE_STR_MAX], cb[32];
    int64_t c = shape_static_count(&n->shape);
    if (n->op == OP_PARAM) total += c;
    else frozen += c;
    fprintf(out, " %-*s %-18s %-12s ", w, n->name, tuple_str(g, &n->shape, sb, sizeof sb),
            grouped(c, cb, sizeof cb));
    if (n->a.init.kind == INIT_VALUES) fputs("values", out);
    else put_init(out, n);
    fputc('\n', out);
  }
  char tb[32], ab[32], fb[32];
  fprintf(out, "%s\nTotal params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s\n",
          dbl, grouped(total + frozen, ab, sizeof ab), grouped(total, tb, sizeof tb),
          grouped(frozen, fb, sizeof fb), rule);
  /* Layer sugar names its parameters <layer>.kernel, <layer>.bias: the
   * per-layer counts of a Keras summary, in order of first appearance. */
  bool header = false;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    const char *dot = n->op == OP_PARAM || is_model_state(n) ? strrchr(n->name, '.') : NULL;
    if (!dot) continue;
    size_t len = (size_t)(dot - n->name);
    bool seen = false;
    for (int k = 0; k < i && !seen; k++) {
      const Node *m = g->nodes[k];
      const char *d2 = m->op == OP_PARAM || is_model_state(m) ? strrchr(m->name, '.') : NULL;
      seen = d2 && (size_t)(d2 - m->name) == len && !strncmp(m->name, n->name, len);
    }
    if (seen) continue;
    int64_t c = 0;
    for (int k = i; k < g->nnodes; k++) {
      const Node *m = g->nodes[k];
      const char *d2 = m->op == OP_PARAM || is_model_state(m) ? strrchr(m->name, '.') : NULL;
      if (d2 && (size_t)(d2 - m->name) == len && !strncmp(m->name, n->name, len))
        c += shape_static_count(&m->shape);
    }
    if (!header) fprintf(out, " %-*s %s\n%s\n", w, "Layer", "Param #", dbl), header = true;
    char cb[32];
    fprintf(out, " %-*.*s %s\n", w, (int)len, n->name, grouped(c, cb, sizeof cb));
  }
  if (header) fprintf(out, "%s\n", rule);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    char b[SHAPE_STR_MAX];
    if (n->op == OP_INPUT)
      fprintf(out, "Input:  %-12s %s%s\n", n->name, dtype_names[n->dtype],
              shape_str(g, &n->shape, b, sizeof b));
  }
  for (int i = 0; i < g->noutputs; i++) {
    char b[SHAPE_STR_MAX];
    const Node *n = g->outputs[i].node;
    fprintf(out, "Output: %-12s %s%s\n", g->outputs[i].name, dtype_names[n->dtype],
            shape_str(g, &n->shape, b, sizeof b));
  }
  for (int i = 0; i < g->nmetrics; i++)
    fprintf(out, "Metric: %s\n", g->metrics[i].name);
  for (int i = 0; i < g->nsteps; i++) {
    const TrainStep *st = &g->steps[i];
    fprintf(out, "Train:  %s with %s(lr=%g)", st->loss->name ? st->loss->name : "loss",
            opt_info[st->opt.kind].name, st->opt.lr);
    int np = st->ngrads ? st->ngrads : st->nparams;   /* at parse: what `of` matched */
    if (g->nsteps > 1) fprintf(out, " as %s", st->name);
    if (g->nsteps > 1 && np) fprintf(out, ", %d parameters", np);
    fputc('\n', out);
  }
  if (g->nschedule) {
    print_schedule(out, g, 9, "Schedule: ");
  }
  for (int i = 0; i < g->nconstraints; i++) {
    const Constraint *c = &g->constraints[i];
    fprintf(out, "Constraint: %s in [%g, %g] after each update\n", c->param->name, c->lo, c->hi);
  }
}

/* The workspace plan for one batch size: each buffer's bytes and offset,
 * then the arena against the sum of all buffers. */
bool dump_memory(FILE *out, const Graph *g, int64_t batch) {
  int64_t sym[MAX_SYMS + 1];
  for (int k = 0; k <= MAX_SYMS; k++) sym[k] = k ? batch : 1;
  size_t *off = malloc(sizeof(size_t) * (size_t)(g->nnodes ? g->nnodes : 1)), naive = 0;
  if (!off) return false;
  size_t total = plan_offsets(g, sym, g->reuse_memory, off, &naive);
  if (total == SIZE_MAX) {
    free(off);
    return false;
  }
  fprintf(out, "# workspace plan of '%s' at batch %lld (stage %s)\n", g->model_name, (long long)batch,
          g->stage);
  fprintf(out, "# %-6s %-22s %-22s %12s %12s\n", "node", "op", "type", "bytes", "offset");
  int buffers = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (off[i] == SIZE_MAX) continue;
    char b[SHAPE_STR_MAX], t[SHAPE_STR_MAX + 8], id[16];
    int64_t c = 1;
    for (int k = 0; k < n->shape.rank; k++) c *= n->shape.d[k].n * sym[n->shape.d[k].sym];
    snprintf(t, sizeof t, "%s%s", dtype_names[n->dtype], shape_str(g, &n->shape, b, sizeof b));
    snprintf(id, sizeof id, "%%%d", n->id);
    fprintf(out, "  %-6s %-22s %-22s %12zu %12zu\n", id, op_info[n->op].name, t,
            (size_t)c * dtype_size(n->dtype), off[i]);
    buffers++;
  }
  fprintf(out, "# %d buffers; arena %zu bytes, %zu without reuse (%.1f%%), %zu with every value "
          "stored\n", buffers, total, naive, naive ? 100.0 * (double)total / (double)naive : 100.0,
          plan_unfused_bytes(g, sym));
  free(off);
  return true;
}
