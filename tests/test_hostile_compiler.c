/*
 * test_hostile_compiler.c - the compiler against hostile model files
 * (issue 23, the compiler's items): name lookup that stays linear and
 * right (shadowing, redefinitions, scopes of functions), memory bounded
 * per call, token and node, line ends in CR, forward references, literals
 * out of their dtype's range, a loss that trains nothing, integer division
 * of INT_MIN by -1, and NaN gradients in gradc check.
 *
 * Errors are checked exactly: one error, its line, column and text, as
 * test_errors.c does.
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

static char *all_diags(const Compilation *c) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_non_null(f);
  diag_print(f, &c->diags);
  assert_int_equal(fclose(f), 0);
  return buf;
}

/* The source compiles (to stage last) without errors. */
static Compilation *ok_at(const char *src, size_t len, Stage last) {
  Compilation *c = compile_model("t.nn", src, len, last);
  assert_non_null(c);
  if (!c->graph || c->diags.errors) {
    char *d = all_diags(c);
    print_error("expected no error, got:\n%s", d);
    free(d);
    compilation_free(c);
    fail();
  }
  return c;
}

static Compilation *ok(const char *src) { return ok_at(src, strlen(src), STAGE_PARSE); }

/* The source (len bytes, 0: a string) fails with exactly one error at
 * line:col whose message holds phrase (and, when given, also phrase2). */
static void expect_error_at(const char *src, size_t len, Stage last, int line, int col,
                            const char *phrase, const char *phrase2) {
  Compilation *c = compile_model("t.nn", src, len ? len : strlen(src), last);
  assert_non_null(c);
  const Diag *e = NULL;
  for (const Diag *g = c->diags.first; g; g = g->next)
    if (g->level == DIAG_ERROR && !e) e = g;
  bool good = !c->graph && c->diags.errors == 1 && e && e->loc.line == line &&
              e->loc.col == col && strstr(e->msg, phrase) && (!phrase2 || strstr(e->msg, phrase2));
  if (!good) {
    char *d = all_diags(c);
    print_error("expected one error at %d:%d with \"%s\"%s%s%s, got:\n%s", line, col, phrase,
                phrase2 ? " and \"" : "", phrase2 ? phrase2 : "", phrase2 ? "\"" : "", d);
    free(d);
    compilation_free(c);
    fail();
  }
  compilation_free(c);
}

static void expect_error(const char *src, int line, int col, const char *phrase) {
  expect_error_at(src, strlen(src), STAGE_PARSE, line, col, phrase, NULL);
}

/* A growing text buffer for generated models. */
typedef struct Text {
  char *s;
  size_t len, cap;
} Text;

