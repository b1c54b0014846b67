/*
 * jit_ref.c - the JIT side of tests/run_aot_tests.sh: the same training as
 * driver.c through include/gradc.h, and a comparison of float files.
 *
 *   jit_ref train MODEL.nn SEED STEPS BATCH STATE.ckpt OUTPUTS.bin [OTHER.ckpt]
 *       as driver.c; OTHER.ckpt (written by the .so) must load and hold
 *       exactly this model's state
 *   jit_ref close A.bin B.bin TOL
 *       A and B hold the same number of floats, each within TOL relative
 *       (and absolute below 1)
 *   jit_ref recompress IN.ckpt OUT.ckpt LEVEL
 *       the same checkpoint with its payload compressed by zlib at LEVEL,
 *       as gradc wrote them before it wrote stored blocks
 *   jit_ref hyper MODEL.nn SEED STEPS BATCH AT LR STATE.bin
 *       as hyper.c: lr set to LR before step AT; the losses, the state
 *       bytes and the refusals' messages
 *   jit_ref dims MODEL.nn
 *       as dims.c: the row sums under bind_dim, and its refusals
 *   jit_ref steps MODEL.nn SEED BATCH SCHEDULE STATE.ckpt
 *       as steps.c: two train steps through gradc_step
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "gradc.h"
#include "data.h"

static char *state_bytes(gradc_model *m, size_t *len) {
  size_t n = 0;
  gradc_tensor t;
  for (int pass = 0; pass < 2; pass++) {
    char *b = pass ? malloc(n + 1) : NULL, *p = b;
    for (int i = 0; i < gradc_tensor_count(m); i++) {
      gradc_tensor_info(m, i, &t);
      if (t.kind != GRADC_PARAM && t.kind != GRADC_STATE) continue;
      size_t bytes = (size_t)t.count * (t.dtype == GRADC_F64 ? 8 : t.dtype == GRADC_BOOL ? 1 : 4);
      if (pass) memcpy(p, gradc_data(m, t.name, NULL), bytes), p += bytes;
      else n += bytes;
    }
    if (pass) {
      *len = n;
      return b;
    }
  }
  return NULL;
}

static void feed(gradc_model *m, int64_t step) {
  gradc_tensor t;
  for (int i = 0, input = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor_info(m, i, &t);
    if (t.kind == GRADC_INPUT) fill_input(gradc_data(m, t.name, NULL), (int)t.dtype, t.count, input++, step);
  }
}

static int train(int argc, char **argv) {
  gradc_options o;
  gradc_options_default(&o);
  o.seed = strtoull(argv[3], NULL, 10);
  int steps = atoi(argv[4]);
  int64_t batch = atoll(argv[5]);
  gradc_model *m;
  if (gradc_compile_file(argv[2], &o, &m)) {
    fprintf(stderr, "jit_ref: %s\n", gradc_last_error(NULL));
    return 1;
  }
  gradc_bind(m, batch);
  for (int s = 0; s < steps; s++) {
    feed(m, s);
    double loss = -1;
    gradc_train_step(m, &loss);
    if (s == 0 || s == steps - 1) printf("step %d: loss %.17g\n", s + 1, loss);
  }
  feed(m, steps);
  gradc_forward(m);
  FILE *f = fopen(argv[7], "wb");
  gradc_tensor t;
  for (int i = 0; f && i < gradc_tensor_count(m); i++) {
    gradc_tensor_info(m, i, &t);
    if (t.kind >= GRADC_OUTPUT)
      fwrite(gradc_data(m, t.name, NULL), 1, (size_t)t.count * (t.dtype == GRADC_F64 ? 8 : t.dtype == GRADC_BOOL ? 1 : 4), f);
  }
  int rc = !f || fclose(f) != 0;
  if (gradc_save(m, argv[6])) {
    fprintf(stderr, "jit_ref: %s\n", gradc_last_error(m));
    rc = 1;
  }
  if (argc > 8) {
    size_t n0, n1;
    char *mine = state_bytes(m, &n0);
    if (gradc_load(m, argv[8])) {
      fprintf(stderr, "jit_ref: %s\n", gradc_last_error(m));
      rc = 1;
    } else {
      char *theirs = state_bytes(m, &n1);
      if (n0 != n1 || memcmp(mine, theirs, n0)) {
        fprintf(stderr, "jit_ref: the .so's checkpoint differs from the JIT's state\n");
        rc = 1;
      }
      free(theirs);
    }
    free(mine);
  }
  gradc_free(m);
  if (!rc) printf("jit_ref: ok\n");
  return rc;
}

static int hyper(char **argv) {
  gradc_options o;
  gradc_options_default(&o);
  o.seed = strtoull(argv[3], NULL, 10);
  int steps = atoi(argv[4]), at = atoi(argv[6]);
  gradc_model *m;
  if (gradc_compile_file(argv[2], &o, &m)) {
    fprintf(stderr, "jit_ref: %s\n", gradc_last_error(NULL));
    return 1;
  }
  int rc = gradc_bind(m, atoll(argv[5])) != GRADC_OK;
  for (int s = 1; s <= steps; s++) {
    if (s == at) rc |= gradc_set_hyper(m, NULL, "lr", atof(argv[7])) != GRADC_OK;
    feed(m, s - 1);
    double loss = -1;
    rc |= gradc_train_step(m, &loss) != GRADC_OK;
    printf("step %d: loss %.17g\n", s, loss);
  }
  size_t n;
  char *b = state_bytes(m, &n);
  FILE *f = fopen(argv[8], "wb");
  rc |= !f || fwrite(b, 1, n, f) != n;
  if (f) rc |= fclose(f) != 0;
  free(b);
  double v;
  gradc_set_hyper(m, NULL, "momentum", 1);
  printf("error: %s\n", gradc_last_error(m));
  gradc_get_hyper(m, "eval", "lr", &v);
  printf("error: %s\n", gradc_last_error(m));
  gradc_get_hyper(m, NULL, "lr", NULL);
  printf("error: %s\n", gradc_last_error(m));
  gradc_free(m);
  if (!rc) printf("jit_ref: ok\n");
  return rc;
}

static int steps(char **argv) {
  gradc_options o;
  gradc_options_default(&o);
  o.seed = strtoull(argv[3], NULL, 10);
  gradc_model *m;
  if (gradc_compile_file(argv[2], &o, &m)) {
    fprintf(stderr, "jit_ref: %s\n", gradc_last_error(NULL));
    return 1;
  }
  const char *schedule = argv[5];
  int rc = gradc_bind(m, atoll(argv[4])) != GRADC_OK;
  for (int i = 0; schedule[i]; i++) {
    if (i == 5) rc |= gradc_set_hyper(m, "second", "lr", 0.02) != GRADC_OK;
    feed(m, i);
    double loss = -1;
    rc |= gradc_step(m, schedule[i] == 'f' ? "first" : "second", &loss) != GRADC_OK;
    printf("step %d (%c): loss %.17g\n", i + 1, schedule[i], loss);
  }
  rc |= gradc_save(m, argv[6]) != GRADC_OK;
  double loss;
  gradc_train_step(m, &loss);
  printf("error: %s\n", gradc_last_error(m));
  gradc_step(m, "third", &loss);
  printf("error: %s\n", gradc_last_error(m));
  gradc_set_hyper(m, NULL, "lr", 1);
  printf("error: %s\n", gradc_last_error(m));
  gradc_set_hyper(m, "first", "momentum", 1);
  printf("error: %s\n", gradc_last_error(m));
  gradc_free(m);
  if (!rc) printf("jit_ref: ok\n");
  return rc;
}

static void sums(gradc_model *m, int64_t rows, int64_t cols) {
  int64_t n = 0;
  float *x = gradc_data(m, "x", &n);
  for (int64_t i = 0; x && i < n; i++) x[i] = (float)(i + 1);
  gradc_forward(m);
  float *s = gradc_data(m, "s", &n);
  printf("[%lld, %lld]:", (long long)rows, (long long)cols);
  for (int64_t i = 0; s && i < n; i++) printf(" %.9g", (double)s[i]);
  printf("\n");
}

static int dims(char **argv) {
  gradc_model *m;
  if (gradc_compile_file(argv[2], NULL, &m)) {
    fprintf(stderr, "jit_ref: %s\n", gradc_last_error(NULL));
    return 1;
  }
  int rc = gradc_bind_dim(m, "batch", 2) || gradc_bind_dim(m, "n", 3);
  sums(m, 2, 3);
  rc |= gradc_bind_dim(m, "n", 2);
  sums(m, 2, 2);
  gradc_bind_dim(m, "k", 2);
  printf("error: %s\n", gradc_last_error(m));
  gradc_bind_dim(m, "n", 0);
  printf("error: %s\n", gradc_last_error(m));
  gradc_set_hyper(m, NULL, "lr", 1);
  printf("error: %s\n", gradc_last_error(m));
  rc |= gradc_bind(m, 5);
  sums(m, 5, 5);
  gradc_free(m);
  if (!rc) printf("jit_ref: ok\n");
  return rc;
}

static float *read_floats(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long bytes = ftell(f);
  rewind(f);
  float *v = malloc((size_t)bytes + 4);
  *n = (long)fread(v, 1, (size_t)bytes, f) / 4;
  fclose(f);
  return v;
}

static int close_enough(char **argv) {
  long na, nb;
  float *a = read_floats(argv[2], &na), *b = read_floats(argv[3], &nb);
  double tol = atof(argv[4]), worst = 0;
  int rc = !a || !b || na != nb || na == 0;
  for (long i = 0; !rc && i < na; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)a[i]));
    if (!(d <= tol)) {
      fprintf(stderr, "jit_ref: element %ld: %.9g vs %.9g\n", i, (double)a[i], (double)b[i]);
      rc = 1;
    }
    if (d > worst) worst = d;
  }
  printf("jit_ref: %ld floats, largest difference %.3g (tolerance %g)%s\n", na, worst, tol, rc ? ": FAILED" : "");
  free(a), free(b);
  return rc;
}

static int recompress(char **argv) {
  FILE *f = fopen(argv[2], "rb");
  if (!f) return 1;
  unsigned char h[32];
  if (fread(h, 1, 32, f) != 32) return 1;
  uint64_t size = 0, csize = 0;
  for (int k = 0; k < 8; k++) size |= (uint64_t)h[12 + k] << (8 * k), csize |= (uint64_t)h[24 + k] << (8 * k);
  unsigned char *c = malloc(csize), *p = malloc(size);
  uLongf got = (uLongf)size;
  int rc = fread(c, 1, csize, f) != csize || uncompress(p, &got, c, (uLong)csize) != Z_OK || got != size;
  fclose(f);
  uLongf clen = compressBound((uLong)size);
  unsigned char *z = malloc(clen);
  rc |= compress2(z, &clen, p, (uLong)size, atoi(argv[4])) != Z_OK;
  for (int k = 0; k < 8; k++) h[24 + k] = (unsigned char)((uint64_t)clen >> (8 * k));
  f = fopen(argv[3], "wb");
  rc |= !f || fwrite(h, 1, 32, f) != 32 || fwrite(z, 1, clen, f) != clen;
  if (f) rc |= fclose(f) != 0;
  printf("jit_ref: %llu payload bytes, %lu compressed at level %s\n", (unsigned long long)size, (unsigned long)clen, argv[4]);
  free(c), free(p), free(z);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "recompress")) return recompress(argv);
  if (argc >= 8 && !strcmp(argv[1], "train")) return train(argc, argv);
  if (argc == 5 && !strcmp(argv[1], "close")) return close_enough(argv);
  if (argc == 9 && !strcmp(argv[1], "hyper")) return hyper(argv);
  if (argc == 3 && !strcmp(argv[1], "dims")) return dims(argv);
  if (argc == 7 && !strcmp(argv[1], "steps")) return steps(argv);
  fprintf(stderr, "usage: jit_ref train MODEL.nn SEED STEPS BATCH STATE.ckpt OUTPUTS.bin [OTHER.ckpt]\n"
                  "       jit_ref close A.bin B.bin TOL\n"
                  "       jit_ref recompress IN.ckpt OUT.ckpt LEVEL\n"
                  "       jit_ref hyper MODEL.nn SEED STEPS BATCH AT LR STATE.bin\n"
                  "       jit_ref dims MODEL.nn\n");
  return 2;
}
