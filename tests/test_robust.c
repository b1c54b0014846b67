/*
 * test_robust.c - hostile input: mutated models, random bytes, allocation
 * failure and size limits.
 *
 * Whatever the input, a compilation must come back (no crash, no sanitizer
 * report, no leak) in a consistent state:
 *   - a graph exactly when there is no error;
 *   - every diagnostic that has a source lies inside it, and its line and
 *     column agree with its byte offset;
 *   - every diagnostic formats to printable text;
 *   - a graph dumps in every format, and its nn dump compiles again to the
 *     same outputs and the same nn text;
 *   - a model that parses also goes through autodiff to a graph or one error.
 * Then: every allocation failing in turn (compile_fail_after), and the limits
 * of compiler.h (file size, elements, identifier length, list literals) and
 * shape products that overflow int64, each refused as an error.
 * Tests marked "bug:" failed when written; see the comment there.
 * The fuzz loops use a fixed-seed xorshift generator, so a failure names the
 * iteration that reproduces it; they are bounded to a few seconds under
 * AddressSanitizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"

/* ------------------------------------------------------------ random */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void) {          /* xorshift64 (Marsaglia) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static size_t below(size_t n) { return n ? (size_t)(next_rand() % n) : 0; }

/* snprintf into a label; vsnprintf because GCC's truncation warning cannot
 * know how long a model path is. */
static void set_label(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_label(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, n, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------ models */

typedef struct Model {
  char path[256];
  char *text;
  size_t len;
} Model;

enum { MAX_MODELS = 64 };
static Model models[MAX_MODELS];
static int nmodels;

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (buf) buf[n < cap ? n : cap - 1] = 0;
  *len = n;
  return buf;
}

static int by_path(const void *a, const void *b) {
  return strcmp(((const Model *)a)->path, ((const Model *)b)->path);
}

static int load_models(void **state) {
  (void)state;
  const char *root = getenv("GRADC_SOURCE_DIR");
  char dir[200];
  snprintf(dir, sizeof dir, "%s/models", root && *root ? root : ".");
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cannot open %s\n", dir);
    return -1;
  }
  for (struct dirent *e; (e = readdir(d)) && nmodels < MAX_MODELS;) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 3, ".nn") != 0) continue;
    Model *m = &models[nmodels];
    set_label(m->path, sizeof m->path, "%s/%s", dir, e->d_name);
    m->text = read_all(m->path, &m->len);
    if (m->text) nmodels++;
  }
  closedir(d);
  qsort(models, (size_t)nmodels, sizeof *models, by_path);   /* deterministic */
  return nmodels > 0 ? 0 : -1;
}

static int free_models(void **state) {
  (void)state;
  for (int i = 0; i < nmodels; i++) free(models[i].text);
  return 0;
}

/* ------------------------------------------------------------ invariants */

static char *format_diag(const Diag *g) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_non_null(f);
  diag_format(f, g);
  assert_int_equal(fclose(f), 0);
  return buf;
}

/* Reports what was compiled when an invariant breaks, then fails. */
static _Noreturn void broken(const char *what, const char *label, const char *src,
                             size_t len) {
  fprintf(stderr, "%s: %s\n--- input (%zu bytes) ---\n", label, what, len);
  fwrite(src, 1, len > 2000 ? 2000 : len, stderr);
  fprintf(stderr, "\n---\n");
  fail_msg("%s: %s", label, what);
  abort();                  /* not reached: fail_msg longjmps */
}

