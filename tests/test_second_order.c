/*
 * test_second_order.c - issue 18's second-order gradients and GAN ops.
 *
 * 1. grad(y, x): exact values of first and second gradients (x^3: 3x^2,
 *    6x), of a non-scalar y (its sum), with respect to an input, a value
 *    inside the network and a parameter, in a model without a train step;
 *    a loss that holds grad trained by the JIT as by the evaluator; a
 *    gradient through a loop differentiated again; the mistakes, each at
 *    its file:line:col.
 * 2. norm: tf.norm's values for every ord and axis form, and no NaN where
 *    the norm is 0, in the gradient nor in its gradient (the gradient
 *    penalty of a critic whose input gradient vanishes).
 * 3. leaky_relu: tf.nn.leaky_relu's default alpha (0.2) and its gradient.
 * 4. conv2d_transpose: Keras' output sizes, a product by hand, and every
 *    configuration against the transposed convolution written as its
 *    definition (each input pixel adds its kernel-weighted patch into the
 *    output at stride steps), evaluator and JIT.
 * 5. upsample2d(interpolation=bilinear): TF's half-pixel values by hand.
 * 6. col2im written back by gradc dump --format nn reads back.
 * 7. gradc check: a loss with grad says it is second order; --order 2.
 * (The table-driven finite differences of every op at orders 1 and 2 are
 * test_autodiff's; the JIT against the evaluator for every op, test_jit's.)
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
#include "gradc.h"

/* ------------------------------------------------------------ helpers */

static void assert_close(double got, double want, double tol, const char *what, int64_t k) {
  if (!(fabs(got - want) <= tol * fmax(1, fabs(want)))) {
    print_error("%s[%lld]: got %.17g, expected %.17g\n", what, (long long)k, got, want);
    fail();
  }
}

static Compilation *compile_ok(const char *src) {
  Compilation *c = compile_model("t.nn", src, strlen(src), STAGE_GRAD);
  assert_non_null(c);
  if (!c->graph) {
    diag_print(stderr, &c->diags);
    fail_msg("the model did not compile");
  }
  return c;
}

static const Node *output_node(const Graph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].node;
  fail_msg("no output '%s'", name);
  return NULL;
}

static Node *named(const Graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name)) return g->nodes[i];
  fail_msg("no node '%s'", name);
  return NULL;
}

/* An evaluator with every symbol bound to batch and the parameters at
 * their initial values; inputs are the caller's. */
static Eval *evaluator(const Graph *g, int64_t batch) {
  Eval *e = eval_new(g);
  assert_non_null(e);
  for (int k = 1; k <= g->nsym; k++) assert_true(eval_bind(e, g->sym[k], batch));
  if (!g->nsym) assert_true(eval_bind(e, "", 1));
  eval_init(e, 1);
  return e;
}

static void set_input(Eval *e, const Graph *g, const char *name, const double *v) {
  Node *n = named(g, name);
  memcpy(eval_data(e, n), v, sizeof(double) * (size_t)eval_count(e, n));
}

/* The JIT model of src, one thread, bound to batch. */
static gradc_model *jit(const char *src, int64_t batch) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("t.nn", src, &o, &m);
  if (s) fail_msg("%s", gradc_last_error(NULL));
  assert_int_equal(gradc_bind(m, batch), GRADC_OK);
  return m;
}

static void jit_set(gradc_model *m, const char *name, const double *v) {
  int64_t n;
  float *x = gradc_data(m, name, &n);
  assert_non_null(x);
  for (int64_t k = 0; k < n; k++) x[k] = (float)v[k];
}

/* The first error of src: its line, column and message. */
static void assert_error(const char *src, int line, int col, const char *phrase) {
  Compilation *c = compile_model("bad.nn", src, strlen(src), STAGE_GRAD);
  assert_non_null(c);
  const Diag *d = c->diags.first;
  while (d && d->level != DIAG_ERROR) d = d->next;
  if (c->graph || !d || d->loc.line != line || d->loc.col != col || !strstr(d->msg, phrase)) {
    diag_print(stderr, &c->diags);
    fail_msg("expected bad.nn:%d:%d: error: ...%s...", line, col, phrase);
  }
  compilation_free(c);
}

