/*
 * test_parse.c - the front end as a whole: every model file compiles, the
 * parameter counts of the seed networks, the nn dump as a fixed point of
 * parse + dump, the text/dot/summary dumps, optimizer settings and Keras
 * defaults, lexical layout (comments, continuation lines), warnings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>

#include "compiler.h"
#include "util_shape.h"

static const char *source_dir(void) {
  const char *root = getenv("GRADC_SOURCE_DIR");
  return root && *root ? root : ".";
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
  }
  fclose(f);
  if (buf) buf[n] = 0;
  *len = n;
  return buf;
}

/* models/<name>, or a path under the source directory when name has a
 * '/' (tests/models/...), read whole; the caller frees. */
static char *read_model(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s%s", source_dir(), strchr(name, '/') ? "" : "models/", name);
  char *text = read_all(path, len);
  if (!text) print_error("cannot read %s\n", path);
  assert_non_null(text);
  return text;
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

/* Sorted names of every .nn file in models/. */
enum { MAX_MODELS = 64 };
static int list_models(char names[][256]) {
  char dir[300];
  snprintf(dir, sizeof dir, "%s/models", source_dir());
  DIR *d = opendir(dir);
  if (!d) print_error("cannot open %s\n", dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < MAX_MODELS;) {
    size_t len = strlen(e->d_name);
    if (len > 3 && len < 256 && strcmp(e->d_name + len - 3, ".nn") == 0)
      memcpy(names[n++], e->d_name, len + 1);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], by_name);
  return n;
}

static Compilation *compile_model_named(const char *name) {
  size_t len;
  char *text = read_model(name, &len);
  Compilation *c = compile_source(name, text, len);
  free(text);
  assert_non_null(c);
  return c;
}

static void print_diags(const Compilation *c) {
  for (const Diag *d = c->diags.first; d; d = d->next)
    print_error("  %s:%d:%d: %s\n", c->src.name, d->loc.line, d->loc.col, d->msg);
}

/* ------------------------------------------------------------ (1) models */

static void test_every_model_compiles(void **state) {
  (void)state;
  char names[MAX_MODELS][256];
  int n = list_models(names), failed = 0;
  assert_true(n >= 4);
  for (int i = 0; i < n; i++) {
    Compilation *c = compile_model_named(names[i]);
    bool ok = c->graph && c->diags.errors == 0 && c->diags.warnings == 0 &&
              c->graph->nnodes > 0 && (c->graph->noutputs > 0 || (c->graph->nsteps > 0));
    if (!ok) {
      print_error("%s does not compile cleanly:\n", names[i]);
      print_diags(c);
      failed++;
    }
    compilation_free(c);
  }
  assert_int_equal(failed, 0);
}

/* ------------------------------------------------------------ (2) counts */

/* SEEDS M11: Dense 256-128-64-32-10 on [None, 784]. */
#define MLP5                                                                   \
  "input x : f32[batch, 784]\ninput y : i32[batch]\n"                          \
  "h1 = dense(x, 256, activation=relu)\nh2 = dense(h1, 128, activation=relu)\n" \
  "h3 = dense(h2, 64, activation=relu)\nh4 = dense(h3, 32, activation=relu)\n"  \
  "logits = dense(h4, 10)\nloss = mean(softmax_cross_entropy(logits, y))\n"     \
  "output logits\ntrain loss with adam(lr=0.01)\n"
/* SEEDS M15: [784, 256, 256, 256, 10], unnamed layers dense..dense_3. */
#define FC4                                                                    \
  "input x : f32[batch, 784]\n"                                                \
  "h1 = relu(dense(x, 256))\nh2 = relu(dense(h1, 256))\nh3 = relu(dense(h2, 256))\n" \
  "out = 1 * relu(dense(h3, 10))\noutput out\n"
/* SEEDS M7/M8: 784-512-256-10. */
#define MLP3                                                                   \
  "input x : f32[batch, 784]\ninput t : f32[batch, 10]\n"                      \
  "h1 = dense(x, 512, activation=relu)\nh2 = dense(h1, 256, activation=relu)\n" \
  "out = dense(h2, 10)\nloss = mean(sum(square(out - t), axis=1))\n"           \
  "train loss with sgd(lr=0.001)\n"
/* SEEDS M16: Dense(2) x 3 built on [None, 3]. */
#define TINY                                                                   \
  "input x : f32[batch, 3]\n"                                                  \
  "a = dense(x, 2, activation=relu)\nb = dense(a, 2, activation=relu)\n"       \
  "c = dense(b, 2)\noutput c\n"

/* The summary of the model src holds each of the n lines. */
static void expect_summary(const char *src, const char *const *lines, size_t n) {
  Compilation *c = compile_str(src);
  if (!c->graph) print_diags(c);
  assert_non_null(c->graph);
  char *sum = dump_str(c->graph, DUMP_TEXT, true);
  compilation_free(c);
  int missing = 0;
  for (size_t i = 0; i < n; i++)
    if (!strstr(sum, lines[i])) print_error("summary lacks: %s", lines[i]), missing++;
  if (missing) print_error("%s", sum);
  free(sum);
  assert_int_equal(missing, 0);
}

