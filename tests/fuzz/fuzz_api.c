/*
 * fuzz_api.c - libFuzzer target for the C API (include/gradc.h) as a
 * hostile program uses it: calls in any order with any arguments, on two
 * small models compiled once.
 *
 * The input is a program: each operation is one byte (the call) and the
 * bytes its arguments need (which model - or NULL -, a batch size, a
 * name, a path, a value), all taken from small tables of valid and invalid
 * choices, or from the input itself where any bytes will do (the inputs'
 * contents, a dataset order, a seed, a damaged checkpoint).  What must
 * hold after each call:
 *   - nothing crashes or trips a sanitizer, whatever the order (a step
 *     before bind, a load of a damaged file, a feed past the dataset);
 *   - every status is a gradc_status, and a failure leaves a message in
 *     gradc_last_error;
 *   - what the header says is refused is refused: a batch outside
 *     1..2^24, an unknown name, a NULL model.
 * Batch sizes are kept to 64 and below, or far out of range: a valid
 * 2^24 would allocate gigabytes, legitimately.
 *
 * Each input starts from the same state: both models re-initialised from
 * seed 1, bound to 4, their inputs zeroed and their hyperparameters reset,
 * and the scratch directory emptied.  The scratch directory is under
 * /dev/shm where there is one, so that a save's fsync costs nothing.
 * Seeds (make_seeds.c) are sessions a program would run.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gradc.h"

/* Two models: one with a train step, a metric and a dataset-shaped input;
 * one with a second symbolic dimension and no train step. */
static const char *const sources[2] = {
    "input  x : f32[batch, 784]\n"
    "input  y : i32[batch]\n"
    "param  W : f32[784, 10] = glorot_uniform\n"
    "param  b : f32[10] = zeros\n"
    "logits = x @ W + b\n"
    "output probs = softmax(logits)\n"
    "loss   = mean(softmax_cross_entropy(logits, y))\n"
    "metric accuracy = mean(argmax(logits, axis=-1) == y)\n"
    "train  loss with adam(lr=0.01)\n",
    "input  x : f32[batch, n]\n"
    "input  k : i32[batch]\n"
    "output s = sum(x, axis=1)\n"
    "output e = embedding(k, 5, 3)\n",
};

static gradc_model *models[2];
static gradc_dataset *dataset;
static char dir[128];
static const char *const hyper_names[] = {"lr", "beta1", "beta2", "eps"};
static double hyper_start[4];

static void die(const char *what, const char *why) {
  fprintf(stderr, "fuzz_api: %s: %s\n", what, why);
  abort();
}

static void put_be32(FILE *f, uint32_t v) {
  for (int k = 3; k >= 0; k--) fputc((int)(v >> (8 * k)) & 0xff, f);
}

/* 16 images of 28x28 and their labels, as IDX files in dir. */
static void write_dataset(void) {
  char path[256];
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
  FILE *f = fopen(path, "wb");
  if (!f) die(path, strerror(errno));
  put_be32(f, 0x803), put_be32(f, 16), put_be32(f, 28), put_be32(f, 28);
  for (int i = 0; i < 16 * 784; i++) fputc((i * 37) & 0xff, f);
  if (fclose(f)) die(path, strerror(errno));
  snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
  if (!(f = fopen(path, "wb"))) die(path, strerror(errno));
  put_be32(f, 0x801), put_be32(f, 16);
  for (int i = 0; i < 16; i++) fputc(i % 10, f);
  if (fclose(f)) die(path, strerror(errno));
}

static void remove_dir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz_api: could not remove %s\n", dir);
}

static void setup(void) {
  snprintf(dir, sizeof dir, "%s/gradc-fuzz-api-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  if (!mkdtemp(dir)) die("mkdtemp", strerror(errno));
  atexit(remove_dir);
  write_dataset();
  if (gradc_dataset_load(dir, 1, &dataset)) die("gradc_dataset_load", "failed");
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  for (int i = 0; i < 2; i++)
    if (gradc_compile_string(i ? "dims.nn" : "mlp.nn", sources[i], &o, &models[i]))
      die("compile", gradc_last_error(models[i]));
  for (int h = 0; h < 4; h++)
    if (gradc_get_hyper(models[0], NULL, hyper_names[h], &hyper_start[h])) die("get_hyper", hyper_names[h]);
}

/* Both models as at the start of every input. */
static void reset(void) {
  for (int i = 0; i < 2; i++) {
    if (gradc_init(models[i], 1) || gradc_bind(models[i], 4)) die("reset", gradc_last_error(models[i]));
    for (int t = 0; t < gradc_tensor_count(models[i]); t++) {
      gradc_tensor info;
      if (gradc_tensor_info(models[i], t, &info) || info.kind != GRADC_INPUT) continue;
      int64_t n;
      void *p = gradc_data(models[i], info.name, &n);
      if (p) memset(p, 0, (size_t)n * 4);   /* f32 and i32 inputs only */
    }
  }
  for (int h = 0; h < 4; h++) gradc_set_hyper(models[0], NULL, hyper_names[h], hyper_start[h]);
  const char *names[] = {"a.ckpt", "b.ckpt", "bad.ckpt"};
  char path[256];
  for (int k = 0; k < 3; k++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    unlink(path);
  }
}

/* ------------------------------------------------------------ the input */

typedef struct In {
  const uint8_t *p;
  size_t left;
} In;

static uint8_t byte(In *in) {
  if (!in->left) return 0;
  in->left--;
  return *in->p++;
}

static uint64_t u64(In *in) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++) v |= (uint64_t)byte(in) << (8 * k);
  return v;
}

