/*
 * test_passes.c - the graph optimizer's passes, one at a time and together.
 *
 * Each test compiles a small model through autodiff (compile_model with
 * STAGE_GRAD: storage set by fuse(g, false), nothing inlined), runs one pass
 * on the graph and compares the result with the exact graph expected, in the
 * text dump's words without source positions ("%2 = mul %0, %1 : f32[2]").
 * Passes that leave dead nodes behind (fold, simplify, cse) are followed by
 * graph_dce so that ids are dense before the comparison.
 *
 * 0. the op table (what the passes read from it)
 * 1. fold      2. simplify     3. cse       4. dce
 * 5. fuse      6. plan (workspace offsets)  7. optimize()'s statistics
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

/* ------------------------------------------------------------ helpers */

/* Every compilation of a test is kept here until release() or, when an
 * assertion fails half way, the teardown frees it. */
enum { MAX_LIVE = 8 };
static Compilation *live_comps[MAX_LIVE];

static Compilation *keep(Compilation *c) {
  assert_non_null(c);
  for (int i = 0; i < MAX_LIVE; i++)
    if (!live_comps[i]) {
      live_comps[i] = c;
      return c;
    }
  compilation_free(c);
  fail_msg("more than %d compilations alive", MAX_LIVE);
  return NULL;
}

static void release(Compilation *c) {
  for (int i = 0; i < MAX_LIVE; i++)
    if (live_comps[i] == c) live_comps[i] = NULL;
  compilation_free(c);
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < MAX_LIVE; i++) {
    compilation_free(live_comps[i]);
    live_comps[i] = NULL;
  }
  return 0;
}

/* Compiles through autodiff; on an error prints the diagnostics and fails. */
static Compilation *compile_grad(const char *src) {
  Compilation *c = keep(compile_model("t.nn", src, strlen(src), STAGE_GRAD));
  if (!c->graph) {
    diag_print(stderr, &c->diags);
    fail_msg("the test model did not compile");
  }
  return c;
}

/* The text dump of g (malloc'd). */
static char *dump_text(const Graph *g) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  dump_graph(f, g, DUMP_TEXT, "x");
  fclose(f);
  return text;
}

/* The node lines of the text dump as "%i = op operands attrs : type", one per
 * line, without the position, names and rules; with annotations, the
 * "{fused into %N}" / "{in place: X}" annotation is kept at the end.  The
 * result is malloc'd. */
static char *graph_lines(const Graph *g, bool annotations) {
  char *text = dump_text(g);
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  assert_non_null(f);
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    if (line[0] != '%') continue;
    char *colon = strstr(line, " : ");
    assert_non_null(colon);
    char *head_end = colon;
    while (head_end > line && head_end[-1] == ' ') head_end--;
    const char *ty = colon + 3;
    size_t tylen = strcspn(ty, " ");
    fprintf(f, "%.*s : %.*s", (int)(head_end - line), line, (int)tylen, ty);
    if (annotations) {
      const char *a = strstr(ty, " {");
      if (a) fprintf(f, " %.*s", (int)(strchr(a, '}') - a), a + 1);
    }
    fputc('\n', f);
  }
  fclose(f);
  free(text);
  return out;
}

static void assert_graph(const Graph *g, bool annotations, const char *expected) {
  char *got = graph_lines(g, annotations);
  if (strcmp(got, expected) != 0) {
    print_error("graph differs.\n--- expected\n%s--- got\n%s", expected, got);
    free(got);
    fail();
  }
  free(got);
}

/* Ids are the indices of g->nodes and every operand comes earlier. */
static void assert_dense_topological(const Graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    assert_int_equal(g->nodes[i]->id, i);
    for (int k = 0; k < g->nodes[i]->nsrc; k++) assert_true(g->nodes[i]->src[k]->id < i);
  }
}

static int count_op(const Graph *g, OpKind op) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == op;
  return n;
}

/* The last node bound to name. */
static Node *named(const Graph *g, const char *name) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
  fail_msg("no node named '%s'", name);
  return NULL;
}

static Node *param_named(const Graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if ((g->nodes[i]->op == OP_PARAM || g->nodes[i]->op == OP_STATE) &&
        strcmp(g->nodes[i]->name, name) == 0)
      return g->nodes[i];
  fail_msg("no parameter or state named '%s'", name);
  return NULL;
}

static char *model_path(const char *file) {
  const char *root = getenv("GRADC_SOURCE_DIR");
  size_t n = strlen(root ? root : ".") + strlen(file) + 16;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/models/%s", root ? root : ".", file);
  return p;
}

static Compilation *compile_model_grad(const char *file) {
  char *path = model_path(file);
  Compilation *c = compile_model_file(path, STAGE_GRAD);
  free(path);
  keep(c);
  if (!c->graph) {
    diag_print(stderr, &c->diags);
    fail_msg("models/%s did not compile", file);
  }
  return c;
}

/* ------------------------------------------------------------ 0. the op table */

/* The ops with one property of the table, in table order, as "a b c". */
static const char *ops_with(unsigned flag, char *buf, size_t n) {
  buf[0] = 0;
  for (int op = 0; op < OP_COUNT; op++)
    if (op_info[op].flags & flag) {
      size_t at = strlen(buf);
      snprintf(buf + at, n - at, "%s%s", at ? " " : "", op_info[op].name);
    }
  return buf;
}

/* What the passes read from the table, pinned: which ops fuse, which have
 * no buffer, which are roots and so on, exactly the ops the passes listed
 * by name before the properties moved into the table. */
static void test_op_properties(void **state) {
  (void)state;
  static const struct {
    unsigned flag;
    const char *ops;
  } rows[] = {
      {F_COMMUTATIVE, "add mul maximum minimum equal not_equal"},
      {F_ELEMENTWISE, "add sub mul div pow maximum minimum floordiv floormod equal not_equal less less_equal greater "
                      "greater_equal neg abs square relu leaky_relu sigmoid tanh exp log sqrt softplus erf sin cos reciprocal floor ceil "
                      "round sign clip cast where "
                      "broadcast_to sigmoid_cross_entropy"},
      {F_REDUCTION, "sum mean max min norm"},
      {F_PARALLEL, "gather scatter_add im2col col2im maxpool2d maxpool2d_grad avgpool2d dropout_mask "
                   "random_normal random_uniform truncated_normal"},
      {F_VIEW, "reshape"},
      {F_CONVERT, "cast reshape broadcast_to"},
      {F_INVOLUTION, "neg"},
      {F_IMMEDIATE, "const size"},
      {F_NAMED, "input param state"},
      {F_PERSISTENT, "param state"},
      {F_EFFECT, "assign"},
      {F_MODE, "train_select"},
      {F_RANDOM, "dropout_mask random_normal random_uniform truncated_normal"},
      {F_LOWERED, "grad"},
  };
  char buf[1024];
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
    assert_string_equal(ops_with(rows[i].flag, buf, sizeof buf), rows[i].ops);
  /* identities: x + 0, x - 0, x * 1, x / 1 */
  buf[0] = 0;
  for (int op = 0; op < OP_COUNT; op++)
    if (!isnan(op_info[op].identity)) {
      size_t at = strlen(buf);
      snprintf(buf + at, sizeof buf - at, "%s%s=%g", at ? " " : "", op_info[op].name, op_info[op].identity);
    }
  assert_string_equal(buf, "add=0 sub=0 mul=1 div=1");
  /* what the passes rely on: an identity is an operand of a binary op;
   * immediates, named and persistent values are leaves; reductions and
   * views read one operand; mode ops choose between two */
  for (int op = 0; op < OP_COUNT; op++) {
    const OpInfo *o = &op_info[op];
    if (!isnan(o->identity)) assert_int_equal(o->arity, 2);
    if (o->flags & (F_IMMEDIATE | F_NAMED | F_PERSISTENT)) assert_int_equal(o->kind, K_LEAF);
    if (o->flags & F_PERSISTENT) assert_true(o->flags & F_NAMED);
    if (o->flags & (F_REDUCTION | F_VIEW | F_CONVERT | F_INVOLUTION)) assert_int_equal(o->arity, 1);
    if (o->flags & F_MODE) assert_int_equal(o->arity, 2);
  }
}

/* ------------------------------------------------------------ 1. fold */