static void add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(Text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (t->len + (size_t)n + 1 > t->cap) {
    t->cap = 2 * (t->len + (size_t)n + 1);
    t->s = realloc(t->s, t->cap);
    assert_non_null(t->s);
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

static const Node *output_node(const Graph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].node;
  fail_msg("no output '%s'", name);
  return NULL;
}

/* ------------------------------------------------------------ 6. name lookup */

/* Many names: every one is found as itself after the table has grown
 * many times, and a redefinition is reported with the first line. */
static void test_many_names(void **state) {
  (void)state;
  enum { N = 20000 };
  Text t = {0};
  add(&t, "input x : f32[4]\nt0 = x + x\n");
  for (int i = 1; i < N; i++) add(&t, "t%d = t%d + x\n", i, i - 1);
  add(&t, "output a = t12345\noutput b = t0 * t%d\n", N - 1);
  Compilation *c = ok(t.s);
  const Node *a = output_node(c->graph, "a"), *b = output_node(c->graph, "b");
  assert_string_equal(a->name, "t12345");
  assert_int_equal(a->op, OP_ADD);
  assert_string_equal(b->src[0]->name, "t0");
  char want[32];
  snprintf(want, sizeof want, "t%d", N - 1);
  assert_string_equal(b->src[1]->name, want);
  compilation_free(c);
  add(&t, "t5000 = x\n");
  /* t5000 is on line 5002; the redefinition on the last line */
  expect_error(t.s, N + 4, 1, "redefinition of 't5000' (first defined at line 5002)");
  free(t.s);
}

/* A body's names shadow the top level's and end with the call: after
 * two calls, t is the top-level input again; nested bodies have locals of
 * the same name without clashing. */
static void test_body_scopes(void **state) {
  (void)state;
  Compilation *c = ok("input x : f32[4]\ninput t : f32[4]\n"
                      "def g(a) {\n  t = a + 1\n  return t\n}\n"
                      "def f(a) {\n  t = g(a) * 2\n  u = t\n  return u\n}\n"
                      "y = f(x)\nz = f(y)\nu = t + 1\noutput u\noutput z\n");
  const Node *u = output_node(c->graph, "u");
  assert_int_equal(u->op, OP_ADD);
  assert_int_equal(u->src[0]->op, OP_INPUT);
  assert_string_equal(u->src[0]->name, "t");
  compilation_free(c);
  /* a top-level name made after the def is not the body's, and the
   * body's local of that name does not clash with it */
  c = ok("input x : f32[4]\ndef f(a) {\n  v = a * 3\n  return v\n}\nv = x\ny = f(x)\n"
         "w = v\noutput w\n");
  assert_int_equal(output_node(c->graph, "w")->op, OP_INPUT);
  compilation_free(c);
  expect_error("input x : f32[4]\ndef f(a) {\n  t = a\n  t = a + 1\n  return t\n}\ny = f(x)\n", 4, 3,
               "redefinition of 't' (first defined at line 3)");
  expect_error("input x : f32[4]\ndef f(a) {\n  return a + later\n}\nlater = x\ny = f(x)\n", 3, 14,
               "unknown identifier 'later'");
  expect_error("input x : f32[4]\ndef f(a) {\n  s = a\n  return s\n}\ny = f(x)\nz = s\n", 7, 5,
               "unknown identifier 's'");
}

/* Instances: each name= makes its own parameters, a second call of an
 * instance shares them. */
static void test_many_instances(void **state) {
  (void)state;
  enum { N = 3000 };
  Text t = {0};
  add(&t, "input x : f32[2, 4]\ndef f(a) {\n  param W : f32[4, 4]\n  return a @ W\n}\n");
  for (int i = 0; i < N; i++) add(&t, "y%d = f(x, name=i%d)\n", i, i);
  add(&t, "z = f(y7, name=i7)\noutput z\n");
  Compilation *c = ok(t.s);
  int params = 0;
  for (int i = 0; i < c->graph->nnodes; i++) params += c->graph->nodes[i]->op == OP_PARAM;
  assert_int_equal(params, N);
  const Node *z = output_node(c->graph, "z");
  assert_string_equal(z->src[1]->name, "i7.W");
  compilation_free(c);
  free(t.s);
}

static void test_outputs_once(void **state) {
  (void)state;
  Text t = {0};
  add(&t, "input x : f32[4]\n");
  for (int i = 0; i < 5000; i++) add(&t, "output o%d = x * %d\n", i, i);
  Compilation *c = ok(t.s);
  assert_int_equal(c->graph->noutputs, 5000);
  assert_string_equal(c->graph->outputs[4321].name, "o4321");
  assert_ptr_equal(c->graph->outputs[4321].node, output_node(c->graph, "o4321"));
  compilation_free(c);
  add(&t, "metric m = sum(o17)\noutput o17\n");
  expect_error(t.s, 5003, 8, "'o17' is already an output");
  free(t.s);
}

/* ------------------------------------------------------------ 1. i32 arithmetic */

/* i32 arithmetic wraps (two's complement, as TF's): the exact result
 * modulo 2^32. */
static int32_t wrapped(int64_t v) {
  uint32_t u = (uint32_t)v;
  return u >= 0x80000000u ? (int32_t)(u - 0x80000000u) + INT32_MIN : (int32_t)u;
}

/* Python's a // b (the model language's / on integers), 0 for b = 0. */
static int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) return 0;
  int64_t q = a / b;
  return a % b != 0 && (a < 0) != (b < 0) ? q - 1 : q;
}

/* INT_MIN / -1 killed the compiled code with SIGFPE (the division
 * guarded b = 0 only); the evaluator gave 2^31, which no i32 holds.  Both
 * now wrap, at every optimisation level, folded or not. */
