/*
 * test_pipeline.c - one pipeline (compiler/compile.c) and its verifier.
 *
 * 1. Every model file in models/ and tests/ compiles to the same graph
 *    through the API (what gradc train and gradc compile run) as through
 *    `gradc dump --stage opt` (the gradc binary, run as a child process),
 *    and fails the same way when it fails.
 * 2. The bugs that separate pipelines let through: canon ran only in dump
 *    and check, so a written-out cross-entropy trained to inf; canon's
 *    rewrite assumed weights that sum to one; an unreadable file was a
 *    model error.
 * 3. graph_verify passes on every stage of every model and names what is
 *    wrong in a graph a pass could have broken.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"

/* The model files of the repository, relative to the source directory
 * (the tests' working directory). */
static glob_t model_files(void) {
  static const char *const patterns[] = {"models/*.nn", "tests/*.nn", "tests/*/*.nn", "tests/*/*/*.nn",
                                         "tests/*/*/*/*.nn"};
  glob_t gl;
  memset(&gl, 0, sizeof gl);
  for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++)
    glob(patterns[i], i ? GLOB_APPEND : 0, NULL, &gl);
  assert_true(gl.gl_pathc >= 10);
  return gl;
}

static char *graph_text(const Graph *g) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  dump_graph(f, g, DUMP_TEXT, g->stage);
  fclose(f);
  return text;
}

/* stdout of `gradc dump --stage opt path`, and its exit status in *rc. */
static char *dump_opt(const char *path, int *rc) {
  const char *bin = getenv("GRADC_BIN");
  assert_non_null(bin);
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' dump --stage opt '%s' 2>/dev/null", bin, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char *text = NULL;
  size_t len = 0, n;
  FILE *out = open_memstream(&text, &len);
  char buf[65536];
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) fwrite(buf, 1, n, out);
  fclose(out);
  *rc = pclose(p);
  return text;
}

static void test_api_graph_is_dump_graph(void **state) {
  (void)state;
  glob_t gl = model_files();
  int compared = 0;
  for (size_t i = 0; i < gl.gl_pathc; i++) {
    const char *path = gl.gl_pathv[i];
    gradc_options o;
    gradc_options_default(&o);
    o.threads = 1;
    gradc_model *m = NULL;
    gradc_status s = gradc_compile_file(path, &o, &m);
    int rc;
    char *dumped = dump_opt(path, &rc);
    if (s) {
      /* Both refuse the file: the dump prints no graph. */
      if (rc == 0 || s != GRADC_ERR_MODEL)
        fail_msg("%s: the API says %d (%s) but gradc dump exits %d", path, (int)s,
                 gradc_last_error(NULL), rc);
      assert_string_equal(dumped, "");
    } else {
      char *api = graph_text(jitmodel_graph(m));
      if (rc != 0 || strcmp(api, dumped) != 0) {
        print_error("%s: the API compiled\n%s\nbut gradc dump --stage opt printed (exit %d)\n%s\n", path,
                    api, rc, dumped);
        fail();
      }
      free(api);
      compared++;
    }
    free(dumped);
    gradc_free(m);
  }
  assert_true(compared >= 9);
  globfree(&gl);
}

/* graph_verify after every stage and pass, on every model, whatever the
 * build (compile() aborts on a violation). */
static void test_every_stage_verifies(void **state) {
  (void)state;
  glob_t gl = model_files();
  for (size_t i = 0; i < gl.gl_pathc; i++) {
    for (int level = 0; level <= 3; level += 3) {
      CompileOptions o = compile_defaults();
      o.verify = true;
      o.opt_level = level;
      Compilation *c = compile_path(gl.gl_pathv[i], &o);
      assert_non_null(c);
      if (c->graph) {
        char err[512];
        if (!graph_verify(c->graph, true, err, sizeof err)) fail_msg("%s: %s", gl.gl_pathv[i], err);
      }
      compilation_free(c);
    }
  }
  globfree(&gl);
}

