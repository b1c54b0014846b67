/*
 * compile.c - the pipeline, as one straight-line function (QBE's main.c).
 *
 * compile() is the one way from source text to a graph ready for codegen:
 *
 *   parse -> canon -> hoist -> grad() -> autodiff -> update -> fold -> simplify
 *         -> cse -> dce -> fuse
 *
 * and the only caller of canon, hoist, lower_grads (gradexpr.c), autodiff,
 * the optimizer's update (optimizer.c) and the graph optimizer's passes.
 * The API and `gradc train` (jitmodel.c), `gradc compile` (cli/link.c),
 * `gradc dump` and `gradc check` (cli/main.c) differ only in the
 * CompileOptions they pass (the last stage, the optimization level, a pass
 * to stop after, the learning-rate override), so they see the same graph.
 * Code generation is not a stage here: the graph is handed to the JIT
 * (jit.c) or the object-file emitter (emit.c), which share codegen.c.
 *
 * compile() owns the arena and installs the out-of-memory handler, so a
 * failed allocation anywhere in the stages ends here as an error diagnostic
 * instead of a crash, and it runs graph_verify (verify.c) after every stage
 * and pass when asked to.
 */
#include <errno.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "onnx.h"

static long fail_after;

void compile_fail_after(long n) { fail_after = n; }

const char *const stage_names[STAGE_COUNT] = {"parse", "grad", "opt"};
const char *const pass_names[PASS_COUNT] = {"fold", "simplify", "cse", "dce", "fuse"};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The graph after a stage or pass must be well formed (verify.c); a
 * violation is a bug of the stage that just ran. */
static void verify(const Graph *g, const CompileOptions *o, const char *after) {
  if (!o->verify) return;
  char err[512];
  if (graph_verify(g, g->stored, err, sizeof err)) return;
  fprintf(stderr, "gradc: internal error: the graph is malformed after %s: %s\n", after, err);
  gradc_die(__FILE__, __LINE__, "graph_verify");
}

/* The optimizer: one pass after another, each recorded.  Level 0 runs
 * none of them (every value stored, nothing rewritten): the reference for
 * "no pass changes results" and the mode that keeps every intermediate
 * value in memory for --check-numerics. */
static void optimize_with(Graph *g, const CompileOptions *o) {
  PassStats *st = o->stats;
  if (st) memset(st, 0, sizeof *st);
  g->reuse_memory = o->opt_level > 0;
  g->stored = false;           /* new nodes have no storage until fuse */
  for (int p = 0; p < PASS_COUNT; p++) {
    int before = g->nnodes, changed = 0;
    double t0 = now_ms();
    if (o->opt_level <= 0) {
      if (p == PASS_FUSE) fuse(g, false), verify(g, o, "fuse"), time_add(o->times, "fuse (storage only)", t0);
      continue;
    }
    switch ((Pass)p) {
    case PASS_FOLD: changed = fold(g); break;
    case PASS_SIMPLIFY: changed = simplify(g); break;
    case PASS_CSE: changed = cse(g); break;
    case PASS_DCE: changed = graph_dce(g); break;
    case PASS_FUSE: changed = fuse(g, true); break;
    case PASS_COUNT: break;
    }
    if (st) st->pass[st->n++] = (PassStat){pass_names[p], before, g->nnodes, changed, now_ms() - t0};
    g->stage = pass_names[p];
    /* fold, simplify and cse leave replaced nodes behind for dce */
    if (p >= PASS_DCE) verify(g, o, pass_names[p]);
    time_add(o->times, pass_names[p], t0);
    if (o->stop_after && !strcmp(o->stop_after, pass_names[p])) {
      if (p < PASS_DCE) graph_dce(g);      /* keep ids dense for the dump */
      if (p < PASS_FUSE) fuse(g, false);
      verify(g, o, pass_names[p]);
      return;
    }
  }
  g->stage = stage_names[STAGE_OPT];
}

void optimize(Graph *g, int level, const char *stop_after, PassStats *st) {
  CompileOptions o = compile_defaults();
  o.opt_level = level, o.stop_after = stop_after, o.stats = st;
  optimize_with(g, &o);
}

CompileOptions compile_defaults(void) {
#ifdef GRADC_VERIFY
  bool verify_default = true;
#else
  const char *env = getenv("GRADC_VERIFY");
  bool verify_default = env && !strcmp(env, "1");
#endif
  return (CompileOptions){.last = STAGE_OPT, .opt_level = 3, .verify = verify_default};
}

/* The stages after parsing, in order; false after a diagnostic. */
static bool run_stages(Graph *g, const CompileOptions *o) {
  double t = time_now_ms();
  g->stage = stage_names[STAGE_PARSE];
  verify(g, o, "parse");
  if (o->last < STAGE_GRAD) return true;
  /* An override of the learning rate must reach the graph before the
   * update stage makes optimizer/lr's initial value from it. */
  for (int s = 0; o->lr > 0 && s < g->nsteps; s++) g->steps[s].opt.lr = o->lr;
  g->canon_rewrites = canon(g);
  verify(g, o, "canon");
  t = time_add(o->times, "canon", t);
  hoist(g);
  verify(g, o, "hoist");
  t = time_add(o->times, "hoist", t);
  /* grad(y, x) expressions first: the train steps differentiate them
   * (their time counts as autodiff's) */
  if (!lower_grads(g)) return false;
  verify(g, o, "grad()");
  if (!autodiff(g)) return false;
  verify(g, o, "autodiff");
  t = time_add(o->times, "autodiff", t);
  g->data_parallel = o->data_parallel;
  opt_update(g);
  verify(g, o, "update");
  time_add(o->times, "update (optimizer)", t);
  if (o->last == STAGE_GRAD) {
    fuse(g, false);          /* storage, no fusion: what the evaluator and dump need */
    verify(g, o, "grad");
    return true;
  }
  optimize_with(g, o);
  return true;
}