static void test_fold_constant_arithmetic(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[2]\n"
                                "const a : f32[2] = [1, 2]\n"
                                "b = a * 2 + 1\n"
                                "output z = x * b\n");
  Graph *g = c->graph;
  assert_int_equal(fold(g), 2);                   /* the mul and the add */
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2]\n"
               "%1 = const [3, 5] : f32[2]\n"
               "%2 = mul %0, %1 : f32[2]\n");
  const Node *b = g->nodes[1];
  assert_int_equal(b->dtype, DT_F32);
  assert_true(b->a.values[0] == 3 && b->a.values[1] == 5);
  assert_string_equal(b->name, "b");              /* the name moves to the constant */
  /* A fixed point: nothing left to fold. */
  assert_int_equal(fold(g), 0);
  release(c);
}

/* A chain folds in one forward sweep: each folded node's consumer already
 * sees a constant. */
static void test_fold_chain_in_one_pass(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "const a : f32 = 2\n"
                                "b = ((a + 1) * 3 - 4) / 5 + 0.5\n"
                                "output z = x * b\n");
  Graph *g = c->graph;
  assert_int_equal(fold(g), 5);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = const 1.5 : f32[]\n"
               "%2 = mul %0, %1 : f32[3]\n");
  assert_int_equal(fold(g), 0);
  release(c);
}

/* Only the all-constant part of an expression folds. */
static void test_fold_not_inputs(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "const k : f32 = 2\n"
                                "y = x * k\n"
                                "output z = y * (k + 3)\n");
  Graph *g = c->graph;
  assert_int_equal(fold(g), 1);                   /* k + 3 only */
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = const 2 : f32[]\n"
               "%2 = mul %0, %1 : f32[3]\n"
               "%3 = const 5 : f32[]\n"
               "%4 = mul %2, %3 : f32[3]\n");
  release(c);
}

/* A result larger than a literal may be (2^20 elements) stays a node: the
 * broadcast of k to [1025, 1024] is not folded, the one to [4] is. */
static void test_fold_size_limit(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[1025, 1024]\n"
                                "input y : f32[4]\n"
                                "const k : f32 = 2\n"
                                "output z = x * broadcast_to(k, [1025, 1024])\n"
                                "output w = y * broadcast_to(k, [4])\n");
  Graph *g = c->graph;
  assert_int_equal(fold(g), 1);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[1025,1024]\n"
               "%1 = input y : f32[4]\n"
               "%2 = const 2 : f32[]\n"
               "%3 = broadcast_to %2 shape=[1025, 1024] : f32[1025,1024]\n"
               "%4 = mul %0, %3 : f32[1025,1024]\n"
               "%5 = const [2, 2, 2, 2] : f32[4]\n"
               "%6 = mul %1, %5 : f32[4]\n");
  release(c);
}

/* The gradient of mean over the batch divides by a SIZE node of [batch]:
 * a run-time value, never folded, and neither is anything that reads it. */
static void test_fold_symbolic_size(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[batch]\n"
                                "param w : f32 = 0\n"
                                "loss = mean(w * x)\n"
                                "train loss with sgd\n");
  Graph *g = c->graph;
  assert_int_equal(count_op(g, OP_SIZE), 1);
  fold(g);
  graph_dce(g);
  assert_int_equal(count_op(g, OP_SIZE), 1);
  const Node *size = NULL;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_SIZE) size = g->nodes[i];
  assert_int_equal(size->a.to.rank, 1);
  assert_int_equal(size->a.to.d[0].sym, 1);
  /* Its consumer (the division of the seed) is still a div. */
  int divs = 0;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nsrc; k++)
      if (g->nodes[i]->src[k] == size) {
        assert_int_equal(g->nodes[i]->op, OP_DIV);
        divs++;
      }
  assert_int_equal(divs, 1);
  release(c);
}

/* A SIZE node of a static shape is a constant: its element count.  Autodiff
 * writes a constant directly for static means, so the node is made here. */
static void test_fold_static_size(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[2, 3]\n"
                                "const k : f32 = 7\n"
                                "output z = x * k\n");
  Graph *g = c->graph;
  Node *k = named(g, "k");
  Shape scalar = {0};
  Node *size = graph_leaf(g, OP_SIZE, NULL, DT_F32, &scalar, k->loc);
  size->a.to.rank = 2;
  size->a.to.d[0] = (Dim){2, 0};
  size->a.to.d[1] = (Dim){3, 0};
  graph_replace(g, k, size);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2,3]\n"
               "%1 = size of=[2,3] : f32[]\n"
               "%2 = mul %0, %1 : f32[2,3]\n");
  assert_int_equal(fold(g), 1);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2,3]\n"
               "%1 = const 6 : f32[]\n"
               "%2 = mul %0, %1 : f32[2,3]\n");
  release(c);
}

/* A value that differs between train_step and forward (F_MODE) or from
 * step to step (F_RANDOM) is never a constant, even of constant operands:
 * a dropout mask of a literal, and a train_select of two literals, stay. */
static void test_fold_not_mode_or_random(void **state) {
  (void)state;
  Compilation *c = compile_grad("const a : f32[2] = [1, 2]\n"
                                "const b : f32[2] = [3, 4]\n"
                                "output y = dropout(a, 0.5)\n");
  Graph *g = c->graph;
  Node *ab[2] = {g->nodes[0], g->nodes[1]};
  Node *sel = graph_node(g, OP_TRAIN_SELECT, ab, 2, NULL, ab[0]->loc);
  assert_non_null(sel);
  int before = g->nnodes;
  assert_int_equal(fold(g), 0);
  assert_int_equal(g->nnodes, before);            /* no constant appended */
  for (int i = 0; i < g->nnodes; i++) assert_null(g->nodes[i]->moved);
  assert_graph(g, false,
               "%0 = const [1, 2] : f32[2]\n"
               "%1 = const [3, 4] : f32[2]\n"
               "%2 = dropout_mask %0 rate=0.5 seed=0 : f32[2]\n"
               "%3 = mul %0, %2 : f32[2]\n"
               "%4 = train_select %3, %0 : f32[2]\n"
               "%5 = train_select %0, %1 : f32[2]\n");
  release(c);
}

/* Outputs, metrics, the loss and gradients keep their node (they need
 * storage of their own), even when all their operands are constants. */
static void test_fold_not_roots(void **state) {
  (void)state;
  Compilation *c = compile_grad("output z = 2 * 3\n"
                                "metric m = 4 + 5\n");
  Graph *g = c->graph;
  assert_int_equal(fold(g), 0);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = const 2 : i32[]\n"
               "%1 = const 3 : i32[]\n"
               "%2 = mul %0, %1 : i32[]\n"
               "%3 = const 4 : i32[]\n"
               "%4 = const 5 : i32[]\n"
               "%5 = add %3, %4 : i32[]\n");
  release(c);

  /* d(sum(w * c))/dw = broadcast(1) * c: constant operands, but the
   * gradient of w. */
  c = compile_grad("param w : f32[2] = [1, 2]\n"
                   "const c : f32[2] = [3, 4]\n"
                   "loss = sum(w * c)\n"
                   "train loss with sgd\n");
  g = c->graph;
  assert_int_equal(fold(g), 2);                   /* reshape and broadcast of the seed */
  graph_dce(g);
  assert_graph(g, false,
               "%0 = param w init=values : f32[2]\n"
               "%1 = const [3, 4] : f32[2]\n"
               "%2 = mul %0, %1 : f32[2]\n"
               "%3 = sum %2 axis=[0] : f32[]\n"
               "%4 = const [1, 1] : f32[2]\n"
               "%5 = mul %4, %1 : f32[2]\n"
               "%6 = state optimizer/lr init=constant(0.01) : f64[]\n"
               "%7 = cast %6 to=f32 : f32[]\n"
               "%8 = mul %7, %5 : f32[2]\n"
               "%9 = sub %0, %8 : f32[2]\n"
               "%10 = assign %0, %9 : f32[2]\n");
  assert_ptr_equal(g->steps[0].grads[0].grad, g->nodes[5]);
  assert_ptr_equal(g->steps[0].loss, g->nodes[3]);
  release(c);
}

/* ------------------------------------------------------------ 2. simplify */

static void test_simplify_identities(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "a = x * 1\n"
                                "b = 1 * a\n"
                                "c = b + 0\n"
                                "d = 0 + c\n"
                                "e = d - 0\n"
                                "f = e / 1\n"
                                "output z = relu(f)\n");
  Graph *g = c->graph;
  assert_int_equal(simplify(g), 6);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = relu %0 : f32[3]\n");
  release(c);
}

/* x[3] * ones[2,3] is [2,3]: dropping the multiplication would change the
 * shape, so it stays; 0 - x and 1 / x are not identities either. */