static void test_param_counts(void **state) {
  (void)state;
  static const struct { const char *file, *src; int64_t count; } cases[] = {
      {"mnist_mlp.nn", NULL, 407050},
      {"mlp3.nn", NULL, 235146},
      {"linear_regression.nn", NULL, 2},
      {"himmelblau.nn", NULL, 2},
      {"cnn_seed.nn", NULL, 1199882},
      {"cnn_gap.nn", NULL, 2650},
      {"cnn_bn.nn", NULL, 421866},           /* trainable; 448 in batch-norm state */
      {"resnet_small.nn", NULL, 77754},
      {"ae.nn", NULL, 471066},               /* SEEDS M35 */
      {"vae.nn", NULL, 205604},              /* SEEDS M36 */
      {NULL, MLP5, 244522},
      {NULL, FC4, 335114},
      {NULL, MLP3, 535818},
      {NULL, TINY, 20},
      /* SEEDS M28: Keras' Embedding(10000, 100) */
      {NULL, "input ids : i32[batch, 80]\ne = embedding(ids, 10000, 100)\noutput e\n", 1000000},
      /* SEEDS M30-M33: the IMDB models (Keras' summary totals) */
      {"imdb_rnn_cells.nn", NULL, 1018881},
      {"imdb_simple_rnn.nn", NULL, 1018881},
      {"tests/models/imdb_lstm.nn", NULL, 1075329},
      {"tests/models/imdb_gru.nn", NULL, 1056897},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Compilation *c = cases[i].file ? compile_model_named(cases[i].file)
                                   : compile_str(cases[i].src);
    if (!c->graph) print_diags(c);
    int64_t got = c->graph ? graph_param_count(c->graph) : -1;
    int warnings = c->diags.warnings;
    compilation_free(c);
    if (got != cases[i].count || warnings)
      print_error("case %zu (%s): %lld params, %d warnings\n", i,
                  cases[i].file ? cases[i].file : "inline", (long long)got, warnings);
    assert_int_equal(got, cases[i].count);
    assert_int_equal(warnings, 0);
  }
  /* the Keras names of unnamed layers, as in the seed's summary (M15) */
  static const char *const lines[] = {
      " dense.kernel                   (784, 256)         200,704      glorot_uniform\n",
      " dense_1.kernel                 (256, 256)         65,536       glorot_uniform\n",
      " dense_2.bias                   (256,)             256          zeros\n",
      " dense_3.kernel                 (256, 10)          2,560        glorot_uniform\n",
      "Total params: 335,114\n",
  };
  expect_summary(FC4, lines, sizeof lines / sizeof *lines);
}

/* Embedding layers in the summary: Keras' names for unnamed ones
 * (embedding, embedding_1), its uniform(-0.05, 0.05) and 1,000,000
 * parameters for Embedding(10000, 100). */
static void test_embedding_summary(void **state) {
  (void)state;
  static const char *const lines[] = {
      " embedding.embeddings           (10000, 100)       1,000,000    uniform(-0.05, 0.05)\n",
      " embedding_1.embeddings         (20, 3)            60           zeros\n",
      " embedding                      1,000,000\n",
      "Total params: 1,000,060\n",
  };
  expect_summary("input ids : i32[batch, 80]\n"
                 "a = mean(embedding(ids, 10000, 100), axis=1)\n"
                 "b = mean(embedding(ids, 20, 3, embeddings_initializer=zeros), axis=1)\n"
                 "output a\noutput b\n",
                 lines, sizeof lines / sizeof *lines);
}

/* The per-layer counts of the seeds' CNN and recurrent summaries (SEEDS M18,
 * M20, M31, M33). */
static void test_layer_summaries(void **state) {
  (void)state;
  static const struct { const char *file, *line; } cases[] = {
      {"cnn_seed.nn", " conv2d                         320\n"},
      {"cnn_seed.nn", " conv2d_1                       18,496\n"},
      {"cnn_seed.nn", " dense                          1,179,776\n"},
      {"cnn_seed.nn", " dense_1                        1,290\n"},
      {"cnn_seed.nn", " conv2d_1.kernel                (3, 3, 32, 64)     18,432       glorot_uniform\n"},
      {"cnn_seed.nn", "Total params: 1,199,882\n"},
      {"cnn_gap.nn", " conv2d_2                       160\n"},
      {"cnn_gap.nn", " conv2d_3                       2,320\n"},
      {"cnn_gap.nn", " dense_2                        170\n"},
      {"cnn_gap.nn", "Total params: 2,650\n"},
      {"cnn_gap.nn", "Non-trainable params: 0\n"},
      /* batch norm: 4 per channel, moving statistics non-trainable (Keras) */
      {"cnn_bn.nn", " bn2                            256\n"},
      {"cnn_bn.nn", " bn2.moving_variance            (64,)              64           ones\n"},
      {"cnn_bn.nn", "Total params: 422,314\n"},
      {"cnn_bn.nn", "Trainable params: 421,866\n"},
      {"cnn_bn.nn", "Non-trainable params: 448\n"},
      {"resnet_small.nn", "Non-trainable params: 672\n"},
      /* recurrent layers: Keras' per-layer counts with units 64 (M31, M33) */
      {"imdb_simple_rnn.nn", " h                              10,560\n"},
      {"imdb_simple_rnn.nn", " h1                             8,256\n"},
      {"tests/models/imdb_lstm.nn", " h                              42,240\n"},
      {"tests/models/imdb_lstm.nn", " h1                             33,024\n"},
      {"tests/models/imdb_gru.nn", " h                              31,872\n"},
      {"tests/models/imdb_gru.nn", " h1                             24,960\n"},
      {"tests/models/imdb_gru.nn", " h.bias                         (2, 192)           384          zeros\n"},
      {"imdb_rnn_cells.nn", " cell1.recurrent_kernel         (64, 64)           4,096        orthogonal\n"},
  };
  int missing = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Compilation *c = compile_model_named(cases[i].file);
    assert_non_null(c->graph);
    char *sum = dump_str(c->graph, DUMP_TEXT, true);
    compilation_free(c);
    if (!strstr(sum, cases[i].line))
      print_error("%s: summary lacks: %s%s", cases[i].file, cases[i].line, sum), missing++;
    free(sum);
  }
  assert_int_equal(missing, 0);
}

/* ------------------------------------------------------------ (3) round trip */

