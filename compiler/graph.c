/*
 * graph.c - the IR: nodes, the op table, checked constructors.
 *
 * A Graph is an array of nodes in topological order: a node is appended only
 * after its operands exist, so creation order is a valid schedule and later
 * stages walk it forwards (evaluation) or backwards (autodiff).  Nodes are
 * made only by graph_node/graph_leaf, which run the op's shape rule and refuse
 * bad operands with a diagnostic, so an ill-shaped node never exists.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "compiler.h"

const OpInfo op_info[OP_COUNT] = {
#define OP(e, nm, ar, kd, sh, gr, ev, gen, id, fl) [OP_##e] = {nm, ar, kd, sh, gr, ev, id, fl},
    GRADC_OPS(OP)
#undef OP
};

const char *const dtype_names[DT_COUNT] = {
#define X(id, name, ctype, bytes) [DT_##id] = name,
    GRADC_ABI_DTYPES(X)
#undef X
};

const char *const init_names[INIT_COUNT] = {
#define X(id, name) [INIT_##id] = name,
    GRADC_ABI_INITS(X)
#undef X
};

size_t dtype_size(DType t) { return abi_dtype_bytes(t); }

/* Keras' _compute_fans (keras/initializers/initializers_v2.py): the
 * receptive field (every axis but the last two) times the input axis
 * (out = 0) or the output axis (out = 1). */
static int64_t fan(const Shape *s, int out) {
  if (s->rank < 1) return 1;
  if (s->rank == 1) return s->d[0].n;
  int64_t rf = 1;
  for (int i = 0; i < s->rank - 2; i++) rf *= s->d[i].n;
  return s->d[s->rank - 2 + out].n * rf;
}

int64_t fan_in(const Shape *s) { return fan(s, 0); }
int64_t fan_out(const Shape *s) { return fan(s, 1); }

void init_values(const Node *n, uint64_t seed, double *out, int64_t count) {
  bool known = init_fill(n->a.init.kind, n->a.init.a, n->a.init.b, n->dtype, (double)fan_in(&n->shape),
                         (double)fan_out(&n->shape), n->name, n->a.values, seed, out, count);
  GRADC_ASSERT(known);
}

bool dtype_is_float(DType t) { return t == DT_F32 || t == DT_F64; }

bool dtype_holds(DType t, double v) {
  switch (t) {
  case DT_F32: return fabs(v) <= FLT_MAX;
  case DT_I32: return v >= INT32_MIN && v <= INT32_MAX;
  default: return isfinite(v);
  }
}

const char *dtype_range(DType t) {
  switch (t) {
  case DT_F32: return "at most 3.4028235e+38 in magnitude";
  case DT_I32: return "-2147483648 to 2147483647";
  default: return "finite";
  }
}

Graph *graph_new(Arena *a, Diags *d, const Source *src) {
  Graph *g = arena_alloc(a, sizeof *g);
  g->arena = a;
  g->diags = d;
  g->src = src;
  g->cap = 64;
  g->nodes = arena_alloc(a, sizeof(Node *) * (size_t)g->cap);
  return g;
}

bool graph_error(Graph *g, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(g->arena, g->diags, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
  return false;
}

static Node *append(Graph *g, Node *n) {
  if (g->nnodes == g->cap) {
    Node **grown = arena_alloc(g->arena, sizeof(Node *) * (size_t)g->cap * 2);
    memcpy(grown, g->nodes, sizeof(Node *) * (size_t)g->cap);
    g->nodes = grown;
    g->cap *= 2;
  }
  n->id = g->nnodes;
  g->nodes[g->nnodes++] = n;
  return n;
}

/* The loop whose body n belongs to (compiler.h: Scan).  A value that
 * reads some body's values is in that body, or, while a loop is being
 * built (its gradient reads the forward body's values, which autodiff
 * then replaces by saved ones), in the loop being built; a value reading
 * only outer ones is computed once outside (a dropout mask drawn from a
 * shape: the same at every step). */
static int loop_of(const Graph *g, const Node *n) {
  switch (n->op) {
  case OP_CARRY: case OP_SCAN_SLICE: case OP_LOOP_END: return g->cur_loop;
  case OP_SCAN_STACK: case OP_SCAN_LAST: return 0;
  default: break;
  }
  int l = 0;
  for (int i = 0; i < n->nsrc; i++)
    if (n->src[i]->a.loop) l = n->src[i]->a.loop;
  if (l && g->cur_loop) return g->cur_loop;
  return l;
}

Node *graph_node(Graph *g, OpKind op, Node **src, int nsrc, const Attrs *a,
                 Loc loc) {
  const OpInfo *info = &op_info[op];
  GRADC_ASSERT(info->arity < 0 || info->arity == nsrc);
  Node *n = arena_alloc(g->arena, sizeof *n);
  n->op = op;
  n->loc = loc;
  if (a) n->a = *a;
  n->nsrc = nsrc;
  n->src = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nsrc ? nsrc : 1));
  for (int i = 0; i < nsrc; i++) {
    n->src[i] = src[i];
    src[i]->flags |= N_USED;
  }
  n->a.loop = loop_of(g, n);
  if (!info->shape(g, n)) return NULL;
  if (shape_static_count(&n->shape) < 0) {
    char b[SHAPE_STR_MAX];
    graph_error(g, loc, "%s result %s has more than 2^40 elements", info->name,
                shape_str(g, &n->shape, b, sizeof b));
    return NULL;
  }
  return append(g, n);
}

