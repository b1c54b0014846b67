/*
 * diag.c - user-facing diagnostics.
 *
 * Stages never print: they append Diag values to a list, and the one place
 * that reports (the CLI or the API's last-error text) formats them here as
 *
 *   file:line:col: error: message
 *      12 | h = relu(x @ W2 + b1)
 *         |            ^~
 *
 * like clang and chibicc.  The source line is printed with non-printable
 * bytes replaced, so hostile input cannot garble the terminal.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

void diag_vadd(Arena *a, Diags *d, DiagLevel level, Loc loc, const char *fmt,
               va_list ap) {
  Diag *g = arena_alloc(a, sizeof *g);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  g->msg = arena_alloc(a, (size_t)(n < 0 ? 0 : n) + 1);
  vsnprintf(g->msg, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  g->level = level;
  g->loc = loc;
  if (d->last) d->last->next = g;
  else d->first = g;
  d->last = g;
  if (level == DIAG_ERROR) d->errors++;
  if (level == DIAG_WARNING) d->warnings++;
}

void diag_add(Arena *a, Diags *d, DiagLevel level, Loc loc, const char *fmt,
              ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(a, d, level, loc, fmt, ap);
  va_end(ap);
}

static const char *const level_names[] = {"error", "warning", "note"};

void diag_format(FILE *out, const Diag *g) {
  const Source *src = g->loc.src;
  if (!src) {
    fprintf(out, "gradc: %s: %s\n", level_names[g->level], g->msg);
    return;
  }
  fprintf(out, "%s:%d:%d: %s: %s\n", src->name, g->loc.line, g->loc.col,
          level_names[g->level], g->msg);
  size_t off = g->loc.off > src->len ? src->len : g->loc.off;
  size_t start = off, end = off;
  /* Lines end in \n, \r\n or \r, as the lexer counts them. */
  while (start > 0 && src->text[start - 1] != '\n' && src->text[start - 1] != '\r') start--;
  while (end < src->len && src->text[end] != '\n' && src->text[end] != '\r') end++;
  if (end - start > 200) return;      /* a minified wall of text: no excerpt */
  fprintf(out, "%5d | ", g->loc.line);
  for (size_t i = start; i < end; i++) {
    unsigned char c = (unsigned char)src->text[i];
    fputc(c == '\t' || (c >= 32 && c < 127) ? c : '?', out);
  }
  fprintf(out, "\n      | ");
  for (size_t i = start; i < off; i++)
    fputc(src->text[i] == '\t' ? '\t' : ' ', out);
  fputc('^', out);
  for (int i = 1; i < g->loc.len && off + (size_t)i < end; i++) fputc('~', out);
  fputc('\n', out);
}

void diag_print(FILE *out, const Diags *d) {
  for (const Diag *g = d->first; g; g = g->next) diag_format(out, g);
}

/* Levenshtein distance, for "did you mean" suggestions on short names. */
int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 1 << 20;
  int row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}
