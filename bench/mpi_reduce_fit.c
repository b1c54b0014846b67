/*
 * mpi_reduce_fit.c - times the exchange of gradc's gradient reduction
 * (cli/mpi.c: MPI_Alltoall of N chunks, then MPI_Allgather of the sums) and
 * of MPI_Allreduce for f32 messages of 1 KiB to 16 MiB, and fits
 * t = a + b * bytes to each by least squares: the alpha (latency) and beta
 * (seconds per byte) of docs/scaling.md.
 *
 *   mpicc -O2 bench/mpi_reduce_fit.c -o mpi_reduce_fit
 *   mpirun -np 2 ./mpi_reduce_fit
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  enum { SIZES = 15 };
  double x[SIZES], t[2][SIZES];
  for (int s = 0; s < SIZES; s++) {
    long count = (256L << s) / n * n;          /* 1 KiB .. 16 MiB of f32 */
    float *a = calloc((size_t)count, 4), *b = calloc((size_t)count, 4);
    int reps = s < 8 ? 200 : s < 12 ? 40 : 10;
    for (int k = 0; k < 2; k++) {
      double best = 1e30;
      for (int r = 0; r < 3; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int i = 0; i < reps; i++) {
          if (k == 0) {
            MPI_Alltoall(a, (int)(count / n), MPI_FLOAT, b, (int)(count / n), MPI_FLOAT, MPI_COMM_WORLD);
            MPI_Allgather(MPI_IN_PLACE, 0, MPI_FLOAT, a, (int)(count / n), MPI_FLOAT, MPI_COMM_WORLD);
          } else {
            MPI_Allreduce(MPI_IN_PLACE, a, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
          }
        }
        double dt = (MPI_Wtime() - t0) / reps;
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (dt < best) best = dt;
      }
      t[k][s] = best;
    }
    x[s] = (double)count * 4;
    free(a), free(b);
  }
  if (rank == 0) {
    printf("%d ranks\n%12s %14s %14s\n", n, "bytes", "alltoall+ag us", "allreduce us");
    for (int s = 0; s < SIZES; s++) printf("%12.0f %14.1f %14.1f\n", x[s], 1e6 * t[0][s], 1e6 * t[1][s]);
    /* alpha: the smallest message's time; beta: the least-squares slope
     * over messages of 256 KiB and more (a fit over all sizes lets the
     * large ones' noise swamp the latency) */
    for (int k = 0; k < 2; k++) {
      double sx = 0, sy = 0, sxx = 0, sxy = 0;
      int m = 0;
      for (int s = 8; s < SIZES; s++, m++) sx += x[s], sy += t[k][s], sxx += x[s] * x[s], sxy += x[s] * t[k][s];
      double b = (m * sxy - sx * sy) / (m * sxx - sx * sx), a = t[k][0];
      printf("%s: alpha %.1f us, beta %.3f ns/byte (%.2f GB/s)\n", k ? "MPI_Allreduce" : "alltoall+allgather",
             1e6 * a, 1e9 * b, 1e-9 / b);
    }
  }
  MPI_Finalize();
  return 0;
}