static void check_diag(const Diag *g, const char *label, const char *src, size_t len) {
  if (!g->msg || !*g->msg) broken("diagnostic without a message", label, src, len);
  if (g->loc.src) {
    const Source *s = g->loc.src;
    if (g->loc.line < 1 || g->loc.col < 1 || g->loc.len < 1)
      broken("diagnostic with line, column or length below 1", label, src, len);
    if (g->loc.off > s->len) broken("diagnostic offset past the end", label, src, len);
    /* line and column must agree with the byte offset; a line ends in
     * \n, \r\n or a lone \r */
    int line = 1;
    size_t start = 0;
    for (size_t i = 0; i < g->loc.off; i++)
      if (s->text[i] == '\n' || (s->text[i] == '\r' && !(i + 1 < s->len && s->text[i + 1] == '\n')))
        line++, start = i + 1;
    if (line != g->loc.line || (size_t)g->loc.col != g->loc.off - start + 1) {
      char why[160];
      snprintf(why, sizeof why, "diagnostic at %d:%d but its offset %zu is %d:%zu: %s",
               g->loc.line, g->loc.col, g->loc.off, line, g->loc.off - start + 1, g->msg);
      broken(why, label, src, len);
    }
  }
  char *text = format_diag(g);
  for (const unsigned char *p = (const unsigned char *)text; *p; p++)
    if (!(*p == '\n' || *p == '\t' || (*p >= 32 && *p < 127))) {
      free(text);
      broken("formatted diagnostic has a non-printable byte", label, src, len);
    }
  if (g->loc.src && strncmp(text, g->loc.src->name, strlen(g->loc.src->name)) != 0) {
    free(text);
    broken("formatted diagnostic does not start with the file name", label, src, len);
  }
  free(text);
}

static void dump_to_memory(const Graph *g, DumpFormat f) {
  char *buf = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&buf, &n);
  assert_non_null(out);
  dump_graph(out, g, f, g->stage);
  if (f == DUMP_TEXT) dump_summary(out, g);
  assert_int_equal(fclose(out), 0);
  free(buf);
}

static long roundtrip_failures;

static char *dump_nn_text(const Graph *g) {
  char *buf = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&buf, &n);
  assert_non_null(out);
  dump_graph(out, g, DUMP_NN, "parse");
  assert_int_equal(fclose(out), 0);
  return buf;
}

/* The nn dump of a graph compiles again, to a graph with the same outputs and
 * metrics whose nn dump is the same text (QBE's printer emits what its parser
 * reads).  Returns false (after printing why) when it does not. */
static bool roundtrip_ok(const Graph *g, const char *label, const char *src,
                         size_t len) {
  char *first = dump_nn_text(g);
  char name[256];                /* the same stem, for the same header line */
  snprintf(name, sizeof name, "%s.nn", g->model_name);
  Compilation *again = compile_source(name, first, strlen(first));
  assert_non_null(again);
  const char *why = NULL;
  char *second = NULL;
  if (!again->graph) why = "the nn dump does not compile again";
  else if (again->graph->noutputs != g->noutputs || again->graph->nmetrics != g->nmetrics)
    why = "the nn dump loses outputs or metrics";
  else if (strcmp(first, second = dump_nn_text(again->graph)) != 0)
    why = "the nn dump of the nn dump differs";
  if (why && roundtrip_failures++ < 3) {
    fprintf(stderr, "%s: %s\n--- input ---\n%.*s\n--- dump ---\n%s", label, why,
            (int)len, src, first);
    if (second) fprintf(stderr, "--- dump of the dump ---\n%s", second);
    fprintf(stderr, "--- diagnostics ---\n");
    diag_print(stderr, &again->diags);
  }
  compilation_free(again);
  free(first);
  free(second);
  return why == NULL;
}

static void check_roundtrip(const Graph *g, const char *label, const char *src,
                            size_t len) {
  (void)roundtrip_ok(g, label, src, len);
}

/* The invariants every compilation of src must keep, whatever its stage. */
static bool check_compilation(const Compilation *c, const char *label, const char *src,
                              size_t len) {
  if (!c) broken("compile_model returned NULL", label, src, len);
  int errors = 0, warnings = 0;
  for (const Diag *g = c->diags.first; g; g = g->next) {
    if (g->level == DIAG_ERROR) errors++;
    if (g->level == DIAG_WARNING) warnings++;
    check_diag(g, label, src, len);
  }
  if (errors != c->diags.errors || warnings != c->diags.warnings)
    broken("error/warning counts disagree with the list", label, src, len);
  if ((c->graph != NULL) != (c->diags.errors == 0))
    broken(c->graph ? "graph despite errors" : "no graph and no error", label, src,
           len);
  if (c->diags.errors > 1) broken("more than one error", label, src, len);
  return c->graph != NULL;
}

static long grad_built, grad_total;       /* STAGE_GRAD results, for the log */

/* Compiles src and checks every invariant; returns whether a graph came back.
 * A model that parses is also taken through autodiff (STAGE_GRAD), which must
 * end in a graph or one diagnostic as well. */
