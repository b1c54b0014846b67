/*
 * eval.c - the reference evaluator: the oracle for tests and gradc check.
 *
 * Plain loops, one node at a time, in double precision whatever the declared
 * dtype (integers and bools are held exactly as doubles), no fusion, no
 * cleverness: it exists to be obviously right, not fast.  The compiled code
 * is checked against it.
 *
 * Usage: eval_new(graph), eval_bind(batch and other symbols), eval_init(seed)
 * for parameters and optimizer state, fill the INPUT buffers (eval_data),
 * then eval_run with the roots to compute, or one of the compiled
 * functions' roots (eval_function; eval_forward, eval_step for train step s).
 * Parameters and state keep their own storage across binds and runs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

struct Eval {
  const Graph *g;
  int64_t sym[MAX_SYMS + 1];
  double **v;           /* value buffer per node id */
  int64_t *count;       /* elements per node id, under the current binding */
  unsigned char *mark;
  bool bound;
  bool infer;           /* train_select takes its second operand */
  /* In a loop: the iteration's index along the sliced axis, and whether
   * it is the first iteration (carries take their initial values). */
  int64_t t;
  bool first;
};

static bool persistent(const Node *n) { return n->op == OP_PARAM || n->op == OP_STATE; }

static void dims(const Eval *e, const Shape *s, int64_t *d) {
  for (int i = 0; i < s->rank; i++) d[i] = s->d[i].n * e->sym[s->d[i].sym];
}

static int64_t count_of(const Eval *e, const Shape *s) {
  int64_t d[MAX_RANK], c = 1;
  dims(e, s, d);
  for (int i = 0; i < s->rank; i++) c *= d[i];
  return c;
}

Eval *eval_new(const Graph *g) {
  Eval *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->g = g;
  for (int i = 0; i <= MAX_SYMS; i++) e->sym[i] = 1;
  e->v = calloc((size_t)g->nnodes, sizeof(double *));
  e->count = calloc((size_t)g->nnodes, sizeof(int64_t));
  e->mark = calloc((size_t)g->nnodes, 1);
  if (!e->v || !e->count || !e->mark) {
    eval_free(e);
    return NULL;
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!persistent(n)) continue;
    e->count[i] = count_of(e, &n->shape);
    e->v[i] = calloc((size_t)(e->count[i] ? e->count[i] : 1), sizeof(double));
    if (!e->v[i]) {
      eval_free(e);
      return NULL;
    }
  }
  return e;
}

void eval_free(Eval *e) {
  if (!e) return;
  if (e->v)
    for (int i = 0; i < e->g->nnodes; i++) free(e->v[i]);
  free(e->v);
  free(e->count);
  free(e->mark);
  free(e);
}

/* Binds a symbolic dimension and sizes every non-persistent buffer. */
bool eval_bind(Eval *e, const char *sym, int64_t value) {
  if (value < 1 || value > ((int64_t)1 << 31)) return false;
  for (int k = 1; k <= e->g->nsym; k++)
    if (!strcmp(e->g->sym[k], sym)) e->sym[k] = value;
  for (int i = 0; i < e->g->nnodes; i++) {
    const Node *n = e->g->nodes[i];
    if (persistent(n) || n->op == OP_ASSIGN) continue;
    free(e->v[i]);
    e->count[i] = count_of(e, &n->shape);
    e->v[i] = calloc((size_t)(e->count[i] ? e->count[i] : 1), sizeof(double));
    if (!e->v[i]) {
      e->bound = false;
      return false;
    }
    if (n->op == OP_CONST) memcpy(e->v[i], n->a.values, sizeof(double) * (size_t)e->count[i]);
  }
  /* Leaves that depend only on the binding are filled now. */
  for (int i = 0; i < e->g->nnodes; i++)
    if (e->g->nodes[i]->op == OP_SIZE) eval_size(e, e->g->nodes[i]);
  e->bound = true;
  return true;
}

double *eval_data(Eval *e, const Node *n) {
  if (n->op == OP_ASSIGN) return e->v[n->src[0]->id];
  return e->v[n->id];
}

int64_t eval_count(const Eval *e, const Node *n) { return e->count[n->id]; }

void eval_init(Eval *e, uint64_t seed) {
  for (int i = 0; i < e->g->nnodes; i++) {
    const Node *n = e->g->nodes[i];
    if (persistent(n)) init_values(n, seed, e->v[i], e->count[i]);
  }
}

static int64_t dim_value(const Eval *e, Dim d) { return d.n * e->sym[d.sym]; }

/* Runs the body of loop l, nodes [begin, its loop_end], once per
 * iteration; returns the id after it. */
static int run_loop(Eval *e, int l, int begin) {
  const Graph *g = e->g;
  const Scan *sc = &g->scans[l - 1];
  int end = begin;
  while (g->nodes[end]->op != OP_LOOP_END || g->nodes[end]->a.loop != l) end++;
  int64_t len = dim_value(e, sc->len);
  for (int64_t i = 0; i < len; i++) {
    e->t = sc->reverse ? len - 1 - i : i;
    e->first = i == 0;
    for (int k = begin; k <= end; k++)
      if (e->mark[k]) op_info[g->nodes[k]->op].eval(e, g->nodes[k]);
  }
  return end + 1;
}

void eval_run(Eval *e, Node *const *roots, int nroots) {
  GRADC_ASSERT(e->bound);
  const Graph *g = e->g;
  graph_mark_needed(g, roots, nroots, !e->infer, e->mark);
  for (int i = 0; i < g->nnodes;) {
    const Node *n = g->nodes[i];
    if (e->mark[i] && n->a.loop) i = run_loop(e, n->a.loop, i);
    else {
      if (e->mark[i] && op_info[n->op].kind != K_LEAF) op_info[n->op].eval(e, n);
      i++;
    }
  }
}