static void test_i32_division_and_wrapping(void **state) {
  (void)state;
  static const int32_t as[] = {INT32_MIN, INT32_MIN, INT32_MAX, 7, -7, -7, 5, INT32_MIN, INT32_MAX, -1, 0, INT32_MIN, 46341};
  static const int32_t bs[] = {-1, 1, -1, -2, 2, -2, 0, INT32_MIN, INT32_MAX, INT32_MIN, -1, 2, 46341};
  enum { N = sizeof as / sizeof *as };
  char src[512];
  snprintf(src, sizeof src,
           "input a : i32[%d]\ninput b : i32[%d]\noutput q = a / b\noutput s = a + b\n"
           "output d = a - b\noutput m = a * b\noutput n = -a\noutput ab = abs(a)\n"
           "output sq = square(a)\noutput t = sum(a)\n"
           "const c : i32 = -2147483648\noutput qc = c / (0 - 1)\noutput nc = -c\n", N, N);
  const char *names[] = {"q", "s", "d", "m", "n", "ab", "sq"};
  for (int level = 0; level <= 3; level += 3) {
    gradc_options o;
    gradc_options_default(&o);
    o.opt_level = level;
    gradc_model *m = NULL;
    gradc_status st = gradc_compile_string("div.nn", src, &o, &m);
    if (st) fail_msg("%s", gradc_last_error(NULL));
    assert_int_equal(gradc_bind(m, 1), GRADC_OK);
    const Graph *g = jitmodel_graph(m);
    Eval *e = eval_new(g);
    assert_non_null(e);
    assert_true(eval_bind(e, "", 1));
    eval_init(e, 1);
    int32_t *a = gradc_data(m, "a", NULL), *b = gradc_data(m, "b", NULL);
    for (int i = 0; i < g->nnodes; i++) {
      const Node *x = g->nodes[i];
      if (x->op != OP_INPUT) continue;
      for (int k = 0; k < N; k++) eval_data(e, x)[k] = !strcmp(x->name, "a") ? as[k] : bs[k];
    }
    memcpy(a, as, sizeof as);
    memcpy(b, bs, sizeof bs);
    assert_int_equal(gradc_forward(m), GRADC_OK);
    eval_forward(e);
    int64_t total = 0;
    for (int k = 0; k < N; k++) total += as[k];
    for (int j = 0; j < (int)(sizeof names / sizeof *names) + 3; j++) {
      const char *name = j < 7 ? names[j] : j == 7 ? "t" : j == 8 ? "qc" : "nc";
      const int32_t *jit = gradc_data(m, name, NULL);
      const double *ref = eval_data(e, output_node(g, name));
      int count = j < 7 ? N : 1;
      for (int k = 0; k < count; k++) {
        int64_t x = as[k], y = bs[k];
        int64_t exact = j == 0 ? floor_div(x, y) : j == 1 ? x + y : j == 2 ? x - y : j == 3 ? x * y
                      : j == 4 ? -x : j == 5 ? (x < 0 ? -x : x) : j == 6 ? x * x : j == 7 ? total
                      : -(int64_t)INT32_MIN;
        int32_t want = wrapped(exact);
        if (jit[k] != want || ref[k] != want)
          fail_msg("-O%d %s[%d] of (%d, %d): jit %d, evaluator %.17g, expected %d", level, name, k,
                   as[k], bs[k], jit[k], ref[k], want);
      }
    }
    eval_free(e);
    gradc_free(m);
  }
}

/* ------------------------------------------------------------ 2. the loss */

/* A loss that no trainable parameter affects is refused at its train
 * statement: a constant (it segfaulted the runtime once, having no
 * buffer), one of the inputs alone, one whose 'of' list names parameters
 * it does not read, one reached only through argmax (no gradient). */