/* Every op, every initializer, consts of every dtype. */
static const char every_op[] =
    "# every op, for the nn round trip\n"
    "input x : f32[batch, 28, 28]\n"
    "input y : i32[batch]\n"
    "input img : f32[4, 28, 28, 3]\n"
    "input m : f64[3, 4]\n"
    "input n : i32[2, 5]\n"
    "param w : f32[784, 10] = glorot_normal\n"
    "param b : f32[10] = constant(0.5)\n"
    "param u : f32[10] = uniform(-1, 1)\n"
    "param nr : f32[4, 3] = normal(0.5, 2)\n"
    "param t1 : f32[3] = truncated_normal(0.1)\n"
    "param t2 : f32[3] = truncated_normal(0.2, mean=1)\n"
    "param he : f32[3, 3] = he_normal\n"
    "param hu : f32[3, 3] = he_uniform\n"
    "param ln : f32[3, 3] = lecun_normal\n"
    "param lu : f32[3, 3] = lecun_uniform\n"
    "param gu : f32[3, 3] = glorot_uniform\n"
    "param z : f32[3] = zeros\n"
    "param o : f32[3] = ones\n"
    "param v : f32[2, 2] = [[1, 2], [3.5, -4]]\n"
    "param fl : f32[2, 3] = [1, 2, 3, 4, 5, 0.125]\n"
    "param s : f32 = 0.25\n"
    "param d : f64[4, 2] = uniform\n"
    "param dflt : f32[3, 2]\n"
    "const c : f32[2] = [1, 2]\n"
    "const ci : i32[2, 2] = [[1, 2], [3, 4]]\n"
    "const k = 3\n"
    "const cb : bool[3] = [1, 0, 1]\n"
    "const half : f64[2, 2] = 0.5\n"
    "flat = reshape(x, [-1, 784])\n"
    "logits = flat @ w + b\n"
    "p = softmax(logits, axis=-1)\n"
    "lp = log_softmax(logits)\n"
    "ce = softmax_cross_entropy(logits, y)\n"
    "oh = one_hot(y, 10)\n"
    "ce2 = softmax_cross_entropy(logits, oh)\n"
    "sce = sigmoid_cross_entropy(logits, oh)\n"
    "e = mse(p, oh)\n"
    "sl = img[:, 0:28:2, ::-1, 0]\n"
    "rev = img[::-1]\n"
    "mid = img[-1, 2:-2, 5, 1:3]\n"
    "col = x[:, 3]\n"
    "ga = gather(w, y)\n"
    "sa = scatter_add(ga, y, depth=784)\n"
    "tr = transpose(img, perm=[0, 3, 1, 2])\n"
    "mt = transpose(m)\n"
    "cc = concat(img, img, axis=-1)\n"
    "c2 = concat(flat, flat, axis=1)\n"
    "bt = broadcast_to(c, [3, 2])\n"
    "bb = broadcast_to(b, [batch, 10])\n"
    "ed = expand_dims(m, 0)\n"
    "sq = squeeze(ed, axis=0)\n"
    "fx = flatten(img)\n"
    "back = reshape(reshape(x, [-1]), [batch, 28, 28])\n"
    "cl = clip(p, 0.001, 0.999)\n"
    "cf = cast(y, f32)\n"
    "wh = where(logits > 0, logits, 0.5 * logits)\n"
    "mx = max(logits, axis=1, keepdims=true)\n"
    "mn = min(nr, axis=[0, 1])\n"
    "am = argmax(logits, axis=-1)\n"
    "an = argmin(nr, axis=0, keepdims=true)\n"
    "mm = matmul(m, mt) + half[0, 0]\n"
    "ta = matmul(d, d, transpose_a=true)\n"
    "tb = matmul(d, d, transpose_b=true)\n"
    "nd = n @ transpose(n)\n"
    "ns = sum(n == 3)\n"
    "ck = ci * k\n"
    "cbb = where(cb, [1.5, 2, 3], 0)\n"
    "vec = t1 * t2 + z - o\n"
    "red = sum(he, axis=[0, 1]) + sum(hu) + mean(ln) + mean(lu, axis=0, keepdims=true)\n"
    "loss = mean(ce) + mean(ce2) + mean(sce) + mean(e) + sum(vec) + sum(v @ v)"
    " + sum(fl ** 2) + s * 3 + sum(u / 255) + sum(red * gu) + sum(dflt)\n"
    "output p\noutput lp\noutput sl\noutput rev\noutput mid\noutput col\n"
    "output tr\noutput cc\noutput c2\noutput bt\noutput bb\noutput sq\n"
    "output fx\noutput back\noutput cl\noutput cf\noutput wh\noutput mx\n"
    "output mn\noutput an\noutput mm\noutput ta\noutput tb\noutput nd\n"
    "output ck\noutput cbb\noutput ns\noutput sa\n"
    "metric acc = mean(am == y)\n"
    "train loss with adam(lr=0.0003, beta1=0.85, beta2=0.995, eps=1e-8)\n";

/* Every elementwise op and comparison; outputs bound to other names and to
 * a leaf. */
static const char elementwise[] =
    "input a : f32[batch, 4]\n"
    "input q : f32[4]\n"
    "un = -a + abs(a) + square(a) + relu(a) + sigmoid(a) + tanh(a) + exp(a)"
    " + log(a) + sqrt(a)\n"
    "bi = (a - q) * (a / q) + a ** 2 + pow(a, q) + maximum(a, q) + minimum(a, 0)\n"
    "c1 = a == q\nc2 = a != q\nc3 = a < q\nc4 = a <= q\nc5 = a > q\nc6 = a >= q\n"
    "cnt = sum(c1) + sum(c2) + sum(c3) + sum(c4) + sum(c6)\n"
    "output un\noutput bi\noutput alias = un\noutput inp = q\noutput cnt\n"
    "metric frac = mean(c5)\n";

/* A user name with the dump's temporary prefix moves the prefix. */
static const char temp_names[] =
    "input _t1 : f32[3]\n_t3 = _t1 * 2 + 1\ny = relu(_t3 - 1)\noutput y\n";

static const char opt_sgd[] =
    "param w : f32[2] = [1, 2]\nloss = sum(w * w)\n"
    "train loss with sgd(lr=0.1, momentum=0.9, nesterov=true)\n";
static const char opt_rmsprop[] =
    "param w : f32[2] = [1, 2]\nloss = sum(w * w)\n"
    "train loss with rmsprop(lr=0.01, rho=0.8, momentum=0.5, eps=1e-6, centered=true, clipnorm=5)\n";
static const char opt_adagrad[] =
    "param w : f32[2] = [1, 2]\nloss = sum(w * w)\n"
    "train loss with adagrad(lr=0.5, initial_accumulator=0.2, eps=1e-5, clipvalue=0.5, global_clipnorm=2)\n";

static int cmp_values(const char *what, int id, const double *a, const double *b,
                      int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!near(a[i], b[i], 1e-12)) {
      print_error("node %d: %s[%lld] %.17g vs %.17g\n", id, what, (long long)i, a[i], b[i]);
      return 1;
    }
  return 0;
}