Compilation *compile(const char *name, const char *text, size_t len, const CompileOptions *opt) {
  CompileOptions o = opt ? *opt : compile_defaults();
  Arena *a = arena_new();
  if (!a) return NULL;
  arena_fail_after(a, fail_after);
  jmp_buf oom;
  Compilation *volatile c = NULL;
  arena_on_oom(a, &oom);
  if (setjmp(oom)) {
    /* The arena is still valid; only the failed request was refused.  Report
     * from a fresh block so the message itself cannot fail. */
    arena_free(a);
    Arena *b = arena_new();
    if (!b) return NULL;
    Compilation *r = arena_alloc(b, sizeof *r);
    r->arena = b;
    r->status = COMPILE_ERR_NOMEM;
    r->src.name = arena_strdup(b, name);
    diag_add(b, &r->diags, DIAG_ERROR, (Loc){0},
             "%s: out of memory while compiling", name);
    return r;
  }
  c = arena_alloc(a, sizeof *c);
  c->arena = a;
  c->src.name = arena_strdup(a, name);
  c->src.text = arena_strndup(a, text, len);
  c->src.len = len;
  double t = time_now_ms();
  Graph *g = parse(a, &c->src, &c->diags);
  time_add(o.times, "parse", t);
  if (g && !run_stages(g, &o)) g = NULL;
  c->graph = g;
  c->status = g ? COMPILE_OK : COMPILE_ERR_MODEL;
  arena_on_oom(a, NULL);
  return c;
}

/* An ONNX file compiles as the model text onnx_import writes for it (one
 * pipeline for both formats), with the loss and optimizer o->onnx adds;
 * an import error is the compilation's one diagnostic. */
static Compilation *compile_onnx(const char *path, const char *buf, size_t len, const CompileOptions *o) {
  Arena *scratch = arena_new();
  if (!scratch) return NULL;
  OnnxImport imp;
  Compilation *c;
  if (onnx_import(scratch, path, buf, len, o ? o->onnx : NULL, &imp)) {
    c = compile(path, imp.text, imp.len, o);
  } else {
    Arena *a = arena_new();
    c = a ? arena_alloc(a, sizeof *c) : NULL;
    if (c) {
      c->arena = a;
      c->status = COMPILE_ERR_MODEL;
      c->src.name = arena_strdup(a, path);
      diag_add(a, &c->diags, DIAG_ERROR, (Loc){0}, "%s", imp.error);
    }
  }
  arena_free(scratch);
  return c;
}

Compilation *compile_path(const char *path, const CompileOptions *o) {
  FILE *f = fopen(path, "rb");
  const char *why = NULL;
  char *buf = NULL;
  size_t len = 0;
  if (!f) {
    why = strerror(errno);
  } else {
    buf = malloc(MAX_SOURCE_BYTES + 1);
    if (!buf) why = "out of memory";
    else {
      len = fread(buf, 1, MAX_SOURCE_BYTES + 1, f);
      if (ferror(f)) why = strerror(errno);
      else if (len > MAX_SOURCE_BYTES) why = "file is larger than the 16 MiB limit for model files";
    }
    fclose(f);
  }
  Compilation *c;
  if (why) {
    Arena *a = arena_new();
    c = a ? arena_alloc(a, sizeof *c) : NULL;
    if (c) {
      c->arena = a;
      c->status = buf || !f ? COMPILE_ERR_IO : COMPILE_ERR_NOMEM;
      c->src.name = arena_strdup(a, path);
      diag_add(a, &c->diags, DIAG_ERROR, (Loc){0}, "cannot read '%s': %s", path, why);
    }
  } else if (onnx_is_onnx_path(path)) {
    c = compile_onnx(path, buf, len, o);
  } else {
    c = compile(path, buf, len, o);
  }
  free(buf);
  return c;
}

/* Shorthands for the stages up to `last` with the default options (the
 * tests' and the fuzzers' way in). */
Compilation *compile_model(const char *name, const char *text, size_t len, Stage last) {
  CompileOptions o = compile_defaults();
  o.last = last;
  return compile(name, text, len, &o);
}

Compilation *compile_model_file(const char *path, Stage last) {
  CompileOptions o = compile_defaults();
  o.last = last;
  return compile_path(path, &o);
}

Compilation *compile_source(const char *name, const char *text, size_t len) {
  return compile_model(name, text, len, STAGE_PARSE);
}

Compilation *compile_file(const char *path) {
  return compile_model_file(path, STAGE_PARSE);
}

void compilation_free(Compilation *c) {
  if (!c) return;
  arena_free(c->arena);     /* c itself lives in the arena */
}