void eval_set_train(Eval *e, bool train) { e->infer = !train; }

/* eval_run for one root after only `changed` has new values: nodes that do
 * not depend on it keep theirs. */
void eval_rerun(Eval *e, Node *root, const Node *changed) {
  GRADC_ASSERT(e->bound);
  const Graph *g = e->g;
  if (g->nscans) {     /* a loop's carries depend on themselves: all of it */
    eval_run(e, &root, 1);
    return;
  }
  graph_mark_needed(g, &root, 1, !e->infer, e->mark);
  /* mark 2 = depends on changed */
  e->mark[changed->id] = 2;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!e->mark[i] || e->mark[i] == 2) continue;
    for (int k = 0; k < n->nsrc && e->mark[i] != 2; k++)
      if (e->mark[n->src[k]->id] == 2) e->mark[i] = 2;
    if (e->mark[i] == 2 && op_info[n->op].kind != K_LEAF) op_info[n->op].eval(e, n);
  }
}

/* Function fn of graph_function_roots: 0 forward (inference mode), 1 + i
 * train step i (training mode), what codegen's functions compute. */
void eval_function(Eval *e, int fn) {
  const Graph *g = e->g;
  Node **roots = malloc(sizeof(Node *) * (size_t)graph_max_roots(g));
  GRADC_ASSERT(roots);
  int n = graph_function_roots(g, fn, roots);
  bool infer = e->infer;
  e->infer = fn == 0;
  eval_run(e, roots, n);
  e->infer = infer;
  free(roots);
}

void eval_forward(Eval *e) { eval_function(e, 0); }

void eval_step(Eval *e, int step) { eval_function(e, 1 + step); }

/* ------------------------------------------------------------ iteration */

/* Walks the elements of a shape in row-major order, keeping an offset into
 * each of up to three operands with their own strides (0 = broadcast). */
typedef struct It {
  int rank, nin;
  int64_t d[MAX_RANK], idx[MAX_RANK];
  int64_t st[3][MAX_RANK], off[3];
} It;

static void it_next(It *t) {
  for (int i = t->rank - 1; i >= 0; i--) {
    t->idx[i]++;
    for (int m = 0; m < t->nin; m++) t->off[m] += t->st[m][i];
    if (t->idx[i] < t->d[i]) return;
    for (int m = 0; m < t->nin; m++) t->off[m] -= t->st[m][i] * t->d[i];
    t->idx[i] = 0;
  }
}

/* Strides of operand shape `in` read as if broadcast to out dims od[R]. */
static void bstrides(const Eval *e, const Shape *in, int R, const int64_t *od, int64_t *st) {
  int64_t d[MAX_RANK], stride = 1;
  dims(e, in, d);
  for (int i = R - 1; i >= 0; i--) {
    int j = i - (R - in->rank);
    if (j < 0) {
      st[i] = 0;
      continue;
    }
    st[i] = d[j] == 1 && od[i] != 1 ? 0 : stride;
    stride *= d[j];
  }
}

static void row_strides(const int64_t *d, int r, int64_t *st) {
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) st[i] = s, s *= d[i];
}

static It it_out(const Eval *e, const Node *n, int nin) {
  It t = {.rank = n->shape.rank, .nin = nin};
  dims(e, &n->shape, t.d);
  for (int m = 0; m < nin; m++) bstrides(e, &n->src[m]->shape, t.rank, t.d, t.st[m]);
  return t;
}

/* ------------------------------------------------------------ kernels */

void eval_leaf(Eval *e, const Node *n) { (void)e, (void)n; }

void eval_size(Eval *e, const Node *n) { e->v[n->id][0] = (double)count_of(e, &n->a.to); }

/* i32 arithmetic wraps around in two's complement, as the compiled code's
 * (and TF's) does: INT_MIN / -1 and -INT_MIN are INT_MIN. */
static double wrap_i32(int64_t v) {
  uint32_t u = (uint32_t)v;
  return u >= 0x80000000u ? (double)u - 4294967296.0 : (double)u;
}

/* Python's a // b on integers, exactly; 0 when b is 0, as the compiled code. */
static int64_t ifloor_div(int64_t a, int64_t b) {
  if (b == 0) return 0;
  int64_t q = a / b;
  if (a % b != 0 && (a < 0) != (b < 0)) q--;
  return q;
}

/* Python's a % b on integers: the sign of b; 0 when b is 0, as a // b. */
static int64_t ifloor_mod(int64_t a, int64_t b) {
  return b == 0 ? 0 : a - ifloor_div(a, b) * b;
}