static bool compile_checked(const char *label, const char *src, size_t len,
                            bool roundtrip) {
  Compilation *c = compile_source("fuzz.nn", src, len);
  bool ok = check_compilation(c, label, src, len);
  if (ok) {
    dump_to_memory(c->graph, DUMP_TEXT);
    dump_to_memory(c->graph, DUMP_DOT);
    dump_to_memory(c->graph, DUMP_NN);
    if (roundtrip) check_roundtrip(c->graph, label, src, len);
  }
  compilation_free(c);
  if (ok) {
    c = compile_model("fuzz.nn", src, len, STAGE_GRAD);
    grad_total++;
    if (check_compilation(c, label, src, len)) {
      grad_built++;
      dump_to_memory(c->graph, DUMP_TEXT);
      dump_to_memory(c->graph, DUMP_DOT);
    }
    compilation_free(c);
  }
  return ok;
}

static Compilation *compile_str(const char *src) {
  Compilation *c = compile_source("t.nn", src, strlen(src));
  assert_non_null(c);
  return c;
}

/* ------------------------------------------------------------ (1) mutations */

static const char *const dictionary[] = {
    "input", "param", "const", "output", "metric", "train", "with", "sgd", "adam",
    "rmsprop", "adagrad", "f32", "f64", "i32", "bool", "batch", "x", "y", "w",
    "relu", "softmax", "matmul", "dense", "reshape", "transpose", "concat", "sum",
    "mean", "argmax", "one_hot", "where", "cast", "squeeze", "expand_dims", "flatten",
    "broadcast_to", "clip", "softmax_cross_entropy", "mse", "glorot_uniform",
    "uniform", "normal", "truncated_normal", "constant", "zeros", "axis", "keepdims",
    "lr", "units", "activation", "None", "true", "(", ")", "[", "]", ",", "=", ":",
    "+", "-", "*", "/", "@", "**", "==", "!=", "<", "<=", ">", ">=", "#", "\n",
    "0", "1", "-1", "2", "1.5", "1e9", "1e-9", "0.0", "99999999999", "1099511627776",
    "1048577", ".5", "::", "[:, 0]", "[-1]", "[batch, -1]",
};

static void mutate(char *buf, size_t *len, size_t cap) {
  size_t n = *len;
  switch (below(7)) {
  case 0:                                  /* any byte */
    if (n) buf[below(n)] = (char)below(256);
    break;
  case 1:                                  /* a printable byte */
    if (n) buf[below(n)] = (char)(32 + below(95));
    break;
  case 2: {                                /* delete a run */
    if (!n) break;
    size_t at = below(n), k = 1 + below(8);
    if (at + k > n) k = n - at;
    memmove(buf + at, buf + at + k, n - at - k);
    *len = n - k;
    break;
  }
  case 3: case 4: {                        /* insert a token */
    const char *t = dictionary[below(sizeof dictionary / sizeof *dictionary)];
    char tok[64];
    snprintf(tok, sizeof tok, below(2) ? " %s " : "%s", t);
    size_t k = strlen(tok), at = below(n + 1);
    if (n + k >= cap) break;
    memmove(buf + at + k, buf + at, n - at);
    memcpy(buf + at, tok, k);
    *len = n + k;
    break;
  }
  case 5: {                                /* duplicate a run (e.g. a line) */
    if (!n) break;
    size_t at = below(n), k = 1 + below(40);
    if (at + k > n) k = n - at;
    size_t to = below(n + 1);
    if (n + k >= cap) break;
    char tmp[64];
    memcpy(tmp, buf + at, k);
    memmove(buf + to + k, buf + to, n - to);
    memcpy(buf + to, tmp, k);
    *len = n + k;
    break;
  }
  default:                                 /* truncate */
    if (n) *len = below(n);
    break;
  }
}

