/*
 * util_shape.h - helpers for test_shape.c and test_parse.c: compile a source
 * string, find a bound node, render "dtype[shape]", capture dumps, and run
 * tables of cases that report every failing row before failing the test.
 *
 * Include after <cmocka.h> and "compiler.h".  Everything is static inline, so
 * a file may leave any of it unused.
 */
#ifndef GRADC_UTIL_SHAPE_H
#define GRADC_UTIL_SHAPE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline Compilation *compile_str(const char *src) {
  Compilation *c = compile_source("t.nn", src, strlen(src));
  assert_non_null(c);
  return c;
}

/* The last node called name (a binding names the node it creates). */
static inline const Node *node_named(const Graph *g, const char *name) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
  return NULL;
}

/* "f32[batch,784]" */
static inline char *type_str(const Graph *g, const Node *n, char *buf, size_t len) {
  char s[SHAPE_STR_MAX];
  snprintf(buf, len, "%s%s", dtype_names[n->dtype], shape_str(g, &n->shape, s, sizeof s));
  return buf;
}

static inline const Diag *first_diag(const Compilation *c, DiagLevel level) {
  for (const Diag *d = c->diags.first; d; d = d->next)
    if (d->level == level) return d;
  return NULL;
}

/* Captures dump_graph (or dump_summary when summary) into a malloc'd string. */
static inline char *dump_str(const Graph *g, DumpFormat f, bool summary) {
  char *buf = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&buf, &n);
  assert_non_null(out);
  if (summary) dump_summary(out, g);
  else dump_graph(out, g, f, "parse");
  assert_int_equal(fclose(out), 0);
  return buf;
}

static inline bool near(double a, double b, double tol) {
  return fabs(a - b) <= tol * (1 + fabs(b));
}
#define assert_near(a, b, tol)                                                 \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!near(a_, b_, tol)) print_error("%s = %.17g, expected %.17g\n", #a, a_, b_); \
    assert_true(near(a_, b_, tol));                                            \
  } while (0)

/* One row: compiling src gives node `name` the type want ("f32[4,3]"), or,
 * when want starts with "error: ", exactly one error (no graph) whose
 * message contains the rest of want. */
typedef struct ShapeCase {
  const char *src;
  const char *name;
  const char *want;
} ShapeCase;

/* Returns 0 when the row holds; otherwise prints why and returns 1. */
static inline int run_case(const ShapeCase *k) {
  Compilation *c = compile_str(k->src);
  const Graph *g = c->graph;
  const Diag *e = first_diag(c, DIAG_ERROR);
  char got[SHAPE_STR_MAX + 16] = "";
  const char *why = NULL;
  bool want_error = strncmp(k->want, "error: ", 7) == 0;
  if (want_error) {
    if (g || !e) why = "compiled, expected an error";
    else if (c->diags.errors != 1) why = "more than one error";
    else if (!strstr(e->msg, k->want + 7)) why = "wrong message";
  } else if (!g) {
    why = "unexpected error";
  } else if (c->diags.warnings) {
    why = "unexpected warning";
  } else {
    const Node *n = node_named(g, k->name);
    if (!n) why = "no node with that name";
    else if (strcmp(type_str(g, n, got, sizeof got), k->want)) why = "wrong type";
  }
  if (why) {
    print_error("--- case failed: %s\n%s\n--- node '%s': want %s\n", why, k->src,
                k->name ? k->name : "", k->want);
    if (got[0]) print_error("--- got %s\n", got);
    for (const Diag *d = c->diags.first; d; d = d->next)
      print_error("--- diag %d:%d: %s\n", d->loc.line, d->loc.col, d->msg);
  }
  compilation_free(c);
  return why != NULL;
}

static inline int run_cases(const ShapeCase *k, size_t n) {
  int failed = 0;
  for (size_t i = 0; i < n; i++) failed += run_case(&k[i]);
  return failed;
}

#define CHECK_CASES(table)                                                     \
  assert_int_equal(run_cases(table, sizeof(table) / sizeof *(table)), 0)

#endif