static void test_loss_without_trained_params(void **state) {
  (void)state;
  const char *what = "does not depend on any trainable parameter";
  expect_error_at("param w : f32[4]\ninput x : f32[batch, 4]\noutput o = x * w\nconst c : f32 = 1\n"
                  "train c with sgd\n", 0, STAGE_GRAD, 5, 1, "the loss 'c' of train step 'train'",
                  "(it is a constant)");
  expect_error_at("param w : f32[4]\ninput x : f32[batch, 4]\noutput o = x * w\nloss = mean(x)\n"
                  "train loss with sgd\n", 0, STAGE_GRAD, 5, 1, what, "no parameter affects it");
  expect_error_at("param w : f32[4]\nparam v : f32[4]\nloss = sum(w * w)\noutput o = v\n"
                  "train loss of v with sgd as only_v\n", 0, STAGE_GRAD, 5, 1,
                  "the loss 'loss' of train step 'only_v'", "its 'of' list");
  expect_error_at("param w : f32[4]\nloss = sum(cast(argmax(w, axis=0), f32))\ntrain loss with sgd\n",
                  0, STAGE_GRAD, 3, 1, what, NULL);
  expect_error_at("input x : f32[4]\nloss = sum(x)\ntrain loss with adam\n", 0, STAGE_GRAD, 3, 1,
                  what, "the model has no parameter");
  /* one step of two trains nothing: refused too */
  expect_error_at("param w : f32[4]\nparam v : f32[4]\na = sum(w * w)\nb = sum(v * 2)\nconst k : f32 = 3\n"
                  "train a with sgd as first\ntrain k with sgd as second\n", 0, STAGE_GRAD, 7, 1,
                  "the loss 'k' of train step 'second'", NULL);
  const char *fine = "param w : f32[4]\nloss = sum(w * w)\ntrain loss with sgd\n";
  Compilation *c = ok_at(fine, strlen(fine), STAGE_GRAD);
  assert_int_equal(c->graph->steps[0].ngrads, 1);
  compilation_free(c);
}

/* ------------------------------------------------------------ 14. gradc check */

/* A NaN gradient (0 * NaN through the branch where does not take: sqrt
 * of a negative w) was "max abs error inf"; check says NaN and names the
 * node where the first non-finite value appears, with its line. */
static void test_check_names_nan(void **state) {
  (void)state;
  const char *src = "param w : f32[4] = uniform(-1, 1)\nloss = sum(where(w > 0, sqrt(w), w))\n"
                    "train loss with sgd\n";
  Compilation *c = ok_at(src, strlen(src), STAGE_GRAD);
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_non_null(f);
  int rc = check_gradients(c->graph, 1, 3, 1e-4, f);
  assert_int_equal(fclose(f), 0);
  print_message("%s", buf);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(buf, "            NaN            NaN  FAIL\n"));
  assert_non_null(strstr(buf, ": symbolic NaN, numeric 1,"));
  assert_non_null(strstr(buf, "the symbolic gradient is NaN at 2 of 4 elements checked"));
  assert_non_null(strstr(buf, "the first non-finite value is NaN in node %"));
  assert_non_null(strstr(buf, " (sqrt) at t.nn:2:25\n"));
  assert_non_null(strstr(buf, "FAILED: 2 of 4 elements have a NaN or infinite symbolic gradient"));
  assert_null(strstr(buf, "inf  FAIL"));   /* the old table said so */
  free(buf);
  compilation_free(c);
}

/* ------------------------------------------------------------ 13. file order */

/* A name used before its definition - a cycle is one - is reported with
 * the line of the definition and why: the model is a DAG in file order. */
static void test_defined_later(void **state) {
  (void)state;
  const char *order = "the model is evaluated in file order (a DAG)";
  expect_error_at("input x : f32[4]\na = b + x\nb = a + x\noutput a\n", 0, STAGE_PARSE, 2, 5,
                  "unknown identifier 'b': it is defined later, at line 3", order);
  expect_error_at("input x : f32[4]\nh = relu(h)\n", 0, STAGE_PARSE, 2, 10,
                  "unknown identifier 'h': it is used in its own definition", order);
  /* declarations and tuples are definitions; a def's locals are not */
  expect_error_at("input x : f32[4]\ny = x + z\ndef g(a) {\n  z = a\n  return z, a\n}\n"
                  "u, z = g(x)\n", 0, STAGE_PARSE, 2, 9, "it is defined later, at line 7", NULL);
  expect_error_at("input x : f32[4]\ny = x * w\nparam w : f32[4]\n", 0, STAGE_PARSE, 2, 9,
                  "it is defined later, at line 3", NULL);
  /* inside a body: its own later statements, then the top level after it */
  expect_error_at("input x : f32[4]\ndef f(q) {\n  b = c + q\n  c = q\n  return b\n}\ny = f(x)\n", 0,
                  STAGE_PARSE, 3, 7, "unknown identifier 'c': it is defined later, at line 4", NULL);
  expect_error_at("input x : f32[4]\ndef f(q) {\n  return q + later\n}\nlater = x\ny = f(x)\n", 0,
                  STAGE_PARSE, 3, 14, "unknown identifier 'later': it is defined at line 5, after the "
                  "function 'f'", NULL);
  expect_error_at("input x : f32[4]\ny = f(x)\ndef f(a) {\n  return a\n}\n", 0, STAGE_PARSE, 2, 5,
                  "unknown function 'f': it is defined later, at line 3", NULL);
  /* a name defined nowhere keeps its suggestion */
  expect_error("input x : f32[4]\ny = xx + 1\n", 2, 5, "unknown identifier 'xx'; did you mean 'x'?");
}