/* Compares g1 (original) with g2 (re-parsed from g1's nn dump) node by node;
 * returns the number of differences, each printed. */
static int compare_graphs(const Graph *g1, const Graph *g2) {
  int bad = 0;
  if (g1->nnodes != g2->nnodes) {
    print_error("node count %d vs %d\n", g1->nnodes, g2->nnodes);
    return 1;
  }
  const unsigned roles = N_INPUT | N_PARAM | N_OUTPUT | N_LOSS | N_METRIC;
  for (int i = 0; i < g1->nnodes; i++) {
    const Node *a = g1->nodes[i], *b = g2->nodes[i];
    char s1[SHAPE_STR_MAX], s2[SHAPE_STR_MAX];
    shape_str(g1, &a->shape, s1, sizeof s1);
    shape_str(g2, &b->shape, s2, sizeof s2);
    bool same = a->op == b->op && a->dtype == b->dtype && !strcmp(s1, s2) &&
                (a->flags & roles) == (b->flags & roles) && a->nsrc == b->nsrc &&
                (!a->name || (b->name && !strcmp(a->name, b->name)));
    for (int k = 0; same && k < a->nsrc; k++) same = a->src[k]->id == b->src[k]->id;
    if (!same) {
      print_error("node %d: %s %s%s '%s' vs %s %s%s '%s'\n", i, op_info[a->op].name,
                  dtype_names[a->dtype], s1, a->name ? a->name : "", op_info[b->op].name,
                  dtype_names[b->dtype], s2, b->name ? b->name : "");
      bad++;
      continue;
    }
    int64_t count = shape_static_count(&a->shape);
    if (a->op == OP_PARAM) {
      const Init *x = &a->a.init, *y = &b->a.init;
      if (x->kind != y->kind || !near(x->a, y->a, 1e-12) || !near(x->b, y->b, 1e-12)) {
        print_error("node %d: init %s(%g, %g) vs %s(%g, %g)\n", i, init_names[x->kind],
                    x->a, x->b, init_names[y->kind], y->a, y->b);
        bad++;
      }
      if (x->kind == INIT_VALUES && y->kind == INIT_VALUES)
        bad += cmp_values("value", i, a->a.values, b->a.values, count);
    }
    if (a->op == OP_CONST) bad += cmp_values("const", i, a->a.values, b->a.values, count);
  }
  bool same_bindings = g1->noutputs == g2->noutputs && g1->nmetrics == g2->nmetrics;
  for (int i = 0; same_bindings && i < g1->noutputs + g1->nmetrics; i++) {
    const Binding *x = i < g1->noutputs ? &g1->outputs[i] : &g1->metrics[i - g1->noutputs];
    const Binding *y = i < g2->noutputs ? &g2->outputs[i] : &g2->metrics[i - g2->noutputs];
    same_bindings = !strcmp(x->name, y->name) && x->node->id == y->node->id;
  }
  if (!same_bindings) print_error("outputs or metrics differ\n"), bad++;
  if (g1->nsteps != g2->nsteps ||
      (g1->nsteps && g1->steps[0].loss->id != g2->steps[0].loss->id)) {
    print_error("train statement differs\n");
    bad++;
  }
  if (g1->nsteps) {
    const Optimizer *x = &g1->steps[0].opt, *y = &g2->steps[0].opt;
    if (x->kind != y->kind || x->lr != y->lr || x->momentum != y->momentum ||
        x->rho != y->rho || x->eps != y->eps || x->beta1 != y->beta1 ||
        x->beta2 != y->beta2 || x->initial_accumulator != y->initial_accumulator ||
        x->nesterov != y->nesterov || x->centered != y->centered) {
      print_error("optimizer settings differ\n");
      bad++;
    }
  }
  return bad;
}

/* Dump as nn, parse that, dump again: the same text and the same graph.
 * Returns the number of problems (printed). */
static int roundtrip(const char *name, const char *src, size_t len) {
  Compilation *c1 = compile_source(name, src, len);
  assert_non_null(c1);
  if (!c1->graph || c1->diags.warnings) {
    print_error("%s does not compile cleanly:\n", name);
    print_diags(c1);
    compilation_free(c1);
    return 1;
  }
  char *t1 = dump_str(c1->graph, DUMP_NN, false);
  Compilation *c2 = compile_source(name, t1, strlen(t1));   /* same name, same header */
  assert_non_null(c2);
  int bad = 0;
  char *t2 = NULL;
  if (!c2->graph || c2->diags.warnings) {
    print_error("%s: the nn dump does not compile cleanly:\n%s", name, t1);
    print_diags(c2);
    bad = 1;
  } else {
    t2 = dump_str(c2->graph, DUMP_NN, false);
    if (strcmp(t1, t2)) {
      print_error("%s: the nn dump of the nn dump differs\n--- first\n%s--- second\n%s",
                  name, t1, t2);
      bad++;
    }
    int diff = compare_graphs(c1->graph, c2->graph);
    if (diff) print_error("%s: %d differences after the round trip\n", name, diff);
    bad += diff;
  }
  free(t1);
  free(t2);
  compilation_free(c1);
  compilation_free(c2);
  return bad;
}

static void test_roundtrip_models(void **state) {
  (void)state;
  char names[MAX_MODELS][256];
  int n = list_models(names), bad = 0;
  for (int i = 0; i < n; i++) {
    size_t len;
    char *text = read_model(names[i], &len);
    bad += roundtrip(names[i], text, len);
    free(text);
  }
  assert_int_equal(bad, 0);
}

static void test_roundtrip_inline(void **state) {
  (void)state;
  static const struct { const char *name, *src; } cases[] = {
      {"every_op.nn", every_op},       {"elementwise.nn", elementwise},
      {"temp_names.nn", temp_names},   {"mlp5.nn", MLP5},
      {"fc4.nn", FC4},                 {"opt_sgd.nn", opt_sgd},
      {"opt_rmsprop.nn", opt_rmsprop}, {"opt_adagrad.nn", opt_adagrad},
  };
  int bad = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    bad += roundtrip(cases[i].name, cases[i].src, strlen(cases[i].src));
  assert_int_equal(bad, 0);
  /* the dump spells the temporaries around the user's _t names */
  Compilation *c = compile_str(temp_names);
  assert_non_null(c->graph);
  char *t = dump_str(c->graph, DUMP_NN, false);
  compilation_free(c);
  bool ok = strstr(t, "\n_t_2 = mul(_t1, _t_1)") != NULL;
  if (!ok) print_error("%s", t);
  free(t);
  assert_true(ok);
}