static void test_simplify_not_when_shape_changes(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "const o : f32[2, 3] = 1\n"
                                "output z = relu(x * o)\n"
                                "output u = (0 - x) + (1 / x)\n");
  Graph *g = c->graph;
  assert_int_equal(simplify(g), 0);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = const [[1, 1, 1], [1, 1, 1]] : f32[2,3]\n"
               "%2 = mul %0, %1 : f32[2,3]\n"
               "%3 = relu %2 : f32[2,3]\n"
               "%4 = const 0 : f32[]\n"
               "%5 = sub %4, %0 : f32[3]\n"
               "%6 = const 1 : f32[]\n"
               "%7 = div %6, %0 : f32[3]\n"
               "%8 = add %5, %7 : f32[3]\n");
  release(c);
}

static void test_simplify_unary_and_layout(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "output w = relu(-(-x))\n"
                                "output v = exp(cast(x, f32))\n"
                                "output u = tanh(reshape(x, [3]))\n"
                                "output t = sqrt(broadcast_to(x, [3]))\n");
  Graph *g = c->graph;
  /* -(-x) is already gone: canon removes it before autodiff (simplify's
   * own rule catches the ones autodiff writes). */
  assert_int_equal(count_op(g, OP_NEG), 0);
  assert_int_equal(simplify(g), 3);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = relu %0 : f32[3]\n"
               "%2 = exp %0 : f32[3]\n"
               "%3 = tanh %0 : f32[3]\n"
               "%4 = sqrt %0 : f32[3]\n");
  release(c);

  /* A cast that converts, and a reshape or broadcast that changes the shape,
   * stay; so does a single negation. */
  c = compile_grad("input x : f32[3]\n"
                   "output w = relu(-x)\n"
                   "output v = cast(x, f64)\n"
                   "output u = tanh(reshape(x, [3, 1]))\n"
                   "output t = sqrt(broadcast_to(x, [2, 3]))\n");
  g = c->graph;
  assert_int_equal(simplify(g), 0);
  release(c);
}

static void test_simplify_reshape_of_reshape(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[6]\n"
                                "output z = relu(reshape(reshape(x, [2, 3]), [3, 2]))\n");
  Graph *g = c->graph;
  assert_int_equal(simplify(g), 1);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[6]\n"
               "%1 = reshape %0 shape=[3, 2] : f32[3,2]\n"
               "%2 = relu %1 : f32[3,2]\n");
  release(c);
}

static void test_simplify_transpose_inverse(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[2, 3]\n"
                                "output z = relu(transpose(transpose(x, [1, 0]), [1, 0]))\n");
  Graph *g = c->graph;
  assert_int_equal(simplify(g), 1);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2,3]\n"
               "%1 = relu %0 : f32[2,3]\n");
  release(c);
}

/* transpose(transpose(x, p), q) = transpose(x, r) with r[k] = p[q[k]]:
 * p = q = [1, 2, 0] gives r = [2, 0, 1], x[2,3,4] -> [4,2,3]. */
static void test_simplify_transpose_compose(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[2, 3, 4]\n"
                                "output z = relu(transpose(transpose(x, [1, 2, 0]), [1, 2, 0]))\n");
  Graph *g = c->graph;
  assert_int_equal(simplify(g), 1);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2,3,4]\n"
               "%1 = transpose %0 perm=[2, 0, 1] : f32[4,2,3]\n"
               "%2 = relu %1 : f32[4,2,3]\n");
  release(c);

  /* p = [0, 2, 1], q = [1, 0, 2]: r = [2, 0, 1] as well, x[2,3,4] -> [4,2,3]. */
  c = compile_grad("input x : f32[2, 3, 4]\n"
                   "output z = relu(transpose(transpose(x, [0, 2, 1]), [1, 0, 2]))\n");
  g = c->graph;
  assert_int_equal(simplify(g), 1);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2,3,4]\n"
               "%1 = transpose %0 perm=[2, 0, 1] : f32[4,2,3]\n"
               "%2 = relu %1 : f32[4,2,3]\n");
  release(c);
}

/* ------------------------------------------------------------ 3. cse */

/* Sums and means over broadcast axes read x once: the mean is x, the sum
 * x times the number of copies (a run-time size when the axis is batch). */
static void test_simplify_reduce_of_broadcast(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[batch, 1]\n"
                                "input v : f32[3]\n"
                                "output s = relu(sum(broadcast_to(x, [batch, 4]), axis=1))\n"
                                "output m = relu(mean(broadcast_to(v, [batch, 3]), axis=0))\n"
                                "output k = relu(sum(broadcast_to(v, [batch, 3]), axis=0, keepdims=true))\n"
                                "output n = relu(sum(broadcast_to(v, [2, 3]), axis=0))\n"
                                "output r = relu(sum(broadcast_to(v, [2, 3]), axis=1))\n");
  Graph *g = c->graph;
  assert_int_equal(simplify(g), 4);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[batch,1]\n"
               "%1 = input v : f32[3]\n"
               "%2 = reshape %0 shape=[batch] : f32[batch]\n"
               "%3 = const 4 : f32[]\n"
               "%4 = mul %2, %3 : f32[batch]\n"
               "%5 = relu %4 : f32[batch]\n"
               "%6 = relu %1 : f32[3]\n"
               "%7 = reshape %1 shape=[1, 3] : f32[1,3]\n"
               "%8 = size of=[batch] : f32[]\n"
               "%9 = mul %7, %8 : f32[1,3]\n"
               "%10 = relu %9 : f32[1,3]\n"
               "%11 = const 2 : f32[]\n"
               "%12 = mul %1, %11 : f32[3]\n"
               "%13 = relu %12 : f32[3]\n"
               "%14 = broadcast_to %1 shape=[2, 3] : f32[2,3]\n"
               "%15 = sum %14 axis=[1] : f32[2]\n"
               "%16 = relu %15 : f32[2]\n");
  release(c);
}

/* canon, before autodiff: the written-out cross-entropy becomes the fused
 * op, so the graph through autodiff is the one softmax_cross_entropy gives
 * (sparse labels when the targets are a one_hot), and log(softmax) becomes
 * log_softmax. */
static void test_canon_cross_entropy(void **state) {
  (void)state;
  static const char head[] = "input x : f32[batch, 4]\n"
                             "input y : i32[batch]\n"
                             "input t : f32[batch, 3]\n"
                             "param w : f32[4, 3] = glorot_uniform\n"
                             "z = x @ w\n";
  static const char *const pairs[][2] = {
      {"loss = mean(-sum(one_hot(y, 3) * log(softmax(z)), axis=-1))\n",
       "loss = mean(softmax_cross_entropy(z, y))\n"},
      {"loss = -mean(sum(log(softmax(z, axis=1)) * t, axis=1))\n",
       "loss = mean(softmax_cross_entropy(z, t))\n"},
      {"loss = mean(log(softmax(z, axis=0)))\n",
       "loss = mean(log_softmax(z, axis=0))\n"},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    char a[512], b[512];
    snprintf(a, sizeof a, "%s%strain loss with sgd(lr=0.1)\n", head, pairs[i][0]);
    snprintf(b, sizeof b, "%s%strain loss with sgd(lr=0.1)\n", head, pairs[i][1]);
    Compilation *ca = compile_grad(a), *cb = compile_grad(b);
    assert_int_equal(count_op(ca->graph, OP_LOG), 0);
    char *ga = graph_lines(ca->graph, false), *gb = graph_lines(cb->graph, false);
    if (strcmp(ga, gb) != 0) {
      print_error("case %zu: written form\n%s--- fused form\n%s", i, ga, gb);
      free(ga), free(gb);
      fail();
    }
    free(ga), free(gb);
    release(ca), release(cb);
  }
  /* Not rewritten: a sum over another axis, and a broadcast product. */
  Compilation *c = compile_grad("input x : f32[batch, 4]\n"
                                "input t : f32[3]\n"
                                "param w : f32[4, 3] = glorot_uniform\n"
                                "z = x @ w\n"
                                "loss = -mean(sum(t * log_softmax(z), axis=0)) - mean(sum(t * log_softmax(z), axis=1))\n"
                                "train loss with sgd(lr=0.1)\n");
  assert_int_equal(count_op(c->graph, OP_SOFTMAX_CE), 0);
  release(c);
}

static void test_cse_same_op(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "a = relu(x)\n"
                                "b = relu(x)\n"
                                "output z = a * b\n");
  Graph *g = c->graph;
  assert_int_equal(cse(g), 1);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = relu %0 : f32[3]\n"
               "%2 = mul %1, %1 : f32[3]\n");
  release(c);
}