#define PICK(in, table) (table)[byte(in) % (sizeof(table) / sizeof *(table))]

static gradc_model *pick_model(In *in) {
  uint8_t b = byte(in) % 8;
  return b == 7 ? NULL : models[b & 1];   /* NULL now and then */
}

static const int64_t batches[] = {4, 1, 2, 3, 7, 16, 33, 64, 0, -1, (1 << 24) + 1, INT64_MAX, INT64_MIN};

static bool batch_valid(int64_t b) { return b >= 1 && b <= (1 << 24); }

static const char *pick_name(In *in) {
  static const char *const names[] = {"x", "y", "k", "probs", "loss", "accuracy", "W", "b", "s", "e",
                                      "optimizer/lr", "optimizer/iterations", "W/m", "batch", "n", "",
                                      "nope", NULL};
  return PICK(in, names);
}

static const char *pick_path(In *in) {
  static char paths[7][256];
  if (!paths[0][0]) {
    const char *names[] = {"a.ckpt", "b.ckpt", "bad.ckpt", "", "no/such/dir/x.ckpt", "train-images-idx3-ubyte"};
    for (int k = 0; k < 6; k++) snprintf(paths[k], sizeof paths[k], "%s/%s", dir, names[k]);
    snprintf(paths[6], sizeof paths[6], "%s", dir);
  }
  uint8_t b = byte(in) % 8;
  return b == 7 ? NULL : paths[b];
}