static void test_fuzz_mutations(void **state) {
  (void)state;
  /* about 6000 mutants in all, however many models there are */
  int per_model = nmodels < 20 ? 6000 / nmodels : 300;
  rng = 0x2545f4914f6cdd1du;
  roundtrip_failures = 0;
  long built = 0, total = 0;
  for (int m = 0; m < nmodels; m++) {
    size_t cap = models[m].len * 2 + 1024;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (int it = 0; it < per_model; it++) {
      memcpy(buf, models[m].text, models[m].len);
      size_t len = models[m].len;
      for (size_t k = 1 + below(4); k > 0; k--) mutate(buf, &len, cap);
      char label[320];
      set_label(label, sizeof label, "%s, mutation %d", models[m].path, it);
      built += compile_checked(label, buf, len, true);
      total++;
    }
    free(buf);
  }
  print_message("%ld of %ld mutants compiled\n", built, total);
  assert_true(built > 0 && built < total);  /* the mutations reach both sides */
  assert_int_equal(roundtrip_failures, 0);
}

/* Prefixes of the models: unterminated brackets, half tokens, EOF
 * everywhere. */
static void test_every_prefix(void **state) {
  (void)state;
  for (int m = 0; m < nmodels; m++) {
    /* every prefix of the first two models, about 500 of each other one */
    size_t step = m < 2 ? 1 : models[m].len / 500 + 1;
    for (size_t len = 0; len <= models[m].len; len += step) {
      char label[320];
      set_label(label, sizeof label, "%s, prefix of %zu bytes", models[m].path, len);
      compile_checked(label, models[m].text, len, false);
    }
  }
  /* The whole model compiles. */
  for (int m = 0; m < nmodels; m++)
    assert_true(compile_checked(models[m].path, models[m].text, models[m].len, true));
}

/* Every model with every single byte replaced by each of a few nasty bytes. */
static void test_every_byte_replaced(void **state) {
  (void)state;
  static const char nasty[] = {'\0', '\xff', '(', '\n'};
  const Model *m = &models[0];
  char *buf = malloc(m->len + 1);
  assert_non_null(buf);
  for (size_t k = 0; k < sizeof nasty; k++)
    for (size_t i = 0; i < m->len; i++) {
      memcpy(buf, m->text, m->len);
      buf[i] = nasty[k];
      char label[320];
      set_label(label, sizeof label, "%s, byte %zu := 0x%02x", m->path, i,
               (unsigned char)nasty[k]);
      compile_checked(label, buf, m->len, false);
    }
  free(buf);
}

/* Random expressions over a few declarations: mostly well-formed, with an
 * occasional stray token, so they reach the call parser, the shape rules and
 * the dumps rather than stopping at the first byte. */
static const char *const stray_tokens[] = {
    "(", ")", "[", "]", ",", "=", ":", "+", "**", "@", "-", "1.5", "-1", "axis=",
    "keepdims=", "batch", "None", "::", "i32", "#", "\n",
};

typedef struct Gen {
  char *buf;
  size_t len, cap;
} Gen;

static void emit(Gen *g, const char *s) {
  size_t n = strlen(s);
  if (g->len + n < g->cap) memcpy(g->buf + g->len, s, n), g->len += n;
}

