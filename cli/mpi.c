/*
 * mpi.c - data-parallel training over MPI for `mpirun -np N gradc train`.
 *
 * Every rank compiles the same model with gradc_options.data_parallel, so
 * each train step hands every gradient, once complete and before the
 * update, to the callback installed here (gradc_set_allreduce).  The
 * training loop (train.c) asks this file which rows of each global batch
 * are this rank's (dist_share), and sums its loss and metrics over the
 * ranks (dist_sum); everything MPI is here, behind the Dist handle, so the
 * rest of gradc builds and runs without MPI (the stubs at the end).
 *
 * The reduction is deterministic, whatever MPI library or algorithm:
 * each gradient is cut into N chunks; an MPI_Alltoall gives rank r every
 * rank's copy of chunk r, which it adds in rank order 0..N-1 in double,
 * each weighted by that rank's share of the batch, and rounds once; an
 * MPI_Allgather hands the sums round.  So a run repeated with the same N
 * gives the same bits, and N = 1 the bits of a run without MPI; different
 * N agree to rounding (the order of the additions differs).  The traffic
 * per rank is 2 (N-1)/N of the gradient, as a ring all-reduce's.
 *
 * Shared memory (--mpi-reduce, auto: when every rank is on one node, as
 * the ranks of one machine are): the same sum without messages.  Each
 * rank copies its gradients into its part of an MPI-3 shared-memory window
 * (MPI_Win_allocate_shared); after a barrier rank r reads chunk r of
 * every rank's part, adds them in the same rank order and weights, and
 * writes the sums over its own chunk in its own part (no other rank reads
 * that chunk there); after a second barrier every rank copies each chunk
 * from its owner's part.  The bits are the collectives' bits.  Each rank's
 * part has two halves used in turn, so a rank that has passed the next
 * reduction's first barrier knows every rank has finished reading this
 * one's sums: two barriers per reduction, and the gradients are copied
 * once in and once out instead of through an Alltoall and an Allgather
 * (4 copies between processes, each of a chunk, plus the packing).
 *
 * Buckets (--mpi-bucket-mb, PyTorch DDP's bucket_cap_mb, Horovod's tensor
 * fusion): the gradients handed over are gathered, in the order they come,
 * into a bucket until it holds the cap's bytes (or a gradient of another
 * dtype comes, or the step's call without data); then one reduction packs
 * them into one buffer, reduces it and unpacks the sums.  It starts when
 * the bucket's last gradient is complete: at once, or with --mpi-overlap
 * in the communication thread while the backward pass goes on.  Each
 * element's sum is the same rank-ordered weighted sum wherever it lies in
 * the buffer, so the bits do not depend on the cap; small gradients share
 * one pair of collectives instead of paying each its latency.
 *
 * Weights: rank r computes the mean loss of its rows_r rows, so sum_r
 * (rows_r / rows) g_r is the gradient of the mean over the global batch;
 * terms that do not depend on the batch (weight decay) keep their value
 * since the weights sum to 1.  A rank with no rows in a small last batch
 * runs its step on one row with weight 0.  Losses that sum over the batch
 * instead of averaging would need weight 1: gradc assumes means (Keras').
 *
 * Failure: at the start every rank sends rank 0 what must agree (a hash of
 * the model file, gradc's version, the dataset's size, batch, epochs and
 * seed); a mismatch ends every rank with a message naming the rank and
 * what differs.  MPI's errors are returned (MPI_ERRORS_RETURN), reported
 * with the rank, and end the job with MPI_Abort; a watchdog thread aborts
 * a collective that has not finished after --mpi-timeout seconds (a rank
 * died or hangs), so no rank waits forever.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Under a launcher, the size of the job it started (Open MPI, MPICH and
 * other PMI launchers, Slurm); 0 when started alone. */
int dist_launched_size(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return 0;
}

void dist_share(const Dist *d, int64_t rows, int64_t *first, int64_t *count, double *weight) {
  int n = d ? d->size : 1, r = d ? d->rank : 0;
  /* rows split as evenly as possible: the first rows % n ranks one more */
  int64_t lo = rows * r / n, hi = rows * (r + 1) / n;
  *first = lo, *count = hi - lo;
  *weight = rows ? (double)(hi - lo) / (double)rows : 0;
}