/* bug: a rank-0 param given as a one-element list is dumped as "= 3", which
 * reads back as constant(3): the second dump says "= constant(3)". */
static void test_roundtrip_scalar_param_values(void **state) {
  (void)state;
  static const char src[] = "param w : f32 = [3]\nloss = w * w\noutput loss\n";
  assert_int_equal(roundtrip("scalar_values.nn", src, strlen(src)), 0);
}

/* ------------------------------------------------------------ (4)(5) dumps */

static void test_text_dump_mnist(void **state) {
  (void)state;
  Compilation *c = compile_model_named("mnist_mlp.nn");
  assert_non_null(c->graph);
  char *t = dump_str(c->graph, DUMP_TEXT, false);
  compilation_free(c);
  static const char *const lines[] = {
      "# gradc graph 'mnist_mlp', stage parse: 17 nodes, symbolic dims: batch\n",
      "%0 = input x                                 : f32[batch,784]       @3:8\n",
      "%1 = input y                                 : i32[batch]           @4:8\n",
      "%2 = param W1 init=glorot_uniform            : f32[784,512]         @6:8\n",
      "%3 = param b1 init=zeros                     : f32[512]             @7:8\n",
      "%6 = matmul %0, %2                           : f32[batch,512]       @11:17\n",
      "%7 = add %6, %3                              : f32[batch,512]       @11:22\n",
      "%8 = relu %7                                 : f32[batch,512]       @11:10 h\n",
      "%10 = add %9, %5                             : f32[batch,10]        @12:17 logits\n",
      "%11 = softmax %10 axis=1                     : f32[batch,10]        @13:16 probs "
      "[output]\n",
      "%12 = softmax_cross_entropy %10, %1          : f32[batch]           @14:15\n",
      "%13 = mean %12 axis=[0]                      : f32[]                @14:10 loss "
      "[loss]\n",
      "%14 = argmax %10 axis=1                      : i32[batch]           @15:24\n",
      "%15 = equal %14, %1                          : bool[batch]          @15:48\n",
      "%16 = mean %15 axis=[0]                      : f32[]                @15:19 accuracy "
      "[metric]\n",
      "output probs = %11\n",
      "metric accuracy = %16\n",
      "train %13 with rmsprop(lr=0.001, rho=0.9, momentum=0, eps=1e-07, centered=false)\n",
  };
  int missing = 0;
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
    if (!strstr(t, lines[i])) print_error("dump lacks: %s", lines[i]), missing++;
  if (missing) print_error("--- dump\n%s", t);
  /* one line per node, in id order */
  int nodes = 0;
  for (const char *p = t; (p = strchr(p, '\n')) && p[1]; p++) nodes += p[1] == '%';
  free(t);
  assert_int_equal(missing, 0);
  assert_int_equal(nodes, 17);
}

static int count_of(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static void test_dot_dump(void **state) {
  (void)state;
  static const char *const files[] = {"mnist_mlp.nn", "himmelblau.nn", "mlp3.nn"};
  for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
    Compilation *c = compile_model_named(files[f]);
    assert_non_null(c->graph);
    const Graph *g = c->graph;
    int edges = 0, nnodes = g->nnodes;
    for (int i = 0; i < g->nnodes; i++) edges += g->nodes[i]->nsrc;
    char *t = dump_str(g, DUMP_DOT, false);
    compilation_free(c);
    int arrows = count_of(t, "->"), decls = count_of(t, " [shape=");
    bool head = strncmp(t, "digraph ", 8) == 0;
    size_t len = strlen(t);
    bool tail = len >= 2 && strcmp(t + len - 2, "}\n") == 0;
    if (!head || !tail || arrows != edges || decls != nnodes)
      print_error("%s: %d edges, %d nodes\n%s", files[f], edges, nnodes, t);
    free(t);
    assert_true(head);
    assert_true(tail);
    assert_int_equal(arrows, edges);
    assert_int_equal(decls, nnodes);
    if (f == 0) assert_int_equal(edges, 17);
  }
}

static void test_summary_mnist(void **state) {
  (void)state;
  Compilation *c = compile_model_named("mnist_mlp.nn");
  assert_non_null(c->graph);
  char *t = dump_str(c->graph, DUMP_TEXT, true);
  compilation_free(c);
  static const char *const lines[] = {
      "Model: \"mnist_mlp\"\n",
      " W1                             (784, 512)         401,408      glorot_uniform\n",
      " b1                             (512,)             512          zeros\n",
      " W2                             (512, 10)          5,120        glorot_uniform\n",
      " b2                             (10,)              10           zeros\n",
      "Total params: 407,050\n",
      "Trainable params: 407,050\n",
      "Non-trainable params: 0\n",
      "Input:  x            f32[batch,784]\n",
      "Output: probs        f32[batch,10]\n",
      "Metric: accuracy\n",
      "Train:  loss with rmsprop(lr=0.001)\n",
  };
  int missing = 0;
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
    if (!strstr(t, lines[i])) print_error("summary lacks: %s", lines[i]), missing++;
  if (missing) print_error("--- summary\n%s", t);
  free(t);
  assert_int_equal(missing, 0);
}

/* ------------------------------------------------------------ (6) optimizers */

typedef struct OptCase {
  const char *train;       /* what follows "train loss with " */
  OptKind kind;
  double lr, rho, eps, beta1, beta2, momentum, acc;
  bool nesterov, centered;
} OptCase;