/* TF's FloorMod on floats: fmod is exact, then moved into b's sign. */
static double floor_mod(double a, double b) {
  double r = fmod(a, b);
  return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

/* An i32 value held as a double, as an int64: products and sums of two
 * stay exact.  (A value outside i32's range comes from no i32 tensor; it
 * is clamped rather than converted with undefined behaviour.) */
static int64_t as_int(double x) {
  return x > 2147483648.0 ? INT64_C(2147483648) : x < -2147483648.0 ? -INT64_C(2147483648) : (int64_t)x;
}

/* Float +, -, *, / a row of the last axis at a time, the operation chosen
 * once per row: most of the evaluator's elementwise time in the many
 * re-evaluations of a `gradc check`.  False for every other case. */
static bool binary_rows(Eval *e, const Node *n, const double *a, const double *b, double *y) {
  OpKind op = n->op;
  if (!dtype_is_float(n->dtype) || (op != OP_ADD && op != OP_SUB && op != OP_MUL && op != OP_DIV)) return false;
  It t = it_out(e, n, 2);
  if (t.rank == 0) return false;
  int last = --t.rank;                 /* it_next walks the other axes */
  int64_t len = t.d[last], sa = t.st[0][last], sb = t.st[1][last], c = e->count[n->id];
  for (int64_t at = 0; len > 0 && at < c; at += len, it_next(&t)) {
    const double *x = a + t.off[0], *z = b + t.off[1];
    double *r = y + at;
    switch (op) {
    case OP_ADD: for (int64_t j = 0; j < len; j++) r[j] = x[j * sa] + z[j * sb]; break;
    case OP_SUB: for (int64_t j = 0; j < len; j++) r[j] = x[j * sa] - z[j * sb]; break;
    case OP_MUL: for (int64_t j = 0; j < len; j++) r[j] = x[j * sa] * z[j * sb]; break;
    default: for (int64_t j = 0; j < len; j++) r[j] = x[j * sa] / z[j * sb]; break;
    }
  }
  return true;
}

void eval_binary(Eval *e, const Node *n) {
  double *y = e->v[n->id], *a = e->v[n->src[0]->id], *b = e->v[n->src[1]->id];
  if (binary_rows(e, n, a, b, y)) return;
  It t = it_out(e, n, 2);
  bool ints = !dtype_is_float(n->src[0]->dtype);
  for (int64_t k = 0, c = e->count[n->id]; k < c; k++, it_next(&t)) {
    double x = a[t.off[0]], z = b[t.off[1]], r = 0;
    switch (n->op) {
    case OP_ADD: r = x + z; break;
    case OP_SUB: r = x - z; break;
    case OP_MUL: r = x * z; break;
    case OP_DIV: r = ints ? (double)ifloor_div(as_int(x), as_int(z)) : x / z; break;
    case OP_POW: r = pow(x, z); break;
    case OP_FLOORDIV: r = ints ? (double)ifloor_div(as_int(x), as_int(z)) : floor(x / z); break;
    case OP_FLOORMOD: r = ints ? (double)ifloor_mod(as_int(x), as_int(z)) : floor_mod(x, z); break;
    case OP_MAXIMUM: r = x >= z ? x : z; break;
    case OP_MINIMUM: r = x <= z ? x : z; break;
    case OP_EQ: r = x == z; break;
    case OP_NE: r = x != z; break;
    case OP_LT: r = x < z; break;
    case OP_LE: r = x <= z; break;
    case OP_GT: r = x > z; break;
    case OP_GE: r = x >= z; break;
    default: GRADC_ASSERT(!"not a binary op");
    }
    if (n->dtype == DT_I32) {
      int64_t xi = as_int(x), zi = as_int(z);
      if (n->op == OP_ADD) r = wrap_i32(xi + zi);
      else if (n->op == OP_SUB) r = wrap_i32(xi - zi);
      else if (n->op == OP_MUL) r = wrap_i32(xi * zi);
      else if (n->op == OP_DIV || n->op == OP_FLOORDIV) r = wrap_i32(ifloor_div(xi, zi));
    }
    y[k] = r;
  }
}

static double sigmoid(double x) {
  if (x >= 0) return 1 / (1 + exp(-x));
  double z = exp(x);
  return z / (1 + z);
}

void eval_unary(Eval *e, const Node *n) {
  double *y = e->v[n->id], *a = e->v[n->src[0]->id];
  for (int64_t k = 0, c = e->count[n->id]; k < c; k++) {
    double x = a[k], r = 0;
    switch (n->op) {
    case OP_NEG: r = -x; break;
    case OP_ABS: r = fabs(x); break;
    case OP_SQUARE: r = x * x; break;
    case OP_RELU: r = x > 0 ? x : 0; break;
    case OP_LEAKY_RELU: r = x > 0 ? x : n->a.alpha * x; break;
    case OP_SIGMOID: r = sigmoid(x); break;
    case OP_TANH: r = tanh(x); break;
    case OP_EXP: r = exp(x); break;
    case OP_LOG: r = log(x); break;
    case OP_SQRT: r = sqrt(x); break;
    case OP_SIN: r = sin(x); break;
    case OP_ERF: r = erf(x); break;
    case OP_COS: r = cos(x); break;
    case OP_RECIPROCAL: r = 1 / x; break;
    case OP_FLOOR: r = floor(x); break;
    case OP_CEIL: r = ceil(x); break;
    case OP_ROUND: r = nearbyint(x); break;       /* ties to even, as tf.round */
    case OP_SIGN: r = (x > 0) - (x < 0); break;
    /* log(1 + exp(x)) without exp's overflow or 1 + tiny's rounding */
    case OP_SOFTPLUS: r = fmax(x, 0) + log1p(exp(-fabs(x))); break;
    case OP_CLIP: r = x < n->a.lo ? n->a.lo : x > n->a.hi ? n->a.hi : x; break;
    case OP_CAST:
      switch (n->a.dtype) {
      case DT_F32:                /* floats stay double, like every f32 here */
      case DT_F64: r = x; break;
      case DT_I32: r = trunc(x); break;
      case DT_BOOL: r = x != 0; break;
      case DT_COUNT: GRADC_ASSERT(0);
      }
      break;
    default: GRADC_ASSERT(!"not a unary op");
    }
    if (n->dtype == DT_I32) {      /* wraps as the compiled code does */
      int64_t xi = as_int(x);
      if (n->op == OP_NEG) r = wrap_i32(-xi);
      else if (n->op == OP_ABS) r = wrap_i32(xi < 0 ? -xi : xi);
      else if (n->op == OP_SQUARE) r = wrap_i32(xi * xi);
    }
    y[k] = r;
  }
}

void eval_where(Eval *e, const Node *n) {
  double *y = e->v[n->id], *c = e->v[n->src[0]->id];
  double *a = e->v[n->src[1]->id], *b = e->v[n->src[2]->id];
  It t = it_out(e, n, 3);
  for (int64_t k = 0, cnt = e->count[n->id]; k < cnt; k++, it_next(&t))
    y[k] = c[t.off[0]] != 0 ? a[t.off[1]] : b[t.off[2]];
}

void eval_matmul(Eval *e, const Node *n) {
  const Shape *as = &n->src[0]->shape, *bs = &n->src[1]->shape;
  int64_t ad[MAX_RANK], bd[MAX_RANK];
  dims(e, as, ad);
  dims(e, bs, bd);
  int ar = as->rank, br = bs->rank;
  int64_t m = n->a.ta ? ad[ar - 1] : ad[ar - 2], k = n->a.ta ? ad[ar - 2] : ad[ar - 1];
  int64_t nn = n->a.tb ? bd[br - 2] : bd[br - 1];
  /* Batch dims broadcast like elementwise ops, in units of whole matrices. */
  Shape ab = {.rank = ar - 2}, bb = {.rank = br - 2};
  memcpy(ab.d, as->d, sizeof(Dim) * (size_t)ab.rank);
  memcpy(bb.d, bs->d, sizeof(Dim) * (size_t)bb.rank);
  It t = {.rank = n->shape.rank - 2, .nin = 2};
  dims(e, &n->shape, t.d);
  bstrides(e, &ab, t.rank, t.d, t.st[0]);
  bstrides(e, &bb, t.rank, t.d, t.st[1]);
  int64_t batches = 1;
  for (int i = 0; i < t.rank; i++) batches *= t.d[i];
  const double *A = e->v[n->src[0]->id], *B = e->v[n->src[1]->id];
  double *C = e->v[n->id];
  for (int64_t bi = 0; bi < batches; bi++, it_next(&t)) {
    const double *a = A + t.off[0] * m * k, *b = B + t.off[1] * k * nn;
    double *c = C + bi * m * nn;
    rt_dgemm(n->a.ta, n->a.tb, m, nn, k, a, b, c);
  }
}

/* outer x len x inner decomposition around one axis */
static void around(const Eval *e, const Shape *s, int axis, int64_t *outer, int64_t *len,
                   int64_t *inner) {
  int64_t d[MAX_RANK];
  dims(e, s, d);
  *outer = 1, *inner = 1, *len = d[axis];
  for (int i = 0; i < axis; i++) *outer *= d[i];
  for (int i = axis + 1; i < s->rank; i++) *inner *= d[i];
}

void eval_softmax(Eval *e, const Node *n) {
  int64_t outer, len, inner;
  around(e, &n->shape, n->a.axis, &outer, &len, &inner);
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * len * inner + in;
      double mx = -INFINITY, s = 0;
      for (int64_t j = 0; j < len; j++) mx = fmax(mx, x[base + j * inner]);
      for (int64_t j = 0; j < len; j++) s += exp(x[base + j * inner] - mx);
      for (int64_t j = 0; j < len; j++) {
        double z = x[base + j * inner] - mx;
        y[base + j * inner] = n->op == OP_SOFTMAX ? exp(z) / s : z - log(s);
      }
    }
}

