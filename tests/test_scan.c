/*
 * test_scan.c - loops in the IR (compiler.h: Scan).
 *
 * A loop built node by node (a tanh RNN cell over 4 steps, forward and
 * reverse) must give the evaluator the same loss and gradients as the
 * same recurrence written out step by step in a model file, and its
 * gradients (a reverse loop: backpropagation through time) must match
 * finite differences, with the input products inside the loop and
 * hoisted out of it (hoist.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

static const char *const header =
    "input xs : f64[batch, 4, 3]\n"
    "input h0 : f64[batch, 2]\n"
    "input w  : f64[batch, 4, 2]\n"
    "param W : f64[3, 2] = glorot_uniform\n"
    "param U : f64[2, 2] = glorot_uniform\n"
    "param b : f64[2] = uniform(-0.5, 0.5)\n";

static Node *named(const Graph *g, const char *name) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
  fail_msg("no node named %s", name);
  return NULL;
}

static Node *mk(Graph *g, OpKind op, Node **src, int n, const Attrs *a) {
  Loc loc = {0};
  Node *r = graph_node(g, op, src, n, a, loc);
  if (!r) diag_print(stderr, g->diags);
  assert_non_null(r);
  return r;
}

static Node *bin(Graph *g, OpKind op, Node *x, Node *y) { return mk(g, op, (Node *[]){x, y}, 2, NULL); }

/* The loop of the cell tanh(x_t @ W + h @ U + b), its loss
 * sum(stack(h) * w) + sum(h_last^2), through autodiff. */
static Compilation *loop_model(bool reverse, bool hoisted) {
  char *src = malloc(4096);
  snprintf(src, 4096, "%sloss = sum(h0)\ntrain loss with sgd(lr=0.1)\n", header);
  Compilation *c = compile_model("loop", src, strlen(src), STAGE_PARSE);
  free(src);
  assert_non_null(c->graph);
  Graph *g = c->graph;
  Node *xs = named(g, "xs"), *h0 = named(g, "h0"), *w = named(g, "w");
  Node *W = named(g, "W"), *U = named(g, "U"), *b = named(g, "b");
  int l = graph_new_scan(g, (Dim){4, 0}, reverse, (Loc){0});
  g->cur_loop = l;
  Node *h = mk(g, OP_CARRY, &h0, 1, &(Attrs){.slot = 0});
  Node *x = mk(g, OP_SCAN_SLICE, &xs, 1, &(Attrs){.axis = 1});
  Node *z = mk(g, OP_TANH, (Node *[]){bin(g, OP_ADD, bin(g, OP_ADD, bin(g, OP_MATMUL, x, W),
                                                            bin(g, OP_MATMUL, h, U)), b)}, 1, NULL);
  Node *e = mk(g, OP_LOOP_END, (Node *[]){z, z}, 2, &(Attrs){.slot = 1});
  g->cur_loop = 0;
  Node *ys = mk(g, OP_SCAN_STACK, &e, 1, &(Attrs){.slot = 1, .axis = 1});
  Node *hl = mk(g, OP_SCAN_LAST, &e, 1, &(Attrs){.slot = 0});
  Attrs all = {.axes = 0x7};
  Node *l1 = mk(g, OP_SUM, (Node *[]){bin(g, OP_MUL, ys, w)}, 1, &all);
  Attrs all2 = {.axes = 0x3};
  Node *l2 = mk(g, OP_SUM, (Node *[]){bin(g, OP_MUL, hl, hl)}, 1, &all2);
  Node *loss = bin(g, OP_ADD, l1, l2);
  g->steps[0].loss->flags &= ~(unsigned)N_LOSS;
  g->steps[0].loss = loss;
  loss->flags |= N_LOSS;
  loss->name = "loss";
  graph_dce(g);
  char err[256];
  assert_true(graph_verify(g, false, err, sizeof err) || (fprintf(stderr, "%s\n", err), 0));
  if (hoisted) {
    assert_int_equal(hoist(g), 1);
    assert_true(graph_verify(g, false, err, sizeof err) || (fprintf(stderr, "%s\n", err), 0));
  }
  assert_true(autodiff(g));
  opt_update(g);
  graph_dce(g);
  fuse(g, false);
  if (getenv("TEST_SCAN_DUMP")) dump_graph(stderr, g, DUMP_TEXT, "grad");
  assert_true(graph_verify(g, true, err, sizeof err) || (fprintf(stderr, "%s\n", err), 0));
  return c;
}