/* Equal constants merge, and then so do the products that read them. */
static void test_cse_constants(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[2]\n"
                                "const a : f32[2] = [1, 2]\n"
                                "const b : f32[2] = [1, 2]\n"
                                "const d : f32[2] = [1, 3]\n"
                                "output z = (x * a + x * b) * (x * d)\n");
  Graph *g = c->graph;
  assert_int_equal(cse(g), 2);                    /* b, then x * b */
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2]\n"
               "%1 = const [1, 2] : f32[2]\n"
               "%2 = mul %0, %1 : f32[2]\n"
               "%3 = add %2, %2 : f32[2]\n"
               "%4 = const [1, 3] : f32[2]\n"
               "%5 = mul %0, %4 : f32[2]\n"
               "%6 = mul %3, %5 : f32[2]\n");
  release(c);
}

/* Operands are compared in order: there is no canonical order for
 * commutative ops (F_COMMUTATIVE is not consulted), so x + y and y + x stay
 * two nodes.  This documents the current behaviour. */
static void test_cse_no_commutativity(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "input y : f32[3]\n"
                                "output z = (x + y) * (y + x)\n");
  Graph *g = c->graph;
  assert_int_equal(cse(g), 0);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = input y : f32[3]\n"
               "%2 = add %0, %1 : f32[3]\n"
               "%3 = add %1, %0 : f32[3]\n"
               "%4 = mul %2, %3 : f32[3]\n");
  release(c);
}

static void test_cse_attributes_differ(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[2, 2]\n"
                                "output s = softmax(x, axis=0) + softmax(x, axis=1)\n"
                                "output r = sum(x, axis=0) + sum(x, axis=1)\n"
                                "output k = max(x, axis=0, keepdims=true) + max(x, axis=0)\n"
                                "output t = clip(x, 0, 1) + clip(x, 0, 2)\n");
  Graph *g = c->graph;
  assert_int_equal(cse(g), 0);
  graph_dce(g);
  assert_graph(g, false,
               "%0 = input x : f32[2,2]\n"
               "%1 = softmax %0 axis=0 : f32[2,2]\n"
               "%2 = softmax %0 axis=1 : f32[2,2]\n"
               "%3 = add %1, %2 : f32[2,2]\n"
               "%4 = sum %0 axis=[0] : f32[2]\n"
               "%5 = sum %0 axis=[1] : f32[2]\n"
               "%6 = add %4, %5 : f32[2]\n"
               "%7 = max %0 axis=[0] keepdims=true : f32[1,2]\n"
               "%8 = max %0 axis=[0] : f32[2]\n"
               "%9 = add %7, %8 : f32[1,2]\n"
               "%10 = clip %0 min=0 max=1 : f32[2,2]\n"
               "%11 = clip %0 min=0 max=2 : f32[2,2]\n"
               "%12 = add %10, %11 : f32[2,2]\n");
  release(c);
}

/* graph_same_node compares every attribute the way GRADC_ATTRS says: one
 * row per field, in the table's order, each changing only that field (the
 * last element of an array, so the whole array is compared).  A field added
 * to Attrs without a row here fails the count; a field the comparison
 * forgot merges the two nodes. */
static void change_axis(Attrs *a) { a->axis = 1; }
static void change_axes(Attrs *a) { a->axes = 2; }
static void change_keepdims(Attrs *a) { a->keepdims = true; }
static void change_perm(Attrs *a) { a->perm[MAX_RANK - 1] = 1; }
static void change_to(Attrs *a) { a->to.d[0].n = 3; }
static void change_begin(Attrs *a) { a->begin[MAX_RANK - 1] = 1; }
static void change_end(Attrs *a) { a->end[MAX_RANK - 1] = 1; }
static void change_step(Attrs *a) { a->step[MAX_RANK - 1] = 2; }
static void change_lo(Attrs *a) { a->lo = -1; }
static void change_hi(Attrs *a) { a->hi = 2; }
static void change_alpha(Attrs *a) { a->alpha = 0.3; }
static void change_ta(Attrs *a) { a->ta = true; }
static void change_tb(Attrs *a) { a->tb = true; }
static void change_dtype(Attrs *a) { a->dtype = DT_F64; }
static void change_depth(Attrs *a) { a->depth = 10; }
static void change_init(Attrs *a) { a->init.kind = INIT_ONES; }
static void change_init_a(Attrs *a) { a->init.a = 0.5; }
static void change_init_b(Attrs *a) { a->init.b = 0.5; }
static double other_values[2] = {1, 3};
static void change_values(Attrs *a) { a->values = other_values; }
static void change_win(Attrs *a) { a->win.pad[3] = 1; }
static void change_win_k(Attrs *a) { a->win.k[0] = 3; }
static void change_seed(Attrs *a) { a->seed = 7; }
static void change_owner(Attrs *a) { a->owner = 1; }
static void change_loop(Attrs *a) { a->loop = 1; }
static void change_slot(Attrs *a) { a->slot = 1; }

static void test_cse_every_attribute(void **state) {
  (void)state;
  static const struct {
    const char *field;
    void (*change)(Attrs *);
  } rows[] = {
      {"axis", change_axis},   {"axes", change_axes},     {"keepdims", change_keepdims},
      {"perm", change_perm},   {"to", change_to},         {"begin", change_begin},
      {"end", change_end},     {"step", change_step},     {"lo", change_lo},
      {"hi", change_hi},       {"alpha", change_alpha},   {"ta", change_ta},
      {"tb", change_tb},
      {"dtype", change_dtype}, {"depth", change_depth},   {"init", change_init},
      {"init", change_init_a}, {"init", change_init_b},   {"values", change_values},
      {"win", change_win},     {"win", change_win_k},     {"seed", change_seed},
      {"owner", change_owner}, {"loop", change_loop},     {"slot", change_slot},
  };
#define ATTR(type, name, array, compare) #name,
  static const char *const fields[] = {GRADC_ATTRS(ATTR)};
#undef ATTR
  enum { NFIELDS = sizeof fields / sizeof fields[0], NROWS = sizeof rows / sizeof rows[0] };
  assert_int_equal(NFIELDS, ATTR_COUNT);
  /* every field has a row, in the table's order */
  int f = 0;
  for (int r = 0; r < NROWS; r++) {
    if (f < NFIELDS - 1 && strcmp(rows[r].field, fields[f]) != 0) f++;
    assert_string_equal(rows[r].field, fields[f]);
  }
  assert_int_equal(f, NFIELDS - 1);
  /* a constant f32[2] = [1, 2]; a second one with equal values elsewhere is
   * the same node, one with other values is not */
  double values[2] = {1, 2}, copy[2] = {1, 2};
  Node base = {.op = OP_CONST, .dtype = DT_F32, .shape = {1, {{2, 0}}}};
  base.a.to = base.shape;
  base.a.values = values;
  Node same = base;
  same.a.values = copy;
  assert_true(graph_same_node(&base, &same));
  for (int r = 0; r < NROWS; r++) {
    Node other = base;
    rows[r].change(&other.a);
    if (graph_same_node(&base, &other) || graph_same_node(&other, &base))
      fail_msg("nodes that differ in %s (row %d) were the same", rows[r].field, r);
  }
}

/* Inputs, parameters and optimizer state are distinct storage however alike
 * they look. */
static void test_cse_never_leaves(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "input y : f32[3]\n"
                                "param p : f32[3] = zeros\n"
                                "param q : f32[3] = zeros\n"
                                "loss = sum(x * p + y * q)\n"
                                "train loss with rmsprop\n");
  Graph *g = c->graph;
  int inputs = count_op(g, OP_INPUT), params = count_op(g, OP_PARAM), states = count_op(g, OP_STATE);
  assert_int_equal(inputs, 2);
  assert_int_equal(params, 2);
  assert_int_equal(states, 5);                    /* 2 slots, optimizer/lr, rho, eps */
  assert_true(cse(g) > 0);                        /* the optimizer's 1 - rho */
  graph_dce(g);
  assert_int_equal(count_op(g, OP_INPUT), 2);
  assert_int_equal(count_op(g, OP_PARAM), 2);
  assert_int_equal(count_op(g, OP_STATE), 5);
  assert_int_equal(count_op(g, OP_ASSIGN), 4);
  release(c);
}

/* Autodiff's softmax_cross_entropy rule recomputes softmax(logits), which
 * the forward pass already computes for the output: cse keeps one.  The
 * RMSprop coefficients (rho, 1 - rho, lr, eps) are written per parameter
 * and merge to one constant each. */