/* An iterator over the operand with, as offset 0, the output element that
 * each input element reduces into. */
static It it_reduce(const Eval *e, const Node *n, uint32_t axes) {
  const Shape *xs = &n->src[0]->shape;
  It t = {.rank = xs->rank, .nin = 1};
  dims(e, xs, t.d);
  int64_t s = 1;
  for (int i = xs->rank - 1; i >= 0; i--) {
    t.st[0][i] = axes & (1u << i) ? 0 : s;
    if (!(axes & (1u << i))) s *= t.d[i];
  }
  return t;
}

void eval_reduce(Eval *e, const Node *n) {
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  int64_t cy = e->count[n->id], cx = e->count[n->src[0]->id];
  double init = n->op == OP_MAX ? -INFINITY : n->op == OP_MIN ? INFINITY : 0;
  for (int64_t k = 0; k < cy; k++) y[k] = init;
  It t = it_reduce(e, n, n->a.axes);
  for (int64_t k = 0; k < cx; k++, it_next(&t)) {
    double *o = &y[t.off[0]];
    if (n->op == OP_MAX) *o = fmax(*o, x[k]);
    else if (n->op == OP_MIN) *o = fmin(*o, x[k]);
    else if (n->op == OP_NORM) *o += x[k] * x[k];
    else *o += x[k];
  }
  if (n->op == OP_NORM)
    for (int64_t k = 0; k < cy; k++) y[k] = sqrt(y[k]);
  if (n->op == OP_MEAN && cy) {
    double per = (double)cx / (double)cy;
    for (int64_t k = 0; k < cy; k++) y[k] /= per;
  }
  /* an i32 sum wraps as the compiled code's running sum does (exact while
   * the true sum is below 2^53) */
  if (n->op == OP_SUM && n->dtype == DT_I32)
    for (int64_t k = 0; k < cy; k++) y[k] = wrap_i32((int64_t)fmod(y[k], 4294967296.0));
}

/* The first index of the extreme value along the axis (TF's tie rule). */
void eval_argreduce(Eval *e, const Node *n) {
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  int64_t cy = e->count[n->id], cx = e->count[n->src[0]->id];
  double *best = malloc(sizeof(double) * (size_t)(cy ? cy : 1));
  GRADC_ASSERT(best);
  It t = it_reduce(e, n, 1u << n->a.axis);
  for (int64_t k = 0; k < cx; k++, it_next(&t)) {
    int64_t o = t.off[0], i = t.idx[n->a.axis];
    bool better = n->op == OP_ARGMAX ? x[k] > best[o] : x[k] < best[o];
    if (i == 0 || better) best[o] = x[k], y[o] = (double)i;
  }
  free(best);
}

void eval_copy(Eval *e, const Node *n) {
  memcpy(e->v[n->id], e->v[n->src[0]->id], sizeof(double) * (size_t)e->count[n->id]);
}