static Compilation *opt_graph(const char *src) {
  CompileOptions o = compile_defaults();
  o.verify = true;
  Compilation *c = compile("t.nn", src, strlen(src), &o);
  assert_non_null(c);
  if (!c->graph) {
    diag_print(stderr, &c->diags);
    fail();
  }
  return c;
}

static int count_op(const Graph *g, OpKind op) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == op;
  return n;
}

static void test_verify_names_violations(void **state) {
  (void)state;
  Compilation *c = opt_graph("param w : f32[2, 3] = ones\n"
                             "param v : f32[3] = zeros\n"
                             "loss = sum(exp(w) * v)\n"
                             "train loss with sgd(lr=0.1)\n");
  Graph *g = c->graph;
  char err[512];
  assert_true(graph_verify(g, true, err, sizeof err));

  /* The first node that reads an operand: point it at a later node. */
  Node *x = NULL;
  for (int i = 0; i < g->nnodes && !x; i++)
    if (g->nodes[i]->nsrc > 0 && g->nodes[i]->op != OP_ASSIGN) x = g->nodes[i];
  assert_non_null(x);
  Node *keep = x->src[0];
  x->src[0] = g->nodes[g->nnodes - 1];
  assert_false(graph_verify(g, true, err, sizeof err));
  char want[256];
  snprintf(want, sizeof want, "node %%%d (%s", x->id, op_info[x->op].name);
  assert_non_null(strstr(err, want));
  assert_non_null(strstr(err, "operand 0"));
  x->src[0] = keep;

  /* A wrong shape. */
  Shape s = x->shape;
  x->shape.d[0].n += 1;
  assert_false(graph_verify(g, true, err, sizeof err));
  assert_non_null(strstr(err, "but its shape rule gives f32[2,3]"));
  x->shape = s;

  /* A dtype that is not the rule's. */
  x->dtype = DT_F64;
  assert_false(graph_verify(g, true, err, sizeof err));
  assert_non_null(strstr(err, "is f64"));
  x->dtype = DT_F32;

  /* A stored node without storage. */
  Node *saved = x->storage;
  Node *inl = x->inlined_into;
  x->storage = NULL, x->inlined_into = NULL;
  assert_false(graph_verify(g, true, err, sizeof err));
  assert_non_null(strstr(err, "has no storage and is computed in no loop"));
  assert_true(graph_verify(g, false, err, sizeof err));   /* before fuse, no storage is fine */
  x->storage = saved, x->inlined_into = inl;

  /* A loss that a pass replaced but left as the loss. */
  Node *loss = g->steps[0].loss;
  g->steps[0].loss = arena_alloc(g->arena, sizeof(Node));
  *g->steps[0].loss = *loss;
  g->steps[0].loss->id = loss->id;
  assert_false(graph_verify(g, true, err, sizeof err));
  assert_non_null(strstr(err, "the loss is not a node of the graph"));
  g->steps[0].loss = loss;
  assert_true(graph_verify(g, true, err, sizeof err));
  compilation_free(c);
}

/* Bug 1: the API (gradc train) never ran canon, so the written-out
 * cross-entropy was differentiated as log(softmax(z)): the softmax of the
 * -300 logit is 0 and its log -inf. */
