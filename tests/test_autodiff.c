/*
 * test_autodiff.c - the backward graph and the optimizer updates.
 *
 * 1. One table of tiny models, each feeding one op (or a broadcasting,
 *    reduction or layout variant of it) from parameters into a scalar loss
 *    weighted by random inputs, so no gradient is trivially symmetric.  Every
 *    row must pass gradc check (central finite differences in double) at
 *    1e-5 for several seeds, and every op with a gradient rule must occur in
 *    some row: a new op without a row fails test_every_rule_has_a_row.
 * 2. Exact values from the seeds (SEEDS M4, S1 L3615): w*w, the chain rule
 *    of two affine layers, the sigmoid gradient vector.
 * 3. Every optimizer against the Keras 2.x update written out here by hand.
 * 4. Warnings and the grad-stage dump.
 * 5. gradc check's criterion: tiny gradients, integer inputs over the
 *    range they index, kinks, wrong gradients (injected) still failing.
 * 6. Every model in models/ and every seed model in tests/seeds/ passes
 *    gradc check.
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

/* |a - b| <= rtol * max(|a|, |b|), or both tiny (<= atol). */
static bool near(double a, double b, double rtol, double atol) {
  if (isnan(a) || isnan(b)) return false;
  double d = fabs(a - b);
  return d <= atol || d <= rtol * fmax(fabs(a), fabs(b));
}

static void assert_near(double actual, double expected, double rtol, double atol,
                        const char *what) {
  if (!near(actual, expected, rtol, atol)) {
    print_error("%s: got %.17g, expected %.17g (rel tol %g)\n", what, actual, expected,
                rtol);
    fail();
  }
}

/* Compiles through autodiff; on an error prints the diagnostics and fails. */
static Compilation *compile_grad(const char *name, const char *src) {
  Compilation *c = compile_model(name, src, strlen(src), STAGE_GRAD);
  assert_non_null(c);
  if (!c->graph) {
    diag_print(stderr, &c->diags);
    print_error("%s: did not compile\n", name);
    compilation_free(c);
    fail();
  }
  return c;
}

/* The last node bound to name. */
static Node *named(const Graph *g, const char *name) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
  print_error("no node named '%s'\n", name);
  fail();
  return NULL;
}

static Node *grad_of(const Graph *g, const char *param) {
  for (int i = 0; i < g->steps[0].ngrads; i++)
    if (strcmp(g->steps[0].grads[i].param->name, param) == 0) return g->steps[0].grads[i].grad;
  print_error("no gradient for '%s'\n", param);
  fail();
  return NULL;
}

/* check_gradients with its table captured; printed only when it fails. */
static int run_check(const Graph *g, uint64_t seed, int64_t batch, double tol) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  int rc = check_gradients(g, seed, batch, tol, out);
  fclose(out);
  if (rc != 0) fprintf(stderr, "%s", text);
  free(text);
  return rc;
}

/* check_gradients_order at order 2, batch 3: 0 when it passed and did
 * check the second order; else its table goes to stderr. */
static int run_check_order2(Graph *g, uint64_t seed, double tol) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  int rc = check_gradients_order(g, seed, 3, tol, 2, out);
  fclose(out);
  if (rc == 0 && !strstr(text, ", order 2: ")) rc = 1;
  if (rc != 0) fprintf(stderr, "%s\n", text);
  free(text);
  return rc;
}

/* check_gradients with its table returned in *text (the caller frees it). */
static int check_text(const Graph *g, uint64_t seed, int64_t batch, double tol, char **text) {
  size_t len = 0;
  FILE *out = open_memstream(text, &len);
  assert_non_null(out);
  int rc = check_gradients(g, seed, batch, tol, out);
  fclose(out);
  return rc;
}

/* Fault injection: the gradient of param becomes grad * factor (a constant
 * of param's shape; the caller keeps it alive), so check sees a wrong rule. */
static void corrupt_grad(Graph *g, const char *param, double *factor) {
  for (int i = 0; i < g->steps[0].ngrads; i++) {
    Node *p = g->steps[0].grads[i].param;
    if (strcmp(p->name, param)) continue;
    Node *c = graph_leaf(g, OP_CONST, NULL, p->dtype, &p->shape, p->loc);
    c->a.values = factor;
    Node *src[2] = {g->steps[0].grads[i].grad, c};
    Node *m = graph_node(g, OP_MUL, src, 2, NULL, p->loc);
    assert_non_null(m);
    g->steps[0].grads[i].grad = m;
    return;
  }
  print_error("no gradient for '%s'\n", param);
  fail();
}

static bool has_warning(const Diags *d, const char *text) {
  for (const Diag *x = d->first; x; x = x->next)
    if (x->level == DIAG_WARNING && strstr(x->msg, text)) return true;
  return false;
}

/* ------------------------------------------------------------ 1. the table */

typedef struct Row {
  const char *name;
  const char *src;
} Row;

/* Every row ends in a scalar loss and a train statement; inputs k, k3 are
 * random weights (gradc check fills inputs from [-1, 1]). */
#define XK "input x : f32[batch, 4]\ninput k : f32[batch, 3]\n"
#define TRAIN "train loss with sgd\n"

