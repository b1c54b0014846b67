/*
 * compile.c - the pipeline, as one straight-line function (QBE's main.c).
 *
 * It owns the arena and installs the out-of-memory handler, so a failed
 * allocation anywhere in the stages below ends here as an error diagnostic
 * instead of a crash.  Later stages (autodiff, passes, codegen) are appended
 * to compile_source in pipeline order.
 */
#include <errno.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

static long fail_after;

void compile_fail_after(long n) { fail_after = n; }

const char *const stage_names[STAGE_COUNT] = {"parse", "grad", "opt"};
const char *const pass_names[PASS_COUNT] = {"fold", "simplify", "cse", "dce", "fuse"};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The optimizer: one pass after another, each recorded.  Level 0 runs
 * none of them (every value stored, nothing rewritten): the reference for
 * "no pass changes results" and the mode that keeps every intermediate
 * value in memory for --check-numerics. */
void optimize(Graph *g, int level, const char *stop_after, PassStats *st) {
  if (st) memset(st, 0, sizeof *st);
  g->reuse_memory = level > 0;
  for (int p = 0; p < PASS_COUNT; p++) {
    int before = g->nnodes, changed = 0;
    double t0 = now_ms();
    if (level <= 0) {
      if (p == PASS_FUSE) fuse(g, false);
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
    if (stop_after && !strcmp(stop_after, pass_names[p])) {
      if (p < PASS_DCE) graph_dce(g);      /* keep ids dense for the dump */
      if (p < PASS_FUSE) fuse(g, false);
      return;
    }
  }
  g->stage = stage_names[STAGE_OPT];
}

Compilation *compile_model(const char *name, const char *text, size_t len, Stage last) {
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
  Graph *g = parse(a, &c->src, &c->diags);
  if (g) g->stage = stage_names[STAGE_PARSE];
  if (g && last >= STAGE_GRAD) g->canon_rewrites = canon(g);
  if (g && last >= STAGE_GRAD && !autodiff(g)) g = NULL;
  if (g && last == STAGE_GRAD) fuse(g, false);          /* storage, no fusion */
  if (g && last >= STAGE_OPT) optimize(g, 3, NULL, NULL);
  c->graph = g;
  arena_on_oom(a, NULL);
  return c;
}

Compilation *compile_source(const char *name, const char *text, size_t len) {
  return compile_model(name, text, len, STAGE_PARSE);
}

Compilation *compile_file(const char *path) {
  return compile_model_file(path, STAGE_PARSE);
}

Compilation *compile_model_file(const char *path, Stage last) {
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
      c->src.name = arena_strdup(a, path);
      diag_add(a, &c->diags, DIAG_ERROR, (Loc){0}, "cannot read '%s': %s", path, why);
    }
  } else {
    c = compile_model(path, buf, len, last);
  }
  free(buf);
  return c;
}

void compilation_free(Compilation *c) {
  if (!c) return;
  arena_free(c->arena);     /* c itself lives in the arena */
}
