/*
 * train_mnist_so.c - trains models/mnist_mlp.nn on Fashion-MNIST through
 * the shared object `gradc compile` makes of it: no gradc and no LLVM at
 * build or run time, only the .so, its header, and zlib for the .gz files.
 *
 *   gradc compile models/mnist_mlp.nn -o libmnist_mlp.so --header mnist_mlp.h
 *   cc -O2 -I. examples/train_mnist_so.c -L. -lmnist_mlp -Wl,-rpath,'$ORIGIN' -lz -o train_mnist_so
 *   ./train_mnist_so /usr/share/datasets/fashion-mnist [epochs] [batch] [start.ckpt|-] [end.ckpt]
 *
 * Checkpoints are gradc's: start from one `gradc train --save` wrote, or
 * save one that `gradc eval --load` reads.
 *
 * The IDX reader is a small copy of runtime/data.c's checks (magic numbers,
 * sizes against the file): the program owns its data loading, the .so
 * only computes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "mnist_mlp.h"

typedef struct Data {
  int64_t n;
  float *x;          /* n x 784, pixels scaled to [0, 1] */
  int32_t *y;
} Data;

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* All of a file, gzip'd or not (zlib reads both). */
static unsigned char *slurp(const char *path, size_t *len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0;
  unsigned char *b = malloc(cap);
  int got;
  while (b && (got = gzread(f, b + n, (unsigned)(cap - n))) > 0) {
    n += (size_t)got;
    if (n == cap) {
      unsigned char *nb = realloc(b, cap *= 2);
      if (!nb) free(b);
      b = nb;
    }
  }
  gzclose(f);
  *len = n;
  return b;
}

/* dir/prefix-images-idx3-ubyte[.gz] and the labels beside them. */
static int load(const char *dir, const char *prefix, Data *d) {
  char path[1024];
  size_t ni = 0, nl = 0;
  unsigned char *img = NULL, *lab = NULL;
  for (int gz = 1; gz >= 0 && !img; gz--) {
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    img = slurp(path, &ni);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    if (img) lab = slurp(path, &nl);
  }
  if (!img || !lab || ni < 16 || nl < 8 || be32(img) != 2051 || be32(lab) != 2049 || be32(img + 8) * be32(img + 12) != 784 ||
      be32(img + 4) != be32(lab + 4) || ni - 16 < (size_t)be32(img + 4) * 784 || nl - 8 < be32(lab + 4)) {
    fprintf(stderr, "train_mnist_so: cannot read 28x28 %s images and labels from '%s'\n", prefix, dir);
    free(img), free(lab);
    return 1;
  }
  d->n = be32(img + 4);
  d->x = malloc(sizeof(float) * (size_t)d->n * 784);
  d->y = malloc(sizeof(int32_t) * (size_t)d->n);
  for (int64_t i = 0; i < d->n * 784; i++) d->x[i] = img[16 + i] / 255.0f;
  for (int64_t i = 0; i < d->n; i++) d->y[i] = lab[8 + i];
  free(img), free(lab);
  return 0;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Copies samples order[at..at+bs) into the bound model's inputs. */
static void feed(gradc_aot_model *m, const Data *d, const int64_t *order, int64_t at, int64_t bs) {
  float *x = mnist_mlp_data(m, "x", NULL);
  int32_t *y = mnist_mlp_data(m, "y", NULL);
  for (int64_t i = 0; i < bs; i++) {
    int64_t k = order ? order[at + i] : at + i;
    memcpy(x + i * 784, d->x + k * 784, sizeof(float) * 784);
    y[i] = d->y[k];
  }
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  int epochs = argc > 2 ? atoi(argv[2]) : 1;
  int64_t batch = argc > 3 ? atoll(argv[3]) : 128;
  const char *start = argc > 4 && strcmp(argv[4], "-") ? argv[4] : NULL, *end = argc > 5 ? argv[5] : NULL;
  Data train, test;
  if (load(dir, "train", &train) || load(dir, "t10k", &test)) return 1;
  gradc_aot_model *m = mnist_mlp_new();
  if (!m || mnist_mlp_init(m, 1) || (start && mnist_mlp_load(m, start))) {
    fprintf(stderr, "train_mnist_so: %s\n", mnist_mlp_last_error(m));
    return 1;
  }
  printf("mnist_mlp.so (%s, CPU %s): %lld training and %lld test images, batch %lld\n", MNIST_MLP_TARGET,
         MNIST_MLP_CPU, (long long)train.n, (long long)test.n, (long long)batch);
  int64_t *order = malloc(sizeof *order * (size_t)train.n);
  for (int64_t i = 0; i < train.n; i++) order[i] = i;
  uint64_t rng = 42;
  for (int e = 0; e < epochs; e++) {
    for (int64_t i = train.n - 1; i > 0; i--) {     /* shuffle each epoch */
      rng = rng * 6364136223846793005u + 1442695040888963407u;
      int64_t j = (int64_t)((rng >> 33) % (uint64_t)(i + 1)), t = order[i];
      order[i] = order[j], order[j] = t;
    }
    double t0 = now(), sum = 0;
    for (int64_t at = 0; at < train.n; at += batch) {
      int64_t bs = train.n - at < batch ? train.n - at : batch;
      double loss;
      if (mnist_mlp_bind(m, bs, NULL)) break;
      feed(m, &train, order, at, bs);
      if (mnist_mlp_train_step(m, &loss)) break;
      sum += loss * (double)bs;
    }
    printf("epoch %d: loss %.4f, %.2f s\n", e + 1, sum / (double)train.n, now() - t0);
  }
  double correct = 0;
  for (int64_t at = 0; at < test.n; at += batch) {
    int64_t bs = test.n - at < batch ? test.n - at : batch;
    mnist_mlp_bind(m, bs, NULL);
    feed(m, &test, NULL, at, bs);
    mnist_mlp_forward(m);
    correct += *(float *)mnist_mlp_data(m, "accuracy", NULL) * (double)bs;
  }
  printf("test accuracy: %.4f\n", correct / (double)test.n);
  if (end && mnist_mlp_save(m, end)) fprintf(stderr, "train_mnist_so: %s\n", mnist_mlp_last_error(m));
  free(order);
  free(train.x), free(train.y), free(test.x), free(test.y);
  mnist_mlp_free(m);
  return 0;
}