static void test_optimizers(void **state) {
  (void)state;
  static const OptCase cases[] = {
      /* Keras defaults, with and without parentheses */
      {"sgd", OPT_SGD, 0.01, 0, 1e-7, 0, 0, 0, 0, false, false},
      {"sgd()", OPT_SGD, 0.01, 0, 1e-7, 0, 0, 0, 0, false, false},
      {"rmsprop", OPT_RMSPROP, 0.001, 0.9, 1e-7, 0, 0, 0, 0, false, false},
      {"adam()", OPT_ADAM, 0.001, 0, 1e-7, 0.9, 0.999, 0, 0, false, false},
      {"adagrad", OPT_ADAGRAD, 0.001, 0, 1e-7, 0, 0, 0, 0.1, false, false},
      /* every setting, and the Keras spellings */
      {"sgd(lr=0.1, momentum=0.9, nesterov=true)", OPT_SGD, 0.1, 0, 1e-7, 0, 0, 0.9, 0,
       true, false},
      {"sgd(0.5)", OPT_SGD, 0.5, 0, 1e-7, 0, 0, 0, 0, false, false},
      {"sgd(learning_rate=0.2, nesterov=True)", OPT_SGD, 0.2, 0, 1e-7, 0, 0, 0, 0, true,
       false},
      {"rmsprop(lr=0.001, rho=0.9, eps=1e-7)", OPT_RMSPROP, 0.001, 0.9, 1e-7, 0, 0, 0, 0,
       false, false},
      {"rmsprop(0.01, rho=0.5, momentum=0.25, epsilon=1e-3, centered=true)", OPT_RMSPROP,
       0.01, 0.5, 1e-3, 0, 0, 0.25, 0, false, true},
      {"adam(lr=0.01)", OPT_ADAM, 0.01, 0, 1e-7, 0.9, 0.999, 0, 0, false, false},
      {"adam(learning_rate=0.002, beta_1=0.8, beta_2=0.99, epsilon=1e-8)", OPT_ADAM,
       0.002, 0, 1e-8, 0.8, 0.99, 0, 0, false, false},
      {"adam(beta1=0.5, beta2=0.9, eps=0)", OPT_ADAM, 0.001, 0, 0, 0.5, 0.9, 0, 0, false,
       false},
      {"adagrad(lr=0.1, initial_accumulator=0.5, eps=1e-6)", OPT_ADAGRAD, 0.1, 0, 1e-6, 0,
       0, 0, 0.5, false, false},
      {"adagrad(initial_accumulator_value=0.25)", OPT_ADAGRAD, 0.001, 0, 1e-7, 0, 0, 0,
       0.25, false, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const OptCase *k = &cases[i];
    char src[256];
    snprintf(src, sizeof src, "param w : f32 = 1\nloss = w * w\ntrain loss with %s\n",
             k->train);
    Compilation *c = compile_str(src);
    if (!c->graph) print_diags(c);
    Optimizer o = c->graph ? c->graph->steps[0].opt : (Optimizer){0};
    bool has_train = c->graph && (c->graph->nsteps > 0);
    compilation_free(c);
    bool ok = has_train && o.kind == k->kind && near(o.lr, k->lr, 1e-15) &&
              near(o.rho, k->rho, 1e-15) && near(o.eps, k->eps, 1e-15) &&
              near(o.beta1, k->beta1, 1e-15) && near(o.beta2, k->beta2, 1e-15) &&
              near(o.momentum, k->momentum, 1e-15) &&
              near(o.initial_accumulator, k->acc, 1e-15) && o.nesterov == k->nesterov &&
              o.centered == k->centered;
    if (!ok)
      print_error("%s: got %s lr=%g rho=%g eps=%g beta1=%g beta2=%g momentum=%g "
                  "initial_accumulator=%g nesterov=%d centered=%d\n",
                  k->train, opt_info[o.kind].name, o.lr, o.rho, o.eps, o.beta1, o.beta2,
                  o.momentum, o.initial_accumulator, o.nesterov, o.centered);
    assert_true(ok);
  }
  /* the model files' settings */
  static const struct { const char *file, *loss; OptKind kind; double lr; } files[] = {
      {"mnist_mlp.nn", "loss", OPT_RMSPROP, 0.001},
      {"mlp3.nn", "loss", OPT_ADAM, 0.001},
      {"himmelblau.nn", "f", OPT_SGD, 0.01},
      {"linear_regression.nn", "loss", OPT_SGD, 0.0001},
  };
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    Compilation *c = compile_model_named(files[i].file);
    assert_non_null(c->graph);
    Optimizer o = c->graph->steps[0].opt;
    const char *loss = c->graph->nsteps ? c->graph->steps[0].loss->name : NULL;
    char lname[32];
    snprintf(lname, sizeof lname, "%s", loss ? loss : "(none)");
    compilation_free(c);
    assert_int_equal(o.kind, files[i].kind);
    assert_near(o.lr, files[i].lr, 1e-15);
    assert_string_equal(lname, files[i].loss);
  }
  /* out-of-range settings are errors */
  static const ShapeCase bad[] = {
      {"param w : f32 = 1\nloss = w * w\ntrain loss with adam(beta_1=1.0)", NULL,
       "error: adam: momentum, rho and betas must lie in [0, 1)"},
      {"param w : f32 = 1\nloss = w * w\ntrain loss with sgd(lr=0)", NULL,
       "error: sgd: the learning rate must be positive, got 0"},
      {"param w : f32 = 1\nloss = w * w\ntrain loss with adam(rho=0.9)", NULL,
       "error: adam has no argument 'rho'"},
      {"param w : f32 = 1\nloss = w * w\ntrain loss with adamw", NULL,
       "error: unknown optimizer 'adamw'; did you mean 'adam'?"},
  };
  CHECK_CASES(bad);
}

/* ------------------------------------------------------------ (7) layout */