/* ------------------------------------------------------------ 1. grad */

static const char grad_values_src[] =
    "input x : f32[3]\n"
    "param w : f32[3] = [1, -2, 0.5]\n"
    "y = sum(x * x * x)\n"
    "output g1 = grad(y, x)\n"             /* 3 x^2 */
    "output g2 = grad(grad(y, x), x)\n"    /* d/dx sum(3 x^2) = 6 x */
    "output g3 = grad(x * x, x)\n"         /* a non-scalar y: its sum */
    "h = x * 2\n"
    "output gh = grad(sum(h * h), h)\n"    /* 2 h = 4 x */
    "output gw = grad(sum(w * x * x), w)\n"   /* x^2 */
    "output gx = grad(sum(w * x * x), x)\n";  /* 2 w x */

static void test_grad_values(void **state) {
  (void)state;
  static const double x[3] = {1.5, -2, 0.25}, w[3] = {1, -2, 0.5};
  static const char *const outs[] = {"g1", "g2", "g3", "gh", "gw", "gx"};
  double want[6][3];
  for (int k = 0; k < 3; k++) {
    want[0][k] = 3 * x[k] * x[k], want[1][k] = 6 * x[k], want[2][k] = 2 * x[k];
    want[3][k] = 4 * x[k], want[4][k] = x[k] * x[k], want[5][k] = 2 * w[k] * x[k];
  }
  Compilation *c = compile_ok(grad_values_src);
  const Graph *g = c->graph;
  assert_int_equal(g->ngrad_exprs, 7);
  for (int i = 0; i < g->nnodes; i++) assert_int_not_equal(g->nodes[i]->op, OP_GRAD);
  Eval *e = evaluator(g, 1);
  set_input(e, g, "x", x);
  eval_forward(e);
  for (int i = 0; i < 6; i++) {
    const double *v = eval_data(e, output_node(g, outs[i]));
    for (int k = 0; k < 3; k++) assert_close(v[k], want[i][k], 1e-12, outs[i], k);
  }
  eval_free(e);
  compilation_free(c);
  /* the JIT, f32 */
  gradc_model *m = jit(grad_values_src, 1);
  jit_set(m, "x", x);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  for (int i = 0; i < 6; i++) {
    const float *v = gradc_data(m, outs[i], NULL);
    assert_non_null(v);
    for (int k = 0; k < 3; k++) assert_close(v[k], want[i][k], 1e-6, outs[i], k);
  }
  gradc_free(m);
}

/* A loss that holds a gradient: d/dw of sum((d/dx sum(w x^2))^2) =
 * d/dw sum(4 w^2 x^2) = 8 w x^2, one SGD step by the JIT as by hand. */
static void test_grad_in_a_loss_trains(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[3]\n"
      "param w : f32[3] = [1, -2, 0.5]\n"
      "loss = sum(square(grad(sum(w * x * x), x)))\n"
      "train loss with sgd(lr=0.01)\n";
  static const double x[3] = {1.5, -2, 0.25}, w[3] = {1, -2, 0.5};
  gradc_model *m = jit(src, 1);
  jit_set(m, "x", x);
  double loss;
  assert_int_equal(gradc_train_step(m, &loss), GRADC_OK);
  double want = 0;
  for (int k = 0; k < 3; k++) want += 4 * w[k] * w[k] * x[k] * x[k];
  assert_close(loss, want, 1e-6, "loss", 0);
  const float *nw = gradc_data(m, "w", NULL);
  for (int k = 0; k < 3; k++) assert_close(nw[k], w[k] - 0.01 * 8 * w[k] * x[k] * x[k], 1e-6, "w", k);
  gradc_free(m);
}

/* The gradient of a loop's output is a reverse loop; a loss that holds it
 * differentiates that loop again (gradc check's finite differences). */