/* FNV-1a, enough to tell two files apart (not an adversary's). */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

uint64_t dist_state_hash(gradc_model *m) {
  uint64_t h = 14695981039346656037ull;
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor t;
    if (gradc_tensor_info(m, i, &t) || (t.kind != GRADC_PARAM && t.kind != GRADC_STATE)) continue;
    int64_t count;
    const void *p = gradc_data(m, t.name, &count);
    size_t es = t.dtype == GRADC_F64 ? 8 : t.dtype == GRADC_BOOL ? 1 : 4;
    if (p) h = fnv(h, p, (size_t)count * es);
  }
  return h;
}

#ifdef GRADC_HAVE_MPI
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static uint64_t hash_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint64_t h = 14695981039346656037ull;
  if (!f) return 0;
  unsigned char buf[65536];
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, f)) > 0) h = fnv(h, buf, k);
  fclose(f);
  return h;
}

/* What every rank must agree on before training. */
typedef struct Agree {
  uint64_t model, version;
  int64_t samples, batch, epochs, seed;
} Agree;

enum { QUEUE = 64 };       /* buckets handed to the communication thread */

/* One gradient handed over by the step: reduced in place. */
struct Job { void *data; int64_t count; gradc_dtype dtype; };

/* The gradients of one reduction: a bucket (one gradient without buckets). */
typedef struct Bucket {
  struct Job job[256];
  int n;
} Bucket;

struct DistImpl {
  /* the watchdog: the collective under way and since when (0: none) */
  pthread_t watchdog;
  pthread_mutex_t lock;
  const char *op;
  double since, timeout;
  bool stop;
  /* the gradient reduction's buffers, grown to the largest reduction */
  void *send, *recv;
  size_t cap;
  /* the shared-memory reduction: the ranks of one node, the window, every
   * rank's part of it (two halves of half bytes each), the half in use */
  MPI_Comm node;
  MPI_Win win;
  char **part;
  size_t half;
  int parity;
  /* the bucket being filled: gradients handed over, not yet reduced
   * (bucket_cap 0: none, each gradient its own reduction) */
  size_t bucket_cap, bucket_bytes;
  Bucket filling;
  void *packed;             /* a bucket's gradients end to end */
  size_t packed_cap;
  double *weights;        /* each rank's share of the current batch */
  /* --mpi-overlap: a communication thread reduces the gradients queued by
   * the step's calls while the backward pass goes on; the call without
   * data waits for the queue to drain */
  bool overlap, stop_comm, comm_failed;
  pthread_t comm;
  pthread_mutex_t qlock;
  pthread_cond_t qwork, qdone;
  Bucket queue[QUEUE];
  long qhead, qtail;
  /* the failure tests' hook: GRADC_MPI_TEST=kill:RANK:N or stall:RANK:N
   * kills rank RANK (SIGKILL) or stops it for good at its Nth reduction */
  char fault;
  int fault_rank;
  long fault_at;
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A collective begins (op) or ends (NULL): what the watchdog watches. */
static void watch(Dist *d, const char *op) {
  pthread_mutex_lock(&d->impl->lock);
  d->impl->op = op;
  d->impl->since = op ? now_s() : 0;
  pthread_mutex_unlock(&d->impl->lock);
}

/* MPI_Abort from this thread while the main one waits inside MPI: the
 * library was initialised for one thread (MPI_Init), so this is outside
 * the standard's promise; Open MPI and MPICH end the job all the same, and
 * _exit after it makes sure at least this rank ends. */
static void *watchdog(void *arg) {
  Dist *d = arg;
  for (;;) {
    usleep(100000);
    pthread_mutex_lock(&d->impl->lock);
    bool stop = d->impl->stop;
    const char *op = d->impl->op;
    double waited = op ? now_s() - d->impl->since : 0;
    pthread_mutex_unlock(&d->impl->lock);
    if (stop) return NULL;
    if (op && waited > d->impl->timeout) {
      fprintf(stderr, "gradc: error: rank %d of %d: %s has not completed after %.0f s (--mpi-timeout): another rank "
              "died or hangs; ending every rank\n", d->rank, d->size, op, d->impl->timeout);
      fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 3);
      _exit(3);
    }
  }
}