void eval_transpose(Eval *e, const Node *n) {
  int64_t xd[MAX_RANK], xs[MAX_RANK];
  dims(e, &n->src[0]->shape, xd);
  row_strides(xd, n->shape.rank, xs);
  It t = {.rank = n->shape.rank, .nin = 1};
  dims(e, &n->shape, t.d);
  for (int i = 0; i < t.rank; i++) t.st[0][i] = xs[n->a.perm[i]];
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  for (int64_t k = 0, c = e->count[n->id]; k < c; k++, it_next(&t)) y[k] = x[t.off[0]];
}

void eval_broadcast(Eval *e, const Node *n) {
  It t = it_out(e, n, 1);
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  for (int64_t k = 0, c = e->count[n->id]; k < c; k++, it_next(&t)) y[k] = x[t.off[0]];
}

/* Iterates the slice's elements with offsets into the full tensor `full`. */
static It it_slice(const Eval *e, const Node *n, const Shape *sliced, const Shape *full) {
  int64_t fd[MAX_RANK], fs[MAX_RANK];
  dims(e, full, fd);
  row_strides(fd, full->rank, fs);
  It t = {.rank = sliced->rank, .nin = 1};
  dims(e, sliced, t.d);
  for (int i = 0; i < t.rank; i++) {
    t.st[0][i] = n->a.step[i] * fs[i];
    t.off[0] += n->a.begin[i] * fs[i];
  }
  return t;
}

void eval_slice(Eval *e, const Node *n) {
  It t = it_slice(e, n, &n->shape, &n->src[0]->shape);
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  for (int64_t k = 0, c = e->count[n->id]; k < c; k++, it_next(&t)) y[k] = x[t.off[0]];
}

void eval_unslice(Eval *e, const Node *n) {
  double *y = e->v[n->id];
  const double *x = e->v[n->src[0]->id];
  memset(y, 0, sizeof(double) * (size_t)e->count[n->id]);
  It t = it_slice(e, n, &n->src[0]->shape, &n->shape);
  for (int64_t k = 0, c = e->count[n->src[0]->id]; k < c; k++, it_next(&t)) y[t.off[0]] = x[k];
}

void eval_concat(Eval *e, const Node *n) {
  int64_t outer, len, inner;
  around(e, &n->shape, n->a.axis, &outer, &len, &inner);
  double *y = e->v[n->id];
  int64_t at = 0;
  for (int k = 0; k < n->nsrc; k++) {
    int64_t o2, lk, i2;
    around(e, &n->src[k]->shape, n->a.axis, &o2, &lk, &i2);
    const double *x = e->v[n->src[k]->id];
    for (int64_t o = 0; o < outer; o++)
      memcpy(y + (o * len + at) * inner, x + o * lk * inner, sizeof(double) * (size_t)(lk * inner));
    at += lk;
  }
}

/* Out-of-range class indices give an all-zero row, as in TF. */
void eval_one_hot(Eval *e, const Node *n) {
  double *y = e->v[n->id];
  const double *x = e->v[n->src[0]->id];
  int64_t d = n->a.depth;
  memset(y, 0, sizeof(double) * (size_t)e->count[n->id]);
  for (int64_t i = 0, c = e->count[n->src[0]->id]; i < c; i++)
    if (x[i] >= 0 && x[i] < (double)d) y[i * d + (int64_t)x[i]] = 1;
}

/* Row ids[i] of the table, a zero row for an id out of range. */
void eval_gather(Eval *e, const Node *n) {
  const Node *t = n->src[0];
  const double *tab = e->v[t->id], *ids = e->v[n->src[1]->id];
  double *y = e->v[n->id];
  int64_t V = t->shape.d[0].n, D = t->shape.d[1].n;
  for (int64_t i = 0, c = e->count[n->src[1]->id]; i < c; i++)
    for (int64_t j = 0; j < D; j++)
      y[i * D + j] = ids[i] >= 0 && ids[i] < (double)V ? tab[(int64_t)ids[i] * D + j] : 0;
}

void eval_scatter_add(Eval *e, const Node *n) {
  const double *u = e->v[n->src[0]->id], *ids = e->v[n->src[1]->id];
  double *y = e->v[n->id];
  int64_t V = n->a.depth, D = n->shape.d[1].n;
  memset(y, 0, sizeof(double) * (size_t)e->count[n->id]);
  for (int64_t i = 0, c = e->count[n->src[1]->id]; i < c; i++)
    if (ids[i] >= 0 && ids[i] < (double)V)
      for (int64_t j = 0; j < D; j++) y[(int64_t)ids[i] * D + j] += u[i * D + j];
}

/* ------------------------------------------------ issue 24: index ops */

void eval_take(Eval *e, const Node *n) {
  const double *x = e->v[n->src[0]->id], *idx = e->v[n->src[1]->id];
  double *y = e->v[n->id];
  double size = (double)e->count[n->src[0]->id];
  for (int64_t i = 0, c = e->count[n->id]; i < c; i++)
    y[i] = idx[i] >= 0 && idx[i] < size ? x[(int64_t)idx[i]] : 0;
}

void eval_take_add(Eval *e, const Node *n) {
  const double *u = e->v[n->src[0]->id], *idx = e->v[n->src[1]->id];
  double *y = e->v[n->id];
  int64_t size = e->count[n->id];
  memset(y, 0, sizeof(double) * (size_t)size);
  for (int64_t i = 0, c = e->count[n->src[1]->id]; i < c; i++)
    if (idx[i] >= 0 && idx[i] < (double)size) y[(int64_t)idx[i]] += u[i];
  if (n->dtype == DT_I32)
    for (int64_t i = 0; i < size; i++) y[i] = wrap_i32(as_int(y[i]));
}

/* a before b in ascending order: NaN after every number, as numpy sorts */
static bool sorts_before(double a, double b) { return a < b || (!isnan(a) && isnan(b)); }

