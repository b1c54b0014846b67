/*
 * timing.c - where a compilation's time goes (gradc train/compile
 * --time-report), printed like clang's -ftime-report.
 *
 * A TimeReport is a plain record owned by whoever asked for it (the model,
 * the CLI's compile command) and handed down in the options of each stage
 * (CompileOptions, JitOptions, EmitOptions); each stage's entry point adds
 * one row per step it times.  There is no process-wide timer state, so two
 * compilations in two threads keep separate reports, and a NULL report
 * makes every call a no-op, so stages need not ask whether anyone listens.
 * Rows are kept in the order they were added: the pipeline's order.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "compiler.h"

double time_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

double time_add(TimeReport *r, const char *name, double since_ms) {
  double now = time_now_ms();
  if (!r) return now;
  /* A full report merges the rest into its last row rather than losing
   * time: the total stays right. */
  if (r->n == TIME_MAX_ROWS) {
    r->row[r->n - 1].ms += now - since_ms;
    return now;
  }
  r->row[r->n++] = (TimeRow){name, now - since_ms};
  return now;
}

void time_print(FILE *out, const TimeReport *r, const char *title) {
  if (!r) return;
  double total = 0;
  for (int i = 0; i < r->n; i++) total += r->row[i].ms;
  fprintf(out, "===%s===\n", "-------------------------------------------------------------------");
  fprintf(out, "  %s\n", title);
  fprintf(out, "===%s===\n", "-------------------------------------------------------------------");
  fprintf(out, "  Total: %.2f ms\n\n  %10s %7s   %s\n", total, "ms", "%", "stage");
  for (int i = 0; i < r->n; i++)
    fprintf(out, "  %10.2f %6.1f%%   %s\n", r->row[i].ms, total > 0 ? 100 * r->row[i].ms / total : 0,
            r->row[i].name);
  fprintf(out, "  %10.2f %6.1f%%   total\n", total, total > 0 ? 100.0 : 0);
}