static void test_grad_through_a_loop(void **state) {
  (void)state;
  Compilation *c = compile_ok("input x : f32[batch, 4, 3]\n"
                              "h = simple_rnn(x, 3, return_sequences=true, bias_initializer=0.1)\n"
                              "loss = sum(square(grad(h, x))) + mean(h)\n"
                              "train loss with sgd\n");
  FILE *null = fopen("/dev/null", "w");
  assert_non_null(null);
  assert_int_equal(check_gradients_order(c->graph, 1, 3, 1e-5, 2, null), 0);
  fclose(null);
  compilation_free(c);
}

static void test_grad_errors(void **state) {
  (void)state;
  assert_error("input x : f32[3]\ninput n : i32[3]\noutput g = grad(sum(n), x)\n", 3, 12,
               "grad(y, x) needs floating-point y and x, got i32 and f32");
  assert_error("input x : f32[3]\ninput z : f32[3]\ny = sum(x)\noutput g = grad(y, z)\n", 4, 12,
               "grad: 'y' does not depend on 'z' through operations with a gradient");
  /* through an op that stops gradients (argmax) only */
  assert_error("input x : f32[3]\ny = cast(argmax(x), f32)\noutput g = grad(y, x)\n", 3, 12,
               "'y' does not depend on 'x'");
  assert_error("input x : f32[3]\noutput g = grad(x)\n", 2, 12, "grad takes 2 arguments, got 1");
  assert_error("input xs : f32[batch, 4, 3]\n"
               "def cell(x, h) {\n"
               "  n = tanh(x + h)\n"
               "  d = grad(n, x)\n"
               "  return n, d\n"
               "}\n"
               "ys, hl = scan(cell, xs, xs[:, 0, :])\n"
               "output hl\n",
               4, 7, "grad() inside a loop body is not supported");
}

/* ------------------------------------------------------------ 2. norm */

static void test_norm_values(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[2, 2]\n"
      "output a = norm(x)\n"                       /* 5 */
      "output b = norm(x, axis=1)\n"               /* [5, 0] */
      "output c = norm(x, ord=1, axis=1)\n"        /* [7, 0] */
      "output d = norm(x, ord=inf)\n"              /* 4 */
      "output e = norm(x, ord=1, axis=[0, 1])\n"   /* the largest column sum: 4 */
      "output f = norm(x, ord=inf, axis=[0, 1])\n" /* the largest row sum: 7 */
      "output h = norm(x, ord=1, axis=[1, 0])\n"   /* rows and columns swapped: 7 */
      "output i = norm(x, ord=fro, axis=[0, 1], keepdims=true)\n"   /* [[5]] */
      "output j = norm(x, ord=2, axis=0)\n";       /* [3, 4] */
  static const double x[4] = {3, -4, 0, 0};
  static const struct { const char *name; int n; double v[2]; } want[] = {
      {"a", 1, {5}}, {"b", 2, {5, 0}}, {"c", 2, {7, 0}}, {"d", 1, {4}}, {"e", 1, {4}},
      {"f", 1, {7}}, {"h", 1, {7}}, {"i", 1, {5}}, {"j", 2, {3, 4}},
  };
  Compilation *c = compile_ok(src);
  const Graph *g = c->graph;
  const Node *i = output_node(g, "i");
  assert_int_equal(i->shape.rank, 2);
  Eval *e = evaluator(g, 1);
  set_input(e, g, "x", x);
  eval_forward(e);
  gradc_model *m = jit(src, 1);
  jit_set(m, "x", x);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
    const Node *n = output_node(g, want[k].name);
    assert_int_equal(eval_count(e, n), want[k].n);
    const float *jv = gradc_data(m, want[k].name, NULL);
    for (int j = 0; j < want[k].n; j++) {
      assert_close(eval_data(e, n)[j], want[k].v[j], 1e-15, want[k].name, j);
      assert_close(jv[j], want[k].v[j], 1e-7, want[k].name, j);
    }
  }
  gradc_free(m);
  eval_free(e);
  compilation_free(c);
}