/* An MPI call's failure, reported with the rank, ends the whole job. */
static void check(Dist *d, int rc, const char *what) {
  watch(d, NULL);
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fprintf(stderr, "gradc: error: rank %d of %d: %s failed: %s; ending every rank\n", d->rank, d->size, what, msg);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  _exit(3);
}

bool dist_available(void) { return true; }

static void *comm_thread(void *arg);

/* The launcher ends the other ranks with SIGTERM when one dies: each says
 * so (write(2): async-signal-safe) rather than vanishing silently. */
static char term_msg[160];
static void on_term(int sig) {
  (void)sig;
  ssize_t ignored = write(2, term_msg, strlen(term_msg));
  (void)ignored;
  _exit(143);
}

gradc_status dist_init(Dist *d, const DistOptions *o, RtError *err) {
  memset(d, 0, sizeof *d);
  double timeout = o->timeout, bucket_mb = o->bucket_mb;
  bool overlap = o->overlap;
  /* with overlap only the communication thread calls MPI during a step,
   * and the main thread only between steps, when the queue is empty */
  int provided = MPI_THREAD_SINGLE;
  if (MPI_Init_thread(NULL, NULL, overlap ? MPI_THREAD_SERIALIZED : MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
    return rt_fail(err, GRADC_ERR_ARG, "MPI_Init failed");
  if (overlap && provided < MPI_THREAD_SERIALIZED)
    return rt_fail(err, GRADC_ERR_ARG, "--mpi-overlap needs MPI_THREAD_SERIALIZED, which this MPI library does not "
                   "provide");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d->size);
  /* A launcher of another MPI library (MPICH's mpiexec starting a gradc
   * built with Open MPI, or the reverse) starts N processes that each
   * find a job of 1: N separate trainings writing the same files. */
  int launched = dist_launched_size();
  if (launched > 1 && d->size != launched) {
    MPI_Finalize();
    return rt_fail(err, GRADC_ERR_ARG, "the launcher started %d processes, but MPI reports a job of %d: this gradc was "
                   "built with another MPI library than the launcher's (use the mpirun of the MPI gradc was built "
                   "with)", launched, d->size);
  }
  snprintf(term_msg, sizeof term_msg, "gradc: error: rank %d of %d: ended by the launcher (SIGTERM), most likely "
           "because another rank failed or died\n", d->rank, d->size);
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  d->impl = calloc(1, sizeof *d->impl);
  if (!d->impl) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  d->impl->weights = calloc((size_t)d->size, sizeof(double));
  if (!d->impl->weights) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  d->impl->timeout = timeout;
  d->impl->bucket_cap = (size_t)(bucket_mb * 1024 * 1024);
  const char *t = getenv("GRADC_MPI_TEST");
  char kind[8];
  if (t && sscanf(t, "%7[a-z]:%d:%ld", kind, &d->impl->fault_rank, &d->impl->fault_at) == 3)
    d->impl->fault = kind[0];
  d->impl->node = MPI_COMM_NULL;
  if (o->reduce != DIST_REDUCE_COLLECTIVE && d->size > 1) {
    int on_node = 0;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &d->impl->node) == MPI_SUCCESS)
      MPI_Comm_size(d->impl->node, &on_node);
    /* every rank decides alike: the node sizes are the same on all ranks
     * exactly when all are on one node */
    d->shared = on_node == d->size;
    if (!d->shared && d->impl->node != MPI_COMM_NULL) MPI_Comm_free(&d->impl->node);
    if (!d->shared && o->reduce == DIST_REDUCE_SHARED)
      return rt_fail(err, GRADC_ERR_ARG, "--mpi-reduce shared: rank %d shares a node with %d of the %d ranks; the "
                     "shared-memory reduction needs every rank on one node (use auto or collective)", d->rank,
                     on_node, d->size);
    if (d->shared && !(d->impl->part = calloc((size_t)d->size, sizeof(char *))))
      return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
    d->impl->win = MPI_WIN_NULL;
  }
  pthread_mutex_init(&d->impl->lock, NULL);
  if (pthread_create(&d->impl->watchdog, NULL, watchdog, d))
    return rt_fail(err, GRADC_ERR_ARG, "cannot start the MPI watchdog thread");
  d->impl->overlap = overlap;
  pthread_mutex_init(&d->impl->qlock, NULL);
  pthread_cond_init(&d->impl->qwork, NULL);
  pthread_cond_init(&d->impl->qdone, NULL);
  if (overlap && pthread_create(&d->impl->comm, NULL, comm_thread, d))
    return rt_fail(err, GRADC_ERR_ARG, "cannot start the communication thread");
  return GRADC_OK;
}

