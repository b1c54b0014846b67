/*
 * verify.c - the graph's invariants, checked between stages (QBE's ssacheck,
 * LLVM's -verify-each).
 *
 * Every stage promises the next one a well-formed graph; a pass that breaks
 * that promise should fail where it broke it, not three stages later as a
 * wrong number.  graph_verify checks, for every node:
 *
 *   - it sits at g->nodes[n->id] and is not a replaced (moved) node;
 *   - its operands exist, are in the graph, and come before it;
 *   - its operand count is its op's arity;
 *   - its shape and dtype are what its op's shape rule computes from its
 *     operands and attributes (the rule is rerun on a copy);
 *   - assignments come after every other node (all reads of a step happen
 *     before any write);
 *   - each loop's body is one run of nodes ending in its loop_end, which
 *     only its stacks and last values read from outside (loop_ok);
 *   - the roots (outputs, metrics, the loss, gradients, state updates) are
 *     nodes of the graph;
 *   - once fuse() has assigned storage: a node inlined into a loop is read
 *     by a later node; a node's storage is a node of the graph that owns its
 *     buffer, with the same dtype and element count; a node without storage
 *     is computed inside a loop or needs no buffer (constants, sizes,
 *     assignments, views of those).
 *
 * compile() runs it after every stage and pass when CompileOptions.verify
 * is set: by default in Debug and sanitizer builds (GRADC_VERIFY), and in
 * any build where the environment has GRADC_VERIFY=1 (the test suites set
 * it).  A violation is our bug, never the user's: compile() aborts with the
 * message (GRADC_ASSERT's channel).
 */
#include <stdarg.h>
#include <string.h>

#include "compiler.h"

typedef struct Verifier {
  const Graph *g;
  char *err;
  size_t errlen;
} Verifier;

static bool bad(Verifier *v, const Node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool bad(Verifier *v, const Node *n, const char *fmt, ...) {
  int at = 0;
  if (n)
    at = snprintf(v->err, v->errlen, "node %%%d (%s%s%s, line %d): ", n->id, op_info[n->op].name,
                  n->name ? " " : "", n->name ? n->name : "", n->loc.line);
  if (at < 0 || (size_t)at >= v->errlen) return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->err + at, v->errlen - (size_t)at, fmt, ap);
  va_end(ap);
  return false;
}

static bool in_graph(const Graph *g, const Node *n) {
  return n && n->id >= 0 && n->id < g->nnodes && g->nodes[n->id] == n;
}

/* Reruns n's shape rule on copies of n and its operands.  The copies of
 * the operands are marked strong: a weak literal has adopted its dtype when
 * n was made, and adopting again could append nodes to the graph. */
static bool shape_agrees(Verifier *v, const Node *n) {
  if (n->op == OP_LOOP_END) return true;     /* a marker; any number of operands */
  if (n->nsrc > MAX_OPERANDS) return bad(v, n, "%d operands, more than %d", n->nsrc, MAX_OPERANDS);
  Node ops[MAX_OPERANDS], *src[MAX_OPERANDS], copy = *n;
  for (int k = 0; k < n->nsrc; k++) {
    ops[k] = *n->src[k];
    ops[k].flags &= ~(unsigned)N_WEAK;
    src[k] = &ops[k];
  }
  copy.src = src;
  Diags quiet = {0};
  Graph scratch = *v->g;       /* a failing rule reports here, not to the user */
  scratch.diags = &quiet;
  if (!op_info[n->op].shape(&scratch, &copy))
    return bad(v, n, "its shape rule rejects its operands: %s",
               quiet.first ? quiet.first->msg : "(no message)");
  char want[SHAPE_STR_MAX], have[SHAPE_STR_MAX];
  if (!shape_eq(&copy.shape, &n->shape) || copy.dtype != n->dtype)
    return bad(v, n, "is %s%s but its shape rule gives %s%s", dtype_names[n->dtype],
               shape_str(v->g, &n->shape, have, sizeof have), dtype_names[copy.dtype],
               shape_str(v->g, &copy.shape, want, sizeof want));
  return true;
}

static bool is_view_without_buffer(const Node *n) {
  while (op_info[n->op].flags & F_VIEW) n = n->src[0];
  return op_info[n->op].flags & F_IMMEDIATE;
}

static bool storage_ok(Verifier *v, const Node *n) {
  const Graph *g = v->g;
  if (n->inlined_into) {
    const Node *c = n->inlined_into;
    if (!in_graph(g, c)) return bad(v, n, "is inlined into a node that is not in the graph");
    if (c->id <= n->id) return bad(v, n, "is inlined into %%%d, which comes before it", c->id);
  }
  const Node *s = n->storage;
  if (!s) {
    if (n->inlined_into || (op_info[n->op].flags & F_EFFECT) || is_view_without_buffer(n)) return true;
    return bad(v, n, "has no storage and is computed in no loop");
  }
  if (!in_graph(g, s)) return bad(v, n, "its storage is a node that is not in the graph");
  if (s->storage != s) return bad(v, n, "its storage %%%d does not own its buffer", s->id);
  if (s != n) {
    int64_t cs = shape_static_count(&s->shape), cn = shape_static_count(&n->shape);
    if (s->dtype != n->dtype || cs != cn)
      return bad(v, n, "shares the buffer of %%%d, which holds %lld %s values, not %lld %s", s->id,
                 (long long)cs, dtype_names[s->dtype], (long long)cn, dtype_names[n->dtype]);
  }
  return true;
}