/* The gradient of the norm where it is 0 is 0 (TF's is NaN), and so is
 * the gradient penalty's gradient through it: the critic D(x) = sum(x w m)
 * has the input gradient w m, 0 for the second sample (m = 0 there), so
 * gp = mean((|w m| - 1)^2) = ((|w| - 1)^2 + 1) / 2 and
 * dgp/dw = (|w| - 1) w / |w|, from the first sample alone. */
static void test_norm_zero_no_nan(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[2, 2]\n"
      "input m : f32[2, 1]\n"
      "param w : f32[2] = [3, 4]\n"
      "param z : f32[2] = [0, 0]\n"
      "d = sum(x * w * m)\n"
      "gp = mean(square(norm(grad(d, x), axis=1) - 1))\n"
      "loss = gp + norm(z)\n"
      "output nz = grad(norm(z), z)\n"
      "train loss with sgd(lr=0.1)\n";
  static const double x[4] = {0.5, -1, 2, 0.25}, mk[2] = {1, 0};
  Compilation *c = compile_ok(src);
  const Graph *g = c->graph;
  Eval *e = evaluator(g, 1);
  set_input(e, g, "x", x);
  set_input(e, g, "m", mk);
  Node *roots[3] = {g->steps[0].loss, g->steps[0].grads[0].grad, g->steps[0].grads[1].grad};
  eval_run(e, roots, 3);
  assert_close(eval_data(e, roots[0])[0], (16.0 + 1) / 2, 1e-12, "gp", 0);
  const Grad *gw = &g->steps[0].grads[0], *gz = &g->steps[0].grads[1];
  assert_string_equal(gw->param->name, "w");
  assert_string_equal(gz->param->name, "z");
  for (int k = 0; k < 2; k++) {
    assert_close(eval_data(e, gw->grad)[k], 4.0 * (k ? 4 : 3) / 5, 1e-12, "dgp/dw", k);
    assert_true(eval_data(e, gz->grad)[k] == 0);
  }
  eval_free(e);
  /* order 2 stays finite too: ds/dz at z = 0 is a number */
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  check_gradients_order(c->graph, 1, 2, 1e-4, 2, out);
  fclose(out);
  if (strstr(text, "NaN")) fail_msg("%s", text);
  free(text);
  compilation_free(c);
  /* the JIT: a step moves w by lr * dgp/dw and leaves z at 0 */
  gradc_model *mj = jit(src, 1);
  jit_set(mj, "x", x);
  jit_set(mj, "m", mk);
  assert_int_equal(gradc_forward(mj), GRADC_OK);
  const float *nz = gradc_data(mj, "nz", NULL);
  assert_true(nz[0] == 0 && nz[1] == 0);
  double loss;
  assert_int_equal(gradc_train_step(mj, &loss), GRADC_OK);
  assert_close(loss, 8.5, 1e-6, "loss", 0);
  const float *w = gradc_data(mj, "w", NULL), *z = gradc_data(mj, "z", NULL);
  assert_close(w[0], 3 - 0.1 * 12.0 / 5, 1e-6, "w", 0);
  assert_close(w[1], 4 - 0.1 * 16.0 / 5, 1e-6, "w", 1);
  assert_true(z[0] == 0 && z[1] == 0);
  gradc_free(mj);
}

static void test_norm_errors(void **state) {
  (void)state;
  assert_error("input x : f32[4]\noutput n = norm(x, ord=fro)\n", 2, 24,
               "ord=fro is a matrix norm");
  assert_error("input x : f32[4, 4]\noutput n = norm(x, ord=2, axis=[0, 1])\n", 2, 24,
               "ord=2 over two axes is the spectral norm");
  assert_error("input x : f32[4]\noutput n = norm(x, ord=3)\n", 2, 24,
               "norm: ord must be 1, 2, inf, euclidean or fro");
  assert_error("input x : i32[4]\noutput n = norm(x)\n", 2, 12, "norm needs a floating-point tensor");
  assert_error("input x : f32\noutput n = norm(x)\n", 2, 12, "norm needs a tensor of rank >= 1");
  assert_error("input x : f32[4]\noutput n = norm(x, axis=1)\n", 2, 25, "axis 1 is out of range");
}