void dist_finish(Dist *d) {
  if (!d || !d->impl) return;
  pthread_mutex_lock(&d->impl->lock);
  d->impl->stop = true;
  pthread_mutex_unlock(&d->impl->lock);
  pthread_join(d->impl->watchdog, NULL);
  if (d->impl->overlap) {
    pthread_mutex_lock(&d->impl->qlock);
    d->impl->stop_comm = true;
    pthread_cond_signal(&d->impl->qwork);
    pthread_mutex_unlock(&d->impl->qlock);
    pthread_join(d->impl->comm, NULL);
  }
  if (d->impl->win != MPI_WIN_NULL && d->shared) {
    MPI_Win_unlock_all(d->impl->win);
    MPI_Win_free(&d->impl->win);
  }
  if (d->impl->node != MPI_COMM_NULL) MPI_Comm_free(&d->impl->node);
  free(d->impl->send), free(d->impl->recv), free(d->impl->weights), free(d->impl->packed), free(d->impl->part);
  free(d->impl);
  d->impl = NULL;
  MPI_Finalize();
}

void dist_abort(Dist *d, int code) {
  fflush(stdout), fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  (void)d;
  _exit(code);
}

gradc_status dist_agree(Dist *d, const char *model_path, const char *version, int64_t samples, int64_t batch,
                        int epochs, uint64_t seed, RtError *err) {
  Agree me = {hash_file(model_path), fnv(14695981039346656037ull, version, strlen(version)), samples, batch, epochs,
              (int64_t)seed};
  Agree *all = malloc(sizeof(Agree) * (size_t)d->size);
  if (!all) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  watch(d, "MPI_Allgather (the start-up check)");
  check(d, MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, MPI_COMM_WORLD),
        "MPI_Allgather (the start-up check)");
  gradc_status s = GRADC_OK;
  for (int r = 1; r < d->size && !s; r++) {
    const Agree *a = &all[r], *z = &all[0];
    if (a->model != z->model)
      s = rt_fail(err, GRADC_ERR_ARG, "rank %d's model file '%s' differs from rank 0's (hash %016" PRIx64 " vs %016"
                  PRIx64 "): every rank must train the same model", r, model_path, a->model, z->model);
    else if (a->version != z->version)
      s = rt_fail(err, GRADC_ERR_ARG, "rank %d runs another gradc version than rank 0 (this one is %s)", r, version);
    else if (a->samples != z->samples)
      s = rt_fail(err, GRADC_ERR_ARG, "rank %d's training data has %lld samples, rank 0's %lld: every rank must "
                  "read the same data", r, (long long)a->samples, (long long)z->samples);
    else if (a->batch != z->batch || a->epochs != z->epochs || a->seed != z->seed)
      s = rt_fail(err, GRADC_ERR_ARG, "rank %d has --batch %lld --epochs %lld --seed %lld, rank 0 --batch %lld "
                  "--epochs %lld --seed %lld", r, (long long)a->batch, (long long)a->epochs, (long long)a->seed,
                  (long long)z->batch, (long long)z->epochs, (long long)z->seed);
  }
  free(all);
  return s;
}

/* GRADC_MPI_TEST's fault, at the reduction it names. */
static void fault_hook(Dist *d) {
  struct DistImpl *x = d->impl;
  if (x->fault && d->rank == x->fault_rank && d->reductions + 1 == x->fault_at) {
    if (x->fault == 'k') raise(SIGKILL);
    for (;;) pause();
  }
}