static const Row rows[] = {
    /* elementwise binary ops and broadcasting */
    {"bias_add", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param b : f32[3] = uniform(-1, 1)\n"
     "h = tanh(x @ W + b)\n"
     "loss = sum(h * k)\n" TRAIN},
    {"column_times_row", XK
     "param u : f32[4, 1] = uniform(-1, 1)\n"
     "param v : f32[1, 3] = uniform(-1, 1)\n"
     "col = x @ u\n"
     "loss = sum(sigmoid(col * v) * k)\n" TRAIN},
    {"scalar_params", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param s : f32 = 0.7\n"
     "param t : f32 = -0.3\n"
     "loss = sum(tanh((x @ W) * s + t) * k) + s * t\n" TRAIN},
    {"sub_neg", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param a : f32[3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = sum(square(a - h) * k) - sum(-(h - a * a) * k)\n" TRAIN},
    {"shared_w_times_w",
     "param w : f32[3] = uniform(-1, 1)\n"
     "const c : f32[3] = [0.5, -1.5, 2.0]\n"
     "loss = sum(w * w * c)\n" TRAIN},
    {"div_both_operands", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param d : f32[3] = uniform(1, 2)\n"
     "h = x @ W\n"
     "loss = sum((h + 1) / (d + h * h) * k) + sum(2 / d)\n" TRAIN},
    {"pow_param_exponent", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param c : f32[3] = uniform(0.5, 1.5)\n"
     "param e : f32[3] = uniform(0.5, 2)\n"
     "h = x @ W\n"
     "loss = sum((c + h * h) ** e * k) + sum(pow(c, 3) * e) + sum(h ** 2 * k)\n" TRAIN},
    {"maximum_minimum", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param b : f32[3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = sum(maximum(h, b) * k) + sum(minimum(b * 2, h) * k)\n" TRAIN},
    {"abs_clip",     /* 36 values a seed, so some fall just outside each bound */
     "input x : f32[batch, 4]\n"
     "param W : f32[4, 12] = uniform(-1, 1)\n"
     "param K : f32[12] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = sum(abs(h) * K) + sum(clip(h * 2, -0.5, 0.5) * K)\n" TRAIN},
    {"unary_chain", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param b : f32[3] = uniform(-1, 1)\n"
     "h = x @ W + b\n"
     "u = relu(h) + sigmoid(h) + tanh(h) + exp(h * 0.5)\n"
     "v = log(square(h) + 1) + sqrt(square(h) + 0.5) + log(sigmoid(h))\n"
     "loss = sum((u + v) * k)\n" TRAIN},
    {"softplus", XK       /* h reaches +-20: both saturated sides */
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param b : f32[3] = uniform(-1, 1)\n"
     "h = (x @ W + b) * 8\n"
     "loss = sum(softplus(h) * k) + sum(softplus(-h * b))\n" TRAIN},
    {"erf_gelu", XK       /* erf and PyTorch's exact GELU, x/2 (1 + erf(x / sqrt 2)) */
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param b : f32[3] = uniform(-1, 1)\n"
     "h = (x @ W + b) * 2\n"
     "loss = sum(erf(h) * k) + sum(h * 0.5 * (1 + erf(h / 1.4142135)) * k)\n" TRAIN},
    {"where", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param a : f32[3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = sum(where(h > 0, h * a, a * a) * k) + sum(where(k < 0.5, 1, h) * a)\n" TRAIN},
    {"cast_f32_f64_f32", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = cast(x @ W, f64)\n"
     "h2 = tanh(h) * cast(k, f64)\n"
     "loss = cast(sum(h2 * h2), f32)\n" TRAIN},
    {"cast_f32_to_f64_loss", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = cast(x @ W, f64)\n"
     "loss = sum(tanh(h) * cast(k, f64))\n" TRAIN},
    /* matmul */
    {"matmul_plain", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param V : f32[3, 3] = uniform(-1, 1)\n"
     "loss = sum(tanh(x @ W) @ V * k)\n" TRAIN},
    {"matmul_batched",
     "param A : f32[2, 3, 4] = uniform(-1, 1)\n"
     "param B : f32[2, 4, 5] = uniform(-1, 1)\n"
     "param K : f32[2, 3, 5] = uniform(-1, 1)\n"
     "loss = sum(tanh(A @ B) * K)\n" TRAIN},
    {"matmul_broadcast_batch",
     "input t : f32[batch, 2, 4]\n"
     "input kk : f32[3, 2, 2, 3]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param P : f32[3, 1, 2, 4] = uniform(-1, 1)\n"
     "param Q : f32[2, 4, 3] = uniform(-1, 1)\n"
     "h = t @ W\n"
     "loss = sum(tanh(P @ Q) * kk) + sum(h * h)\n" TRAIN},
    {"matmul_transpose_flags", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param V : f32[3, 4] = uniform(-1, 1)\n"
     "param A : f32[4, 2] = uniform(-1, 1)\n"
     "p = matmul(W, x, transpose_a=true, transpose_b=true)\n"
     "q = matmul(x, V, transpose_b=true)\n"
     "r = matmul(A, W, transpose_a=true)\n"
     "loss = sum(tanh(p) * transpose(k)) + sum(q * k) + sum(r * r)\n" TRAIN},
    /* softmax family */
    {"softmax_axes", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = sum(softmax(h) * k) + sum(softmax(h, axis=0) * k)\n" TRAIN},
    {"log_softmax_axes", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = sum(log_softmax(h, axis=-1) * k) + sum(log_softmax(h, axis=0) * k)\n" TRAIN},
    /* reductions */
    {"sum_mean_axes",
     "input x : f32[batch, 4]\n"
     "input k3 : f32[batch, 2, 3]\n"
     "param W : f32[4, 6] = uniform(-1, 1)\n"
     "h = reshape(tanh(x @ W), [batch, 2, 3])\n"
     "a = sum(h * k3, axis=1)\n"
     "b = mean(h * k3, axis=[0, 2], keepdims=true)\n"
     "c = sum(h * h, axis=-1, keepdims=true)\n"
     "d = mean(h, axis=0)\n"
     "loss = sum(a * a) + sum(b) + sum(c * k3) + mean(h * k3) + sum(d * d)\n" TRAIN},
    {"max_min_reductions",
     "input x : f32[batch, 4]\n"
     "input k : f32[batch, 3]\n"
     "input k3 : f32[batch, 2, 3]\n"
     "param W : f32[4, 6] = uniform(-1, 1)\n"
     "h = reshape(x @ W, [batch, 2, 3])\n"
     "loss = sum(max(h, axis=1) * k) + sum(min(h, axis=-1, keepdims=true) * k3) + max(h * k3) "
     "+ min(h) + sum(max(h, axis=[0, 2]))\n" TRAIN},
    /* layout */
    {"reshape_transpose",
     "input x : f32[batch, 4]\n"
     "input k3 : f32[batch, 3, 2]\n"
     "param W : f32[4, 6] = uniform(-1, 1)\n"
     "param Kt : f32[3, 1, 2] = uniform(-1, 1)\n"
     "h = reshape(x @ W, [batch, 2, 3])\n"
     "t = transpose(h, [0, 2, 1])\n"
     "r = transpose(h, [2, 0, 1])\n"      /* not its own inverse */
     "f = flatten(t)\n"
     "e = squeeze(expand_dims(f, 1), 1)\n"
     "loss = sum(tanh(t) * k3) + sum(e * e) + sum(tanh(r) * Kt)\n" TRAIN},
    {"broadcast_to", XK
     "param b : f32[3] = uniform(-1, 1)\n"
     "param r : f32[1, 3] = uniform(-1, 1)\n"
     "loss = sum(broadcast_to(b, [batch, 3]) * k) + sum(broadcast_to(r, [2, 3]) * "
     "broadcast_to(b, [2, 3]))\n" TRAIN},
    {"concat", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param A : f32[2, 3] = uniform(-1, 1)\n"
     "param B : f32[1, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "c1 = concat(h, x, axis=1)\n"
     "c2 = concat(A, B, A * B, axis=0)\n"
     "c3 = concat(tanh(h), k, axis=-1)\n"
     "loss = sum(c1 * c1) + sum(c2 * c2 * c2) + sum(c3[:, 0:3] * c3[:, 3:6])\n" TRAIN},
    {"slice_step_index", XK
     "param W : f32[4, 6] = uniform(-1, 1)\n"
     "param P : f32[5] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "a = h[:, 1:6:2]\n"
     "b = h[:, ::-2]\n"
     "c = h[:, 0]\n"
     "d = P[3::-2]\n"
     "e = P[-1]\n"
     "loss = sum(a * k) + sum(tanh(b) * k) + sum(c * c) + sum(d * P[1:3]) + e * P[0]\n" TRAIN},
    /* losses */
    {"softmax_ce_int_labels",
     "input x : f32[batch, 4]\n"
     "input y : i32[batch]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param b : f32[3] = uniform(-1, 1)\n"
     "loss = mean(softmax_cross_entropy(x @ W + b, y))\n" TRAIN},
    {"softmax_ce_prob_targets",
     "input x : f32[batch, 4]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param V : f32[4, 3] = uniform(-1, 1)\n"
     "t = softmax(x @ V)\n"
     "loss = mean(softmax_cross_entropy(x @ W, t))\n" TRAIN},
    {"sigmoid_ce",
     "input x : f32[batch, 4]\n"
     "input z : f32[batch, 3]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param V : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = mean(sigmoid_cross_entropy(h, z)) + "
     "sum(sigmoid_cross_entropy(h * 2, sigmoid(x @ V)))\n" TRAIN},
    {"mse",
     "input x : f32[batch, 4]\n"
     "input z : f32[batch, 3]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "loss = mean(mse(x @ W, z))\n" TRAIN},
    /* Keras' losses on probabilities: targets in (0, 1), predictions away
     * from the clipping bounds (clip passes the gradient inside them) */
    {"binary_crossentropy",
     "input x : f32[batch, 4]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param V : f32[4, 3] = uniform(-1, 1)\n"
     "loss = mean(binary_crossentropy(sigmoid(x @ V), sigmoid(x @ W)))\n" TRAIN},
    {"kl_divergence",
     "input x : f32[batch, 4]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param V : f32[4, 3] = uniform(-1, 1)\n"
     "loss = mean(kl_divergence(softmax(x @ V), softmax(x @ W)))\n" TRAIN},
    /* random ops are constants of the parameters: the reparameterisation
     * z = mu + exp(0.5 log_var) eps differentiates through mu and log_var */
    {"random_reparameterisation",
     "input x : f32[batch, 4]\ninput k : f32[batch, 3]\n"
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param V : f32[4, 3] = uniform(-1, 1)\n"
     "z = x @ W + exp(0.5 * (x @ V)) * random_normal([batch, 3], seed=4)\n"
     "u = random_uniform([batch, 3], -1, 1) + truncated_normal([batch, 3])\n"
     "loss = sum(tanh(z + u) * k)\n" TRAIN},
    /* dense sugar with each activation */
    {"dense_activations", XK
     "h1 = dense(x, 3, activation=relu)\n"
     "h2 = dense(x, 3, activation=sigmoid)\n"
     "h3 = dense(x, 3, activation=tanh)\n"
     "h4 = dense(x, 3, activation=exp)\n"
     "h5 = dense(x, 3, activation=softmax)\n"
     "h6 = dense(x, 3, activation=linear)\n"
     "h7 = dense(x, 3)\n"
     "loss = sum((h1 + h2 + h3 + h4 + h5 + h6 * h7) * k)\n" TRAIN},
    /* fan-out: one weight in two branches; a residual connection */
    {"shared_weight_two_branches", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h1 = tanh(x @ W)\n"
     "h2 = sigmoid(x @ W)\n"
     "loss = sum((h1 + h2 * h1) * k)\n" TRAIN},
    {"residual", XK
     "param W1 : f32[4, 4] = uniform(-1, 1)\n"
     "param b1 : f32[4] = uniform(-1, 1)\n"
     "param W2 : f32[4, 4] = uniform(-1, 1)\n"
     "param W3 : f32[4, 3] = uniform(-1, 1)\n"
     "h = relu(x @ W1 + b1) @ W2 + x\n"
     "loss = sum(tanh(h @ W3) * k)\n" TRAIN},
    /* convolutions and pooling on 6x6 NHWC images (tests/test_jit.c runs
     * the same ops compiled) */
    {"conv2d_valid",
     "input x : f32[batch, 6, 6, 2]\ninput k : f32[batch, 4, 4, 3]\n"
     "param w : f32[3, 3, 2, 3] = uniform(-1, 1)\n"
     "loss = sum(tanh(conv2d(x, w)) * k)\n" TRAIN},
    {"conv2d_same_stride_dilation",
     "input x : f32[batch, 6, 6, 2]\ninput k : f32[batch, 3, 3, 4]\n"
     "input k2 : f32[batch, 6, 6, 4]\n"
     "param w : f32[3, 2, 2, 4] = uniform(-1, 1)\n"
     "h = conv2d(tanh(x * 2), w, strides=2, padding=same)\n"
     "h2 = conv2d(x, w, padding=same, dilation=[2, 3])\n"
     "loss = sum(sigmoid(h) * k) + sum(h2 * k2)\n" TRAIN},
    {"conv2d_layer_relu",
     "input x : f32[batch, 6, 6, 1]\ninput k : f32[batch, 2, 2, 2]\n"
     "c = conv2d(x, filters=2, kernel=3, strides=[2, 1], padding=valid, activation=tanh,\n"
     "           bias_initializer=0.3)\n"
     "d = conv2d(c, 2, [1, 3], activation=relu, bias_initializer=0.3)\n"
     "loss = sum(d * k)\n" TRAIN},
    {"maxpool2d",
     "input x : f32[batch, 6, 6, 2]\ninput k : f32[batch, 3, 3, 2]\n"
     "input k2 : f32[batch, 2, 2, 2]\n"
     "param w : f32[2] = uniform(-1, 1)\n"
     "h = tanh(x * w)\n"
     "loss = sum(maxpool2d(h, 2) * k) + sum(maxpool2d(h, pool=3, strides=2) * k2)"
     " + sum(maxpool2d(h, [3, 2], strides=[2, 2], padding=same) * k)\n" TRAIN},
    {"avgpool2d",
     "input x : f32[batch, 6, 6, 2]\ninput k : f32[batch, 3, 3, 2]\n"
     "input k2 : f32[batch, 2, 2, 2]\n"
     "param w : f32[2] = uniform(-1, 1)\n"
     "h = tanh(x * w)\n"
     "loss = sum(avgpool2d(h, 2) * k) + sum(avgpool2d(h, pool=3, strides=2) * k2)"
     " + sum(avgpool2d(h, pool_size=[3, 2], strides=2, padding=same) * k)\n" TRAIN},
    /* dropout: gradients of the train step, through the mask */
    {"dropout",
     "input x : f32[batch, 6, 6, 2]\ninput k : f32[batch, 3]\n"
     "h = conv2d(x, 3, 3, activation=tanh, bias_initializer=0.1)\n"
     "d = dropout(h, 0.3)\n"
     "z = dense(flatten(d), 3, activation=tanh)\n"
     "loss = sum(dropout(z, rate=0.5, seed=7) * k)\n" TRAIN},
    /* batch norm: the train step's batch statistics (a bias before it has
     * no gradient at all, so none here) */
    {"batch_norm",
     "input x : f32[batch, 5, 5, 2]\ninput k : f32[batch, 3, 3, 3]\ninput k2 : f32[batch, 4]\n"
     "h = conv2d(x, 3, 3, use_bias=false)\n"
     "n = batch_norm(h, momentum=0.9)\n"
     "z = dense(flatten(tanh(n)), 4, use_bias=false)\n"
     "loss = sum(n * k) + sum(tanh(batch_norm(z, axis=1, epsilon=0.01)) * k2)\n" TRAIN},
    /* batch_norm(sync=true): its replica_mean nodes, the value itself on
     * one process, in the forward pass and in the gradient */
    {"batch_norm_sync",
     "input x : f32[batch, 3, 3, 2]\ninput k : f32[batch, 3, 3, 2]\n"
     "h = conv2d(x, 2, 2, padding=same, use_bias=false)\n"
     "loss = sum(tanh(batch_norm(h, sync=true)) * k)\n" TRAIN},
    /* embedding: repeated ids (5 rows, batch 3 x 4 ids) add up in the
     * table's gradient; scatter_add's own rule is a gather */
    {"embedding_gather_scatter_add",
     "input ids : i32[batch, 4]\ninput j : i32[3, 4]\ninput k : f32[batch, 4, 3]\n"
     "input k2 : f32[6, 2]\n"
     "param v : f32[3, 4, 2] = uniform(-1, 1)\n"
     "e = embedding(ids, 5, 3, embeddings_initializer=glorot_uniform)\n"
     "loss = sum(tanh(e) * k) + sum(tanh(scatter_add(v, j, 6)) * k2)\n" TRAIN},
    {"global_pool_upsample_pad_flatten",
     "input x : f32[batch, 3, 3, 2]\ninput k : f32[batch, 2]\n"
     "input k2 : f32[batch, 7, 11, 2]\ninput k3 : f32[batch, 18]\n"
     "param w : f32[2] = uniform(-1, 1)\n"
     "h = tanh(x * w)\n"
     "u = upsample2d(h, [2, 3])\n"
     "loss = sum(global_avgpool2d(h) * k) + sum(pad(u, [[0, 0], [1, 0], [0, 2], [0, 0]]) * k2)"
     " + sum(flatten(h) * k3)\n" TRAIN},
    /* issue 18: the GAN ops and grad() (test_second_order_every_row takes
     * every row, these too, to order 2) */
    {"trig_reciprocal", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "loss = sum(sin(h) * k) + sum(cos(h * 2) * k) + sum(reciprocal(h * h + 1) * k)"
     " + sum(floor(h) * h) + sum(ceil(h) * k) + sum(round(h) * h) + sum(sign(h) * h)\n" TRAIN},
    /* issue 24: every toolkit function is a take by computed positions, so
     * these rows check take's and take_add's rules (and cumsum's) under
     * each of them */
    {"gather_axes", XK
     "input ids : i32[batch, 2]\n"
     "param W : f32[3, 4, 2] = uniform(-1, 1)\n"
     "param v : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ v\n"
     "loss = sum(gather(W, [2, 0, 2], axis=0) * sum(h)) + sum(gather(W, ids, axis=1) * 0.5)"
     " + sum(gather_nd(W, [[1, 2], [0, 3]]) * 2) + sum(gather(v, [[1, 2], [0, 0], [3, 1], [2, 2]], axis=1, batch_dims=1))"
     " + sum(take(v, ids) * h[:, 0:2])\n" TRAIN},
    {"tile_repeat_stack_split", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "a, b, c = split(W, [1, 2, -1], axis=0)\n"
     "u0, u1, u2 = unstack(W, axis=1)\n"
     "loss = sum(tile(W, [1, 2]) * sum(h * k)) + sum(repeat(W, [1, 2, 3], axis=1) * square(repeat(W, 2)[0:6]))"
     " + sum(stack(a[0], c[0], axis=1) * b[1:2, 0:2]) + sum(u0 * u1 * u2) + sum(scatter_nd([[1], [1]], W[0:2, :] * sum(h), [3, 3]) * W[0:3])\n" TRAIN},
    {"sort_top_k_cumsum", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "tv, ti = top_k(W, 2)\n"
     "loss = sum(sort(W * W, axis=1) * sum(h * k)) + sum(sort(W, axis=0, direction=DESCENDING) * W)"
     " + sum(tv * tv) + sum(cumsum(h, axis=1) * k) + sum(cumsum(W, exclusive=true, reverse=true) * W)\n" TRAIN},
    /* issue 24, last gaps: % and // away from their jumps (a/b stays in
     * (1.1, 1.9) and (-1.9, -1.1)), so d(a % b)/db = -floor(a/b) is -1 or
     * 2; a // b passes a zero gradient */
    {"floormod_floordiv", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param q : f32[3] = uniform(1.6, 2)\n"
     "h = x @ W\n"
     "a = 2.5 + tanh(h) * 0.3\n"
     "loss = sum((a % q) * k) + sum(((-a) % q) * k * 2) + sum((a // q) * a * k) + sum(floormod(a * k + 3, 7.5))\n" TRAIN},
    /* cumprod's rule divides by x: right where no element is zero, which
     * uniform weights and 1.5 + tanh(h) / 2 are not; exclusive is a
     * shift, reverse two flips */
    {"cumprod", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "a = 1.5 + tanh(h) * 0.5\n"
     "loss = sum(cumprod(a, axis=1) * k) + sum(cumprod(W, exclusive=true) * W)"
     " + sum(cumprod(W, axis=1, reverse=true) * W) + sum(cumprod(a, axis=1, exclusive=true, reverse=true) * k)\n" TRAIN},
    /* issue 24's padded results: boolean_mask is a take_add, its gradient
     * a take of gy back at the selected positions, zero elsewhere;
     * unique's values a selection of the first occurrences */
    {"boolean_mask_unique", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "h = x @ W\n"
     "m = [[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]] > 0\n"
     "y, i = unique(concat(W[0], W[0:2, 1], axis=0))\n"
     "loss = sum(boolean_mask(W, [1, 0, 1, 1] > 0) * sum(h * k)) + sum(boolean_mask(W, m) * W[0, 0])"
     " + sum(boolean_mask(W, [0, 1, 1] > 0, axis=1) * W) + sum(y * y * W[1, 2])\n" TRAIN},
    {"leaky_relu", XK
     "param W : f32[4, 3] = uniform(-1, 1)\n"
     "param b : f32[3] = uniform(-1, 1)\n"
     "h = x @ W + b\n"
     "loss = sum(leaky_relu(h) * k) + sum(leaky_relu(h * 2, alpha=0.3) * k)"
     " + sum(leaky_relu(h, -0.5) * h)\n" TRAIN},
    {"norm_ords_axes",
     "input x : f32[batch, 4]\ninput k : f32[batch, 3]\ninput k2 : f32[batch, 2]\n"
     "param W : f32[4, 6] = uniform(-1, 1)\n"
     "h = reshape(tanh(x @ W), [batch, 2, 3])\n"
     "loss = sum(norm(h, axis=-1) * k2) + norm(h) + sum(norm(h, axis=[1, 2], keepdims=true))"
     " + sum(norm(h, ord=2, axis=1) * k) + sum(norm(h, ord=1, axis=1) * k)"
     " + sum(norm(h, ord=inf, axis=[1, 2])) + sum(norm(h, ord=1, axis=[2, 1]))"
     " + sum(norm(h, ord=fro, axis=[0, 2])) + sum(norm(h, ord=inf, axis=2) * k2)\n" TRAIN},
    {"conv2d_transpose",
     "input x : f32[batch, 3, 3, 2]\ninput k : f32[batch, 6, 6, 4]\n"
     "input k2 : f32[batch, 8, 8, 4]\ninput k3 : f32[batch, 3, 6, 3]\n"
     "param w : f32[3, 3, 4, 2] = uniform(-1, 1)\n"
     "h = tanh(x * 2)\n"
     "y1 = conv2d_transpose(h, w, strides=2, padding=same)\n"
     "y2 = conv2d_transpose(h, w, strides=2, output_padding=1)\n"
     "y3 = conv2d_transpose(h, filters=3, kernel=[2, 3], strides=[1, 2], padding=same,\n"
     "                      activation=tanh, bias_initializer=0.1)\n"
     "loss = sum(tanh(y1) * k) + sum(y2 * k2) + sum(y3 * k3)\n" TRAIN},
    {"upsample_bilinear",
     "input x : f32[batch, 3, 2, 2]\ninput k : f32[batch, 6, 6, 2]\n"
     "param w : f32[2] = uniform(-1, 1)\n"
     "u = upsample2d(tanh(x * w), [2, 3], interpolation=bilinear)\n"
     "loss = sum(tanh(u) * k)\n" TRAIN},
    /* a WGAN-GP critic: conv, leaky_relu, relu, dense, tanh, sigmoid,
     * sigmoid_cross_entropy, flatten, mean and norm, differentiated
     * inside the loss and again by the train step */
    {"grad_penalty",
     "input a : f32[batch, 5, 5, 1]\ninput b : f32[batch, 5, 5, 1]\n"
     "input t : f32[batch, 1, 1, 1]\ninput z : f32[batch, 1]\n"
     "def critic(v) {\n"
     "  h = conv2d(v, filters=2, kernel=3, strides=2, padding=same, bias_initializer=0.1)\n"
     "  r = relu(conv2d(leaky_relu(h), 2, 1, bias_initializer=0.2))\n"
     "  return dense(tanh(flatten(r)), 1, bias_initializer=0.1)\n"
     "}\n"
     "xi = a * t + b * (1 - t)\n"
     "gp = mean(square(norm(grad(critic(xi), xi), axis=[1, 2, 3]) - 1))\n"
     "loss = mean(sigmoid_cross_entropy(critic(a), z)) + mean(sigmoid(critic(b))) + gp * 10\n"
     TRAIN},
    /* grad of a non-scalar (the sum of its elements) through batch norm,
     * with respect to an input and to a value inside the network */
    {"grad_batch_norm_dense",
     "input x : f32[batch, 4]\ninput k : f32[batch, 4]\ninput k3 : f32[batch, 3]\n"
     "h = dense(x, 3, activation=sigmoid, bias_initializer=0.1)\n"
     "n = batch_norm(h, momentum=0.9)\n"
     "o = dense(n, 2, activation=tanh)\n"
     "loss = sum(grad(o, x) * k) + mean(square(grad(o, h))) + sum(grad(sum(o * o), n) * k3)\n"
     TRAIN},
    /* loops: backpropagation through time, the input products hoisted
     * out of the loop, carries, slices, stacks and last values */
    {"recurrent",
     "input x : f32[batch, 4, 3]\ninput k : f32[batch, 4, 3]\ninput k2 : f32[batch, 2]\n"
     "h = simple_rnn(x, 3, return_sequences=true, bias_initializer=0.1)\n"
     "loss = sum(h * k) + sum(lstm(h, 2, go_backwards=true) * k2)"
     " + sum(gru(x, 2, bias_initializer=0.1) * k2)\n" TRAIN},
};

enum { NROWS = sizeof rows / sizeof rows[0] };

static char *row_name(const Row *r, char *buf, size_t n) {
  snprintf(buf, n, "%s.nn", r->name);
  return buf;
}

/* Every row compiles, trains each of its params and passes gradc check for
 * seeds 1..3 at batch 3; all failures are listed before the test fails. */
static void test_finite_differences(void **state) {
  (void)state;
  int failures = 0;
  for (int i = 0; i < NROWS; i++) {
    char nm[96];
    Compilation *c = compile_grad(row_name(&rows[i], nm, sizeof nm), rows[i].src);
    const Graph *g = c->graph;
    int nparams = 0;
    for (int k = 0; k < g->nnodes; k++) nparams += g->nodes[k]->op == OP_PARAM;
    if (g->steps[0].ngrads != nparams) {
      fprintf(stderr, "row %s: %d gradients for %d params\n", rows[i].name, g->steps[0].ngrads,
              nparams);
      failures++;
    }
    for (uint64_t seed = 1; seed <= 3; seed++)
      if (run_check(g, seed, 3, 1e-5) != 0) {
        fprintf(stderr, "row %s: gradc check failed for seed %llu\n", rows[i].name,
                (unsigned long long)seed);
        failures++;
      }
    compilation_free(c);
  }
  assert_int_equal(failures, 0);
}

/* UNSLICE (the gradient of a slice) has a rule of its own but no surface
 * syntax: build loss = sum(unslice(tanh(w)) * k) by hand from a parsed graph
 * and differentiate that. */
static Compilation *unslice_model(void) {
  const char *src =
      "param w : f32[3] = uniform(-1, 1)\n"
      "input k : f32[7]\n"
      "seed = sum(w)\n"
      "train seed with sgd\n";
  Compilation *c = compile_model("unslice.nn", src, strlen(src), STAGE_PARSE);
  assert_non_null(c);
  assert_non_null(c->graph);
  Graph *g = c->graph;
  Node *w = named(g, "w"), *k = named(g, "k");
  Attrs a = {0};
  a.to = (Shape){1, {{7, 0}}};
  a.begin[0] = 1, a.end[0] = 7, a.step[0] = 2;          /* positions 1, 3, 5 */
  Node *t = graph_node(g, OP_TANH, &w, 1, NULL, w->loc);
  Node *u = graph_node(g, OP_UNSLICE, &t, 1, &a, w->loc);
  assert_non_null(u);
  assert_int_equal(u->shape.rank, 1);
  assert_int_equal(u->shape.d[0].n, 7);
  Node *mk[2] = {u, k};
  Node *m = graph_node(g, OP_MUL, mk, 2, NULL, w->loc);
  Attrs all = {.axes = 1};
  Node *l = graph_node(g, OP_SUM, &m, 1, &all, w->loc);
  assert_non_null(l);
  l->name = "loss";
  l->flags |= N_LOSS;
  g->steps[0].loss = l;
  assert_true(autodiff(g));
  return c;
}

/* COL2IM and AVGPOOL_GRAD (the adjoints of im2col and average pooling)
 * and MAXPOOL_GRAD have rules of their own but no surface syntax of their
 * own (col2im's is for dumps): loss = sum(col2im(tanh(w)) * k) +
 * sum(avgpool2d_grad(tanh(v)) * k) + sum(maxpool2d_grad(m, tanh(q)) * k),
 * the last twice, over 2x2 windows and over padded 3x3 ones (whose taps
 * in the padding never win). */
static Compilation *window_adjoint_model(void) {
  const char *src =
      "param w : f32[1, 3, 3, 8] = uniform(-1, 1)\n"
      "param v : f32[1, 2, 2, 2] = uniform(-1, 1)\n"
      "param q : f32[1, 2, 2, 2] = uniform(-1, 1)\n"
      "input k : f32[1, 4, 4, 2]\n"
      "input m : f32[1, 4, 4, 2]\n"
      "seed = sum(w) + sum(v) + sum(q) + sum(m)\n"
      "train seed with sgd\n";
  Compilation *c = compile_model("adjoints.nn", src, strlen(src), STAGE_PARSE);
  assert_non_null(c);
  assert_non_null(c->graph);
  Graph *g = c->graph;
  Node *w = named(g, "w"), *v = named(g, "v"), *k = named(g, "k");
  Attrs a = {.to = k->shape};
  a.win = (Window){{2, 2}, {1, 1}, {1, 1}, {0, 0, 0, 0}};
  Node *tw = graph_node(g, OP_TANH, &w, 1, NULL, w->loc);
  Node *ci = graph_node(g, OP_COL2IM, &tw, 1, &a, w->loc);
  assert_non_null(ci);
  Attrs p = {.to = k->shape};
  p.win = (Window){{3, 3}, {2, 2}, {1, 1}, {0, 1, 0, 1}};
  Node *tv = graph_node(g, OP_TANH, &v, 1, NULL, v->loc);
  Node *ag = graph_node(g, OP_AVGPOOL_GRAD, &tv, 1, &p, v->loc);
  assert_non_null(ag);
  Attrs all = {.axes = 15};
  Node *m1[2] = {ci, k}, *m2[2] = {ag, k};
  Node *s1 = graph_node(g, OP_MUL, m1, 2, NULL, w->loc);
  Node *s2 = graph_node(g, OP_MUL, m2, 2, NULL, w->loc);
  Node *l12[2] = {graph_node(g, OP_SUM, &s1, 1, &all, w->loc),
                  graph_node(g, OP_SUM, &s2, 1, &all, w->loc)};
  Node *l = graph_node(g, OP_ADD, l12, 2, NULL, w->loc);
  assert_non_null(l);
  Node *q = named(g, "q"), *m = named(g, "m");
  Node *tq = graph_node(g, OP_TANH, &q, 1, NULL, q->loc);
  const Window pools[2] = {{{2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}}, {{3, 3}, {2, 2}, {1, 1}, {0, 1, 0, 1}}};
  for (int i = 0; i < 2; i++) {
    Attrs pa = {.win = pools[i]};
    Node *mg[2] = {m, tq};
    Node *r = graph_node(g, OP_MAXPOOL_GRAD, mg, 2, &pa, q->loc);
    assert_non_null(r);
    Node *rk[2] = {r, k};
    Node *prod = graph_node(g, OP_MUL, rk, 2, NULL, q->loc);
    Node *sum = graph_node(g, OP_SUM, &prod, 1, &all, q->loc);
    Node *acc[2] = {l, sum};
    l = graph_node(g, OP_ADD, acc, 2, NULL, q->loc);
    assert_non_null(l);
  }
  l->name = "loss";
  l->flags |= N_LOSS;
  g->steps[0].loss = l;
  assert_true(autodiff(g));
  return c;
}

static void test_window_adjoint_gradients(void **state) {
  (void)state;
  Compilation *c = window_adjoint_model();
  assert_int_equal(c->graph->steps[0].ngrads, 3);
  for (uint64_t seed = 1; seed <= 3; seed++)
    assert_int_equal(run_check(c->graph, seed, 3, 1e-5), 0);
  compilation_free(c);
}

static void test_unslice_gradient(void **state) {
  (void)state;
  Compilation *c = unslice_model();
  const Graph *g = c->graph;
  assert_int_equal(g->steps[0].ngrads, 1);
  for (uint64_t seed = 1; seed <= 3; seed++) assert_int_equal(run_check(g, seed, 3, 1e-5), 0);
  /* And by value: d/dw_i = (1 - tanh(w_i)^2) * k[1 + 2i]. */
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "", 1));
  eval_init(e, 7);
  double *k = eval_data(e, named(g, "k"));
  for (int i = 0; i < 7; i++) k[i] = 10 + i;
  Node *gw = g->steps[0].grads[0].grad;
  eval_run(e, &gw, 1);
  const double *w = eval_data(e, named(g, "w")), *d = eval_data(e, gw);
  for (int i = 0; i < 3; i++) {
    double th = tanh(w[i]);
    assert_near(d[i], (1 - th * th) * (11 + 2 * i), 1e-14, 0, "unslice gradient");
  }
  eval_free(e);
  compilation_free(c);
}

/* Every op with a gradient rule occurs in the forward part of some row. */
static void test_every_rule_has_a_row(void **state) {
  (void)state;
  bool seen[OP_COUNT] = {0};
  for (int i = 0; i < NROWS; i++) {
    char nm[96];
    Compilation *c = compile_grad(row_name(&rows[i], nm, sizeof nm), rows[i].src);
    const Graph *g = c->graph;
    for (int k = 0; k < g->nnodes; k++)
      if (!g->nodes[k]->rule) seen[g->nodes[k]->op] = true;   /* forward nodes */
    compilation_free(c);
  }
  Compilation *c = unslice_model();
  for (int k = 0; k < c->graph->nnodes; k++)
    if (!c->graph->nodes[k]->rule) seen[c->graph->nodes[k]->op] = true;
  compilation_free(c);
  c = window_adjoint_model();
  for (int k = 0; k < c->graph->nnodes; k++)
    if (!c->graph->nodes[k]->rule) seen[c->graph->nodes[k]->op] = true;
  compilation_free(c);
  int missing = 0;
  for (int op = 0; op < OP_COUNT; op++)
    if (op_info[op].grad != grad_none && !seen[op]) {
      fprintf(stderr, "op '%s' has a gradient rule but no finite-difference row\n",
              op_info[op].name);
      missing++;
    }
  assert_int_equal(missing, 0);
}

/* ---- issue 18: second-order gradients (begin) */

/* Every row, and the hand-built models, through autodiff. */
static Compilation *make_row(int i) {
  char nm[96];
  if (i < NROWS) return compile_grad(row_name(&rows[i], nm, sizeof nm), rows[i].src);
  return i == NROWS ? unslice_model() : window_adjoint_model();
}
enum { NMODELS = NROWS + 2 };

/* A gradient of a gradient needs the rules of the ops the first rules
 * emitted: every op a rule emits has a rule of its own, or stops
 * gradients by definition (comparisons, one_hot, argmax: F_NO_GRAD), or
 * is a leaf.  Over the rows every rule runs (test_every_rule_has_a_row),
 * so every op any rule emits is seen here.  maxpool2d_grad, which
 * max-pooling's rule emits, had none. */
static void test_every_emitted_op_has_a_rule(void **state) {
  (void)state;
  bool emitted[OP_COUNT] = {0};
  for (int i = 0; i < NMODELS; i++) {
    Compilation *c = make_row(i);
    const Graph *g = c->graph;
    for (int k = 0; k < g->nnodes; k++) {
      const Node *n = g->nodes[k];
      if (n->rule && n->op != OP_ASSIGN && n->op != OP_STATE) emitted[n->op] = true;
    }
    compilation_free(c);
  }
  int missing = 0;
  for (int op = 0; op < OP_COUNT; op++) {
    const OpInfo *o = &op_info[op];
    if (emitted[op] && o->grad == grad_none && !(o->flags & F_NO_GRAD) && o->kind != K_LEAF) {
      fprintf(stderr, "a gradient rule emits '%s', which has no gradient rule\n", o->name);
      missing++;
    }
  }
  assert_int_equal(missing, 0);
  /* and the ones that matter most were emitted at all */
  assert_true(emitted[OP_WHERE] && emitted[OP_COL2IM] && emitted[OP_IM2COL] &&
              emitted[OP_MAXPOOL_GRAD] && emitted[OP_MATMUL] && emitted[OP_BROADCAST]);
}

/* Every row at order 2: d<v, dL/dparams>/dparams against finite
 * differences of <v, dL/dparams> (gradc check --order 2), which runs
 * every rule's own gradient; the grad() rows differentiate three times. */
static void test_second_order_every_row(void **state) {
  (void)state;
  int failures = 0;
  for (int i = 0; i < NMODELS; i++) {
    Compilation *c = make_row(i);
    if (run_check_order2(c->graph, 2, 1e-5) != 0) {
      fprintf(stderr, "model %d (%s): gradc check --order 2 failed\n", i,
              i < NROWS ? rows[i].name : "hand-built");
      failures++;
    }
    compilation_free(c);
  }
  assert_int_equal(failures, 0);
}

/* ---- issue 18: second-order gradients (end) */

/* ------------------------------------------------------------ 2. exact values */

/* Evaluates the gradients of a model without symbolic dims. */
static Eval *eval_ready(const Graph *g) {
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "", 1));
  eval_init(e, 1);
  Node **roots = malloc(sizeof(Node *) * (size_t)(g->steps[0].ngrads + 1));
  assert_non_null(roots);
  roots[0] = g->steps[0].loss;
  for (int i = 0; i < g->steps[0].ngrads; i++) roots[i + 1] = g->steps[0].grads[i].grad;
  eval_run(e, roots, g->steps[0].ngrads + 1);
  free(roots);
  return e;
}

/* S3 L94-100: w = Variable([[1.0]]), loss = w * w -> grad [[2.]]. */
static void test_w_times_w(void **state) {
  (void)state;
  const char *srcs[] = {
      "param w : f32 = 1\nloss = w * w\ntrain loss with sgd\n",
      "param w : f32[1, 1] = [[1.0]]\nloss = sum(w * w)\ntrain loss with sgd\n",
  };
  for (int i = 0; i < 2; i++) {
    Compilation *c = compile_grad("ww.nn", srcs[i]);
    Eval *e = eval_ready(c->graph);
    assert_true(eval_data(e, c->graph->steps[0].loss)[0] == 1.0);
    assert_true(eval_data(e, grad_of(c->graph, "w"))[0] == 2.0);
    eval_free(e);
    compilation_free(c);
  }
}

/* S1 L4041-4066: y1 = x*w1 + b1, y2 = y1*w2 + b2 at x=1, w1=2, b1=1, w2=2,
 * b2=1: dy2/dw1 = dy2/dy1 * dy1/dw1 = 2 * 1 = 2.  With x a constant and
 * with x a parameter (then dy2/dx = w2 * w1 = 4). */
static void test_chain_rule(void **state) {
  (void)state;
  const char *srcs[] = {
      "const x = 1.0\n"
      "param w1 : f32 = 2\nparam b1 : f32 = 1\nparam w2 : f32 = 2\nparam b2 : f32 = 1\n"
      "y1 = x * w1 + b1\ny2 = y1 * w2 + b2\ntrain y2 with sgd\n",
      "param x : f32 = 1\n"
      "param w1 : f32 = 2\nparam b1 : f32 = 1\nparam w2 : f32 = 2\nparam b2 : f32 = 1\n"
      "y1 = x * w1 + b1\ny2 = y1 * w2 + b2\ntrain y2 with sgd\n",
  };
  for (int i = 0; i < 2; i++) {
    Compilation *c = compile_grad("chain.nn", srcs[i]);
    const Graph *g = c->graph;
    Eval *e = eval_ready(g);
    assert_true(eval_data(e, g->steps[0].loss)[0] == 7.0);
    assert_true(eval_data(e, grad_of(g, "w1"))[0] == 2.0);
    assert_true(eval_data(e, grad_of(g, "b1"))[0] == 2.0);
    assert_true(eval_data(e, grad_of(g, "w2"))[0] == 3.0);    /* y1 */
    assert_true(eval_data(e, grad_of(g, "b2"))[0] == 1.0);
    if (i == 1) assert_true(eval_data(e, grad_of(g, "x"))[0] == 4.0);
    else assert_int_equal(g->steps[0].ngrads, 4);
    eval_free(e);
    compilation_free(c);
  }
}

/* S1 L3615-3626: a = linspace(-10, 10, 10), the gradient of sum(sigmoid(a)).
 * The evaluator must give sigma(a)(1 - sigma(a)) at the f32-rounded a to
 * double precision.  The seed printed TF's float32 results, which carry
 * TF's own error (its forward value at -10 is already 2e-4 off the exact
 * 4.5397869e-05), so the printed list is matched within the error of that
 * float32 computation: 1e-6 where |a| < 4, 1e-5 at |a| = 5.6, 5e-4 at the
 * saturated ends. */
static void test_sigmoid_gradient_vector(void **state) {
  (void)state;
  static const double printed[10] = {
      4.5386874e-05, 4.186685e-04,  3.8362255e-03, 3.3258751e-02, 1.8632649e-01,
      1.8632641e-01, 3.3258699e-02, 3.8362255e-03, 4.1854731e-04, 4.5416677e-05};
  char src[1024];
  int n = snprintf(src, sizeof src, "param a : f32[10] = [");
  for (int i = 0; i < 10; i++)
    n += snprintf(src + n, sizeof src - (size_t)n, "%s%.17g", i ? ", " : "",
                  -10.0 + 20.0 * i / 9.0);
  snprintf(src + n, sizeof src - (size_t)n,
           "]\ny = sigmoid(a)\nloss = sum(y)\ntrain loss with sgd\n");
  Compilation *c = compile_grad("sigmoid_grad.nn", src);
  Eval *e = eval_ready(c->graph);
  const double *a = eval_data(e, named(c->graph, "a"));
  const double *d = eval_data(e, grad_of(c->graph, "a"));
  for (int i = 0; i < 10; i++) {
    double x = (double)(float)(-10.0 + 20.0 * i / 9.0);
    assert_true(a[i] == x);
    double s = 1 / (1 + exp(-x));
    assert_near(d[i], s * (1 - s), 1e-12, 0, "sigmoid gradient (exact)");
    double tol = fabs(x) < 4 ? 1e-6 : fabs(x) < 6 ? 1e-5 : 5e-4;
    assert_near(d[i], printed[i], tol, 0, "sigmoid gradient (seed)");
  }
  eval_free(e);
  compilation_free(c);
}

/* ------------------------------------------------------------ 3. optimizers */

/* w : f32[2] = [1, -2], loss = sum(w * w * c): the gradient is 2 c w. */
#define OPT_MODEL(opt)                                                         \
  "param w : f32[2] = [1.0, -2.0]\n"                                           \
  "const c : f32[2] = [0.5, 3.0]\n"                                            \
  "loss = sum(w * w * c)\n"                                                    \
  "train loss with " opt "\n"

static const double C[2] = {0.5, 3.0};

typedef struct Slots {
  double w[2], m[2], v[2], mg[2], mom[2], acc[2];
  int t;
} Slots;

typedef enum { K_SGD, K_SGD_MOM, K_SGD_NESTEROV, K_RMS, K_RMS_MOM, K_RMS_CENTERED,
               K_RMS_CENTERED_MOM, K_ADAM, K_ADAGRAD } OptCase;

/* One step of the Keras 2.x update (keras/optimizers/optimizer_v2/ *.py and
 * the tf.raw_ops kernels they call, tensorflow/core/kernels/training_ops.cc):
 *  SGD:      w -= lr*g;  momentum (ResourceApplyKerasMomentum):
 *            v = m*v - lr*g;  w += v;  nesterov: w += m*v - lr*g
 *  RMSprop, momentum 0 (rmsprop.py):  rms = rho*rms + (1-rho)*g^2;
 *            [centered: mg = rho*mg + (1-rho)*g; denom = rms - mg^2]
 *            w -= lr*g / (sqrt(denom) + eps)
 *  RMSprop, momentum > 0 (ResourceApply[Centered]RMSProp): the same rms
 *            [and mg], then mom = momentum*mom + lr*g / sqrt(denom + eps);
 *            w -= mom   (eps inside the square root in this branch)
 *  Adam (ResourceApplyAdam): t = iterations + 1;
 *            alpha = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)*(1-b1);
 *            v += (g^2-v)*(1-b2); w -= alpha*m / (sqrt(v) + eps)
 *  Adagrad (ResourceApplyAdagradV2): acc += g^2; w -= lr*g / (sqrt(acc) + eps)
 */
static void keras_step(OptCase k, Slots *s) {
  const double lr = 0.1, eps = 1e-7;
  s->t++;
  for (int i = 0; i < 2; i++) {
    double g = 2 * C[i] * s->w[i];
    switch (k) {
    case K_SGD: s->w[i] -= lr * g; break;
    case K_SGD_MOM:
      s->mom[i] = 0.9 * s->mom[i] - lr * g;
      s->w[i] += s->mom[i];
      break;
    case K_SGD_NESTEROV:
      s->mom[i] = 0.9 * s->mom[i] - lr * g;
      s->w[i] += 0.9 * s->mom[i] - lr * g;
      break;
    case K_RMS:
    case K_RMS_CENTERED: {
      s->v[i] = 0.9 * s->v[i] + (1 - 0.9) * g * g;
      double denom = s->v[i];
      if (k == K_RMS_CENTERED) {
        s->mg[i] = 0.9 * s->mg[i] + (1 - 0.9) * g;
        denom -= s->mg[i] * s->mg[i];
      }
      s->w[i] -= lr * g / (sqrt(denom) + eps);
      break;
    }
    case K_RMS_MOM:
    case K_RMS_CENTERED_MOM: {
      s->v[i] = 0.9 * s->v[i] + (1 - 0.9) * g * g;
      double denom = s->v[i];
      if (k == K_RMS_CENTERED_MOM) {
        s->mg[i] = 0.9 * s->mg[i] + (1 - 0.9) * g;
        denom -= s->mg[i] * s->mg[i];
      }
      s->mom[i] = 0.5 * s->mom[i] + lr * g / sqrt(denom + eps);
      s->w[i] -= s->mom[i];
      break;
    }
    case K_ADAM: {
      double b1 = 0.9, b2 = 0.999;
      double alpha = lr * sqrt(1 - pow(b2, s->t)) / (1 - pow(b1, s->t));
      s->m[i] += (g - s->m[i]) * (1 - b1);
      s->v[i] += (g * g - s->v[i]) * (1 - b2);
      s->w[i] -= alpha * s->m[i] / (sqrt(s->v[i]) + eps);
      break;
    }
    case K_ADAGRAD:
      s->acc[i] += g * g;
      s->w[i] -= lr * g / (sqrt(s->acc[i]) + eps);
      break;
    }
  }
}

typedef struct OptRow {
  OptCase k;
  const char *src;
  const char *slots[3];      /* state names and which Slots field they are */
  int fields[3];             /* 1 m, 2 v (or rms), 3 mg, 4 momentum, 5 acc */
} OptRow;

static const OptRow opt_rows[] = {
    {K_SGD, OPT_MODEL("sgd(lr=0.1)"), {0}, {0}},
    {K_SGD_MOM, OPT_MODEL("sgd(lr=0.1, momentum=0.9)"), {"w/momentum"}, {4}},
    {K_SGD_NESTEROV, OPT_MODEL("sgd(lr=0.1, momentum=0.9, nesterov=true)"),
     {"w/momentum"}, {4}},
    {K_RMS, OPT_MODEL("rmsprop(lr=0.1, rho=0.9)"), {"w/rms"}, {2}},
    {K_RMS_MOM, OPT_MODEL("rmsprop(lr=0.1, rho=0.9, momentum=0.5)"),
     {"w/rms", "w/momentum"}, {2, 4}},
    {K_RMS_CENTERED, OPT_MODEL("rmsprop(lr=0.1, rho=0.9, centered=true)"),
     {"w/rms", "w/mg"}, {2, 3}},
    {K_RMS_CENTERED_MOM, OPT_MODEL("rmsprop(lr=0.1, rho=0.9, momentum=0.5, centered=true)"),
     {"w/rms", "w/mg", "w/momentum"}, {2, 3, 4}},
    {K_ADAM, OPT_MODEL("adam(lr=0.1)"), {"w/m", "w/v"}, {1, 2}},
    {K_ADAGRAD, OPT_MODEL("adagrad(lr=0.1)"), {"w/accumulator"}, {5}},
};

static const double *slot_field(const Slots *s, int f) {
  switch (f) {
  case 1: return s->m;
  case 2: return s->v;
  case 3: return s->mg;
  case 4: return s->mom;
  default: return s->acc;
  }
}

static void run_optimizer(const OptRow *r) {
  Compilation *c = compile_grad("opt.nn", r->src);
  const Graph *g = c->graph;
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "", 1));
  eval_init(e, 1);
  Node *w = named(g, "w");
  Slots s = {0};
  /* Initial values as init rounded them (1 and -2 are exact in f32). */
  memcpy(s.w, eval_data(e, w), sizeof s.w);
  assert_true(s.w[0] == 1.0 && s.w[1] == -2.0);
  if (r->k == K_ADAGRAD) {
    const double *acc = eval_data(e, named(g, "w/accumulator"));
    /* Keras initial_accumulator_value 0.1, rounded to the slot's f32. */
    assert_true(acc[0] == (double)0.1f && acc[1] == (double)0.1f);
    s.acc[0] = acc[0], s.acc[1] = acc[1];
  }
  /* Exactly the slots Keras creates. */
  int nstate = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_STATE && strncmp(g->nodes[i]->name, "optimizer/", 10))
      nstate++;
  int want = 0;
  while (want < 3 && r->slots[want]) want++;
  assert_int_equal(nstate, want);
  for (int step = 1; step <= 2; step++) {
    eval_step(e, 0);
    keras_step(r->k, &s);
    char what[128];
    for (int i = 0; i < 2; i++) {
      snprintf(what, sizeof what, "%s step %d: w[%d]", opt_info[g->steps[0].opt.kind].name, step, i);
      assert_near(eval_data(e, w)[i], s.w[i], 1e-12, 0, what);
      for (int k = 0; k < want; k++) {
        snprintf(what, sizeof what, "%s step %d: %s[%d]", opt_info[g->steps[0].opt.kind].name, step,
                 r->slots[k], i);
        assert_near(eval_data(e, named(g, r->slots[k]))[i], slot_field(&s, r->fields[k])[i],
                    1e-12, 0, what);
      }
    }
  }
  if (r->k == K_ADAM) assert_true(eval_data(e, named(g, "optimizer/iterations"))[0] == 2.0);
  eval_free(e);
  compilation_free(c);
}

static void test_sgd(void **state) { (void)state; run_optimizer(&opt_rows[0]); }
static void test_sgd_momentum(void **state) { (void)state; run_optimizer(&opt_rows[1]); }
static void test_sgd_nesterov(void **state) { (void)state; run_optimizer(&opt_rows[2]); }
static void test_rmsprop(void **state) { (void)state; run_optimizer(&opt_rows[3]); }
static void test_rmsprop_momentum(void **state) { (void)state; run_optimizer(&opt_rows[4]); }
static void test_rmsprop_centered(void **state) { (void)state; run_optimizer(&opt_rows[5]); }
static void test_rmsprop_centered_momentum(void **state) {
  (void)state;
  run_optimizer(&opt_rows[6]);
}
static void test_adam(void **state) { (void)state; run_optimizer(&opt_rows[7]); }
static void test_adagrad(void **state) { (void)state; run_optimizer(&opt_rows[8]); }

/* The first SGD step by hand, independent of keras_step: g = 2cw = [1, -12],
 * w = [1 - 0.1, -2 + 1.2] = [0.9, -0.8]; the loss 12.5 is read before it. */
static void test_sgd_first_step_by_hand(void **state) {
  (void)state;
  Compilation *c = compile_grad("opt.nn", OPT_MODEL("sgd(lr=0.1)"));
  Eval *e = eval_new(c->graph);
  assert_non_null(e);
  assert_true(eval_bind(e, "", 1));
  eval_init(e, 1);
  eval_step(e, 0);
  assert_true(eval_data(e, c->graph->steps[0].loss)[0] == 0.5 * 1 + 3.0 * 4);   /* before the update */
  const double *w = eval_data(e, named(c->graph, "w"));
  assert_near(w[0], 0.9, 1e-15, 0, "w[0]");
  assert_near(w[1], -0.8, 1e-15, 0, "w[1]");
  eval_free(e);
  compilation_free(c);
}

/* ------------------------------------------------------------ 4. warnings, dump */

static void test_param_not_affecting_loss(void **state) {
  (void)state;
  const char *src =
      "input x : f32[batch, 2]\n"
      "param w : f32[2] = [1, 2]\n"
      "param v : f32[2] = [3, 4]\n"
      "output side = x * v\n"
      "loss = sum(x * w)\n"
      "train loss with sgd\n";
  Compilation *c = compile_grad("unused.nn", src);
  assert_true(has_warning(&c->diags,
                          "parameter 'v' does not affect the loss 'loss'; it will not be trained"));
  assert_false(has_warning(&c->diags, "parameter 'w'"));
  assert_int_equal(c->graph->steps[0].ngrads, 1);
  assert_string_equal(c->graph->steps[0].grads[0].param->name, "w");
  assert_int_equal(c->diags.errors, 0);
  compilation_free(c);
}

static void test_loss_without_params(void **state) {
  (void)state;
  const char *src =
      "input x : f32[batch, 2]\n"
      "param w : f32[2] = [1, 2]\n"
      "output o = x * w\n"
      "loss = sum(x * x)\n"
      "train loss with sgd\n";
  /* An error, as in Keras ("No gradients provided for any variable"):
   * such a step would change nothing (issue 23). */
  Compilation *c = compile_model("noparam.nn", src, strlen(src), STAGE_GRAD);
  assert_non_null(c);
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  assert_non_null(strstr(c->diags.last->msg, "the loss 'loss' of train step 'train' does not "
                                             "depend on any trainable parameter"));
  assert_int_equal(c->diags.last->loc.line, 5);
  compilation_free(c);
  /* No train statement: nothing to check. */
  const char *fwd = "input x : f32[batch, 2]\nparam w : f32[2] = [1, 2]\noutput o = x * w\n";
  c = compile_grad("notrain.nn", fwd);
  FILE *null = fopen("/dev/null", "w");
  assert_int_equal(check_gradients(c->graph, 1, 3, 1e-5, null), 1);
  fclose(null);
  compilation_free(c);
}

static void test_grad_dump_provenance(void **state) {
  (void)state;
  const char *src =
      "input x : f32[batch, 4]\n"
      "param W : f32[4, 3] = glorot_uniform\n"
      "h = relu(x @ W)\n"
      "loss = mean(h)\n"
      "train loss with sgd\n";
  Compilation *c = compile_grad("dump.nn", src);
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  dump_graph(out, c->graph, DUMP_TEXT, "grad");
  fclose(out);
  char want[64];
  snprintf(want, sizeof want, "<- relu %%%d", named(c->graph, "h")->id);
  assert_non_null(strstr(text, want));
  /* The line of W's full gradient carries [grad]. */
  int grads = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    if (strstr(line, "[grad]")) {
      char head[32];
      snprintf(head, sizeof head, "%%%d = ", grad_of(c->graph, "W")->id);
      assert_ptr_equal(strstr(line, head), line);
      grads++;
    }
  assert_int_equal(grads, 1);
  free(text);
  compilation_free(c);
}

/* ------------------------------------------------------------ 5. gradc check itself */

/* Issue 15: gradients that are exactly zero (a bias before batch norm) or
 * tiny (an L2 term with a small coefficient) are pure rounding in the finite
 * difference; the old relative floor of 1e-6 failed them (seeds 2, 3 and 4
 * of the first, every seed of the second).  The criterion's atol covers the
 * difference's own rounding. */
static void test_check_tiny_gradients(void **state) {
  (void)state;
  const char *srcs[] = {
      "input x : f32[batch, 4]\ninput k : f32[batch, 3]\n"
      "h = dense(x, 3)\n"
      "n = batch_norm(h)\n"
      "loss = sum(tanh(n) * k)\n" TRAIN,
      XK
      "param W : f32[4, 3] = uniform(-1, 1)\n"
      "param V : f32[4, 3] = uniform(-1, 1)\n"
      "loss = sum(tanh(x @ W) * k) + 1e-9 * sum(V * V)\n" TRAIN,
  };
  for (int i = 0; i < 2; i++) {
    Compilation *c = compile_grad("tiny.nn", srcs[i]);
    for (uint64_t seed = 1; seed <= 4; seed++) assert_int_equal(run_check(c->graph, seed, 3, 1e-5), 0);
    compilation_free(c);
  }
}

/* Integer inputs are drawn over the whole range they index: with y from
 * [0, 4) (as before), rows 4..9 of W had a zero gradient everywhere, so a rule
 * wrong on those rows passed.  Here the gradient is zeroed on rows >= 4 by
 * hand: check must see it (and the correct gradient passes). */
static void test_check_int_inputs_cover_table(void **state) {
  (void)state;
  const char *src =
      "input y : i32[batch]\ninput k : f32[batch, 2]\n"
      "param W : f32[10, 2] = uniform(-1, 1)\n"
      "loss = sum(tanh(one_hot(y, 10) @ W) * k)\n" TRAIN;
  Compilation *c = compile_grad("table.nn", src);
  char *text = NULL;
  assert_int_equal(check_text(c->graph, 1, 8, 1e-5, &text), 0);
  assert_non_null(strstr(text, "  input y: integers from [0, 10), every index it selects\n"));
  free(text);
  static double rows_below_4[20];
  for (int i = 0; i < 20; i++) rows_below_4[i] = i < 8;
  corrupt_grad(c->graph, "W", rows_below_4);
  assert_int_equal(check_text(c->graph, 1, 8, 1e-5, &text), 1);
  assert_non_null(strstr(text, "  FAIL\n"));
  assert_non_null(strstr(text, "FAILED: "));
  free(text);
  compilation_free(c);
  /* Through a reshape, and with softmax_cross_entropy's 6 classes too: the
   * smaller range wins. */
  const char *src2 =
      "input y : i32[batch, 1]\ninput x : f32[batch, 3]\n"
      "param W : f32[3, 6] = uniform(-1, 1)\n"
      "param E : f32[8, 6] = uniform(-1, 1)\n"
      "l = reshape(y, [batch])\n"
      "loss = mean(softmax_cross_entropy(x @ W + one_hot(l, 8) @ E, l))\n" TRAIN;
  c = compile_grad("table2.nn", src2);
  assert_int_equal(check_text(c->graph, 1, 8, 1e-5, &text), 0);
  assert_non_null(strstr(text, "  input y: integers from [0, 6), every index it selects\n"));
  free(text);
  compilation_free(c);
}

/* At batch 1 a batch norm's output is exactly its beta (0 at the start), so
 * every relu after it sits at its kink and every max-pool window is a tie.
 * The central difference straddles them (it gives half the slope); check
 * reports those elements as kinks, not failures. */
static void test_check_kinks(void **state) {
  (void)state;
  const char *srcs[] = {
      "input x : f32[batch, 4]\ninput k : f32[batch, 3]\n"
      "h = dense(x, 3)\n"
      "n = batch_norm(h)\n"
      "loss = sum(relu(n) * k) + sum(tanh(h) * k)\n" TRAIN,
      "input x : f32[batch, 4]\ninput k : f32[batch, 1, 1, 2]\n"
      "h = dense(x, 8)\n"
      "b = batch_norm(h)\n"
      "n = reshape(b, [batch, 2, 2, 2])\n"
      "loss = sum(maxpool2d(n, 2) * k) + sum(tanh(h))\n" TRAIN,
  };
  /* relu: beta's 3 elements; max-pool: beta's 8 (each window's first
   * maximum takes the gradient, the others get none, both one side). */
  const char *want[] = {"n.beta                            3        3      3 ",
                        "b.beta                            8        8      8 "};
  const char *summary[] = {"); 3 kinks stepped over\n", "); 8 kinks stepped over\n"};
  for (int i = 0; i < 2; i++) {
    Compilation *c = compile_grad("kink.nn", srcs[i]);
    for (uint64_t seed = 1; seed <= 3; seed++) {
      char *text = NULL;
      int rc = check_text(c->graph, seed, 1, 1e-5, &text);
      if (rc != 0 || !strstr(text, want[i]) || !strstr(text, summary[i])) {
        fprintf(stderr, "%s", text);
        fail();
      }
      free(text);
    }
    compilation_free(c);
  }
}

/* A wrong gradient still fails: 0.1% off everywhere, and a small constant
 * added to a gradient that is exactly zero (atol does not swallow it). */
static void test_check_wrong_gradient_fails(void **state) {
  (void)state;
  Compilation *c = compile_grad("wrong.nn", rows[0].src);   /* bias_add */
  static double off[12];
  for (int i = 0; i < 12; i++) off[i] = 1.001;
  corrupt_grad(c->graph, "W", off);
  char *text = NULL;
  assert_int_equal(check_text(c->graph, 1, 3, 1e-5, &text), 1);
  assert_non_null(strstr(text, "FAILED: 12 of 15 elements differ from finite differences by "
                               "more than atol + 1.0e-05 |numeric|"));
  assert_non_null(strstr(text, "      element 0: symbolic "));
  free(text);
  compilation_free(c);

  c = compile_grad("wrong_zero.nn",
                   "input x : f32[batch, 4]\ninput k : f32[batch, 3]\n"
                   "h = dense(x, 3)\nn = batch_norm(h)\nloss = sum(tanh(n) * k)\n" TRAIN);
  Graph *g = c->graph;
  for (int i = 0; i < g->steps[0].ngrads; i++)
    if (!strcmp(g->steps[0].grads[i].param->name, "h.bias")) {
      static double one_e6[3] = {1e-6, 1e-6, 1e-6};
      Node *k = graph_leaf(g, OP_CONST, NULL, DT_F32, &g->steps[0].grads[i].param->shape, g->steps[0].loss->loc);
      k->a.values = one_e6;
      Node *src[2] = {g->steps[0].grads[i].grad, k};
      g->steps[0].grads[i].grad = graph_node(g, OP_ADD, src, 2, NULL, g->steps[0].loss->loc);
      assert_non_null(g->steps[0].grads[i].grad);
    }
  assert_int_equal(check_text(g, 1, 3, 1e-5, &text), 1);
  assert_non_null(strstr(text, "FAILED: 3 of "));
  free(text);
  compilation_free(c);
}

/* ------------------------------------------------------------ 6. the models */

/* GRADC_MODEL_SHARD=K/N checks only the models whose place in name order
 * is K modulo N: the check of every model is most of this file's time (tens
 * of minutes under the sanitizers), so ctest runs it as two tests side by
 * side (CMakeLists.txt). */
static void test_models_pass_check(void **state) {
  (void)state;
  const char *root = getenv("GRADC_SOURCE_DIR"), *shard = getenv("GRADC_MODEL_SHARD");
  int part = 0, parts = 1;
  if (shard) assert_true(sscanf(shard, "%d/%d", &part, &parts) == 2 && parts > 0 && part >= 0 && part < parts);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/models", root ? root : ".");
  struct dirent **names;
  int nnames = scandir(dir, &names, NULL, alphasort);
  assert_true(nnames >= 0);
  int models = 0, failures = 0, place = 0;
  for (int e = 0; e < nnames; e++) {
    const struct dirent *de = names[e];
    size_t n = strlen(de->d_name);
    if (n < 4 || strcmp(de->d_name + n - 3, ".nn") || place++ % parts != part) continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    Compilation *c = compile_model_file(path, STAGE_GRAD);
    assert_non_null(c);
    if (!c->graph) {
      diag_print(stderr, &c->diags);
      failures++;
    } else {
      assert_true(c->graph->steps[0].ngrads > 0);
      /* Convolutional models cost the evaluator most (seconds each, minutes
       * under the sanitizers): one seed; their ops have rows above, checked
       * with three. */
      bool conv = false;
      for (int k = 0; k < c->graph->nnodes; k++) conv |= c->graph->nodes[k]->op == OP_IM2COL;
      for (uint64_t seed = 1; seed <= (conv ? 1u : 2u); seed++)
        if (run_check(c->graph, seed, 3, 1e-4) != 0) {
          fprintf(stderr, "%s: gradc check failed for seed %llu\n", de->d_name,
                  (unsigned long long)seed);
          failures++;
        }
      /* A loss that holds grad() (wgan_gp's penalty) is checked at order 2
       * as well, as gradc check does by default: at full size, not only the
       * tiny models of test_gan and the CLI tests. */
      if (c->graph->ngrad_exprs && run_check_order2(c->graph, 1, 1e-4) != 0) {
        fprintf(stderr, "%s: gradc check --order 2 failed\n", de->d_name);
        failures++;
      }
    }
    compilation_free(c);
    models++;
  }
  for (int e = 0; e < nnames; e++) free(names[e]);
  free(names);
  assert_true(models >= 4);
  assert_int_equal(failures, 0);
}

/* Every model of shared/SEEDS.md the language expresses, one file each in
 * tests/seeds (the headers name the seed section), passes gradc check at
 * rtol 1e-5.  Left out, with the reason: */
static const char *const seeds_left_out[] = {
    /* Scaled down to 8x8 images, its last two blocks run at 1x1 with few
     * channels and zero biases: relu inputs within 1e-6 of 0, several kinks
     * inside one step, which the one-kink test does not classify (seeds 2-3
     * and batch 2 or 4 fail on conv biases; the same file with tanh passes
     * every batch and seed, so the conv and pool gradients are right). */
    "m25_vgg.nn",
};

static void test_seeds_pass_check(void **state) {
  (void)state;
  const char *root = getenv("GRADC_SOURCE_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/seeds", root ? root : ".");
  DIR *d = opendir(dir);
  assert_non_null(d);
  int seeds = 0, failures = 0;
  for (struct dirent *de; (de = readdir(d));) {
    size_t n = strlen(de->d_name);
    if (n < 4 || strcmp(de->d_name + n - 3, ".nn")) continue;
    bool skip = false;
    for (size_t i = 0; i < sizeof seeds_left_out / sizeof *seeds_left_out; i++)
      skip |= !strcmp(de->d_name, seeds_left_out[i]);
    if (skip) continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    Compilation *c = compile_model_file(path, STAGE_GRAD);
    assert_non_null(c);
    if (!c->graph) {
      diag_print(stderr, &c->diags);
      failures++;
    } else if (run_check(c->graph, 1, 3, 1e-5) != 0) {
      fprintf(stderr, "%s: gradc check failed\n", de->d_name);
      failures++;
    }
    compilation_free(c);
    seeds++;
  }
  closedir(d);
  assert_int_equal(seeds, 24);
  assert_int_equal(failures, 0);
}

/* test_autodiff [--only NAME | --skip NAME]: run one test, or all but one. */
int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--only")) cmocka_set_test_filter(argv[2]);
  else if (argc == 3 && !strcmp(argv[1], "--skip")) cmocka_set_skip_filter(argv[2]);
  else if (argc != 1) {
    fprintf(stderr, "usage: %s [--only TEST | --skip TEST]\n", argv[0]);
    return 2;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_finite_differences),
      cmocka_unit_test(test_unslice_gradient),
      cmocka_unit_test(test_window_adjoint_gradients),
      cmocka_unit_test(test_every_rule_has_a_row),
      cmocka_unit_test(test_every_emitted_op_has_a_rule),
      cmocka_unit_test(test_second_order_every_row),
      cmocka_unit_test(test_w_times_w),
      cmocka_unit_test(test_chain_rule),
      cmocka_unit_test(test_sigmoid_gradient_vector),
      cmocka_unit_test(test_sgd),
      cmocka_unit_test(test_sgd_first_step_by_hand),
      cmocka_unit_test(test_sgd_momentum),
      cmocka_unit_test(test_sgd_nesterov),
      cmocka_unit_test(test_rmsprop),
      cmocka_unit_test(test_rmsprop_momentum),
      cmocka_unit_test(test_rmsprop_centered),
      cmocka_unit_test(test_rmsprop_centered_momentum),
      cmocka_unit_test(test_adam),
      cmocka_unit_test(test_adagrad),
      cmocka_unit_test(test_param_not_affecting_loss),
      cmocka_unit_test(test_loss_without_params),
      cmocka_unit_test(test_grad_dump_provenance),
      cmocka_unit_test(test_check_tiny_gradients),
      cmocka_unit_test(test_check_int_inputs_cover_table),
      cmocka_unit_test(test_check_kinks),
      cmocka_unit_test(test_check_wrong_gradient_fails),
      cmocka_unit_test(test_models_pass_check),
      cmocka_unit_test(test_seeds_pass_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