/* ------------------------------------------------------------ 3. leaky_relu */

static void test_leaky_relu(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[4]\n"
      "output a = leaky_relu(x)\n"
      "output b = leaky_relu(x, alpha=0.3)\n"
      "output da = grad(leaky_relu(x), x)\n";
  static const double x[4] = {-2, -0.5, 0, 1.5};
  static const double a[4] = {-0.4, -0.1, 0, 1.5}, b[4] = {-0.6, -0.15, 0, 1.5};
  static const double da[4] = {0.2, 0.2, 0.2, 1};     /* TF: alpha at 0 */
  gradc_model *m = jit(src, 1);
  jit_set(m, "x", x);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  const float *va = gradc_data(m, "a", NULL), *vb = gradc_data(m, "b", NULL);
  const float *vd = gradc_data(m, "da", NULL);
  for (int k = 0; k < 4; k++) {
    assert_close(va[k], a[k], 1e-7, "a", k);
    assert_close(vb[k], b[k], 1e-7, "b", k);
    assert_close(vd[k], da[k], 1e-7, "da", k);
  }
  gradc_free(m);
  assert_error("input x : f32[4]\noutput a = leaky_relu(x, alpha=x)\n", 2, 32,
               "leaky_relu: expected a number here");
  assert_error("input x : i32[4]\noutput a = leaky_relu(x)\n", 2, 12,
               "leaky_relu needs a floating-point operand");
}

/* ------------------------------------------------------------ 4. conv2d_transpose */

/* Keras' deconv_output_length for each case, through the shape of the
 * parsed layer (and its kernel's: [kh, kw, filters, in]). */
static void test_conv2d_transpose_sizes(void **state) {
  (void)state;
  static const struct {
    int in, k, s;
    const char *padding, *outpad;
    int out;
  } cases[] = {
      {3, 3, 2, "same", "None", 6},  {3, 3, 2, "valid", "None", 7}, {3, 3, 2, "valid", "1", 8},
      {3, 2, 2, "valid", "None", 6}, {7, 3, 2, "same", "1", 14},    {7, 5, 2, "same", "None", 14},
      {3, 1, 3, "valid", "None", 9}, {4, 4, 1, "same", "None", 4},     {7, 3, 2, "same", "0", 13},
      {5, 4, 3, "valid", "2", 18},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char src[256];
    snprintf(src, sizeof src,
             "input x : f32[batch, %d, %d, 2]\n"
             "y = conv2d_transpose(x, filters=5, kernel=%d, strides=%d, padding=%s, "
             "output_padding=%s)\noutput y\n",
             cases[i].in, cases[i].in, cases[i].k, cases[i].s, cases[i].padding, cases[i].outpad);
    Compilation *c = compile_ok(src);
    const Node *y = output_node(c->graph, "y");
    const Node *k = named(c->graph, "y.kernel");
    if (y->shape.d[1].n != cases[i].out || y->shape.d[2].n != cases[i].out || y->shape.d[3].n != 5)
      fail_msg("case %zu: %lld rows, expected %d", i, (long long)y->shape.d[1].n, cases[i].out);
    assert_int_equal(k->shape.d[0].n, cases[i].k);
    assert_int_equal(k->shape.d[2].n, 5);
    assert_int_equal(k->shape.d[3].n, 2);
    compilation_free(c);
  }
}

/* One 2x2 image, one channel, a 2x2 kernel at stride 2: each pixel stamps
 * the kernel times its value into its own 2x2 block. */
static void test_conv2d_transpose_by_hand(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[1, 2, 2, 1]\n"
      "const k : f32[2, 2, 1, 1] = [[[[1]], [[2]]], [[[3]], [[4]]]]\n"
      "output y = conv2d_transpose(x, k, strides=2)\n";
  static const double x[4] = {1, 2, 3, 4};
  static const double want[16] = {1, 2, 2, 4,  3, 4, 6, 8,  3, 6, 4, 8,  9, 12, 12, 16};
  gradc_model *m = jit(src, 1);
  jit_set(m, "x", x);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  int64_t n;
  const float *y = gradc_data(m, "y", &n);
  assert_int_equal(n, 16);
  for (int k = 0; k < 16; k++) assert_close(y[k], want[k], 0, "y", k);
  gradc_free(m);
}