static double pick_value(In *in) {
  static const double values[] = {1e-3, 0.9, 0.0, -1.0, 1e300, -0.0, 1e-320};
  uint8_t b = byte(in) % 10;
  if (b < 7) return values[b];
  if (b == 7) return NAN;
  if (b == 8) return INFINITY;
  uint64_t bits = u64(in);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* The contract of every call that returns a status. */
static void expect_status(gradc_model *m, gradc_status s, const char *call) {
  if ((int)s < 0 || s >= GRADC_STATUS_COUNT) die(call, "not a gradc_status");
  if (s != GRADC_OK) {
    const char *msg = gradc_last_error(m);
    if (!msg || !msg[0]) die(call, "failed without a message");
  }
}

/* bad.ckpt: a.ckpt damaged (a byte changed, or cut short), or raw bytes. */
static void write_bad(In *in) {
  char a[256], bad[256];
  snprintf(a, sizeof a, "%s/a.ckpt", dir);
  snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
  static unsigned char buf[64 << 10];
  size_t n = 0;
  uint8_t how = byte(in) % 3;
  FILE *f = how < 2 ? fopen(a, "rb") : NULL;
  if (f) {
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
  }
  if (how == 0 && n) {
    size_t at = (size_t)(u64(in) % n);
    buf[at] ^= (uint8_t)(byte(in) | 1);
  } else if (how == 1 && n) {
    n = (size_t)(u64(in) % n);
  } else {
    n = byte(in);
    for (size_t k = 0; k < n; k++) buf[k] = byte(in);
  }
  if (!(f = fopen(bad, "wb"))) die(bad, strerror(errno));
  if (n && fwrite(buf, 1, n, f) != n) die(bad, "short write");
  fclose(f);
}

/* The model's inputs from a seed: floats in [0, 1) and labels and ids in
 * range, or any bits (NaN, infinities, labels and ids far out of range:
 * the point). */
static void fill_inputs(gradc_model *m, In *in) {
  bool any_bits = byte(in) & 1;
  uint64_t x = u64(in) | 1;
  for (int t = 0; m && t < gradc_tensor_count(m); t++) {
    gradc_tensor info;
    if (gradc_tensor_info(m, t, &info) || info.kind != GRADC_INPUT) continue;
    int64_t n;
    void *p = gradc_data(m, info.name, &n);
    for (int64_t k = 0; p && k < n; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint32_t bits = (uint32_t)(x >> 32);
      if (any_bits) memcpy((char *)p + 4 * k, &bits, 4);
      else if (info.dtype == GRADC_F32) ((float *)p)[k] = (float)(bits % 1000) / 1000.f;
      else ((int32_t *)p)[k] = (int32_t)(bits % 5);
    }
  }
}

static void one_call(In *in) {
  gradc_model *m = pick_model(in);
  double out;
  switch (byte(in) % 18) {
  case 0: {
    int64_t b = PICK(in, batches);
    gradc_status s = gradc_bind(m, b);
    expect_status(m, s, "bind");
    if (!s && !batch_valid(b)) die("bind", "took a batch out of range");
    break;
  }
  case 1: {
    const char *name = pick_name(in);
    int64_t v = PICK(in, batches);
    gradc_status s = gradc_bind_dim(m, name, v);
    expect_status(m, s, "bind_dim");
    if (!s && !batch_valid(v)) die("bind_dim", "took a value out of range");
    break;
  }
  case 2: fill_inputs(m, in); break;
  case 3: expect_status(m, gradc_forward(m), "forward"); break;
  case 4: expect_status(m, gradc_train_step(m, byte(in) & 1 ? &out : NULL), "train_step"); break;
  case 5: {
    static const char *const steps[] = {NULL, "train", "loss", "nope", ""};
    expect_status(m, gradc_step(m, PICK(in, steps), &out), "step");
    break;
  }
  case 6: {
    static const char *const steps[] = {NULL, "train", "nope"};
    static const char *const names[] = {"lr", "beta1", "beta2", "eps", "momentum", "rho", "", NULL};
    const char *step = PICK(in, steps), *name = PICK(in, names);
    double v = pick_value(in);
    expect_status(m, gradc_set_hyper(m, step, name, v), "set_hyper");
    break;
  }
  case 7: {
    static const char *const names[] = {"lr", "eps", "momentum", NULL};
    const char *name = PICK(in, names);
    expect_status(m, gradc_get_hyper(m, NULL, name, byte(in) & 1 ? &out : NULL), "get_hyper");
    break;
  }
  case 8: expect_status(m, gradc_init(m, u64(in)), "init"); break;
  case 9: expect_status(m, gradc_save(m, pick_path(in)), "save"); break;
  case 10: {
    gradc_status s = gradc_load(m, pick_path(in));
    expect_status(m, s, "load");
    break;
  }
  case 11: write_bad(in); break;
  case 12: {
    /* An order of up to 8 entries, any values: the header promises
     * GRADC_ERR_ARG for an entry outside the dataset.  The array is the
     * caller's to size (start + count entries), so it is passed only when
     * the call must not read past it: start and count in it, or refused. */
    int n = byte(in) % 9;
    int64_t *order = malloc(sizeof *order * (size_t)(n + 1));
    if (!order) die("malloc", "out of memory");
    for (int k = 0; k < n; k++) order[k] = byte(in) & 0x80 ? (int64_t)u64(in) : byte(in) % 20;
    static const int64_t starts[] = {0, 1, 4, 15, 16, -1, INT64_MAX};
    int64_t start = PICK(in, starts), count = PICK(in, batches);
    bool fits = start < 0 || count < 1 || (start <= n && count <= n - start);
    const gradc_dataset *d = byte(in) % 8 == 7 ? NULL : dataset;
    gradc_status s = gradc_dataset_feed(d, m, n && fits ? order : NULL, start, count);
    expect_status(m, s, "dataset_feed");
    if (!s && (!d || !m || start < 0 || count < 1 || start > 16 - count)) die("dataset_feed", "took samples outside the dataset");
    for (int64_t k = start; !s && n && fits && k < start + count; k++)
      if (order[k] < 0 || order[k] >= 16) die("dataset_feed", "took an order entry outside the dataset");
    free(order);
    break;
  }
  case 13: {
    int64_t n = -1;
    const char *name = pick_name(in);
    unsigned char *p = gradc_data(m, name, byte(in) & 1 ? &n : NULL);
    size_t bytes = 1;   /* of an element: from the tensor's dtype, where it is listed */
    for (int t = 0; p && t < gradc_tensor_count(m); t++) {
      gradc_tensor info;
      if (!gradc_tensor_info(m, t, &info) && !strcmp(info.name, name))
        bytes = info.dtype == GRADC_F64 ? 8 : info.dtype == GRADC_BOOL ? 1 : 4;
    }
    if (p && n > 0) {
      /* Every byte is ours to read and write (ASan checks the ends). */
      size_t last = (size_t)n * bytes - 1;
      unsigned char first = p[0], end = p[last];
      p[0] = first, p[last] = end;
    }
    break;
  }
  case 14: {
    gradc_tensor info;
    int i = (int)byte(in) - 3;
    gradc_status s = gradc_tensor_info(m, i, byte(in) % 8 == 7 ? NULL : &info);
    expect_status(m, s, "tensor_info");
    if (!s && (i < 0 || i >= gradc_tensor_count(m))) die("tensor_info", "took an index out of range");
    break;
  }
  case 15: {
    int i = (int)byte(in) - 3, n = gradc_step_count(m);
    const char *name = gradc_step_name(m, i);
    if ((name != NULL) != (i >= 0 && i < n)) die("step_name", "NULL and the index disagree");
    (void)gradc_warnings(m);
    (void)gradc_last_error(m);
    break;
  }
  case 16: {
    gradc_status s = gradc_dataset_set_padding(dataset, byte(in) & 1, byte(in) & 1, (int32_t)u64(in));
    if (s == GRADC_OK) die("dataset_set_padding", "took a dataset of images");
    break;
  }
  case 17: (void)gradc_status_str((gradc_status)(int8_t)byte(in)); break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!models[0]) setup();
  if (size > 4096) return -1;
  reset();
  In in = {data, size};
  for (int calls = 0; in.left && calls < 64; calls++) one_call(&in);
  return 0;
}