/* A stable merge sort of each row's positions (ties in index order), so
 * O(n log n): the quadratic count of the elements before each one took
 * minutes for an axis of 10^5.  The compiled code heap-sorts the pairs
 * (value, index) instead, which order the same way. */
void eval_argsort(Eval *e, const Node *n) {
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  int64_t outer, len, inner;
  around(e, &n->shape, n->a.axis, &outer, &len, &inner);
  int64_t *ix = malloc(sizeof(int64_t) * 2 * (size_t)(len ? len : 1)), *tmp = ix + len;
  GRADC_ASSERT(ix);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      const double *row = x + o * len * inner + in;
      int64_t *a = ix, *b = tmp;
      for (int64_t k = 0; k < len; k++) a[k] = k;
      for (int64_t w = 1; w < len; w *= 2) {
        for (int64_t lo = 0; lo < len; lo += 2 * w) {
          int64_t mid = lo + w < len ? lo + w : len, hi = lo + 2 * w < len ? lo + 2 * w : len;
          int64_t i = lo, j = mid, k = lo;
          while (i < mid && j < hi) b[k++] = sorts_before(row[a[j] * inner], row[a[i] * inner]) ? a[j++] : a[i++];
          while (i < mid) b[k++] = a[i++];
          while (j < hi) b[k++] = a[j++];
        }
        int64_t *t = a;
        a = b, b = t;
      }
      for (int64_t k = 0; k < len; k++) y[(o * len + k) * inner + in] = (double)a[k];
    }
  free(ix);
}

void eval_cumsum(Eval *e, const Node *n) {
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  int64_t outer, len, inner;
  around(e, &n->shape, n->a.axis, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      double acc = n->op == OP_CUMPROD;
      for (int64_t j = 0; j < len; j++) {
        int64_t at = (o * len + j) * inner + in;
        if (n->op == OP_CUMPROD && n->dtype == DT_I32) acc = wrap_i32(as_int(acc) * as_int(x[at]));
        else if (n->op == OP_CUMPROD) acc *= x[at];
        else acc += x[at];
        if (n->dtype == DT_I32) acc = wrap_i32(as_int(acc));
        y[at] = acc;
      }
    }
}

/* Per row: logsumexp(x) - x[label], or sum(t * (logsumexp(x) - x)). */
void eval_softmax_ce(Eval *e, const Node *n) {
  const Node *lg = n->src[0], *lb = n->src[1];
  const double *x = e->v[lg->id], *l = e->v[lb->id];
  double *y = e->v[n->id];
  int64_t rows = e->count[n->id], C = lg->shape.d[lg->shape.rank - 1].n;
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * C;
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < C; j++) mx = fmax(mx, xr[j]);
    for (int64_t j = 0; j < C; j++) s += exp(xr[j] - mx);
    double lse = mx + log(s);
    if (lb->dtype == DT_I32) {
      double c = l[r];
      y[r] = c >= 0 && c < (double)C ? lse - xr[(int64_t)c] : NAN;
    } else {
      double acc = 0;
      for (int64_t j = 0; j < C; j++) acc += l[r * C + j] * (lse - xr[j]);
      y[r] = acc;
    }
  }
}

void eval_sigmoid_ce(Eval *e, const Node *n) {
  const double *x = e->v[n->src[0]->id], *z = e->v[n->src[1]->id];
  double *y = e->v[n->id];
  for (int64_t k = 0, c = e->count[n->id]; k < c; k++)
    y[k] = fmax(x[k], 0) - x[k] * z[k] + log1p(exp(-fabs(x[k])));
}

/* ------------------------------------------------------------ windows */

/* The geometry of a window op: input [b, h, w, c], output rows and columns,
 * and where kernel tap (ki, kj) of output (oh, ow) lands in the input. */
typedef struct Geo {
  int64_t b, h, w, c, oh, ow;
  const Window *win;
} Geo;

static Geo geo(const Eval *e, const Node *n, const Shape *in) {
  Geo q = {.win = &n->a.win};
  int64_t d[MAX_RANK];
  dims(e, in, d);
  q.b = d[0], q.h = d[1], q.w = d[2], q.c = d[3];
  GRADC_ASSERT(window_out(q.win, in, &q.oh, &q.ow));
  return q;
}

/* The input offset of tap (ki, kj) at output (bi, oh, ow), channel 0; -1
 * when it falls into the padding. */
static int64_t tap(const Geo *q, int64_t bi, int64_t oh, int64_t ow, int64_t ki, int64_t kj) {
  int64_t ih = oh * q->win->stride[0] + ki * q->win->dil[0] - q->win->pad[0];
  int64_t iw = ow * q->win->stride[1] + kj * q->win->dil[1] - q->win->pad[2];
  if (ih < 0 || ih >= q->h || iw < 0 || iw >= q->w) return -1;
  return ((bi * q->h + ih) * q->w + iw) * q->c;
}

/* Visits every (output position, tap) pair; cols is the offset of the tap's
 * first channel in im2col's [b, oh, ow, kh*kw*c] layout, at the offset of
 * the output position's first channel in a [b, oh, ow, c] layout. */
#define FOR_TAPS(q, bi, oh, ow, ki, kj)                                      \
  for (int64_t bi = 0; bi < (q).b; bi++)                                     \
    for (int64_t oh = 0; oh < (q).oh; oh++)                                  \
      for (int64_t ow = 0; ow < (q).ow; ow++)                                \
        for (int64_t ki = 0; ki < (q).win->k[0]; ki++)                       \
          for (int64_t kj = 0; kj < (q).win->k[1]; kj++)

static int64_t col_at(const Geo *q, int64_t bi, int64_t oh, int64_t ow, int64_t ki, int64_t kj) {
  int64_t kk = q->win->k[0] * q->win->k[1] * q->c;
  return ((bi * q->oh + oh) * q->ow + ow) * kk + (ki * q->win->k[1] + kj) * q->c;
}