/* ------------------------------------------------------------ 15. literal ranges */

/* A literal must be a value of the dtype it gets (its own, its
 * declaration's, the other operand's): the error is at the literal. */
static void test_literal_ranges(void **state) {
  (void)state;
  const char *i32 = "out of range for i32 (-2147483648 to 2147483647)";
  const char *f32 = "out of range for f32 (at most 3.4028235e+38 in magnitude)";
  expect_error_at("input x : i32[4]\ny = x + 99999999999\noutput y\n", 0, STAGE_PARSE, 2, 9,
                  "literal 99999999999 is", i32);
  expect_error_at("const a : i32 = 2147483648\noutput a\n", 0, STAGE_PARSE, 1, 17,
                  "literal 2147483648 is", i32);
  expect_error_at("input x : i32[4]\ny = x - -2147483649\noutput y\n", 0, STAGE_PARSE, 2, 9,
                  "literal -2147483649 is", i32);
  expect_error_at("input x : f32[4]\ny = x * 1e39\noutput y\n", 0, STAGE_PARSE, 2, 9,
                  "literal 1e39 is", f32);
  expect_error_at("input x : f32[2]\ny = x + [1, -1e39]\noutput y\n", 0, STAGE_PARSE, 2, 9,
                  "value -1e+39 (element 1) is", f32);
  expect_error_at("param w : f32[4] = constant(1e39)\n", 0, STAGE_PARSE, 1, 29,
                  "1e+39 is out of range for f32, the dtype of 'w'", NULL);
  expect_error_at("param w : f32[4] = uniform(-1e308, 1e308)\n", 0, STAGE_PARSE, 1, 28,
                  "-1e+308 is out of range for f32, the dtype of 'w'", NULL);
  expect_error_at("param w : f32[2] = [0, 4e38]\n", 0, STAGE_PARSE, 1, 24,
                  "initial value 4e+38 is out of range for f32", NULL);
  expect_error_at("param w : f32 = 1e39\n", 0, STAGE_PARSE, 1, 17, "1e+39 is out of range", NULL);
  expect_error_at("param w : f32[2] = truncated_normal(1, mean=1e40)\n", 0, STAGE_PARSE, 1, 45,
                  "1e+40 is out of range", NULL);
  /* the edges of the ranges, and a wide literal that meets an f64 */
  Compilation *c = ok("input x : i32[2]\ny = x + -2147483648 + 2147483647\noutput y\n"
                      "input z : f64[2]\nc = 1e39\nw = z * c\noutput w\n"
                      "param v : f32[2] = uniform(-3.4e38, 3.4e38)\noutput o = v * 3.4028234e38\n");
  assert_int_equal(output_node(c->graph, "w")->src[1]->dtype, DT_F64);
  compilation_free(c);
}

/* ------------------------------------------------------------ 24. line ends */

/* A lone CR ends a line as LF and CRLF do: the statements, the comment
 * before them and the line numbers of errors. */