static void gen_expr(Gen *g, int depth) {
  static const char *const leaves[] = {"x", "h", "w", "b", "s", "y", "2", "0.5", "-1"};
  static const char *const unary[] = {"relu", "sigmoid", "tanh", "exp", "log", "sqrt",
                                      "square", "abs", "neg", "softmax", "log_softmax",
                                      "flatten"};
  static const char *const binary[] = {" + ", " - ", " * ", " / ", " @ ", " ** ",
                                       " > ", " == "};
  static const char *const fns2[] = {"maximum", "minimum", "mse", "concat",
                                     "softmax_cross_entropy", "sigmoid_cross_entropy"};
  static const char *const reduce[] = {"sum", "mean", "max", "min", "argmax"};
  if (below(16) == 0) {                    /* a stray token */
    emit(g, stray_tokens[below(sizeof stray_tokens / sizeof *stray_tokens)]);
    emit(g, " ");
  }
  size_t pick = depth > 3 ? 0 : below(12);
  switch (pick) {
  case 0: case 1: emit(g, leaves[below(sizeof leaves / sizeof *leaves)]); break;
  case 2:
    emit(g, unary[below(sizeof unary / sizeof *unary)]);
    emit(g, "(");
    gen_expr(g, depth + 1);
    emit(g, ")");
    break;
  case 3: case 4:
    gen_expr(g, depth + 1);
    emit(g, binary[below(sizeof binary / sizeof *binary)]);
    gen_expr(g, depth + 1);
    break;
  case 5:
    emit(g, fns2[below(sizeof fns2 / sizeof *fns2)]);
    emit(g, "(");
    gen_expr(g, depth + 1);
    emit(g, ", ");
    gen_expr(g, depth + 1);
    emit(g, below(2) ? ")" : ", axis=0)");
    break;
  case 6:
    emit(g, reduce[below(sizeof reduce / sizeof *reduce)]);
    emit(g, "(");
    gen_expr(g, depth + 1);
    emit(g, (const char *[]){")", ", axis=0)", ", axis=-1)", ", axis=[0, 1])",
                             ", axis=1, keepdims=true)"}[below(5)]);
    break;
  case 7:
    emit(g, (const char *[]){"reshape(", "transpose(", "expand_dims(", "squeeze(",
                             "broadcast_to("}[below(5)]);
    gen_expr(g, depth + 1);
    emit(g, (const char *[]){", [-1])", ", [batch, 2, 2])", ")", ", 0)", ", [1, 0])",
                             ", [4, 4])"}[below(6)]);
    break;
  case 8:
    emit(g, "(");
    gen_expr(g, depth + 1);
    emit(g, ")");
    emit(g, (const char *[]){"[0]", "[:, 1:3]", "[::-1]", "[1, 2]", "[-1]", ""}[below(6)]);
    break;
  case 9:
    emit(g, "where(");
    gen_expr(g, depth + 1);
    emit(g, " > 0, ");
    gen_expr(g, depth + 1);
    emit(g, ", ");
    gen_expr(g, depth + 1);
    emit(g, ")");
    break;
  case 10:
    emit(g, (const char *[]){"dense(", "cast(", "one_hot(", "clip("}[below(4)]);
    gen_expr(g, depth + 1);
    emit(g, (const char *[]){", 3)", ", 4, activation=relu)", ", i32)", ", f32)",
                             ", 5)", ", 0, 1)"}[below(6)]);
    break;
  default:
    emit(g, "[[1, 2], [3, 4]]");
    break;
  }
}

static void test_fuzz_expressions(void **state) {
  (void)state;
  static const char prelude[] =
      "input x : f32[batch, 4]\ninput y : i32[batch]\nparam w : f32[4, 4]\n"
      "param b : f32[4]\nparam s : f32\nh = x @ w + b\n";
  rng = 0x853c49e6748fea9bu;
  roundtrip_failures = 0;
  grad_built = grad_total = 0;
  char buf[8192];
  long built = 0, total = 0;
  for (int it = 0; it < 5000; it++) {
    Gen g = {buf, 0, sizeof buf - 64};
    emit(&g, prelude);
    int lines = 1 + (int)below(3);
    for (int l = 0; l < lines; l++) {
      char head[32];
      snprintf(head, sizeof head, "z%d = ", l);
      emit(&g, head);
      gen_expr(&g, 0);
      emit(&g, "\n");
    }
    g.len += (size_t)sprintf(buf + g.len, "%s z%d\n", below(4) ? "output" : "metric",
                             (int)below((size_t)lines));
    if (below(3))                          /* differentiate it (STAGE_GRAD) */
      g.len += (size_t)sprintf(buf + g.len, "l = mean(z%d)\ntrain l with %s\n",
                               (int)below((size_t)lines),
                               (const char *[]){"sgd", "adam", "rmsprop(centered=true)",
                                                "adagrad", "sgd(momentum=0.9, nesterov=true)",
                                                "rmsprop(momentum=0.5)"}[below(6)]);
    char label[64];
    set_label(label, sizeof label, "expression %d", it);
    built += compile_checked(label, buf, g.len, true);
    total++;
  }
  print_message("%ld of %ld expressions compiled, %ld of %ld through autodiff\n", built,
                total, grad_built, grad_total);
  assert_true(built > total / 10);
  assert_int_equal(roundtrip_failures, 0);
}

/* The cases the fuzzers found, as plain regression tests: every binding the
 * nn dump writes must be defined in it, under a name nothing else uses. */