static int64_t out_at(const Geo *q, int64_t bi, int64_t oh, int64_t ow) {
  return ((bi * q->oh + oh) * q->ow + ow) * q->c;
}

void eval_im2col(Eval *e, const Node *n) {
  Geo q = geo(e, n, &n->src[0]->shape);
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  FOR_TAPS(q, bi, oh, ow, ki, kj) {
    int64_t at = tap(&q, bi, oh, ow, ki, kj), o = col_at(&q, bi, oh, ow, ki, kj);
    for (int64_t c = 0; c < q.c; c++) y[o + c] = at < 0 ? 0 : x[at + c];
  }
}

void eval_col2im(Eval *e, const Node *n) {
  Geo q = geo(e, n, &n->shape);
  const double *y = e->v[n->src[0]->id];
  double *x = e->v[n->id];
  memset(x, 0, sizeof(double) * (size_t)e->count[n->id]);
  FOR_TAPS(q, bi, oh, ow, ki, kj) {
    int64_t at = tap(&q, bi, oh, ow, ki, kj), o = col_at(&q, bi, oh, ow, ki, kj);
    if (at >= 0)
      for (int64_t c = 0; c < q.c; c++) x[at + c] += y[o + c];
  }
}

/* Taps of one output position that fall inside the input. */
static int64_t inside_taps(const Geo *q, int64_t oh, int64_t ow) {
  int64_t k = 0;
  for (int64_t ki = 0; ki < q->win->k[0]; ki++)
    for (int64_t kj = 0; kj < q->win->k[1]; kj++) k += tap(q, 0, oh, ow, ki, kj) >= 0;
  return k;
}

void eval_pool(Eval *e, const Node *n) {
  Geo q = geo(e, n, &n->src[0]->shape);
  const double *x = e->v[n->src[0]->id];
  double *y = e->v[n->id];
  bool mx = n->op == OP_MAXPOOL;
  for (int64_t i = 0; i < e->count[n->id]; i++) y[i] = mx ? -INFINITY : 0;
  FOR_TAPS(q, bi, oh, ow, ki, kj) {
    int64_t at = tap(&q, bi, oh, ow, ki, kj), o = out_at(&q, bi, oh, ow);
    if (at < 0) continue;
    for (int64_t c = 0; c < q.c; c++)
      y[o + c] = mx ? fmax(y[o + c], x[at + c]) : y[o + c] + x[at + c];
  }
  if (!mx)
    for (int64_t bi = 0; bi < q.b; bi++)
      for (int64_t oh = 0; oh < q.oh; oh++)
        for (int64_t ow = 0; ow < q.ow; ow++) {
          double k = (double)inside_taps(&q, oh, ow);
          for (int64_t c = 0; c < q.c; c++) y[out_at(&q, bi, oh, ow) + c] /= k;
        }
}

/* dx: each window's gradient goes to its first maximum, as TF's MaxPoolGrad. */
void eval_maxpool_grad(Eval *e, const Node *n) {
  Geo q = geo(e, n, &n->shape);
  const double *x = e->v[n->src[0]->id], *gy = e->v[n->src[1]->id];
  double *dx = e->v[n->id];
  memset(dx, 0, sizeof(double) * (size_t)e->count[n->id]);
  for (int64_t bi = 0; bi < q.b; bi++)
    for (int64_t oh = 0; oh < q.oh; oh++)
      for (int64_t ow = 0; ow < q.ow; ow++)
        for (int64_t c = 0; c < q.c; c++) {
          int64_t best = -1;
          for (int64_t ki = 0; ki < q.win->k[0]; ki++)
            for (int64_t kj = 0; kj < q.win->k[1]; kj++) {
              int64_t at = tap(&q, bi, oh, ow, ki, kj);
              if (at >= 0 && (best < 0 || x[at + c] > x[best])) best = at + c;
            }
          if (best >= 0) dx[best] += gy[out_at(&q, bi, oh, ow) + c];
        }
}

void eval_avgpool_grad(Eval *e, const Node *n) {
  Geo q = geo(e, n, &n->shape);
  const double *gy = e->v[n->src[0]->id];
  double *dx = e->v[n->id];
  memset(dx, 0, sizeof(double) * (size_t)e->count[n->id]);
  FOR_TAPS(q, bi, oh, ow, ki, kj) {
    int64_t at = tap(&q, bi, oh, ow, ki, kj), o = out_at(&q, bi, oh, ow);
    if (at < 0) continue;
    double k = (double)inside_taps(&q, oh, ow);
    for (int64_t c = 0; c < q.c; c++) dx[at + c] += gy[o + c] / k;
  }
}

/* ------------------------------------------------------------ train vs inference */

void eval_train_select(Eval *e, const Node *n) {
  const Node *s = n->src[e->infer];
  memcpy(e->v[n->id], e->v[s->id], sizeof(double) * (size_t)e->count[n->id]);
}

/* The step a random op draws for: its step counter's value as it stands
 * (forward and eval read it without advancing it), 0 without one. */
static uint64_t random_step(const Eval *e, const Node *n) {
  const Node *s = graph_random_step(n);
  return s ? (uint64_t)(int64_t)e->v[s->id][0] : 0;
}

void eval_dropout_mask(Eval *e, const Node *n) {
  uint64_t step = random_step(e, n);
  uint64_t st = rng_step_stream(rng_stream((uint64_t)n->a.seed, "dropout"), step);
  uint64_t thr = rng_keep_threshold(n->a.lo);
  double scale = 1 / (1 - n->a.lo);
  double *m = e->v[n->id];
  for (int64_t i = 0; i < e->count[n->id]; i++) m[i] = rng_keep(st, (uint64_t)i, thr) ? scale : 0;
}