static void test_cse_mnist_mlp(void **state) {
  (void)state;
  Compilation *c = compile_model_grad("mnist_mlp.nn");
  Graph *g = c->graph;
  assert_int_equal(count_op(g, OP_SOFTMAX), 2);
  int consts = count_op(g, OP_CONST);
  int merged = cse(g);
  int removed = graph_dce(g);
  assert_true(merged > 0);
  assert_int_equal(removed, merged);              /* every merged node died */
  assert_int_equal(count_op(g, OP_SOFTMAX), 1);
  const Node *probs = named(g, "probs");
  assert_int_equal(probs->op, OP_SOFTMAX);
  assert_true(probs->flags & N_OUTPUT);
  /* The backward rule's consumer (softmax - one_hot) reads the output. */
  int readers = 0;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nsrc; k++) readers += g->nodes[i]->src[k] == probs;
  assert_int_equal(readers, 1);
  assert_true(count_op(g, OP_CONST) < consts);
  /* No two constants with equal values remain. */
  for (int i = 0; i < g->nnodes; i++)
    for (int j = i + 1; j < g->nnodes; j++)
      if (g->nodes[i]->op == OP_CONST) assert_false(graph_same_node(g->nodes[i], g->nodes[j]));
  release(c);
}

/* fold appends its constants at the end of the node array, after their
 * consumers; cse must still merge the two products that read equal folded
 * constants (x * 6 twice), and the relus above them.  Fails while cse hashes
 * a node by its operands' ids before those operands (the folded constants,
 * visited later) have been merged: both muls and both relus survive. */
static void test_cse_after_fold(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "const k : f32 = 2\n"
                                "a = x * (k * 3)\n"
                                "b = x * (k * 3)\n"
                                "output z = relu(a) + relu(b)\n");
  Graph *g = c->graph;
  optimize(g, 3, "dce", NULL);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = const 6 : f32[]\n"
               "%2 = mul %0, %1 : f32[3]\n"
               "%3 = relu %2 : f32[3]\n"
               "%4 = add %3, %3 : f32[3]\n");
  release(c);
}

/* ------------------------------------------------------------ 4. dce */

static void test_dce_removes_dead(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "a = relu(x)\n"
                                "b = exp(a)\n"
                                "d = tanh(x)\n"
                                "output z = d * 2\n");
  Graph *g = c->graph;
  assert_int_equal(g->nnodes, 6);
  assert_int_equal(graph_dce(g), 2);              /* a and b */
  assert_int_equal(g->nnodes, 4);
  assert_dense_topological(g);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = tanh %0 : f32[3]\n"
               "%2 = const 2 : f32[]\n"
               "%3 = mul %1, %2 : f32[3]\n");
  release(c);
}

/* Inputs and parameters are roots: the runtime addresses them by name even
 * when nothing reads them. */
static void test_dce_keeps_unused_leaves(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "input unused_in : f32[4]\n"
                                "param unused_p : f32[5] = zeros\n"
                                "output z = relu(x)\n");
  Graph *g = c->graph;
  assert_int_equal(graph_dce(g), 0);
  assert_graph(g, false,
               "%0 = input x : f32[3]\n"
               "%1 = input unused_in : f32[4]\n"
               "%2 = param unused_p init=zeros : f32[5]\n"
               "%3 = relu %0 : f32[3]\n");
  release(c);
}

/* After rewrites the assignments still come last (all reads of a step
 * before any write), and the count returned is exactly the nodes dropped. */
static void test_dce_assigns_last(void **state) {
  (void)state;
  Compilation *c = compile_model_grad("linear_regression.nn");
  Graph *g = c->graph;
  fold(g);
  cse(g);
  int total = g->nnodes, live = 0;
  /* Count what is reachable by hand: mark from the roots. */
  bool *seen = calloc((size_t)total, 1);
  assert_non_null(seen);
  for (bool more = true; more;) {
    more = false;
    for (int i = total - 1; i >= 0; i--) {
      Node *n = g->nodes[i];
      bool root = n->op == OP_ASSIGN || n->op == OP_INPUT || n->op == OP_PARAM ||
                  n->op == OP_STATE || (n->flags & (N_OUTPUT | N_METRIC | N_LOSS | N_GRAD));
      if (!seen[i] && root) seen[i] = more = true;
      if (!seen[i]) continue;
      for (int k = 0; k < n->nsrc; k++) {
        int j = -1;
        for (int m = 0; m < total; m++)
          if (g->nodes[m] == n->src[k]) j = m;
        assert_true(j >= 0);
        if (!seen[j]) seen[j] = more = true;
      }
    }
  }
  for (int i = 0; i < total; i++) live += seen[i];
  free(seen);
  assert_int_equal(graph_dce(g), total - live);
  assert_int_equal(g->nnodes, live);
  assert_dense_topological(g);
  int assigns = count_op(g, OP_ASSIGN);
  assert_int_equal(assigns, 2);
  for (int i = 0; i < g->nnodes; i++)
    assert_int_equal(g->nodes[i]->op == OP_ASSIGN, i >= g->nnodes - assigns);
  assert_int_equal(g->steps[0].loss->op, OP_MEAN);
  assert_int_equal(g->steps[0].ngrads, 2);
  release(c);
}

/* ------------------------------------------------------------ 5. fuse */

static void test_fuse_chain(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "input w : f32[3]\n"
                                "input b : f32[3]\n"
                                "output z = relu(x * w + b)\n");
  Graph *g = c->graph;
  PassStats st;
  optimize(g, 3, NULL, &st);
  assert_graph(g, true,
               "%0 = input x : f32[3]\n"
               "%1 = input w : f32[3]\n"
               "%2 = input b : f32[3]\n"
               "%3 = mul %0, %1 : f32[3] {fused into %4}\n"
               "%4 = add %3, %2 : f32[3] {fused into %5}\n"
               "%5 = relu %4 : f32[3]\n");
  /* inlined_into names the direct consumer; the loop is the outermost. */
  assert_ptr_equal(g->nodes[3]->inlined_into, g->nodes[4]);
  assert_ptr_equal(g->nodes[4]->inlined_into, g->nodes[5]);
  assert_null(g->nodes[3]->storage);
  assert_ptr_equal(g->nodes[5]->storage, g->nodes[5]);
  assert_int_equal(st.pass[PASS_FUSE].changed, 2);
  release(c);
}

/* The input gradient of a convolution: the product dY W^T is read only by
 * col2im (through the reshape to patch layout), so it is computed inside
 * col2im and never stored; -O0 stores it. */
static void test_fuse_product_into_col2im(void **state) {
  (void)state;
  static const char *src = "input x : f32[batch, 7, 7, 2]\n"
                           "input y : i32[batch]\n"
                           "h = conv2d(x, filters=4, kernel=3, activation=relu)\n"
                           "z = conv2d(h, filters=3, kernel=3, padding=same)\n"
                           "loss = mean(softmax_cross_entropy(global_avgpool2d(z), y))\n"
                           "train loss with sgd(lr=0.1)\n";
  for (int level = 0; level <= 3; level += 3) {
    Compilation *c = compile_grad(src);
    Graph *g = c->graph;
    optimize(g, level, NULL, NULL);
    const Node *col = NULL;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == OP_COL2IM) {
        assert_null(col);   /* only z's input gradient: x needs none */
        col = g->nodes[i];
      }
    assert_non_null(col);
    const Node *r = col->src[0], *mm = r->src[0];
    assert_int_equal(r->op, OP_RESHAPE);
    assert_int_equal(mm->op, OP_MATMUL);
    assert_true(mm->a.tb);
    if (level) {
      assert_ptr_equal(mm->inlined_into, col);
      assert_ptr_equal(r->inlined_into, col);
      assert_null(mm->storage);
      assert_null(r->storage);
      assert_ptr_equal(col->storage, col);
    } else {
      assert_null(mm->inlined_into);
      assert_ptr_equal(mm->storage, mm);
    }
    release(c);
  }
}

/* A patch matrix read only by products (the forward product and the kernel
 * gradient) is not stored: it is attributed to the first of them, where its
 * image is first read, and the plan keeps the image live until the last.
 * With fewer than 8 channels it is stored. */