static void test_api_runs_canon(void **state) {
  (void)state;
  const char *src = "param  z : f32[1, 3] = [[0, 300, -300]]\n"
                    "const  t : f32[1, 3] = [[0, 0, 1]]\n"
                    "loss = mean(-sum(t * log(softmax(z)), axis=-1))\n"
                    "train loss with sgd(lr=0.001)\n";
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  o.check_numerics = 1;
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("ce.nn", src, &o, &m), GRADC_OK);
  assert_int_equal(count_op(jitmodel_graph(m), OP_SOFTMAX_CE), 1);
  assert_int_equal(count_op(jitmodel_graph(m), OP_LOG), 0);
  assert_int_equal(gradc_bind(m, 1), GRADC_OK);
  for (int step = 0; step < 3; step++) {
    gradc_status s = gradc_train_step(m, NULL);
    if (s) fail_msg("step %d: %s", step, gradc_last_error(m));
  }
  /* loss = logsumexp(z) - z[2] = 600 (to f32), gradient softmax - t =
   * [0, 1, -1]: each step moves z by lr against it. */
  const float *loss = gradc_data(m, "loss", NULL), *z = gradc_data(m, "z", NULL);
  assert_true(fabs(loss[0] - (300.0f - 0.002f - (-300.0f + 0.002f))) < 1e-3);
  assert_true(fabs(z[1] - (300 - 0.003)) < 1e-3 && fabs(z[2] - (-300 + 0.003)) < 1e-3);
  assert_true(z[0] == 0);
  gradc_free(m);

  /* test_jit's "canon's cross-entropy" model: both written-out terms
   * become fused cross-entropies in what the API compiles. */
  const char *both = "input x : f32[batch, 4]\n"
                     "input y : i32[batch]\n"
                     "param w : f32[4, 3] = glorot_uniform\n"
                     "z = x @ w\n"
                     "pt = softmax(x[:, 0:3])\n"
                     "loss = mean(-sum(one_hot(y, 3) * log(softmax(z)), axis=-1)) - mean(sum(pt * log(softmax(z)), axis=1))\n"
                     "train loss with sgd(lr=0.1)\n";
  o.check_numerics = 0;
  assert_int_equal(gradc_compile_string("both.nn", both, &o, &m), GRADC_OK);
  assert_int_equal(count_op(jitmodel_graph(m), OP_SOFTMAX_CE), 2);
  assert_int_equal(count_op(jitmodel_graph(m), OP_LOG_SOFTMAX), 0);
  gradc_free(m);
}

/* Sums that the cross-entropy's gradient rule made. */
static int ce_sums(const Graph *g) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++)
    n += g->nodes[i]->op == OP_SUM && g->nodes[i]->rule && !strcmp(g->nodes[i]->rule, "softmax_cross_entropy");
  return n;
}

static Compilation *grad_graph(const char *src) {
  CompileOptions o = compile_defaults();
  o.verify = true;
  o.last = STAGE_GRAD;
  Compilation *c = compile("t.nn", src, strlen(src), &o);
  assert_non_null(c);
  assert_non_null(c->graph);
  return c;
}

/* Bug 2: canon makes -softmax_cross_entropy(z, t) of sum(t * log_softmax(z))
 * for any t, whose rule was softmax - t: the gradient only where the rows
 * of t sum to one.  The rule is now sum(t) * softmax - t, with the sum left
 * out where the rows provably sum to one. */