static void test_nn_dump_roundtrip_cases(void **state) {
  (void)state;
  static const char *const cases[] = {
      /* bug: an output that aliases a named node ("pred = w") is written as
       * "output pred" with no definition of pred */
      "param w : f32 = 0\npred = w\noutput pred\n",
      "input x : f32[batch, 4]\nh = relu(x)\nz = h\noutput z\n",
      /* bug: an output bound to a literal is written as a bare const, so the
       * output disappears */
      "z = 0.5\noutput z\n",
      "z = [[1, 2], [3, 4]]\nmetric s = sum(z)\noutput z\n",
      /* bug: a node that is both output and metric is written as an output
       * only; the metric disappears */
      "input x : f32[4]\ny = sum(x * 2)\nmetric m = y\noutput y\n",
      /* bug: temporaries are named _tN by node id, which can clash with a
       * user's name: "_t3 = relu(x)" after the user's "_t3 = mul(...)" */
      "input x : f32[4]\n_t3 = x * 2\ny = relu(x) + _t3\noutput y\n",
  };
  int failed = 0;
  roundtrip_failures = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Compilation *c = compile_str(cases[i]);
    if (!c->graph) diag_print(stderr, &c->diags);
    assert_non_null(c->graph);
    roundtrip_failures = 0;            /* print every case */
    if (!roundtrip_ok(c->graph, "roundtrip case", cases[i], strlen(cases[i]))) failed++;
    compilation_free(c);
  }
  assert_int_equal(failed, 0);
}

/* ------------------------------------------------------------ (2) random bytes */

static void test_random_bytes(void **state) {
  (void)state;
  rng = 0xda942042e4dd58b5u;
  char buf[512];
  for (int it = 0; it < 4000; it++) {
    size_t len = below(sizeof buf);
    int mode = (int)below(3);
    for (size_t i = 0; i < len; i++) {
      if (mode == 0) buf[i] = (char)below(256);                 /* anything */
      else if (mode == 1) buf[i] = below(8) ? (char)(32 + below(95)) : (char)below(2) * '\n';
      else buf[i] = "x(=[]),:\n0\0 -1e."[below(16)];             /* punctuation, NULs */
    }
    char label[64];
    set_label(label, sizeof label, "random bytes %d (mode %d)", it, mode);
    compile_checked(label, buf, len, false);
  }
  /* NULs only, and an empty buffer */
  memset(buf, 0, sizeof buf);
  compile_checked("all NULs", buf, sizeof buf, false);
  assert_true(compile_checked("empty", buf, 0, false));
}

/* ------------------------------------------------------------ (3) OOM */

static bool is_oom(const Compilation *c) {
  return c->graph == NULL && c->diags.errors == 1 && c->diags.first &&
         c->diags.first->next == NULL && c->diags.first->level == DIAG_ERROR &&
         strstr(c->diags.first->msg, "out of memory") != NULL;
}

/* For n = 1, 2, ...: the n-th allocation fails; the result must be exactly
 * the out-of-memory error, until n is past the last allocation and the
 * compilation gives what it gives without the hook (want_graph). */
static long oom_sweep(const char *name, const char *src, size_t len, Stage last,
                      bool want_graph, const char *want_msg) {
  long n;
  for (n = 1; n < 100000; n++) {
    compile_fail_after(n);
    Compilation *c = compile_model(name, src, len, last);
    compile_fail_after(0);
    if (!c) fail_msg("%s: compile_source returned NULL at n=%ld", name, n);
    if (is_oom(c)) {
      assert_null(c->diags.first->loc.src);
      char *text = format_diag(c->diags.first);
      assert_non_null(strstr(text, "out of memory"));
      free(text);
      compilation_free(c);
      continue;
    }
    /* The failure point is past the last allocation: a normal result. */
    bool got_graph = c->graph != NULL;
    if (got_graph != want_graph || (want_msg && (!c->diags.first ||
                                                 !strstr(c->diags.first->msg, want_msg)))) {
      fprintf(stderr, "%s: at n=%ld neither out of memory nor the normal result:\n",
              name, n);
      diag_print(stderr, &c->diags);
      compilation_free(c);
      fail_msg("%s: n=%ld", name, n);
    }
    compilation_free(c);
    break;
  }
  assert_true(n > 1);                      /* the hook did make allocations fail */
  return n;
}

