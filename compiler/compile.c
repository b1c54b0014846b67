/*
 * compile.c - the pipeline, as one straight-line function (QBE's main.c).
 *
 * It owns the arena and installs the out-of-memory handler, so a failed
 * allocation anywhere in the stages below ends here as an error diagnostic
 * instead of a crash.  Later stages (autodiff, passes, codegen) are appended
 * to compile_source in pipeline order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

static long fail_after;

void compile_fail_after(long n) { fail_after = n; }

const char *const stage_names[STAGE_COUNT] = {"parse", "grad"};

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
  if (g && last >= STAGE_GRAD && !autodiff(g)) g = NULL;
  if (g && last >= STAGE_GRAD) fuse(g, true);
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