/* random_normal, random_uniform, truncated_normal: element i is drawn from
 * counter i of the stream (seed, the op's name, step) - init.c's
 * generator, the one dropout's masks and the initializers use.  normal:
 * Box-Muller on counters 2i, 2i+1; uniform: the 53 bits of counter i;
 * truncated: TF's rule (redraw beyond 2 stddev) made deterministic: the
 * first of the normals on counters 64i, 64i+1, ... within 2, 0 after 64
 * misses (probability 0.0455^64).  Kept in double here; compiled code
 * computes the same double and rounds it to the dtype. */
void eval_random(Eval *e, const Node *n) {
  uint64_t st = rng_step_stream(rng_stream((uint64_t)n->a.seed, op_info[n->op].name), random_step(e, n));
  double lo = n->a.lo, hi = n->a.hi, *m = e->v[n->id];
  for (int64_t i = 0; i < e->count[n->id]; i++) {
    uint64_t k = (uint64_t)i;
    switch (n->op) {
    case OP_RANDOM_UNIFORM: m[i] = lo + (hi - lo) * rng_uniform(st, k); break;
    case OP_TRUNCATED_NORMAL: m[i] = lo + hi * rng_truncated(st, k); break;
    default: m[i] = lo + hi * rng_normal(st, k); break;
    }
  }
}

void eval_assign(Eval *e, const Node *n) {
  memcpy(e->v[n->src[0]->id], e->v[n->src[1]->id],
         sizeof(double) * (size_t)e->count[n->src[0]->id]);
}

/* ------------------------------------------------------------ loops */

/* Copies the slice at index t along axis of a [.., len, ..] tensor of
 * shape s from (to_stack false) or into (true) the flat value v. */
static void slice_copy(Eval *e, const Shape *s, int axis, int64_t t, double *stack, double *v,
                       bool to_stack) {
  int64_t d[MAX_RANK], outer = 1, inner = 1;
  dims(e, s, d);
  for (int i = 0; i < axis; i++) outer *= d[i];
  for (int i = axis + 1; i < s->rank; i++) inner *= d[i];
  for (int64_t o = 0; o < outer; o++) {
    double *at = stack + (o * d[axis] + t) * inner;
    if (to_stack) memcpy(at, v + o * inner, sizeof(double) * (size_t)inner);
    else memcpy(v + o * inner, at, sizeof(double) * (size_t)inner);
  }
}

void eval_loop_node(Eval *e, const Node *n) {
  const Graph *g = e->g;
  double *v = e->v[n->id];
  switch (n->op) {
  case OP_CARRY:
    if (e->first) memcpy(v, e->v[n->src[0]->id], sizeof(double) * (size_t)e->count[n->id]);
    break;
  case OP_SCAN_SLICE:
    slice_copy(e, &n->src[0]->shape, n->a.axis, e->t, e->v[n->src[0]->id], v, false);
    break;
  case OP_LOOP_END: {
    /* the stacked values at this index, then the next carries, all read
     * before any carry is written (a carry's next may be another carry) */
    for (int i = n->id + 1; i < g->nnodes; i++) {
      const Node *s = g->nodes[i];
      if (s->op == OP_SCAN_STACK && s->src[0] == n && e->mark[i])
        slice_copy(e, &s->shape, s->a.axis, e->t, e->v[i], e->v[n->src[s->a.slot]->id], true);
    }
    double **next = calloc((size_t)n->a.slot + 1, sizeof(double *));
    GRADC_ASSERT(next);
    for (int k = 0; k < n->a.slot; k++) {
      int64_t c = e->count[n->src[k]->id];
      next[k] = malloc(sizeof(double) * (size_t)(c ? c : 1));
      GRADC_ASSERT(next[k]);
      memcpy(next[k], e->v[n->src[k]->id], sizeof(double) * (size_t)c);
    }
    for (int k = 0; k < n->a.slot; k++) {
      const Node *c = graph_loop_carry(g, n->a.loop, k);
      if (c) memcpy(e->v[c->id], next[k], sizeof(double) * (size_t)e->count[c->id]);
      free(next[k]);
    }
    free(next);
    break;
  }
  case OP_SCAN_STACK: break;     /* filled by the loop_end */
  case OP_SCAN_LAST: {
    const Node *c = graph_loop_carry(g, n->src[0]->a.loop, n->a.slot);
    GRADC_ASSERT(c);
    memcpy(v, e->v[c->id], sizeof(double) * (size_t)e->count[n->id]);
    break;
  }
  default: GRADC_ASSERT(0);
  }
}

/* Constant folding's calculator: computes n, whose operands are all
 * constants with static shapes, into out (n's element count).  The kernels
 * are the evaluator's, so a folded value is what the oracle computes. */
bool eval_constant(const Graph *g, const Node *n, double *out) {
  Eval e = {.g = g};
  for (int i = 0; i <= MAX_SYMS; i++) e.sym[i] = 1;
  e.v = calloc((size_t)g->nnodes, sizeof(double *));
  e.count = calloc((size_t)g->nnodes, sizeof(int64_t));
  if (!e.v || !e.count) {
    free(e.v);
    free(e.count);
    return false;
  }
  for (int k = 0; k < n->nsrc; k++) {
    const Node *s = n->src[k];
    GRADC_ASSERT(s->op == OP_CONST);
    e.v[s->id] = s->a.values;
    e.count[s->id] = shape_static_count(&s->shape);
  }
  e.v[n->id] = out;
  e.count[n->id] = shape_static_count(&n->shape);
  op_info[n->op].eval(&e, n);
  free(e.v);
  free(e.count);
  return true;
}

/* grad(y, x) never reaches an evaluator: autodiff lowered it (ops.h). */
void eval_lowered(Eval *e, const Node *n) {
  (void)e, (void)n;
  GRADC_ASSERT(!"a lowered op is evaluated");
}