/* tf.nn.conv2d_transpose by its definition: input pixel (i, j) adds
 * x[i, j, :] . w[a, b, c, :] into output (i*s + a - pad_top, j*s + b -
 * pad_left, c) for every tap (a, b) inside the output. */
static void transpose_reference(const double *x, const double *w, int n, int h, int wd, int cin,
                                int kh, int kw, int cout, int sh, int sw, int pt, int pl, int oh,
                                int ow, double *y) {
  memset(y, 0, sizeof(double) * (size_t)(n * oh * ow * cout));
  for (int b = 0; b < n; b++)
    for (int i = 0; i < h; i++)
      for (int j = 0; j < wd; j++)
        for (int a = 0; a < kh; a++)
          for (int q = 0; q < kw; q++) {
            int r = i * sh + a - pt, cc = j * sw + q - pl;
            if (r < 0 || r >= oh || cc < 0 || cc >= ow) continue;
            for (int co = 0; co < cout; co++)
              for (int ci = 0; ci < cin; ci++)
                y[((b * oh + r) * ow + cc) * cout + co] +=
                    x[((b * h + i) * wd + j) * cin + ci] * w[((a * kw + q) * cout + co) * cin + ci];
          }
}

static void test_conv2d_transpose_definition(void **state) {
  (void)state;
  static const struct {
    int h, w, kh, kw, sh, sw;
    const char *padding, *outpad;
  } cases[] = {
      {3, 3, 3, 3, 2, 2, "same", "None"}, {3, 4, 3, 2, 2, 1, "valid", "None"},
      {3, 3, 3, 3, 2, 2, "valid", "1"},   {4, 3, 2, 3, 3, 2, "same", "[2, 1]"},
      {2, 2, 1, 1, 2, 2, "valid", "None"}, {3, 3, 4, 4, 1, 1, "same", "None"},
  };
  enum { N = 2, CIN = 2, COUT = 3 };
  for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
    char src[512];
    snprintf(src, sizeof src,
             "input x : f32[batch, %d, %d, %d]\n"
             "param w : f32[%d, %d, %d, %d] = uniform(-1, 1)\n"
             "output y = conv2d_transpose(x, w, strides=[%d, %d], padding=%s, output_padding=%s)\n",
             cases[t].h, cases[t].w, CIN, cases[t].kh, cases[t].kw, COUT, CIN, cases[t].sh,
             cases[t].sw, cases[t].padding, cases[t].outpad);
    Compilation *c = compile_ok(src);
    const Graph *g = c->graph;
    const Node *y = output_node(g, "y");
    const Node *col = y->op == OP_COL2IM ? y : NULL;
    assert_non_null(col);
    int oh = (int)y->shape.d[1].n, ow = (int)y->shape.d[2].n;
    Eval *e = evaluator(g, N);
    Node *xn = named(g, "x"), *wn = named(g, "w");
    double *x = eval_data(e, xn);
    for (int64_t k = 0; k < eval_count(e, xn); k++) x[k] = sin(0.7 * (double)k + 0.3);
    eval_forward(e);
    double *want = malloc(sizeof(double) * (size_t)(N * oh * ow * COUT));
    assert_non_null(want);
    transpose_reference(x, eval_data(e, wn), N, cases[t].h, cases[t].w, CIN, cases[t].kh,
                        cases[t].kw, COUT, cases[t].sh, cases[t].sw, (int)col->a.win.pad[0],
                        (int)col->a.win.pad[2], oh, ow, want);
    const double *got = eval_data(e, y);
    for (int k = 0; k < N * oh * ow * COUT; k++) assert_close(got[k], want[k], 1e-12, "evaluator", k);
    /* and compiled, with the same weights */
    gradc_model *m = jit(src, N);
    jit_set(m, "x", x);
    float *jw = gradc_data(m, "w", NULL);
    for (int64_t k = 0; k < eval_count(e, wn); k++) jw[k] = (float)eval_data(e, wn)[k];
    double *wd = eval_data(e, wn);
    for (int64_t k = 0; k < eval_count(e, wn); k++) wd[k] = jw[k];
    transpose_reference(x, wd, N, cases[t].h, cases[t].w, CIN, cases[t].kh, cases[t].kw, COUT,
                        cases[t].sh, cases[t].sw, (int)col->a.win.pad[0], (int)col->a.win.pad[2],
                        oh, ow, want);
    assert_int_equal(gradc_forward(m), GRADC_OK);
    const float *jy = gradc_data(m, "y", NULL);
    for (int k = 0; k < N * oh * ow * COUT; k++) assert_close(jy[k], want[k], 1e-5, "jit", k);
    gradc_free(m);
    free(want);
    eval_free(e);
    compilation_free(c);
  }
}