/* The f32 case of weighted_sum four lanes at a time: the same widening,
 * multiplication and addition per element (no FMA: a fused one would round
 * differently from the scalar loop), so the same bits.  GCC at -O2 left
 * the plain loop scalar, and on 2 ranks it was most of the MLP's
 * reduction time. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define WSUM_AVX2 1
__attribute__((target("avx2"))) static void wsum_f32_avx2(double *acc, const float *v, double wr, int64_t m) {
  __m256d w4 = _mm256_set1_pd(wr);
  int64_t j = 0;
  for (; j + 4 <= m; j += 4)
    _mm256_storeu_pd(acc + j, _mm256_add_pd(_mm256_loadu_pd(acc + j),
                                            _mm256_mul_pd(w4, _mm256_cvtps_pd(_mm_loadu_ps(v + j)))));
  for (; j < m; j++) acc[j] += wr * (double)v[j];
}

__attribute__((target("avx2"))) static void wsum_round_avx2(float *dst, const double *acc, int64_t m) {
  int64_t j = 0;
  for (; j + 4 <= m; j += 4) _mm_storeu_ps(dst + j, _mm256_cvtpd_ps(_mm256_loadu_pd(acc + j)));
  for (; j < m; j++) dst[j] = (float)acc[j];
}
#endif

/* dst[j] = sum over r in rank order of w[r] src[r][j], in double, rounded
 * once: the one sum both reductions compute.  In blocks, the ranks the
 * outer loop, so the inner one is a vector loop. */
static void weighted_sum(void *dst, void *const *src, const double *w, int n, int64_t count, gradc_dtype dtype) {
  enum { B = 512 };
  double acc[B];
#ifdef WSUM_AVX2
  bool avx2 = __builtin_cpu_supports("avx2");
#endif
  for (int64_t j0 = 0; j0 < count; j0 += B) {
    int64_t m = count - j0 < B ? count - j0 : B;
    for (int64_t j = 0; j < m; j++) acc[j] = 0;
    for (int r = 0; r < n; r++) {
      double wr = w[r];
      if (dtype == GRADC_F64) {
        const double *v = (const double *)src[r] + j0;
        for (int64_t j = 0; j < m; j++) acc[j] += wr * v[j];
        continue;
      }
      const float *v = (const float *)src[r] + j0;
#ifdef WSUM_AVX2
      if (avx2) {
        wsum_f32_avx2(acc, v, wr, m);
        continue;
      }
#endif
      for (int64_t j = 0; j < m; j++) acc[j] += wr * (double)v[j];
    }
    if (dtype == GRADC_F64) {
      memcpy((double *)dst + j0, acc, (size_t)m * sizeof(double));
      continue;
    }
#ifdef WSUM_AVX2
    if (avx2) {
      wsum_round_avx2((float *)dst + j0, acc, m);
      continue;
    }
#endif
    for (int64_t j = 0; j < m; j++) ((float *)dst + j0)[j] = (float)acc[j];
  }
}

/* The deterministic weighted sum described at the top. */
static int reduce_now(Dist *d, void *data, int64_t count, gradc_dtype dtype) {
  struct DistImpl *x = d->impl;
  double t0 = now_s();
  int n = d->size, me = d->rank;
  size_t es = dtype == GRADC_F64 ? 8 : 4;
  fault_hook(d);
  MPI_Datatype type = dtype == GRADC_F64 ? MPI_DOUBLE : MPI_FLOAT;
  int64_t chunk = (count + n - 1) / n;
  size_t bytes = (size_t)(chunk * n) * es;
  if (bytes > x->cap) {
    void *s = realloc(x->send, bytes), *r = s ? realloc(x->recv, bytes) : NULL;
    if (s) x->send = s;
    if (r) x->recv = r;
    if (!s || !r) return 1;
    x->cap = bytes;
  }
  /* a gradient that splits evenly is sent from where it lies */
  void *send = data;
  if (count % n) {
    memcpy(x->send, data, (size_t)count * es);
    memset((char *)x->send + (size_t)count * es, 0, bytes - (size_t)count * es);
    send = x->send;
  }
  watch(d, "MPI_Alltoall (the gradient reduction)");
  check(d, MPI_Alltoall(send, (int)chunk, type, x->recv, (int)chunk, type, MPI_COMM_WORLD),
        "MPI_Alltoall (the gradient reduction)");
  /* rank r's copy of my chunk is recv[r * chunk ...]: summed in rank order */
  char *mine = (char *)x->send + (size_t)(me * chunk) * es;
  void *src[n];
  for (int r = 0; r < n; r++) src[r] = (char *)x->recv + (size_t)(r * chunk) * es;
  weighted_sum(mine, src, x->weights, n, chunk, dtype);
  watch(d, "MPI_Allgather (the gradient reduction)");
  check(d, MPI_Allgather(MPI_IN_PLACE, 0, type, x->send, (int)chunk, type, MPI_COMM_WORLD),
        "MPI_Allgather (the gradient reduction)");
  memcpy(data, x->send, (size_t)count * es);
  d->comm_seconds += now_s() - t0;
  d->reductions++;
  return 0;
}

