/*
 * train_mpi_so.c - data-parallel training of models/mnist_mlp.nn over MPI
 * through its shared object: the program owns the processes, the data and
 * the communication; the .so only computes, and hands each gradient to the
 * callback this program installs (mnist_mlp_set_allreduce).
 *
 *   gradc compile models/mnist_mlp.nn --data-parallel -o libmnist_mlp.so --header mnist_mlp.h
 *   mpicc -O2 -I. examples/train_mpi_so.c -L. -lmnist_mlp -Wl,-rpath,'$ORIGIN' -o train_mpi_so
 *   mpirun -np 2 ./train_mpi_so DIR [epochs] [batch] [end.ckpt]
 *
 * DIR holds uncompressed MNIST-format files (train-images-idx3-ubyte, ...).
 * Every rank reads them, takes rows [B r / N, B (r + 1) / N) of each
 * global batch of B, and its callback scales its gradient by its share of
 * the rows before MPI_Allreduce sums it: the sum is the gradient of the
 * whole batch's mean loss.  (MPI_Allreduce's order of additions is the
 * library's; `gradc train` under mpirun uses a fixed order instead, see
 * cli/mpi.c.)  The parameters start equal on every rank (the same seed)
 * and stay equal; rank 0 prints and saves.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist_mlp.h"

typedef struct Data {
  int64_t n;
  float *x;
  int32_t *y;
} Data;

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static unsigned char *slurp(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  rewind(f);
  unsigned char *b = malloc((size_t)*len + 1);
  if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) free(b), b = NULL;
  fclose(f);
  return b;
}

static int load(const char *dir, const char *prefix, Data *d) {
  char path[1024];
  long ni = 0, nl = 0;
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
  unsigned char *img = slurp(path, &ni);
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
  unsigned char *lab = img ? slurp(path, &nl) : NULL;
  if (!img || !lab || ni < 16 || nl < 8 || be32(img) != 2051 || be32(lab) != 2049 || be32(img + 4) != be32(lab + 4) ||
      ni - 16 < (long)be32(img + 4) * 784 || nl - 8 < (long)be32(lab + 4)) {
    fprintf(stderr, "train_mpi_so: cannot read %s images and labels from '%s'\n", prefix, dir);
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

/* This rank's share of the current batch's rows. */
static double share;

static int allreduce(void *user, void *data, int64_t count, int dtype) {
  (void)user;
  if (!data) return 0;      /* the step's wait: this callback is synchronous */
  if (dtype == GRADC_AOT_F64) {
    for (int64_t i = 0; i < count; i++) ((double *)data)[i] *= share;
    return MPI_Allreduce(MPI_IN_PLACE, data, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  for (int64_t i = 0; i < count; i++) ((float *)data)[i] *= (float)share;
  return MPI_Allreduce(MPI_IN_PLACE, data, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const char *dir = argc > 1 ? argv[1] : ".";
  int epochs = argc > 2 ? atoi(argv[2]) : 1;
  int64_t batch = argc > 3 ? atoll(argv[3]) : 128;
  const char *end = argc > 4 ? argv[4] : NULL;
  Data train;
  if (load(dir, "train", &train)) MPI_Abort(MPI_COMM_WORLD, 1);
  gradc_aot_model *m = mnist_mlp_new();
  if (!m || mnist_mlp_init(m, 1) || mnist_mlp_set_allreduce(m, allreduce, NULL)) {
    fprintf(stderr, "train_mpi_so: rank %d: %s\n", rank, mnist_mlp_last_error(m));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (int e = 0; e < epochs; e++) {
    double sums[2] = {0, 0};              /* loss * rows, rows */
    for (int64_t at = 0; at < train.n; at += batch) {
      int64_t bs = train.n - at < batch ? train.n - at : batch;
      int64_t lo = at + bs * rank / size, hi = at + bs * (rank + 1) / size;
      /* a rank without rows in a small last batch steps on one, weight 0 */
      int64_t rows = hi > lo ? hi - lo : 1;
      share = (double)(hi - lo) / (double)bs;
      double loss;
      /* dropout masks (a model with dropout) draw this rank's rows of the batch */
      if (mnist_mlp_set_row_offset(m, hi > lo ? lo - at : 0) || mnist_mlp_bind(m, rows, NULL)) break;
      float *x = mnist_mlp_data(m, "x", NULL);
      int32_t *y = mnist_mlp_data(m, "y", NULL);
      memcpy(x, train.x + (hi > lo ? lo : at) * 784, sizeof(float) * 784 * (size_t)rows);
      memcpy(y, train.y + (hi > lo ? lo : at), sizeof(int32_t) * (size_t)rows);
      if (mnist_mlp_train_step(m, &loss)) {
        fprintf(stderr, "train_mpi_so: rank %d: %s\n", rank, mnist_mlp_last_error(m));
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      sums[0] += loss * (double)(hi - lo), sums[1] += (double)(hi - lo);
    }
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("epoch %d: loss %.4f on %d ranks\n", e + 1, sums[0] / sums[1], size);
  }
  if (rank == 0 && end && mnist_mlp_save(m, end)) fprintf(stderr, "train_mpi_so: %s\n", mnist_mlp_last_error(m));
  free(train.x), free(train.y);
  mnist_mlp_free(m);
  MPI_Finalize();
  return 0;
}
