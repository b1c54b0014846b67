/*
 * tiny_step.c - what one train step of a tiny model costs through the C
 * API (bench/tiny_overhead.py builds and runs it): linear regression, 100
 * points, full batch, compiled by gradc_compile_file on 1 thread.
 *
 *   usage: tiny_step MODEL.nn DATA.csv STEPS
 *
 * Prints the median of 5 timings of STEPS steps, in microseconds per step,
 * of: the step alone on the bound batch (gradc_train_step), and the batch
 * copied into the input buffers before each step (what a driver feeding
 * new data does).
 */
#include <gradc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { N = 100, REPEATS = 5 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tiny_step MODEL.nn DATA.csv STEPS\n");
    return 2;
  }
  float px[N], py[N];
  FILE *f = fopen(argv[2], "r");
  for (int i = 0; i < N; i++)
    if (!f || fscanf(f, "%f,%f", &px[i], &py[i]) != 2) {
      fprintf(stderr, "tiny_step: %s: expected %d rows of x,y\n", argv[2], N);
      return 1;
    }
  fclose(f);
  long steps = atol(argv[3]);
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  gradc_model *m;
  if (gradc_compile_file(argv[1], &o, &m) || gradc_bind(m, N)) {
    fprintf(stderr, "tiny_step: %s\n", gradc_last_error(NULL));
    return 1;
  }
  float *x = gradc_data(m, "x", NULL), *y = gradc_data(m, "y", NULL);
  double loss = 0, alone[REPEATS], fed[REPEATS];
  for (int r = 0; r < REPEATS; r++) {
    for (int i = 0; i < N; i++) x[i] = px[i], y[i] = py[i];
    double t = now();
    for (long s = 0; s < steps; s++) gradc_train_step(m, &loss);
    alone[r] = (now() - t) / (double)steps * 1e6;
    t = now();
    for (long s = 0; s < steps; s++) {
      for (int i = 0; i < N; i++) x[i] = px[i], y[i] = py[i];
      gradc_train_step(m, &loss);
    }
    fed[r] = (now() - t) / (double)steps * 1e6;
    gradc_init(m, 1);
  }
  qsort(alone, REPEATS, sizeof *alone, by_value);
  qsort(fed, REPEATS, sizeof *fed, by_value);
  printf("step_us=%.4f fed_step_us=%.4f min_step_us=%.4f max_step_us=%.4f loss=%g\n", alone[REPEATS / 2],
         fed[REPEATS / 2], alone[0], alone[REPEATS - 1], loss);
  gradc_free(m);
  return 0;
}