static void test_cr_line_ends(void **state) {
  (void)state;
  Compilation *c = ok("# a comment\rinput x : f32[4]\rparam w : f32[4]\ry = x * w\routput y\r");
  assert_int_equal(c->graph->nnodes, 3);
  assert_int_equal(output_node(c->graph, "y")->op, OP_MUL);
  compilation_free(c);
  expect_error("# a comment\rinput x : f32[4]\r\ry = xx + 1\r", 4, 5, "unknown identifier 'xx'");
  /* CRLF is one line end, not two; LF, CR and CRLF mixed */
  expect_error("input x : f32[4]\r\n\r\ny = x\ry = x\n", 4, 1, "redefinition of 'y' (first defined at line 3)");
  /* the excerpt is the line alone */
  const char *src = "input x : f32[4]\ry = xx + 1\routput y\r";
  Compilation *d = compile_source("t.nn", src, strlen(src));
  char *text = all_diags(d);
  assert_string_equal(text, "t.nn:2:5: error: unknown identifier 'xx'; did you mean 'x'?\n"
                            "    2 | y = xx + 1\n"
                            "      |     ^~\n");
  free(text);
  compilation_free(d);
}

/* ------------------------------------------------------------ 26. memory */

static size_t parse_bytes(const char *src) {
  Compilation *c = ok(src);
  size_t b = arena_bytes(c->arena);
  compilation_free(c);
  return b;
}

/* The compiler's memory per statement with a call, per blank line, per
 * operation: a call took 19 KB of arena (its record has room for 72
 * arguments), a blank line a token each. */
static void test_memory_per_call(void **state) {
  (void)state;
  enum { N = 4000 };
  Text a = {0}, b = {0};
  add(&a, "input x : f32[4]\n");
  add(&b, "input x : f32[4]\n");
  for (int i = 0; i < N; i++) add(&a, "t%d = abs(x)\n", i);
  for (int i = 0; i < 2 * N; i++) add(&b, "t%d = abs(x)\n", i);
  double per_call = (double)(parse_bytes(b.s) - parse_bytes(a.s)) / N;
  print_message("arena bytes per statement with a call: %.0f\n", per_call);
  assert_true(per_call < 2500);
  free(a.s);
  free(b.s);
}

static void test_memory_blank_lines(void **state) {
  (void)state;
  enum { N = 200000 };
  char *src = malloc(N + 64);
  assert_non_null(src);
  strcpy(src, "input x : f32[4]\n");
  size_t k = strlen(src);
  for (int i = 0; i < N; i++) src[k++] = i % 3 ? '\n' : '\r';
  strcpy(src + k, "output x\n");
  Compilation *c = ok(src);
  print_message("arena bytes for %d blank lines: %zu\n", N, arena_bytes(c->arena));
  assert_true(arena_bytes(c->arena) < 1u << 20);
  compilation_free(c);
  free(src);
}

/* What bounds the memory of any model file (compiler.h): the most tokens
 * at their size and the most nodes at what one costs the parser, within
 * 1 GB. */
static void test_memory_budget(void **state) {
  (void)state;
  enum { N = 20000 };
  Text a = {0}, b = {0};
  add(&a, "input x : f32[4]\ny = x");
  add(&b, "input x : f32[4]\ny = x");
  for (int i = 0; i < N; i++) add(&a, "+x");
  for (int i = 0; i < 2 * N; i++) add(&b, "+x");
  add(&a, "\noutput y\n");
  add(&b, "\noutput y\n");
  /* each "+x": a node and two tokens */
  double per_node = (double)(parse_bytes(b.s) - parse_bytes(a.s)) / N - 2.0 * sizeof(Token);
  double budget = (double)MAX_TOKENS * sizeof(Token) + MAX_PARSE_NODES * per_node;
  print_message("bytes per node %.0f, per token %zu: at most %.0f MB\n", per_node, sizeof(Token),
                budget / 1e6);
  assert_int_equal(sizeof(Token), 64);
  assert_true(budget <= 1e9);
  free(a.s);
  free(b.s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_many_names),
      cmocka_unit_test(test_body_scopes),
      cmocka_unit_test(test_many_instances),
      cmocka_unit_test(test_outputs_once),
      cmocka_unit_test(test_i32_division_and_wrapping),
      cmocka_unit_test(test_loss_without_trained_params),
      cmocka_unit_test(test_check_names_nan),
      cmocka_unit_test(test_defined_later),
      cmocka_unit_test(test_literal_ranges),
      cmocka_unit_test(test_cr_line_ends),
      cmocka_unit_test(test_memory_per_call),
      cmocka_unit_test(test_memory_blank_lines),
      cmocka_unit_test(test_memory_budget),
  };
  return cmocka_run_group_tests_name("hostile_compiler", tests, NULL, NULL);
}