static void test_cross_entropy_any_weights(void **state) {
  (void)state;
  const char *weights = "param  z : f32[1, 3] = [[0.5, -1, 2]]\n"
                        "const  t : f32[1, 3] = [[1, 2, 0.5]]\n"
                        "loss = -mean(sum(t * log(softmax(z)), axis=-1))\n"
                        "train loss with sgd(lr=0.01)\n";
  FILE *null = fopen("/dev/null", "w");
  Compilation *c = opt_graph(weights);
  assert_int_equal(count_op(c->graph, OP_SOFTMAX_CE), 1);
  assert_int_equal(check_gradients(c->graph, 1, 1, 1e-4, null), 0);
  compilation_free(c);

  /* The update through the JIT: z - lr * (sum(t) * softmax(z) - t). */
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("w.nn", weights, &o, &m), GRADC_OK);
  assert_int_equal(gradc_bind(m, 1), GRADC_OK);
  assert_int_equal(gradc_train_step(m, NULL), GRADC_OK);
  const double z0[3] = {0.5, -1, 2}, t[3] = {1, 2, 0.5};
  double e[3], sum = 0;
  for (int k = 0; k < 3; k++) sum += e[k] = exp(z0[k]);
  const float *z = gradc_data(m, "z", NULL);
  for (int k = 0; k < 3; k++) {
    double want = z0[k] - 0.01 * (3.5 * e[k] / sum - t[k]);
    if (fabs(z[k] - want) > 1e-6) fail_msg("z[%d] = %.9g, want %.9g", k, (double)z[k], want);
  }
  gradc_free(m);

  /* The op written by hand, with targets from the data (check draws them
   * from [-1, 1]). */
  c = opt_graph("input x : f32[batch, 4]\n"
                "input t : f32[batch, 3]\n"
                "param w : f32[4, 3] = glorot_uniform\n"
                "loss = mean(softmax_cross_entropy(x @ w, t))\n"
                "train loss with sgd(lr=0.1)\n");
  assert_int_equal(check_gradients(c->graph, 1, 3, 1e-4, null), 0);
  compilation_free(c);

  /* Rows that sum to one - a constant, a softmax, a one_hot, labels - need
   * no sum of the targets in the gradient; other targets get one. */
  static const struct {
    const char *src;
    int sums;
  } cases[] = {
      {"param  z : f32[2, 3] = [[0.5, -1, 2], [1, 1, 1]]\n"
       "const  t : f32[2, 3] = [[0.1, 0.2, 0.7], [0, 1, 0]]\n"
       "loss = -mean(sum(t * log(softmax(z)), axis=-1))\n"
       "train loss with sgd(lr=0.01)\n", 0},
      {"param  z : f32[2, 3] = [[0.5, -1, 2], [1, 1, 1]]\n"
       "param  u : f32[2, 3] = [[3, -1, 2], [1, 0, 1]]\n"
       "loss = -mean(sum(softmax(u) * log(softmax(z)), axis=-1))\n"
       "train loss with sgd(lr=0.01)\n", 0},
      {"input y : i32[2]\n"
       "param  z : f32[2, 3] = [[0.5, -1, 2], [1, 1, 1]]\n"
       "loss = -mean(sum(one_hot(y, 3) * log(softmax(z)), axis=-1))\n"
       "train loss with sgd(lr=0.01)\n", 0},
      {"input y : i32[2]\n"
       "param  z : f32[2, 3] = [[0.5, -1, 2], [1, 1, 1]]\n"
       "loss = mean(softmax_cross_entropy(z, y))\n"
       "train loss with sgd(lr=0.01)\n", 0},
      {"param  z : f32[2, 3] = [[0.5, -1, 2], [1, 1, 1]]\n"
       "const  t : f32[2, 3] = [[0.1, 0.2, 0.7], [0, 1, 0.1]]\n"
       "loss = -mean(sum(t * log(softmax(z)), axis=-1))\n"
       "train loss with sgd(lr=0.01)\n", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    c = grad_graph(cases[i].src);
    assert_int_equal(count_op(c->graph, OP_SOFTMAX_CE), 1);
    if (ce_sums(c->graph) != cases[i].sums)
      fail_msg("case %zu: %d sums of the targets in the gradient, want %d", i, ce_sums(c->graph), cases[i].sums);
    compilation_free(c);
    c = opt_graph(cases[i].src);
    if (check_gradients(c->graph, 1, 2, 1e-4, null) != 0) fail_msg("case %zu: gradc check fails", i);
    compilation_free(c);
  }
  fclose(null);
}

/* Bug 6: a model file that cannot be read is an I/O error, not a model
 * error; the message names the file and the reason. */
static void test_unreadable_file_is_io(void **state) {
  (void)state;
  gradc_model *m = (gradc_model *)1;
  assert_int_equal(gradc_compile_file("tests/no/such/model.nn", NULL, &m), GRADC_ERR_IO);
  assert_null(m);
  assert_non_null(strstr(gradc_last_error(NULL), "cannot read 'tests/no/such/model.nn': No such file or directory"));
  assert_int_equal(gradc_compile_file("models", NULL, &m), GRADC_ERR_IO);
  assert_non_null(strstr(gradc_last_error(NULL), "cannot read 'models': Is a directory"));
  /* A model error stays one. */
  assert_int_equal(gradc_compile_string("bad.nn", "loss = nope\n", NULL, &m), GRADC_ERR_MODEL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_api_graph_is_dump_graph),
      cmocka_unit_test(test_every_stage_verifies),
      cmocka_unit_test(test_verify_names_violations),
      cmocka_unit_test(test_api_runs_canon),
      cmocka_unit_test(test_cross_entropy_any_weights),
      cmocka_unit_test(test_unreadable_file_is_io),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