static void test_comments_and_continuations(void **state) {
  (void)state;
  static const char src[] =
      "# leading comment\n"
      "\n"
      "   \n"
      "input x : f32[batch, 4]   # trailing comment\n"
      "\t\n"
      "param w : f32[4, 2] = uniform(\n"
      "    -1,     # low\n"
      "    1)      # high\n"
      "h = dense(x,\n"
      "          3,   # units\n"
      "\n"
      "          activation=relu)\n"
      "k = h @ [[1, 2],\n"
      "         [3, 4],\n"
      "         [5, 6]]\n"
      "y = x @ w + k  # done\n"
      "output y # the end, no newline";
  Compilation *c = compile_str(src);
  if (!c->graph) print_diags(c);
  assert_non_null(c->graph);
  const Graph *g = c->graph;
  char ty[64];
  const Node *y = node_named(g, "y"), *w = node_named(g, "w"), *h = node_named(g, "h");
  assert_non_null(y);
  assert_non_null(w);
  assert_non_null(h);
  assert_string_equal(type_str(g, y, ty, sizeof ty), "f32[batch,2]");
  assert_string_equal(type_str(g, h, ty, sizeof ty), "f32[batch,3]");
  assert_int_equal(w->a.init.kind, INIT_UNIFORM);
  assert_near(w->a.init.a, -1, 0);
  assert_near(w->a.init.b, 1, 0);
  /* line numbers count the continuation lines; columns are 1-based */
  assert_int_equal(w->loc.line, 6);
  assert_int_equal(w->loc.col, 7);
  assert_int_equal(h->op, OP_RELU);
  assert_int_equal(h->loc.line, 12);
  assert_int_equal(h->loc.col, 22);
  assert_int_equal(y->loc.line, 16);
  assert_int_equal(y->loc.col, 11);
  assert_int_equal(graph_param_count(g), 8 + 12 + 3);
  assert_int_equal(g->noutputs, 1);
  assert_int_equal(c->diags.errors + c->diags.warnings, 0);
  int nnodes = g->nnodes;
  compilation_free(c);

  /* CRLF line ends give the same graph */
  char crlf[sizeof src * 2];
  size_t o = 0;
  for (const char *p = src; *p; p++) {
    if (*p == '\n') crlf[o++] = '\r';
    crlf[o++] = *p;
  }
  crlf[o] = 0;
  c = compile_str(crlf);
  if (!c->graph) print_diags(c);
  assert_non_null(c->graph);
  assert_int_equal(c->graph->nnodes, nnodes);
  y = node_named(c->graph, "y");
  assert_non_null(y);
  assert_string_equal(type_str(c->graph, y, ty, sizeof ty), "f32[batch,2]");
  assert_int_equal(y->loc.line, 16);
  compilation_free(c);

  /* an empty file and a file of comments are empty graphs, not errors */
  static const char *const empty[] = {"", "\n\n", "# only a comment", "# a\n\n# b\n"};
  for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
    c = compile_str(empty[i]);
    assert_non_null(c->graph);
    int n = c->graph->nnodes, diags = c->diags.errors + c->diags.warnings;
    compilation_free(c);
    assert_int_equal(n, 0);
    assert_int_equal(diags, 0);
  }
}

/* ------------------------------------------------------------ (8) warnings */

static void test_unused_param_warning(void **state) {
  (void)state;
  static const char src[] =
      "input x : f32[4]\n"
      "param w : f32[4] = zeros\n"
      "param v : f32[4]\n"
      "param o : f32[2]\n"
      "y = x * v\n"
      "output y\n"
      "output o\n";
  Compilation *c = compile_str(src);
  assert_non_null(c->graph);
  assert_int_equal(c->diags.errors, 0);
  assert_int_equal(c->diags.warnings, 1);
  const Diag *d = c->diags.first;
  assert_non_null(d);
  assert_null(d->next);
  assert_int_equal(d->level, DIAG_WARNING);
  assert_string_equal(d->msg, "parameter 'w' is never used");
  assert_int_equal(d->loc.line, 2);
  assert_int_equal(d->loc.col, 7);
  assert_int_equal(d->loc.len, 1);
  /* the graph is whole: w is still a parameter */
  assert_int_equal(c->graph->nnodes, 5);
  assert_int_equal(graph_param_count(c->graph), 10);
  compilation_free(c);

  /* a param used only by a metric or the loss is used */
  static const char used[] =
      "param w : f32 = 1\nparam m : f32 = 2\nloss = w * w\nmetric mm = m\n"
      "train loss with sgd\n";
  c = compile_str(used);
  assert_non_null(c->graph);
  int warnings = c->diags.warnings;
  compilation_free(c);
  assert_int_equal(warnings, 0);

  /* one warning per unused param, in declaration order */
  c = compile_str("param a : f32\nparam b : f32[2]\ninput x : f32\noutput x\n");
  assert_non_null(c->graph);
  assert_int_equal(c->diags.warnings, 2);
  assert_string_equal(c->diags.first->msg, "parameter 'a' is never used");
  assert_string_equal(c->diags.first->next->msg, "parameter 'b' is never used");
  compilation_free(c);
}


/* ------------------------------------------------------------ (9) functions */

/* How many nodes of op read x. */
static int readers(const Graph *g, OpKind op, const Node *x) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nsrc; k++)
      n += g->nodes[i]->op == op && g->nodes[i]->src[k] == x;
  return n;
}

static int count_params(const Graph *g) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == OP_PARAM;
  return n;
}

#define CELL                                                                   \
  "input x1 : f32[batch, 4]\ninput x2 : f32[batch, 4]\ninput h0 : f32[batch, 3]\n" \
  "def cell(x, h) {\n"                                                         \
  "  param W : f32[4, 3] = glorot_uniform\n"                                   \
  "  param U : f32[3, 3] = glorot_normal   # recurrent\n"                      \
  "  param b : f32[3] = zeros\n"                                               \
  "  out = tanh(x @ W + h @ U + b)\n"                                          \
  "  return out, out\n"                                                        \
  "}\n"                                                                        \
  "o1, h1 = cell(x1, h0)\n"                                                    \
  "o2, h2 = cell(x2, h1)\n"                                                    \
  "p1, q1 = cell(x1, h0, name=rnn1)\n"                                         \
  "s = mean(o2) + mean(p1) + mean(h2)\noutput s\n"

/* Two calls of one instance share its parameters (the same nodes); name=
 * makes another instance; a tuple assignment binds each result. */
