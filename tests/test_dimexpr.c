/*
 * test_dimexpr.c - integer arithmetic in brackets (compiler/dimexpr.c,
 * issue 22): `reshape(x, [-1, 28*28])`, `f32[batch, 7*7*64]`, and the
 * same in every list a model file writes (param and input types,
 * random_normal's and fill's shapes, reshape), with integer constants and
 * a function's integer parameters; the type and value each gives, and every
 * refusal with its exact place and message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "compiler.h"
#include "util_shape.h"

/* Compiles src (parse stage), which must succeed, and checks that the
 * value bound to name has the type want ("f32[batch,784]"). */
static void expect_type(const char *src, const char *name, const char *want) {
  Compilation *c = compile_str(src);
  if (!c->graph) {
    for (const Diag *d = c->diags.first; d; d = d->next) fprintf(stderr, "%d:%d: %s\n", d->loc.line, d->loc.col, d->msg);
    compilation_free(c);
    fail_msg("%s: did not compile", name);
  }
  const Node *n = node_named(c->graph, name);
  char got[128];
  bool ok = n && strcmp(type_str(c->graph, n, got, sizeof got), want) == 0;
  if (!ok) fprintf(stderr, "%s: want %s, got %s\n", name, want, n ? got : "(no such node)");
  compilation_free(c);
  assert_true(ok);
}

static void test_shapes(void **state) {
  (void)state;
  expect_type("input x : f32[batch, 28*28]\noutput x", "x", "f32[batch,784]");
  expect_type("input x : f32[batch, 784]\nh = reshape(x, [-1, 28, 4*7, 1])\noutput h", "h",
              "f32[batch,28,28,1]");
  expect_type("input x : f32[batch, 3136]\nh = reshape(x, [batch, 7*7*64])\noutput h", "h", "f32[batch,3136]");
  /* precedence, parentheses, unary minus and Python's floor division */
  expect_type("param w : f32[2 + 3*4, (2 + 3)*4, 17 // 5, -7 // 2 + 6, 10 - 2 - 3]\noutput w", "w",
              "f32[14,20,3,2,5]");
  expect_type("z = random_normal([batch, 2*5])\noutput z", "z", "f32[batch,10]");
  expect_type("z = random_uniform([4 // 2, 3 - 1])\noutput z", "z", "f32[2,2]");
  expect_type("z = fill([2*3, 4 - 3], 1.5)\noutput z", "z", "f32[6,1]");
  expect_type("input x : f32[batch, 1]\nh = broadcast_to(x, [batch, 2*2])\noutput h", "h", "f32[batch,4]");
  /* named integer constants, as a lone dimension too */
  expect_type("const k = 7\ninput x : f32[batch, k*k*16]\nh = reshape(x, [-1, k, k, 16])\n"
              "param w : f32[k, 2*k]\noutput h\noutput w", "h", "f32[batch,7,7,16]");
  expect_type("const k = 7\nparam w : f32[k, 2*k]\noutput w", "w", "f32[7,14]");
  expect_type("const k : i32 = 3\nparam w : f32[-k + 5]\noutput w", "w", "f32[2]");
  /* a function's parameter bound to an integer */
  expect_type("def f(x, n) {\n  return reshape(x, [-1, n * n])\n}\ninput x : f32[batch, 28, 28]\n"
              "h = f(x, 28)\noutput h", "h", "f32[batch,784]");
}

/* A list that is a value, not a shape, is computed the same way. */
static void test_values(void **state) {
  (void)state;
  Compilation *c = compile_str("const k = 4\nconst v = [k*2, 10 // 3, -(1 + 2)]\noutput o = v");
  assert_non_null(c->graph);
  const Node *n = node_named(c->graph, "v");
  assert_non_null(n);
  assert_int_equal(n->dtype, DT_I32);
  assert_int_equal(n->shape.rank, 1);
  assert_int_equal(n->shape.d[0].n, 3);
  assert_true(n->a.values[0] == 8 && n->a.values[1] == 3 && n->a.values[2] == -3);
  compilation_free(c);
}

typedef struct ErrCase {
  const char *src;
  int line, col, ulen;
  const char *msg;           /* the whole message */
} ErrCase;

static const ErrCase errors[] = {
    {"input x : f32[batch, 784]\nh = reshape(x, [-1, 28 / 28])", 2, 24, 1,
     "use // for division in brackets: / makes a fraction, and a dimension is whole"},
    {"input x : f32[batch, 784]\nh = reshape(x, [-1, batch * 2])", 2, 21, 5,
     "'batch' is a symbolic dimension, which takes no part in arithmetic (a shape holds names or integers); "
     "only integers and integer constants can"},
    {"input x : f32[batch, 784]\nh = reshape(x, [-1, 2 * 0.5])", 2, 25, 3,
     "arithmetic in brackets takes integers, but 0.5 is not one"},
    {"input x : f32[batch, 784]\nh = reshape(x, [-1, 7 // (3 - 3)])", 2, 26, 1, "division by zero"},
    {"input x : f32[batch, 784]\nh = reshape(x, [-1, x * 2])", 2, 21, 1,
     "'x' is a tensor, not an integer constant: arithmetic in brackets takes integers and scalar i32 constants"},
    {"const c = 2.0\nparam w : f32[c * 2]", 2, 15, 1,
     "'c' is f32, not an integer constant: arithmetic in brackets takes integers and scalar i32 constants"},
    {"param w : f32[kk * 2]", 1, 15, 2, "unknown identifier 'kk'"},
    /* the caller's checks, at the whole expression */
    {"input x : f32[batch, 7 - 8]", 1, 22, 5, "dimension -1 must be a positive integer"},
    {"input x : f32[batch, 1048576 * 1048576 * 2]", 1, 22, 21,
     "dimension 2199023255552 exceeds the limit of 2^40 elements"},
    {"input x : f32[batch, 784]\nh = reshape(x, [-7 // 2 + 4, 784])", 2, 17, 11,
     "reshape: dimension 0 must be a positive integer or -1"},
    {"input x : f32[batch, 100000000 * 100000000 * 100000000]", 1, 32, 1,
     "integer overflow: the result is beyond 2^53"},
    {"z = random_normal([batch, 3 * (2 + ])", 1, 36, 1, "']' does not match the '(' opened at line 1"},
};

static void test_errors(void **state) {
  (void)state;
  int bad = 0;
  for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
    const ErrCase *e = &errors[i];
    Compilation *c = compile_str(e->src);
    const Diag *d = first_diag(c, DIAG_ERROR);
    bool ok = !c->graph && d && d->loc.line == e->line && d->loc.col == e->col && d->loc.len == e->ulen &&
              !strcmp(d->msg, e->msg);
    if (!ok) {
      fprintf(stderr, "case %zu: want %d:%d len %d \"%s\"\n  got ", i, e->line, e->col, e->ulen, e->msg);
      if (d) fprintf(stderr, "%d:%d len %d \"%s\"\n", d->loc.line, d->loc.col, d->loc.len, d->msg);
      else fprintf(stderr, "no error\n");
      bad++;
    }
    compilation_free(c);
  }
  assert_int_equal(bad, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