static void test_oom_models(void **state) {
  (void)state;
  for (int m = 0; m < nmodels; m++) {
    long n = oom_sweep(models[m].path, models[m].text, models[m].len, STAGE_PARSE, true,
                       NULL);
    long k = oom_sweep(models[m].path, models[m].text, models[m].len, STAGE_GRAD, true,
                       NULL);
    print_message("%s: %ld allocations to parse, %ld through autodiff\n",
                  models[m].path, n - 1, k - 1);
    assert_true(k > n);
  }
  /* The hook is off again: a model compiles with no diagnostics. */
  Compilation *c = compile_source("m.nn", models[0].text, models[0].len);
  assert_non_null(c->graph);
  compilation_free(c);
}

/* Out of memory while an error is being reported. */
static void test_oom_on_error_paths(void **state) {
  (void)state;
  static const struct { const char *src, *msg; } cases[] = {
      {"input x : f32[4]\ny = xx + 1\n", "unknown identifier"},
      {"input a : f32[4,3]\ninput b : f32[5,2]\ny = a @ b\n", "matmul inner"},
      {"input x : f32[4]\ny = (x +\n", "unterminated"},
      {"param w : f32\ntrain w with adma\n", "unknown optimizer"},
      {"param w : f32[4] = foo(1)\n", "unknown initializer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    oom_sweep(cases[i].src, cases[i].src, strlen(cases[i].src), STAGE_PARSE, false,
              cases[i].msg);
  /* a warning path: the unused-parameter warning is allocated after parsing */
  static const char warn[] = "param w : f32[4]\n";
  oom_sweep("warn.nn", warn, sizeof warn - 1, STAGE_PARSE, true, "never used");
}

/* ------------------------------------------------------------ (4) limits */

static void expect_error(const char *src, size_t len, const char *phrase) {
  Compilation *c = compile_source("t.nn", src, len);
  assert_non_null(c);
  if (c->graph || c->diags.errors != 1 || !strstr(c->diags.first->msg, phrase)) {
    fprintf(stderr, "expected one error containing \"%s\" for %.*s%s\ngot:\n", phrase,
            (int)(len > 120 ? 120 : len), src, len > 120 ? "..." : "");
    diag_print(stderr, &c->diags);
    if (c->graph) fprintf(stderr, "(and a graph)\n");
    compilation_free(c);
    fail_msg("expected \"%s\"", phrase);
  }
  check_diag(c->diags.first, phrase, src, len);
  compilation_free(c);
}

static void expect_error_str(const char *src, const char *phrase) {
  expect_error(src, strlen(src), phrase);
}

/* A buffer of n bytes of comment lines, each line 64 bytes. */
static char *comment_text(size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  for (size_t i = 0; i < n; i++) s[i] = i % 64 == 0 ? '#' : i % 64 == 63 ? '\n' : 'c';
  s[n] = 0;
  return s;
}

static void write_file(const char *path, const char *s, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(s, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void test_limit_file_size(void **state) {
  (void)state;
  size_t big = 17u << 20;
  char *s = comment_text(big);
  char path[] = "/tmp/gradc_test_robust_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  write_file(path, s, big);
  Compilation *c = compile_file(path);
  unlink(path);
  assert_non_null(c);
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  assert_null(c->diags.first->loc.src);
  if (!strstr(c->diags.first->msg, "16 MiB")) fail_msg("%s", c->diags.first->msg);
  compilation_free(c);

  /* the same text handed over in memory */
  c = compile_source("big.nn", s, big);
  assert_non_null(c);
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  assert_null(c->diags.first->loc.src);
  if (!strstr(c->diags.first->msg, "limit")) fail_msg("%s", c->diags.first->msg);
  char *text = format_diag(c->diags.first);
  assert_non_null(strstr(text, "error"));
  free(text);
  compilation_free(c);

  /* one byte over the limit is refused; exactly the limit is a model */
  c = compile_source("edge.nn", s, MAX_SOURCE_BYTES + 1);
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  compilation_free(c);
  c = compile_source("edge.nn", s, MAX_SOURCE_BYTES);
  assert_non_null(c->graph);
  assert_int_equal(c->diags.errors, 0);
  compilation_free(c);
  free(s);
}

static void test_limit_elements(void **state) {
  (void)state;
  expect_error_str("input x : f32[1048576, 1048577]", "2^40");
  expect_error_str("input x : f32[1048577, 1]\ninput z : f32[1, 1048576]\ny = x * z",
                   "2^40");
  expect_error_str("input x : f32[4]\ny = broadcast_to(x, [1099511627776, 1099511627776, 4])",
                   "2^40");
  expect_error_str("input x : i32[4]\ny = one_hot(x, 1099511627776)", "2^40");
  /* exactly 2^40 is allowed */
  Compilation *c = compile_str("input x : f32[1048576, 1048576]\noutput x\n");
  assert_non_null(c->graph);
  compilation_free(c);
  /* bug: dense makes its kernel with graph_leaf, which checks no element count,
   * so a [2^40, 2^40] parameter is accepted (and summary prints "-1" for it) */
  expect_error_str("input x : f32[1, 1099511627776]\ny = dense(x, 1099511627776)\n"
                   "output y",
                   "2^40");
}

static void test_limit_identifier(void **state) {
  (void)state;
  size_t n = 10000;
  char *s = malloc(n + 32);
  assert_non_null(s);
  strcpy(s, "input ");
  memset(s + 6, 'a', n);
  strcpy(s + 6 + n, " : f32\n");
  expect_error_str(s, "identifier too long");
  /* a 200-character name is still fine */
  strcpy(s + 6 + 200, " : f32\n");
  Compilation *c = compile_str(s);
  assert_non_null(c->graph);
  compilation_free(c);
  free(s);
}

static void test_limit_list_literal(void **state) {
  (void)state;
  size_t n = (1u << 20) + 1;
  char *s = malloc(2 * n + 64);
  assert_non_null(s);
  size_t len = (size_t)sprintf(s, "const c = [");
  for (size_t i = 0; i < n; i++) s[len++] = '0', s[len++] = ',';
  s[len - 1] = ']';
  s[len++] = '\n';
  expect_error(s, len, "list literal has more than 1048576 elements");
  free(s);
  /* a typed constant filled from one number is bounded too */
  expect_error_str("const c : f32[1048577] = 0", "more than 1048576 elements");
}

static void test_limit_long_number(void **state) {
  (void)state;
  char s[200] = "x = 0.";
  for (int i = 0; i < 100; i++) strcat(s, "0");
  strcat(s, "1\n");
  expect_error_str(s, "number too long");
}

/* ------------------------------------------------------------ (5) overflow */

static void test_shape_product_overflow(void **state) {
  (void)state;
  expect_error_str("input x : f32[1000000,1000000,1000000]", "2^40");
  expect_error_str("input x : f32[1099511627776,1099511627776,1099511627776,"
                   "1099511627776]",
                   "2^40");
  expect_error_str("param w : f32[65536,65536,65536,65536] = zeros", "2^40");
  /* bug: the reshape rule multiplies the target dimensions in int64 without a
   * bound (shape.c count_of): signed overflow, which UBSan aborts on */
  Compilation *c = compile_str(
      "input x : f32[4]\ny = reshape(x, [1099511627776, 1099511627776, 1099511627776])");
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  compilation_free(c);
  c = compile_str("input x : f32[4]\ny = reshape(x, [-1, 1099511627776, 1099511627776, "
                  "1099511627776])");
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  compilation_free(c);
  /* a symbolic batch keeps a static product in range */
  c = compile_str("input x : f32[batch, 1048576, 1048576]\noutput x\n");
  assert_non_null(c->graph);
  compilation_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fuzz_mutations),
      cmocka_unit_test(test_every_prefix),
      cmocka_unit_test(test_every_byte_replaced),
      cmocka_unit_test(test_fuzz_expressions),
      cmocka_unit_test(test_nn_dump_roundtrip_cases),
      cmocka_unit_test(test_random_bytes),
      cmocka_unit_test(test_oom_models),
      cmocka_unit_test(test_oom_on_error_paths),
      cmocka_unit_test(test_limit_file_size),
      cmocka_unit_test(test_limit_elements),
      cmocka_unit_test(test_limit_identifier),
      cmocka_unit_test(test_limit_list_literal),
      cmocka_unit_test(test_limit_long_number),
      cmocka_unit_test(test_shape_product_overflow),
  };
  return cmocka_run_group_tests_name("robust", tests, load_models, free_models);
}