/* The ranks of the node meet: what each wrote to the window before is
 * seen by all after (the unified memory model's sync, barrier, sync). */
static void node_sync(Dist *d) {
  struct DistImpl *x = d->impl;
  MPI_Win_sync(x->win);
  watch(d, "MPI_Barrier (the gradient reduction)");
  check(d, MPI_Barrier(x->node), "MPI_Barrier (the gradient reduction)");
  MPI_Win_sync(x->win);
}

/* The window holds at least bytes per half: a collective call, made by
 * every rank at the same reduction since all reduce the same sizes. */
static void shared_reserve(Dist *d, size_t bytes) {
  struct DistImpl *x = d->impl;
  if (bytes <= x->half) return;
  if (x->win != MPI_WIN_NULL) {
    node_sync(d);   /* nobody still reads the old window */
    MPI_Win_unlock_all(x->win);
    MPI_Win_free(&x->win);
  }
  size_t half = (bytes + 65535) & ~(size_t)65535;
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");   /* each part on its rank's own pages */
  char *base;
  watch(d, "MPI_Win_allocate_shared (the gradient reduction)");
  int rc = MPI_Win_allocate_shared((MPI_Aint)(2 * half), 1, info, x->node, &base, &x->win);
  MPI_Info_free(&info);
  check(d, rc, "MPI_Win_allocate_shared (the gradient reduction)");
  for (int r = 0; r < d->size; r++) {
    MPI_Aint size;
    int unit;
    MPI_Win_shared_query(x->win, r, &size, &unit, &x->part[r]);
  }
  MPI_Win_lock_all(MPI_MODE_NOCHECK, x->win);
  x->half = half;
}

/* One bucket through the window: packed into this rank's half, each
 * chunk summed by its owner, unpacked from the owners' halves. */
static int reduce_shared(Dist *d, const Bucket *b) {
  struct DistImpl *x = d->impl;
  double t0 = now_s();
  int n = d->size, me = d->rank;
  gradc_dtype dtype = b->job[0].dtype;
  size_t es = dtype == GRADC_F64 ? 8 : 4, bytes = 0;
  for (int k = 0; k < b->n; k++) bytes += (size_t)b->job[k].count * es;
  fault_hook(d);
  shared_reserve(d, bytes);
  size_t off = x->parity ? x->half : 0;
  x->parity ^= 1;
  char *at = x->part[me] + off;
  for (int k = 0; k < b->n; k++) {
    memcpy(at, b->job[k].data, (size_t)b->job[k].count * es);
    at += (size_t)b->job[k].count * es;
  }
  node_sync(d);
  int64_t count = (int64_t)(bytes / es), chunk = (count + n - 1) / n;
  int64_t lo = me * chunk < count ? me * chunk : count, hi = lo + chunk < count ? lo + chunk : count;
  void *src[n];
  for (int r = 0; r < n; r++) src[r] = x->part[r] + off + (size_t)lo * es;
  weighted_sum(x->part[me] + off + (size_t)lo * es, src, x->weights, n, hi - lo, dtype);
  node_sync(d);
  /* element e's sum lies in the part of rank e / chunk */
  int64_t e = 0;
  for (int k = 0; k < b->n; k++) {
    char *dst = b->job[k].data;
    for (int64_t left = b->job[k].count; left > 0;) {
      int64_t owner = e / chunk, run = (owner + 1) * chunk - e;
      if (run > left) run = left;
      memcpy(dst, x->part[owner] + off + (size_t)e * es, (size_t)run * es);
      dst += (size_t)run * es, e += run, left -= run;
    }
  }
  d->comm_seconds += now_s() - t0;
  d->reductions++;
  return 0;
}

/* One bucket's reduction: a lone gradient in place, several packed end to
 * end, reduced at once and unpacked. */