static void test_def_shared_params(void **state) {
  (void)state;
  Compilation *c = compile_str(CELL);
  if (!c->graph) print_diags(c);
  assert_non_null(c->graph);
  assert_int_equal(c->diags.warnings, 0);
  const Graph *g = c->graph;
  assert_int_equal(count_params(g), 6);
  const Node *w = node_named(g, "cell.W"), *u = node_named(g, "cell.U"), *r = node_named(g, "rnn1.W");
  assert_non_null(w);
  assert_non_null(u);
  assert_non_null(r);
  assert_int_equal(w->op, OP_PARAM);
  assert_int_equal(u->a.init.kind, INIT_GLOROT_NORMAL);
  assert_int_equal(readers(g, OP_MATMUL, w), 2);      /* x1 @ W and x2 @ W */
  assert_int_equal(readers(g, OP_MATMUL, u), 2);
  assert_int_equal(readers(g, OP_MATMUL, r), 1);
  assert_int_equal(graph_param_count(g), 48);
  /* o1 and h1 are one node (return out, out); the second call reads it */
  const Node *o1 = node_named(g, "o1"), *o2 = node_named(g, "o2");
  assert_non_null(o1);
  assert_non_null(o2);
  assert_int_equal(o1->op, OP_TANH);
  assert_int_equal(readers(g, OP_MATMUL, o1), 1);
  assert_null(node_named(g, "h1"));
  assert_null(node_named(g, "out"));                       /* body names stay local */
  compilation_free(c);
}

/* Layer sugar in a body names its parameters under the instance and a
 * second call reuses them (no dense_2); a def may call a def, whose
 * instance is then prefixed by the caller's; instance parameters are
 * top-level names after the call. */
static void test_def_layers_and_nesting(void **state) {
  (void)state;
  Compilation *c = compile_str(
      "input a : f32[batch, 6]\ninput b : f32[batch, 6]\n"
      "def tower(x) {\n  h = dense(x, 8, activation=tanh)\n  return dense(h, 4)\n}\n"
      "def pair(x, y) {\n  return tower(x) - tower(y)\n}\n"
      "d1 = pair(a, b)\nd2 = pair(b, a, name=other)\nt = tower(a)\n"
      "l2 = sum(square(tower.h.kernel))\n"
      "s = mean(d1) + mean(d2) + mean(t) + l2\noutput s\n");
  if (!c->graph) print_diags(c);
  assert_non_null(c->graph);
  const Graph *g = c->graph;
  static const char *const names[] = {
      "pair.tower.h.kernel", "pair.tower.h.bias", "pair.tower.dense_1.kernel",
      "pair.tower.dense_1.bias", "other.tower.h.kernel", "other.tower.dense_1.bias",
      "tower.h.kernel", "tower.dense_1.bias"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!node_named(g, names[i])) fail_msg("no parameter %s", names[i]);
  assert_int_equal(count_params(g), 12);
  assert_int_equal(readers(g, OP_MATMUL, node_named(g, "pair.tower.h.kernel")), 2);
  assert_int_equal(readers(g, OP_SQUARE, node_named(g, "tower.h.kernel")), 1);
  compilation_free(c);
}

/* Arguments may differ in shape between calls where the body allows it;
 * a body reads top-level names defined before the def, and its own names
 * shadow them. */
static void test_def_shapes_and_scope(void **state) {
  (void)state;
  Compilation *c = compile_str(
      "input x : f32[2, 4]\ninput y : f32[3, 5]\nconst k = 2.0\n"
      "def scale(x) {\n  y = x * k\n  return y + 1\n}\n"
      "a = scale(x)\nb = scale(y)\nc = scale(3)\n"
      "output a\noutput b\noutput c\n");
  if (!c->graph) print_diags(c);
  assert_non_null(c->graph);
  const Graph *g = c->graph;
  char buf[SHAPE_STR_MAX];
  assert_string_equal(shape_str(g, &node_named(g, "a")->shape, buf, sizeof buf), "[2,4]");
  assert_string_equal(shape_str(g, &node_named(g, "b")->shape, buf, sizeof buf), "[3,5]");
  assert_int_equal(node_named(g, "c")->shape.rank, 0);
  compilation_free(c);
}

/* The expanded model reads back to the same graph (a def is not dumped:
 * the dump is the model after instantiation). */
static void test_def_roundtrip(void **state) {
  (void)state;
  assert_int_equal(roundtrip("cell.nn", CELL, strlen(CELL)), 0);
  Compilation *c = compile_str(CELL);
  assert_non_null(c->graph);
  char *t = dump_str(c->graph, DUMP_NN, false);
  compilation_free(c);
  bool ok = strstr(t, "\nparam cell.W : f32[4,3] = glorot_uniform\n") &&
            strstr(t, "\nparam rnn1.b : f32[3] = zeros\n") && !strstr(t, "def ");
  if (!ok) print_error("%s", t);
  free(t);
  assert_true(ok);
}

/* A def that is never called is reported (its body is not checked). */
static void test_def_never_called(void **state) {
  (void)state;
  Compilation *c = compile_str("input x : f32\ndef f(a) {\n  return a + nothing\n}\noutput x\n");
  assert_non_null(c->graph);
  assert_int_equal(c->diags.warnings, 1);
  assert_string_equal(c->diags.first->msg,
                      "function 'f' is never called (its body is checked only by a call)");
  assert_int_equal(c->diags.first->loc.line, 2);
  assert_int_equal(c->diags.first->loc.col, 5);
  compilation_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_model_compiles),
      cmocka_unit_test(test_param_counts),
      cmocka_unit_test(test_layer_summaries),
      cmocka_unit_test(test_embedding_summary),
      cmocka_unit_test(test_roundtrip_models),
      cmocka_unit_test(test_roundtrip_inline),
      cmocka_unit_test(test_roundtrip_scalar_param_values),
      cmocka_unit_test(test_text_dump_mnist),
      cmocka_unit_test(test_dot_dump),
      cmocka_unit_test(test_summary_mnist),
      cmocka_unit_test(test_optimizers),
      cmocka_unit_test(test_comments_and_continuations),
      cmocka_unit_test(test_unused_param_warning),
      cmocka_unit_test(test_def_shared_params),
      cmocka_unit_test(test_def_layers_and_nesting),
      cmocka_unit_test(test_def_shapes_and_scope),
      cmocka_unit_test(test_def_roundtrip),
      cmocka_unit_test(test_def_never_called),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