static void test_conv2d_transpose_errors(void **state) {
  (void)state;
  assert_error("input x : f32[1, 3, 3, 2]\n"
               "y = conv2d_transpose(x, 4, 3, strides=2, output_padding=2)\noutput y\n",
               2, 57, "output_padding 2 must lie in [0, 2), below the stride");
  assert_error("input x : f32[1, 3, 3, 2]\nparam w : f32[3, 3, 4, 3]\n"
               "y = conv2d_transpose(x, w)\noutput y\n",
               3, 25, "expects 3 input channels but the input has 2");
  /* Keras' length (3 - 1) * 2 + 2 - 2 * 1 + 0 = 4, which a stride-2 same
   * convolution maps to 2 rows, not 3: TF refuses it too */
  assert_error("input x : f32[1, 3, 3, 2]\n"
               "y = conv2d_transpose(x, 4, 2, strides=2, padding=same, output_padding=0)\noutput y\n",
               2, 71, "conv2d_transpose: an output of 4x4");
  assert_error("input x : f32[1, 3, 3, 2]\ny = conv2d_transpose(x, 4, 3, padding=[1, 1, 1, 1])\n"
               "output y\n", 2, 39, "padding must be valid or same");
  assert_error("input x : f32[batch, 3]\ny = conv2d_transpose(x, 4, 3)\noutput y\n", 2, 5,
               "conv2d_transpose needs an NHWC tensor");
}

/* ------------------------------------------------------------ 5. bilinear */

/* tf.image.resize(method=bilinear), half-pixel centres, of [[1, 2], [3, 4]]
 * to 4x4, worked by hand: rows and columns sample at -0.25, 0.25, 0.75 and
 * 1.25, each clamped, so the weights are (1), (0.75, 0.25), (0.25, 0.75),
 * (1).  And to 2x6 (size [1, 3]): columns sample at -1/3, 0, 1/3, 2/3, 1,
 * 4/3. */