/* A loop's body is one run of nodes ending in its loop_end; a body reads
 * its own nodes and outside ones; outside, only its stacks and last values
 * read it (through the loop_end); a carry's slot names a next value. */
static bool loop_ok(Verifier *v, const Node *n, int *open) {
  const Graph *g = v->g;
  int l = n->a.loop;
  if (l < 0 || l > g->nscans) return bad(v, n, "is in loop %d of %d", l, g->nscans);
  if (l != *open) {
    if (*open) return bad(v, n, "follows loop %d, which has no loop_end", *open);
    const Node *e = l ? graph_loop_end(g, l) : NULL;
    if (e && e->id < n->id) return bad(v, n, "is in loop %d, whose body ended before it", l);
    *open = l;
  }
  if (n->op == OP_LOOP_END) {
    if (!l) return bad(v, n, "is the end of no loop");
    *open = 0;
  }
  if ((n->op == OP_CARRY || n->op == OP_SCAN_SLICE) && !l) return bad(v, n, "is outside every loop");
  if (n->op == OP_CARRY) {
    const Node *e = graph_loop_end(g, l);
    if (!e || n->a.slot < 0 || n->a.slot >= e->a.slot)
      return bad(v, n, "carries slot %d, which its loop_end does not have", n->a.slot);
  }
  for (int k = 0; k < n->nsrc; k++) {
    int sl = n->src[k]->a.loop;
    bool reads_end = n->op == OP_SCAN_STACK || n->op == OP_SCAN_LAST;
    if (sl && sl != l && !(reads_end && n->src[k]->op == OP_LOOP_END))
      return bad(v, n, "in loop %d reads %%%d of loop %d", l, n->src[k]->id, sl);
  }
  return true;
}

static bool root_ok(Verifier *v, const Node *n, const char *role) {
  if (in_graph(v->g, n) && !n->moved) return true;
  return bad(v, NULL, "the %s is not a node of the graph", role);
}

bool graph_verify(const Graph *g, bool storage, char *err, size_t errlen) {
  Verifier v = {g, err, errlen};
  bool assigns = false;
  int open = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!n) return bad(&v, NULL, "g->nodes[%d] is NULL", i);
    if (n->id != i) return bad(&v, n, "is at index %d", i);
    if (n->moved) return bad(&v, n, "was replaced by another node but is still in the graph");
    const OpInfo *info = &op_info[n->op];
    if (info->arity >= 0 && n->nsrc != info->arity)
      return bad(&v, n, "has %d operands; %s takes %d", n->nsrc, info->name, info->arity);
    for (int k = 0; k < n->nsrc; k++) {
      const Node *s = n->src[k];
      if (!s) return bad(&v, n, "operand %d is NULL", k);
      if (!in_graph(g, s) || s->moved) return bad(&v, n, "operand %d is not a node of the graph", k);
      if (s->id >= i) return bad(&v, n, "operand %d (%%%d) is defined after it", k, s->id);
    }
    if (n->op == OP_ASSIGN && (n->a.owner < 0 || n->a.owner >= g->nsteps))
      return bad(&v, n, "is applied by train step %d of %d", n->a.owner, g->nsteps);
    if (n->op == OP_ASSIGN) assigns = true;
    else if (assigns) return bad(&v, n, "comes after an assignment");
    if ((info->kind != K_LEAF && !shape_agrees(&v, n)) || (storage && !storage_ok(&v, n)) ||
        !loop_ok(&v, n, &open))
      return false;
  }
  if (open) return bad(&v, NULL, "loop %d has no loop_end", open);
  for (int i = 0; i < g->noutputs; i++)
    if (!root_ok(&v, g->outputs[i].node, "output")) return false;
  for (int i = 0; i < g->nmetrics; i++)
    if (!root_ok(&v, g->metrics[i].node, "metric")) return false;
  for (int s = 0; s < g->nsteps; s++) {
    const TrainStep *st = &g->steps[s];
    if (!root_ok(&v, st->loss, "loss")) return false;
    for (int i = 0; i < st->ngrads; i++)
      if (!root_ok(&v, st->grads[i].param, "gradient's parameter") ||
          !root_ok(&v, st->grads[i].grad, "gradient"))
        return false;
  }
  for (int i = 0; i < g->nupdates; i++)
    if (!root_ok(&v, g->updates[i].state, "updated state") || !root_ok(&v, g->updates[i].value, "update"))
      return false;
  return true;
}