static void test_fuse_patches_into_products(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[batch, 7, 7, 2]\n"
                                "input y : i32[batch]\n"
                                "h = conv2d(x, filters=8, kernel=3) * 2\n"
                                "z = conv2d(h, filters=3, kernel=3, padding=same)\n"
                                "loss = mean(softmax_cross_entropy(global_avgpool2d(z), y))\n"
                                "train loss with sgd(lr=0.1)\n");
  Graph *g = c->graph;
  optimize(g, 3, NULL, NULL);
  int seen = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *p = g->nodes[i];
    if (p->op != OP_IM2COL) continue;
    seen++;
    if (p->src[0]->shape.d[3].n < 8) {   /* x's: 2 channels */
      assert_null(p->inlined_into);
      assert_ptr_equal(p->storage, p);
      continue;
    }
    const Node *first = p->inlined_into;
    assert_non_null(first);
    assert_null(p->storage);
    assert_int_equal(first->op, OP_MATMUL);
    assert_false(first->a.ta);   /* the forward product, before the kernel gradient */
    int products = 0, last = -1;
    for (int k = 0; k < g->nnodes; k++) {
      const Node *m = g->nodes[k];
      if (m->op != OP_MATMUL || m->src[0]->src[0] != p) continue;
      products++;
      assert_true(m->id >= first->id);
      assert_null(m->inlined_into);
      last = m->id;
    }
    assert_int_equal(products, 2);
    /* the image's buffer lives until the kernel gradient has read it (no
     * gradient reads h: it is only scaled) */
    PlanBuffer *pb = malloc(sizeof(PlanBuffer) * (size_t)g->nnodes);
    assert_non_null(pb);
    int nb = plan_buffers(g, pb), found = 0;
    for (int b = 0; b < nb; b++)
      if (pb[b].node == p->src[0]->storage) found = 1, assert_true(pb[b].end >= last);
    assert_true(found);
    free(pb);
  }
  assert_int_equal(seen, 2);
  release(c);
}

/* A value read twice is stored once, not computed twice. */
static void test_fuse_not_two_users(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "input w : f32[3]\n"
                                "a = x * w\n"
                                "output z = relu(a) + exp(a)\n"
                                "output q = x * x\n");
  Graph *g = c->graph;
  optimize(g, 3, NULL, NULL);
  assert_graph(g, true,
               "%0 = input x : f32[3]\n"
               "%1 = input w : f32[3]\n"
               "%2 = mul %0, %1 : f32[3]\n"
               "%3 = relu %2 : f32[3] {fused into %5}\n"
               "%4 = exp %2 : f32[3] {fused into %5}\n"
               "%5 = add %3, %4 : f32[3]\n"
               "%6 = mul %0, %0 : f32[3]\n");
  release(c);
}

/* sum(g * y) reads g and y once: the product runs inside the reduction. */
static void test_fuse_into_reduction(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[4, 3]\n"
                                "input w : f32[4, 3]\n"
                                "output z = sum(x * w, axis=1)\n"
                                "output m = max(exp(x))\n");
  Graph *g = c->graph;
  optimize(g, 3, NULL, NULL);
  assert_graph(g, true,
               "%0 = input x : f32[4,3]\n"
               "%1 = input w : f32[4,3]\n"
               "%2 = mul %0, %1 : f32[4,3] {fused into %3}\n"
               "%3 = sum %2 axis=[1] : f32[4]\n"
               "%4 = exp %0 : f32[4,3] {fused into %5}\n"
               "%5 = max %4 axis=[0,1] : f32[]\n");
  release(c);
}

/* exp(b) is [3]; the add that reads it is [2,3]: its loop would walk exp's
 * elements twice, so exp gets its own loop and buffer.  Non-elementwise
 * consumers (matmul, softmax) never take a producer either. */
static void test_fuse_not_across_broadcast(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[2, 3]\n"
                                "input b : f32[3]\n"
                                "e = exp(b)\n"
                                "output z = relu(x + e)\n"
                                "output s = softmax(tanh(x))\n");
  Graph *g = c->graph;
  optimize(g, 3, NULL, NULL);
  assert_graph(g, true,
               "%0 = input x : f32[2,3]\n"
               "%1 = input b : f32[3]\n"
               "%2 = exp %1 : f32[3]\n"
               "%3 = add %0, %2 : f32[2,3] {fused into %4}\n"
               "%4 = relu %3 : f32[2,3]\n"
               "%5 = tanh %0 : f32[2,3]\n"
               "%6 = softmax %5 axis=1 : f32[2,3]\n");
  assert_ptr_equal(g->nodes[2]->storage, g->nodes[2]);
  release(c);
}

/* Outputs, metrics and the loss are read after the step: each keeps its
 * buffer even with a single elementwise consumer of its shape. */
static void test_fuse_never_roots(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "input s : f32\n"
                                "output a = x * 2\n"
                                "output z = relu(a)\n"
                                "metric m = s * 3\n"
                                "output e = exp(m)\n");
  Graph *g = c->graph;
  optimize(g, 3, NULL, NULL);
  for (int i = 0; i < g->nnodes; i++) assert_null(g->nodes[i]->inlined_into);
  assert_ptr_equal(named(g, "a")->storage, named(g, "a"));
  assert_ptr_equal(named(g, "m")->storage, named(g, "m"));
  release(c);

  /* The loss, read once more by an elementwise output. */
  c = compile_grad("input x : f32\n"
                   "param w : f32 = 1\n"
                   "loss = square(w - x)\n"
                   "output z = exp(loss)\n"
                   "train loss with sgd\n");
  g = c->graph;
  optimize(g, 3, NULL, NULL);
  const Node *loss = g->steps[0].loss;
  assert_int_equal(loss->op, OP_SQUARE);
  assert_null(loss->inlined_into);
  assert_ptr_equal(loss->storage, loss);
  release(c);
}

/* RMSprop: the new slot value is written over the slot (W/rms) and the new
 * weight over the weight, since nothing after either reads the old value. */
static void test_fuse_in_place_rmsprop(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[batch, 4]\n"
                                "param W : f32[4, 2] = glorot_uniform\n"
                                "loss = mean(square(x @ W))\n"
                                "train loss with rmsprop\n");
  Graph *g = c->graph;
  optimize(g, 3, NULL, NULL);
  Node *W = param_named(g, "W"), *rms = param_named(g, "W/rms");
  int assigns = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *a = g->nodes[i];
    if (a->op != OP_ASSIGN) continue;
    assigns++;
    assert_true(a->src[0] == W || a->src[0] == rms);
    assert_ptr_equal(a->src[1]->storage, a->src[0]);
  }
  assert_int_equal(assigns, 2);
  /* The dump says where each new value lives. */
  char *text = graph_lines(g, true);
  bool w_shown = strstr(text, "in place: W}") != NULL, rms_shown = strstr(text, "in place: W/rms") != NULL;
  if (!w_shown || !rms_shown) print_error("dump does not show both in-place updates:\n%s", text);
  free(text);
  assert_true(w_shown);
  assert_true(rms_shown);
  release(c);

  /* Without fusion every value has its own buffer. */
  c = compile_grad("input x : f32[batch, 4]\n"
                   "param W : f32[4, 2] = glorot_uniform\n"
                   "loss = mean(square(x @ W))\n"
                   "train loss with rmsprop\n");
  g = c->graph;
  optimize(g, 0, NULL, NULL);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    assert_null(n->inlined_into);
    if (n->op == OP_ASSIGN || n->op == OP_CONST || n->op == OP_SIZE) assert_null(n->storage);
    else if (n->op != OP_RESHAPE) assert_ptr_equal(n->storage, n);
  }
  assert_false(g->reuse_memory);
  release(c);
}

/* All reads of a step come before any write: a parameter that something
 * still reads after its new value is computed cannot be overwritten in
 * place.  The late reader (an output exp(w) placed after the update) is
 * added by hand, since autodiff never writes one. */
static void test_fuse_not_in_place_when_read_later(void **state) {
  (void)state;
  Compilation *c = compile_grad("input x : f32[3]\n"
                                "param w : f32[3] = zeros\n"
                                "param b : f32[3] = zeros\n"
                                "loss = sum(w * x + b)\n"
                                "train loss with sgd\n");
  Graph *g = c->graph;
  Node *w = param_named(g, "w");
  Node *src[1] = {w};
  Attrs a = {0};
  Node *late = graph_node(g, OP_EXP, src, 1, &a, w->loc);
  assert_non_null(late);
  late->flags |= N_OUTPUT;
  late->name = "late";
  graph_add_output(g, &g->outputs, &g->noutputs, "late", late);
  optimize(g, 3, NULL, NULL);
  Node *bnode = param_named(g, "b");
  Node *vw = NULL, *vb = NULL;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->op == OP_ASSIGN && n->src[0] == w) vw = n->src[1];
    if (n->op == OP_ASSIGN && n->src[0] == bnode) vb = n->src[1];
  }
  assert_non_null(vw);
  assert_non_null(vb);
  assert_true(named(g, "late")->id > vw->id);     /* read after the new value */
  assert_ptr_equal(vw->storage, vw);              /* so w's update gets a buffer */
  assert_ptr_equal(vb->storage, bnode);           /* b's still goes in place */
  release(c);
}

/* The runtime reads roots after the step, so none lives in storage the
 * step overwrites (a parameter, state) or in none (a constant): a root
 * reshape of one is a copy with a buffer of its own, and a root that is
 * such a leaf is bound to a copy right after it.  Views of workspace
 * values and views that are not roots still alias, and the copies, made
 * before the update, leave it in place. */