static void test_upsample_bilinear(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[1, 2, 2, 1]\n"
      "output u = upsample2d(x, 2, interpolation=bilinear)\n"
      "output v = upsample2d(x, [1, 3], interpolation=bilinear)\n"
      "output n = upsample2d(x, 2, interpolation=nearest)\n";
  static const double x[4] = {1, 2, 3, 4};
  static const double u[16] = {1,   1.25, 1.75, 2,   1.5, 1.75, 2.25, 2.5,
                               2.5, 2.75, 3.25, 3.5, 3,   3.25, 3.75, 4};
  static const double v[12] = {1, 1, 4.0 / 3, 5.0 / 3, 2, 2, 3, 3, 10.0 / 3, 11.0 / 3, 4, 4};
  static const double nn[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
  Compilation *c = compile_ok(src);
  Eval *e = evaluator(c->graph, 1);
  set_input(e, c->graph, "x", x);
  eval_forward(e);
  gradc_model *m = jit(src, 1);
  jit_set(m, "x", x);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  const struct { const char *name; const double *want; int n; } outs[] = {
      {"u", u, 16}, {"v", v, 12}, {"n", nn, 16}};
  for (int i = 0; i < 3; i++) {
    const double *ev = eval_data(e, output_node(c->graph, outs[i].name));
    const float *jv = gradc_data(m, outs[i].name, NULL);
    for (int k = 0; k < outs[i].n; k++) {
      assert_close(ev[k], outs[i].want[k], 1e-15, outs[i].name, k);
      assert_close(jv[k], outs[i].want[k], 1e-6, outs[i].name, k);
    }
  }
  gradc_free(m);
  eval_free(e);
  compilation_free(c);
  assert_error("input x : f32[1, 2, 2, 1]\noutput u = upsample2d(x, 2, interpolation=bicubic)\n",
               2, 43, "interpolation must be nearest or bilinear");
}

/* ------------------------------------------------------------ 6. col2im in dumps */

static char *nn_text(const Graph *g) {
  char *t = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&t, &n);
  assert_non_null(f);
  dump_graph(f, g, DUMP_NN, "parse");
  fclose(f);
  return t;
}

static void test_col2im_reads_back(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[batch, 3, 3, 2]\n"
      "y = conv2d_transpose(x, 4, 3, strides=2, padding=same, activation=tanh)\n"
      "z = conv2d_transpose(y, 1, [2, 3], strides=[1, 2], output_padding=[0, 1])\n"
      "output z\n";
  Compilation *c1 = compile_source("t.nn", src, strlen(src));
  assert_non_null(c1->graph);
  char *t1 = nn_text(c1->graph);
  assert_non_null(strstr(t1, "col2im("));
  assert_non_null(strstr(t1, "shape=[batch,6,6,4])"));
  Compilation *c2 = compile_source("t.nn", t1, strlen(t1));
  if (!c2->graph) {
    diag_print(stderr, &c2->diags);
    fail_msg("%s", t1);
  }
  char *t2 = nn_text(c2->graph);
  assert_string_equal(t1, t2);
  free(t1);
  free(t2);
  compilation_free(c1);
  compilation_free(c2);
  assert_error("input x : f32[1, 2, 2, 9]\n"
               "output y = col2im(x, kernel=[3, 3], shape=[1, 5, 5, 1])\n",
               2, 12, "col2im: the patches [1,2,2,9] are not those of the 3x3 window over [1,5,5,1]");
}

/* ------------------------------------------------------------ 7. gradc check */

static void test_check_says_second_order(void **state) {
  (void)state;
  Compilation *c = compile_model_file("tests/models/wgan_gp_tiny.nn", STAGE_OPT);
  assert_non_null(c);
  assert_non_null(c->graph);
  assert_int_equal(c->graph->ngrad_exprs, 1);
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  int rc = check_gradients_order(c->graph, 1, 3, 1e-4, 2, out);
  fclose(out);
  if (rc != 0 || !strstr(text, "second order: the loss holds grad()") ||
      !strstr(text, "gradc check wgan_gp_tiny, order 2: seed 1, batch 3, s = <v, dloss/dparams>") ||
      !strstr(text, "ok: every gradient matches"))
    fail_msg("%s", text);
  free(text);
  compilation_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grad_values),
      cmocka_unit_test(test_grad_in_a_loss_trains),
      cmocka_unit_test(test_grad_through_a_loop),
      cmocka_unit_test(test_grad_errors),
      cmocka_unit_test(test_norm_values),
      cmocka_unit_test(test_norm_zero_no_nan),
      cmocka_unit_test(test_norm_errors),
      cmocka_unit_test(test_leaky_relu),
      cmocka_unit_test(test_conv2d_transpose_sizes),
      cmocka_unit_test(test_conv2d_transpose_by_hand),
      cmocka_unit_test(test_conv2d_transpose_definition),
      cmocka_unit_test(test_conv2d_transpose_errors),
      cmocka_unit_test(test_upsample_bilinear),
      cmocka_unit_test(test_col2im_reads_back),
      cmocka_unit_test(test_check_says_second_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