Node *graph_leaf(Graph *g, OpKind op, const char *name, DType t,
                 const Shape *s, Loc loc) {
  Node *n = arena_alloc(g->arena, sizeof *n);
  n->op = op;
  n->name = name;
  n->dtype = t;
  n->shape = *s;
  n->loc = loc;
  n->src = arena_alloc(g->arena, sizeof(Node *));
  if (op == OP_INPUT) n->flags |= N_INPUT;
  if (op == OP_PARAM) n->flags |= N_PARAM;
  return append(g, n);
}

const Node *graph_random_step(const Node *n) {
  const Node *s = n->nsrc ? n->src[n->nsrc - 1] : NULL;
  return s && s->dtype == DT_I32 && s->shape.rank == 0 ? s : NULL;
}

Node *graph_scalar(Graph *g, double v, DType t, Loc loc) {
  Shape s = {0};
  Node *k = graph_leaf(g, OP_CONST, NULL, t, &s, loc);
  k->a.values = arena_alloc(g->arena, sizeof(double));
  k->a.values[0] = v;
  return k;
}

void graph_add_output(Graph *g, Binding **list, int *n, const char *name,
                      Node *node) {
  /* The capacity is the next power of two from 8, so the list doubles
   * when full: a copy per binding made many outputs quadratic. */
  if (*n == 0 || (*n >= 8 && (*n & (*n - 1)) == 0)) {
    Binding *grown = arena_alloc(g->arena, sizeof(Binding) * (size_t)(*n ? 2 * *n : 8));
    if (*n) memcpy(grown, *list, sizeof(Binding) * (size_t)*n);
    *list = grown;
  }
  (*list)[*n] = (Binding){name, node};
  (*n)++;
}

void graph_add_update(Graph *g, Node *state, Node *value) {
  if (g->nupdates == g->capupdates) {
    int cap = g->capupdates ? 2 * g->capupdates : 8;
    StateUpdate *grown = arena_alloc(g->arena, sizeof(StateUpdate) * (size_t)cap);
    if (g->nupdates) memcpy(grown, g->updates, sizeof(StateUpdate) * (size_t)g->nupdates);
    g->updates = grown, g->capupdates = cap;
  }
  g->updates[g->nupdates++] = (StateUpdate){state, value, NULL, 0};
}

bool is_model_state(const Node *n) { return n->op == OP_STATE && !n->rule && !n->fwd; }

void graph_mark_needed(const Graph *g, Node *const *roots, int nroots, bool train,
                       unsigned char *mark) {
  memset(mark, 0, (size_t)g->nnodes);
  for (int i = 0; i < nroots; i++) mark[roots[i]->id] = 1;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    const Node *n = g->nodes[i];
    if (!mark[i]) continue;
    if (op_info[n->op].flags & F_MODE) mark[n->src[train ? 0 : 1]->id] = 1;
    else
      for (int k = 0; k < n->nsrc; k++) mark[n->src[k]->id] = 1;
    /* a loop runs all its carries, read or not: their last values */
    if (n->op == OP_LOOP_END)
      for (int k = i - 1; k >= 0 && g->nodes[k]->a.loop == n->a.loop; k--)
        if (g->nodes[k]->op == OP_CARRY) mark[k] = 1;
  }
}

int graph_nfunctions(const Graph *g) { return 1 + g->nsteps; }

int graph_max_roots(const Graph *g) { return g->nnodes + g->noutputs + g->nmetrics + g->nsteps + 1; }