static void test_fuse_roots_own_storage(void **state) {
  (void)state;
  for (int level = 0; level <= 3; level += 3) {
    Compilation *c = compile_grad("param W : f32[2, 3] = ones\n"
                                  "state st : f32[2] = ones\n"
                                  "const c : f32[2] = [3, 4]\n"
                                  "h = reshape(W, [6])\n"
                                  "output a = reshape(W, [3, 2])\n"
                                  "output pw = W\n"
                                  "output so = st\n"
                                  "metric m0 = c[0]\n"
                                  "update st = st * 0.5\n"
                                  "loss = sum(h * h)\n"
                                  "train loss with sgd\n");
    Graph *g = c->graph;
    optimize(g, level, NULL, NULL);
    Node *W = param_named(g, "W"), *st = param_named(g, "st");
    Node *a = named(g, "a"), *m0 = named(g, "m0");
    assert_int_equal(a->op, OP_RESHAPE);
    assert_ptr_equal(a->storage, a);
    /* c[0]: at -O0 a view of the slice's buffer, which lives as long; at
     * -O3 the slice is a folded constant, so the view is a copy */
    assert_int_equal(m0->op, OP_RESHAPE);
    assert_ptr_equal(m0->storage, level ? m0 : m0->src[0]);
    assert_int_equal(m0->src[0]->op, level ? OP_CONST : OP_SLICE);
    assert_true(plan_is_buffer(a) && plan_is_buffer(m0->storage));
    for (int k = 0; k < 2; k++) {
      Node *leaf = k ? st : W, *copy = g->outputs[k + 1].node;
      assert_string_equal(g->outputs[k + 1].name, k ? "so" : "pw");
      assert_int_equal(copy->op, OP_RESHAPE);
      assert_ptr_equal(copy->src[0], leaf);
      assert_int_equal(copy->id, leaf->id + 1);
      assert_ptr_equal(copy->storage, copy);
      assert_string_equal(copy->name, k ? "so" : "pw");
      assert_true(copy->flags & N_OUTPUT);
      assert_false(leaf->flags & N_OUTPUT);
    }
    for (int i = 0; i < g->nnodes; i++) {
      const Node *n = g->nodes[i];
      if (n->op == OP_RESHAPE && n->src[0] == W && n->shape.rank == 1)
        assert_ptr_equal(n->storage, W);          /* h, read by the loss */
      if (level && n->op == OP_ASSIGN && n->src[0] == W) assert_ptr_equal(n->src[1]->storage, W);
    }
    release(c);
  }
}

/* ------------------------------------------------------------ 6. plan */

static int64_t sym_values[MAX_SYMS + 1];

static const int64_t *syms(int64_t batch) {
  for (int i = 0; i <= MAX_SYMS; i++) sym_values[i] = i ? batch : 1;
  return sym_values;
}

static size_t buffer_bytes(const Node *n, const int64_t *sym) {
  int64_t c = 1;
  for (int k = 0; k < n->shape.rank; k++) c *= n->shape.d[k].n * sym[n->shape.d[k].sym];
  return ((size_t)c * dtype_size(n->dtype) + 63) & ~(size_t)63;
}

static int position(const Node *n) {
  while (n->inlined_into) n = n->inlined_into;
  return n->id;
}

enum { FOREVER = 1 << 30 };

/* Live ranges computed independently of plan.c: a buffer is written at its
 * node's position (inputs before the step: -1) and read wherever a node, or
 * a node inlined into a kernel at that kernel's position, reads it through
 * its storage; inputs and anything bound to an output, metric or the loss
 * (through an alias too) stay live after the step. */
static void live_ranges(const Graph *g, int *begin, int *end) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    begin[i] = n->op == OP_INPUT ? -1 : position(n);
    end[i] = begin[i];
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->storage && ((n->flags & (N_OUTPUT | N_METRIC | N_LOSS)) || n->op == OP_INPUT))
      end[n->storage->id] = FOREVER;
    for (int k = 0; k < n->nsrc; k++) {
      const Node *s = n->src[k]->storage;
      if (s && end[s->id] < position(n)) end[s->id] = position(n);
    }
  }
}

/* Every pair of buffers live at a common position occupies disjoint bytes. */
static int count_overlaps(const Graph *g, const int64_t *sym, const size_t *off, bool print) {
  int n = g->nnodes, bad = 0;
  int *begin = malloc(sizeof(int) * (size_t)n), *end = malloc(sizeof(int) * (size_t)n);
  assert_true(begin && end);
  live_ranges(g, begin, end);
  for (int i = 0; i < n; i++) {
    const Node *a = g->nodes[i];
    if (!plan_is_buffer(a)) continue;
    for (int j = i + 1; j < n; j++) {
      const Node *b = g->nodes[j];
      if (!plan_is_buffer(b)) continue;
      if (begin[i] > end[j] || begin[j] > end[i]) continue;
      size_t ab = buffer_bytes(a, sym), bb = buffer_bytes(b, sym);
      if (off[i] < off[j] + bb && off[j] < off[i] + ab) {
        if (print)
          fprintf(stderr, "%s: %%%d [%zu,+%zu) live [%d,%d] overlaps %%%d [%zu,+%zu) live [%d,%d]\n",
                  g->model_name, i, off[i], ab, begin[i], end[i], j, off[j], bb, begin[j], end[j]);
        bad++;
      }
    }
  }
  free(begin);
  free(end);
  return bad;
}

#define CHAIN                                                                                   \
  "input x : f32[1000]\n"                                                                       \
  "a = relu(x)\n"                                                                               \
  "b = exp(a)\n"                                                                                \
  "d = tanh(b)\n"                                                                               \
  "output z = sigmoid(d)\n"

/* Level 0: every node its own buffer.  x [0,F], a [1,2], b [2,3], d [3,4],
 * z [4,F] with 4032 bytes each (4000 rounded up to 64): d takes a's bytes,
 * z takes b's, x is never shared. */
static void test_plan_chain_reuse(void **state) {
  (void)state;
  Compilation *c = compile_grad(CHAIN);
  Graph *g = c->graph;
  optimize(g, 0, NULL, NULL);
  assert_int_equal(g->nnodes, 5);
  for (int i = 0; i < 5; i++) assert_true(plan_is_buffer(g->nodes[i]));
  size_t off[5], naive = 0;
  size_t total = plan_offsets(g, syms(1), true, off, &naive);
  assert_int_equal(naive, 5 * 4032);
  assert_int_equal(total, 3 * 4032);
  assert_true(total < naive);
  assert_int_equal(off[0], 0);                    /* x */
  assert_int_equal(off[1], 4032);                 /* a */
  assert_int_equal(off[2], 2 * 4032);             /* b */
  assert_int_equal(off[3], 4032);                 /* d over a */
  assert_int_equal(off[4], 2 * 4032);             /* z over b */
  for (int i = 1; i < 5; i++) assert_true(off[i] >= 4032);   /* nothing on x */
  assert_int_equal(count_overlaps(g, syms(1), off, true), 0);

  /* Without reuse: one buffer after the other, total = naive. */
  size_t naive2 = 0;
  total = plan_offsets(g, syms(1), false, off, &naive2);
  assert_int_equal(total, naive2);
  assert_int_equal(naive2, 5 * 4032);
  for (int i = 0; i < 5; i++) assert_int_equal(off[i], (size_t)i * 4032);
  release(c);
}

/* An input is filled before the step and may be read after it: no buffer
 * may ever share its bytes, wherever the input stands in the node order.
 * Here input c comes after t1 = softmax(a) (8000 bytes, dead after the sum)
 * and after o2, which took the start of t1's old bytes.  Fails while
 * plan_offsets frees blocks by the begin of the buffer being placed, which
 * for an input (begin 0) placed late is too late: t1's freed bytes go to c,
 * and the softmax overwrites input c during the step. */