static int reduce_bucket(Dist *d, const Bucket *b) {
  struct DistImpl *x = d->impl;
  d->gradients += b->n;
  if (d->shared) return reduce_shared(d, b);
  if (b->n == 1) return reduce_now(d, b->job[0].data, b->job[0].count, b->job[0].dtype);
  size_t es = b->job[0].dtype == GRADC_F64 ? 8 : 4, bytes = 0;
  for (int k = 0; k < b->n; k++) bytes += (size_t)b->job[k].count * es;
  if (bytes > x->packed_cap) {
    void *p = realloc(x->packed, bytes);
    if (!p) return 1;
    x->packed = p, x->packed_cap = bytes;
  }
  char *at = x->packed;
  for (int k = 0; k < b->n; k++) {
    memcpy(at, b->job[k].data, (size_t)b->job[k].count * es);
    at += (size_t)b->job[k].count * es;
  }
  int failed = reduce_now(d, x->packed, (int64_t)(bytes / es), b->job[0].dtype);
  at = x->packed;
  for (int k = 0; k < b->n; k++) {
    memcpy(b->job[k].data, at, (size_t)b->job[k].count * es);
    at += (size_t)b->job[k].count * es;
  }
  return failed;
}

static void *comm_thread(void *arg) {
  Dist *d = arg;
  struct DistImpl *x = d->impl;
  pthread_mutex_lock(&x->qlock);
  for (;;) {
    while (x->qhead == x->qtail && !x->stop_comm) pthread_cond_wait(&x->qwork, &x->qlock);
    if (x->qhead == x->qtail) break;
    /* the slot stays ours until qhead moves past it */
    const Bucket *b = &x->queue[x->qhead % QUEUE];
    pthread_mutex_unlock(&x->qlock);
    int failed = reduce_bucket(d, b);
    pthread_mutex_lock(&x->qlock);
    x->comm_failed |= failed != 0;
    x->qhead++;
    pthread_cond_broadcast(&x->qdone);
  }
  pthread_mutex_unlock(&x->qlock);
  return NULL;
}

/* The bucket being filled is complete: reduced at once, or queued for the
 * communication thread. */
static int close_bucket(Dist *d) {
  struct DistImpl *x = d->impl;
  if (!x->filling.n) return 0;
  int failed = 0;
  if (!x->overlap) {
    failed = reduce_bucket(d, &x->filling);
  } else {
    pthread_mutex_lock(&x->qlock);
    while (x->qtail - x->qhead >= QUEUE) pthread_cond_wait(&x->qdone, &x->qlock);
    x->queue[x->qtail++ % QUEUE] = x->filling;
    pthread_cond_signal(&x->qwork);
    pthread_mutex_unlock(&x->qlock);
  }
  x->filling.n = 0, x->bucket_bytes = 0;
  return failed;
}

/* The step's callback (gradc_set_allreduce): each gradient joins the
 * bucket (which is reduced once full), and the call without data reduces
 * what the bucket holds; without --mpi-overlap at once, with it in the
 * communication thread, the call without data then waiting for the queue:
 * the time it waits is what overlap did not hide. */
static int reduce_gradient(void *user, void *data, int64_t count, gradc_dtype dtype) {
  Dist *d = user;
  struct DistImpl *x = d->impl;
  int failed = 0;
  if (data) {
    if (x->filling.n && x->filling.job[0].dtype != dtype) failed |= close_bucket(d);
    x->filling.job[x->filling.n++] = (struct Job){data, count, dtype};
    x->bucket_bytes += (size_t)count * (dtype == GRADC_F64 ? 8 : 4);
    if (x->bucket_bytes >= x->bucket_cap || x->filling.n == (int)(sizeof x->filling.job / sizeof *x->filling.job))
      failed |= close_bucket(d);
  } else {
    failed |= close_bucket(d);
  }
  if (!x->overlap) return failed;
  double t0 = now_s();
  pthread_mutex_lock(&x->qlock);
  if (!data) {
    while (x->qhead != x->qtail) pthread_cond_wait(&x->qdone, &x->qlock);
    d->wait_seconds += now_s() - t0;
  }
  failed |= x->comm_failed;
  pthread_mutex_unlock(&x->qlock);
  return failed;
}