/* The same recurrence written out. */
static Compilation *unrolled_model(bool reverse) {
  char *src = malloc(8192);
  int at = snprintf(src, 8192, "%s", header);
  const char *prev = "h0";
  char name[8][8];
  for (int i = 0; i < 4; i++) {
    int t = reverse ? 3 - i : i;
    snprintf(name[i], sizeof name[i], "h%d", i + 1);
    at += snprintf(src + at, 8192 - (size_t)at, "%s = tanh(xs[:, %d, :] @ W + %s @ U + b)\n",
                   name[i], t, prev);
    prev = name[i];
  }
  at += snprintf(src + at, 8192 - (size_t)at, "loss = sum(h4 * h4)");
  for (int i = 0; i < 4; i++) {
    int t = reverse ? 3 - i : i;
    at += snprintf(src + at, 8192 - (size_t)at, " + sum(%s * w[:, %d, :])", name[i], t);
  }
  snprintf(src + at, 8192 - (size_t)at, "\ntrain loss with sgd(lr=0.1)\n");
  Compilation *c = compile_model("unrolled", src, strlen(src), STAGE_GRAD);
  if (!c->graph) diag_print(stderr, &c->diags);
  free(src);
  assert_non_null(c->graph);
  return c;
}

static Eval *ready(const Graph *g) {
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "batch", 3));
  eval_init(e, 7);
  const char *in[3] = {"xs", "h0", "w"};
  for (int k = 0; k < 3; k++) {
    Node *n = named(g, in[k]);
    double *v = eval_data(e, n);
    for (int64_t i = 0; i < eval_count(e, n); i++) v[i] = sin(1.7 * (double)i + k) * 0.9;
  }
  eval_set_train(e, true);
  return e;
}

static const Node *grad_of(const Graph *g, const char *param) {
  for (int i = 0; i < g->steps[0].ngrads; i++)
    if (strcmp(g->steps[0].grads[i].param->name, param) == 0) return g->steps[0].grads[i].grad;
  fail_msg("no gradient for %s", param);
  return NULL;
}

static void same_as_unrolled(bool reverse, bool hoisted) {
  Compilation *lc = loop_model(reverse, hoisted), *uc = unrolled_model(reverse);
  const Graph *lg = lc->graph, *ug = uc->graph;
  Eval *le = ready(lg), *ue = ready(ug);
  const char *params[3] = {"W", "U", "b"};
  Node *roots[4], *uroots[4];
  roots[0] = lg->steps[0].loss, uroots[0] = ug->steps[0].loss;
  for (int k = 0; k < 3; k++) {
    roots[1 + k] = (Node *)grad_of(lg, params[k]);
    uroots[1 + k] = (Node *)grad_of(ug, params[k]);
  }
  eval_run(le, roots, 4);
  eval_run(ue, uroots, 4);
  for (int r = 0; r < 4; r++) {
    int64_t n = eval_count(le, roots[r]);
    assert_int_equal(n, eval_count(ue, uroots[r]));
    double *a = eval_data(le, roots[r]), *b = eval_data(ue, uroots[r]);
    for (int64_t i = 0; i < n; i++)
      if (fabs(a[i] - b[i]) > 1e-12 * fmax(1, fabs(b[i])))
        fail_msg("%s[%lld]: loop %.17g, unrolled %.17g", r ? params[r - 1] : "loss",
                 (long long)i, a[i], b[i]);
  }
  eval_free(le);
  eval_free(ue);
  compilation_free(lc);
  compilation_free(uc);
}

static void test_loop_matches_unrolled(void **state) {
  (void)state;
  same_as_unrolled(false, false);
  same_as_unrolled(false, true);
}

static void test_reverse_loop_matches_unrolled(void **state) {
  (void)state;
  same_as_unrolled(true, false);
  same_as_unrolled(true, true);
}

static void test_loop_gradients_check(void **state) {
  (void)state;
  for (int r = 0; r < 4; r++) {
    Compilation *c = loop_model(r & 1, r & 2);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int rc = check_gradients(c->graph, 3, 3, 1e-6, out);
    fclose(out);
    if (rc) fprintf(stderr, "%s", text);
    free(text);
    assert_int_equal(rc, 0);
    compilation_free(c);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loop_matches_unrolled),
      cmocka_unit_test(test_reverse_loop_matches_unrolled),
      cmocka_unit_test(test_loop_gradients_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