int graph_function_roots(const Graph *g, int fn, Node **roots) {
  int n = 0;
  if (fn > 0)
    for (int i = 0; i < g->nnodes; i++)
      if ((op_info[g->nodes[i]->op].flags & F_EFFECT) && g->nodes[i]->a.owner == fn - 1)
        roots[n++] = g->nodes[i];
  for (int i = 0; i < g->noutputs; i++) roots[n++] = g->outputs[i].node;
  for (int i = 0; i < g->nmetrics; i++) roots[n++] = g->metrics[i].node;
  for (int s = 0; s < g->nsteps; s++)
    if (fn == 0 || fn == s + 1) roots[n++] = g->steps[s].loss;
  return n;
}

void graph_function_mark(const Graph *g, int fn, unsigned char *mark) {
  Node **roots = arena_alloc(g->arena, sizeof(Node *) * (size_t)graph_max_roots(g));
  graph_mark_needed(g, roots, graph_function_roots(g, fn, roots), fn > 0, mark);
}

const TrainStep *graph_step(const Graph *g, const char *name) {
  if (!name) return g->nsteps == 1 ? &g->steps[0] : NULL;
  for (int i = 0; i < g->nsteps; i++)
    if (strcmp(g->steps[i].name, name) == 0) return &g->steps[i];
  return NULL;
}

int graph_new_scan(Graph *g, Dim len, bool reverse, Loc loc) {
  Scan *grown = arena_alloc(g->arena, sizeof(Scan) * (size_t)(g->nscans + 1));
  if (g->nscans) memcpy(grown, g->scans, sizeof(Scan) * (size_t)g->nscans);
  grown[g->nscans] = (Scan){.len = len, .reverse = reverse, .loc = loc};
  g->scans = grown;
  return ++g->nscans;
}

Node *graph_loop_end(const Graph *g, int l) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i]->op == OP_LOOP_END && g->nodes[i]->a.loop == l) return g->nodes[i];
  return NULL;
}

int graph_loop_begin(const Graph *g, int l) {
  const Node *e = graph_loop_end(g, l);
  GRADC_ASSERT(e);
  int i = e->id;
  while (i > 0 && g->nodes[i - 1]->a.loop == l) i--;
  return i;
}

Node *graph_loop_carry(const Graph *g, int l, int slot) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *c = g->nodes[i];
    if (c->op == OP_CARRY && c->a.loop == l && c->a.slot == slot) return c;
  }
  return NULL;
}

int graph_loop_add(Graph *g, Node *e, Node *v) {
  for (int k = e->a.slot; k < e->nsrc; k++)
    if (e->src[k] == v) return k;        /* stacked already */
  Node **src = arena_alloc(g->arena, sizeof(Node *) * (size_t)(e->nsrc + 1));
  memcpy(src, e->src, sizeof(Node *) * (size_t)e->nsrc);
  src[e->nsrc] = v;
  v->flags |= N_USED;
  e->src = src;
  return e->nsrc++;
}

int graph_sym(Graph *g, const char *name) {
  for (int i = 1; i <= g->nsym; i++)
    if (strcmp(g->sym[i], name) == 0) return i;
  if (g->nsym == MAX_SYMS) return 0;
  g->sym[++g->nsym] = arena_strdup(g->arena, name);
  return g->nsym;
}

bool dim_eq(Dim a, Dim b) { return a.n == b.n && a.sym == b.sym; }
bool dim_is_one(Dim a) { return a.n == 1 && a.sym == 0; }

bool shape_eq(const Shape *a, const Shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (!dim_eq(a->d[i], b->d[i])) return false;
  return true;
}

int64_t shape_static_count(const Shape *s) {
  int64_t c = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t n = s->d[i].n;
    if (n < 0 || (n > 0 && c > MAX_ELEMENTS / n)) return -1;
    c *= n;
  }
  return c;
}

char *dim_str(const Graph *g, Dim d, char *buf, size_t n) {
  if (!d.sym) snprintf(buf, n, "%lld", (long long)d.n);
  else if (d.n == 1) snprintf(buf, n, "%s", g->sym[d.sym]);
  else snprintf(buf, n, "%lld*%s", (long long)d.n, g->sym[d.sym]);
  return buf;
}

char *shape_str(const Graph *g, const Shape *s, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = 0;
  used += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < s->rank && used < n; i++) {
    char d[48];
    used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "",
                             dim_str(g, s->d[i], d, sizeof d));
  }
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}