/* Rank 0's tensors of a kind (GRADC_PARAM, GRADC_STATE; -1: both) to every rank. */
static void broadcast(Dist *d, gradc_model *m, int kind) {
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor t;
    if (gradc_tensor_info(m, i, &t) || (t.kind != GRADC_PARAM && t.kind != GRADC_STATE) ||
        (kind >= 0 && (int)t.kind != kind))
      continue;
    int64_t count;
    void *p = gradc_data(m, t.name, &count);
    if (!p) continue;
    size_t es = t.dtype == GRADC_F64 ? 8 : t.dtype == GRADC_BOOL ? 1 : 4;
    watch(d, "MPI_Bcast (rank 0's parameters)");
    check(d, MPI_Bcast(p, (int)((size_t)count * es), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast (rank 0's parameters)");
  }
}

gradc_status dist_attach(Dist *d, gradc_model *m, RtError *err) {
  gradc_status s = gradc_set_allreduce(m, reduce_gradient, d);
  if (s) return rt_fail(err, s, "%s", gradc_last_error(m));
  /* rank 0's parameters and state everywhere (a checkpoint it resumed
   * from, or its initial values) */
  broadcast(d, m, -1);
  return GRADC_OK;
}

/* Parameters and optimizer slots stay identical by construction (every
 * rank applies the same summed gradients); the model's own state updates
 * (batch norm's moving statistics) see each rank's batch statistics, so
 * rank 0's replace the others' (PyTorch DDP's broadcast_buffers). */
void dist_sync_state(Dist *d, gradc_model *m) { broadcast(d, m, GRADC_STATE); }

void dist_set_batch(Dist *d, int64_t rows) {
  for (int r = 0; r < d->size; r++) {
    int64_t lo = rows * r / d->size, hi = rows * (r + 1) / d->size;
    d->impl->weights[r] = rows ? (double)(hi - lo) / (double)rows : 0;
  }
}

void dist_sum(Dist *d, double *v, int n) {
  watch(d, "MPI_Allreduce (loss and metrics)");
  check(d, MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce (loss and metrics)");
}

gradc_status dist_check_same(Dist *d, gradc_model *m, int epoch, RtError *err) {
  uint64_t h = dist_state_hash(m), *all = malloc(sizeof(uint64_t) * (size_t)d->size);
  if (!all) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  watch(d, "MPI_Allgather (--mpi-check)");
  check(d, MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather (--mpi-check)");
  gradc_status s = GRADC_OK;
  for (int r = 1; r < d->size && !s; r++)
    if (all[r] != all[0])
      s = rt_fail(err, GRADC_ERR_NUMERIC, "after epoch %d rank %d's parameters differ from rank 0's (checksum "
                  "%016" PRIx64 " vs %016" PRIx64 ")", epoch, r, all[r], all[0]);
  free(all);
  return s;
}

#else   /* built without MPI */

bool dist_available(void) { return false; }

gradc_status dist_init(Dist *d, const DistOptions *o, RtError *err) {
  (void)d, (void)o;
  return rt_fail(err, GRADC_ERR_ARG, "this gradc was built without MPI support, so it cannot train under mpirun "
                 "on several processes (install libopenmpi-dev or MPICH and rebuild; CMake option GRADC_MPI)");
}
void dist_finish(Dist *d) { (void)d; }
void dist_abort(Dist *d, int code) {
  (void)d;
  exit(code);
}
gradc_status dist_agree(Dist *d, const char *model_path, const char *version, int64_t samples, int64_t batch,
                        int epochs, uint64_t seed, RtError *err) {
  (void)d, (void)model_path, (void)version, (void)samples, (void)batch, (void)epochs, (void)seed, (void)err;
  return GRADC_OK;
}
gradc_status dist_attach(Dist *d, gradc_model *m, RtError *err) {
  (void)d, (void)m, (void)err;
  return GRADC_OK;
}
void dist_set_batch(Dist *d, int64_t rows) { (void)d, (void)rows; }
void dist_sync_state(Dist *d, gradc_model *m) { (void)d, (void)m; }
void dist_sum(Dist *d, double *v, int n) { (void)d, (void)v, (void)n; }
gradc_status dist_check_same(Dist *d, gradc_model *m, int epoch, RtError *err) {
  (void)d, (void)m, (void)epoch, (void)err;
  return GRADC_OK;
}
#endif