static void test_plan_input_never_shared(void **state) {
  (void)state;
  Compilation *c = compile_grad("input a : f32[2000]\n"
                                "t1 = softmax(a)\n"
                                "output o1 = sum(t1)\n"
                                "output o2 = exp(o1)\n"
                                "input c : f32[1000]\n"
                                "output o3 = exp(c)\n");
  Graph *g = c->graph;
  optimize(g, 3, NULL, NULL);
  assert_graph(g, false,
               "%0 = input a : f32[2000]\n"
               "%1 = softmax %0 axis=0 : f32[2000]\n"
               "%2 = sum %1 axis=[0] : f32[]\n"
               "%3 = exp %2 : f32[]\n"
               "%4 = input c : f32[1000]\n"
               "%5 = exp %4 : f32[1000]\n");
  size_t off[6];
  size_t total = plan_offsets(g, syms(1), true, off, NULL);
  assert_true(total != SIZE_MAX);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *in = g->nodes[i];
    if (in->op != OP_INPUT) continue;
    for (int j = 0; j < g->nnodes; j++) {
      const Node *b = g->nodes[j];
      if (j == i || !plan_is_buffer(b)) continue;
      bool disjoint = off[j] >= off[i] + buffer_bytes(in, syms(1)) ||
                      off[i] >= off[j] + buffer_bytes(b, syms(1));
      if (!disjoint)
        print_error("input %s [%zu, +%zu) shares bytes with %%%d [%zu, +%zu)\n", in->name, off[i],
                    buffer_bytes(in, syms(1)), j, off[j], buffer_bytes(b, syms(1)));
      assert_true(disjoint);
    }
  }
  assert_int_equal(count_overlaps(g, syms(1), off, true), 0);
  release(c);
}

/* Every model, optimized, at batch 128: no two buffers live at the same
 * time overlap, and reuse never needs more than the naive sum. */
static void test_plan_models_no_overlap(void **state) {
  (void)state;
  const char *root = getenv("GRADC_SOURCE_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/models", root ? root : ".");
  DIR *d = opendir(dir);
  assert_non_null(d);
  int models = 0, overlaps = 0;
  for (struct dirent *de; (de = readdir(d));) {
    size_t len = strlen(de->d_name);
    if (len < 4 || strcmp(de->d_name + len - 3, ".nn")) continue;
    Compilation *c = compile_model_grad(de->d_name);
    Graph *g = c->graph;
    optimize(g, 3, NULL, NULL);
    size_t *off = malloc(sizeof(size_t) * (size_t)g->nnodes), naive = 0, plain = 0;
    assert_non_null(off);
    size_t total = plan_offsets(g, syms(128), true, off, &naive);
    assert_true(total != SIZE_MAX);
    assert_true(total <= naive);
    overlaps += count_overlaps(g, syms(128), off, true);
    for (int i = 0; i < g->nnodes; i++) assert_int_equal(off[i] == SIZE_MAX, !plan_is_buffer(g->nodes[i]));
    assert_int_equal(plan_offsets(g, syms(128), false, off, &plain), naive);
    assert_int_equal(plain, naive);
    free(off);
    release(c);
    models++;
  }
  closedir(d);
  assert_true(models >= 4);
  assert_int_equal(overlaps, 0);
}

/* ------------------------------------------------------------ 7. optimize */

static void test_optimize_stats(void **state) {
  (void)state;
  Compilation *c = compile_model_grad("mnist_mlp.nn");
  Graph *g = c->graph;
  int start = g->nnodes;
  PassStats st;
  optimize(g, 3, NULL, &st);
  assert_int_equal(st.n, PASS_COUNT);
  const char *names[] = {"fold", "simplify", "cse", "dce", "fuse"};
  for (int p = 0; p < PASS_COUNT; p++) {
    assert_string_equal(st.pass[p].name, names[p]);
    assert_true(st.pass[p].ms >= 0);
    if (p > 0) assert_int_equal(st.pass[p].before, st.pass[p - 1].after);
  }
  assert_int_equal(st.pass[0].before, start);
  assert_int_equal(st.pass[PASS_COUNT - 1].after, g->nnodes);
  /* Only fold adds nodes (one constant per folded node); dce removes. */
  assert_int_equal(st.pass[PASS_FOLD].after, st.pass[PASS_FOLD].before + st.pass[PASS_FOLD].changed);
  assert_int_equal(st.pass[PASS_SIMPLIFY].after, st.pass[PASS_SIMPLIFY].before);
  assert_int_equal(st.pass[PASS_CSE].after, st.pass[PASS_CSE].before);
  assert_int_equal(st.pass[PASS_DCE].changed, st.pass[PASS_DCE].before - st.pass[PASS_DCE].after);
  assert_int_equal(st.pass[PASS_FUSE].after, st.pass[PASS_FUSE].before);
  assert_true(st.pass[PASS_CSE].changed > 0);
  assert_true(st.pass[PASS_FUSE].changed > 0);
  int inlined = 0;
  for (int i = 0; i < g->nnodes; i++) inlined += g->nodes[i]->inlined_into != NULL;
  assert_int_equal(st.pass[PASS_FUSE].changed, inlined);
  assert_true(g->reuse_memory);
  assert_string_equal(g->stage, "opt");
  release(c);

  /* Stopping after cse: three records, ids dense, nothing fused. */
  c = compile_model_grad("mnist_mlp.nn");
  g = c->graph;
  optimize(g, 3, "cse", &st);
  assert_int_equal(st.n, 3);
  assert_string_equal(st.pass[2].name, "cse");
  assert_string_equal(g->stage, "cse");
  assert_dense_topological(g);
  for (int i = 0; i < g->nnodes; i++) assert_null(g->nodes[i]->inlined_into);
  release(c);

  /* Level 0 runs no pass and records none. */
  c = compile_model_grad("mnist_mlp.nn");
  g = c->graph;
  start = g->nnodes;
  optimize(g, 0, NULL, &st);
  assert_int_equal(st.n, 0);
  assert_int_equal(g->nnodes, start);
  assert_false(g->reuse_memory);
  release(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_op_properties, teardown),
      cmocka_unit_test_teardown(test_fold_constant_arithmetic, teardown),
      cmocka_unit_test_teardown(test_fold_chain_in_one_pass, teardown),
      cmocka_unit_test_teardown(test_fold_not_inputs, teardown),
      cmocka_unit_test_teardown(test_fold_size_limit, teardown),
      cmocka_unit_test_teardown(test_fold_symbolic_size, teardown),
      cmocka_unit_test_teardown(test_fold_static_size, teardown),
      cmocka_unit_test_teardown(test_fold_not_roots, teardown),
      cmocka_unit_test_teardown(test_fold_not_mode_or_random, teardown),
      cmocka_unit_test_teardown(test_simplify_identities, teardown),
      cmocka_unit_test_teardown(test_simplify_not_when_shape_changes, teardown),
      cmocka_unit_test_teardown(test_simplify_unary_and_layout, teardown),
      cmocka_unit_test_teardown(test_simplify_reshape_of_reshape, teardown),
      cmocka_unit_test_teardown(test_simplify_transpose_inverse, teardown),
      cmocka_unit_test_teardown(test_simplify_transpose_compose, teardown),
      cmocka_unit_test_teardown(test_simplify_reduce_of_broadcast, teardown),
      cmocka_unit_test_teardown(test_canon_cross_entropy, teardown),
      cmocka_unit_test_teardown(test_cse_same_op, teardown),
      cmocka_unit_test_teardown(test_cse_constants, teardown),
      cmocka_unit_test_teardown(test_cse_no_commutativity, teardown),
      cmocka_unit_test_teardown(test_cse_attributes_differ, teardown),
      cmocka_unit_test_teardown(test_cse_every_attribute, teardown),
      cmocka_unit_test_teardown(test_cse_never_leaves, teardown),
      cmocka_unit_test_teardown(test_cse_mnist_mlp, teardown),
      cmocka_unit_test_teardown(test_cse_after_fold, teardown),
      cmocka_unit_test_teardown(test_dce_removes_dead, teardown),
      cmocka_unit_test_teardown(test_dce_keeps_unused_leaves, teardown),
      cmocka_unit_test_teardown(test_dce_assigns_last, teardown),
      cmocka_unit_test_teardown(test_fuse_chain, teardown),
      cmocka_unit_test_teardown(test_fuse_not_two_users, teardown),
      cmocka_unit_test_teardown(test_fuse_product_into_col2im, teardown),
      cmocka_unit_test_teardown(test_fuse_patches_into_products, teardown),
      cmocka_unit_test_teardown(test_fuse_into_reduction, teardown),
      cmocka_unit_test_teardown(test_fuse_not_across_broadcast, teardown),
      cmocka_unit_test_teardown(test_fuse_never_roots, teardown),
      cmocka_unit_test_teardown(test_fuse_in_place_rmsprop, teardown),
      cmocka_unit_test_teardown(test_fuse_not_in_place_when_read_later, teardown),
      cmocka_unit_test_teardown(test_fuse_roots_own_storage, teardown),
      cmocka_unit_test_teardown(test_plan_chain_reuse, teardown),
      cmocka_unit_test_teardown(test_plan_input_never_shared, teardown),
      cmocka_unit_test_teardown(test_plan_models_no_overlap, teardown),
      cmocka_unit_test_teardown(test_optimize_stats, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
