/*
 * train.c - the training loop behind `gradc train`, `eval` and `predict`.
 *
 * Data meets the model as feed.c plans it (images to the one float input,
 * labels to the i32 one); a CSV file (--data points.csv) feeds the inputs
 * in declaration order, or with --sequences holds a label and ids per row,
 * and has no test split; sequences (CSV, or IDX vectors in a directory)
 * are padded or truncated to the input's length (--padding, --truncating,
 * --pad-value).  A model without inputs
 * (Himmelblau) takes one step per epoch.
 *
 * Output follows Keras' fit(): a live progress bar per epoch on a terminal
 * (the final line only otherwise), running means of the loss and metrics
 * weighted by batch size, validation after each epoch, a history CSV, and
 * test loss and metrics at the end.  SIGINT stops after the current step;
 * with --save the checkpoint is written before exiting.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double scalar_of(gradc_model *m, const Node *n, const char *name) {
  void *p = gradc_data(m, name, NULL);
  if (!p) return NAN;
  switch (n->dtype) {
  case DT_F32: return *(float *)p;
  case DT_F64: return *(double *)p;
  case DT_I32: return *(int32_t *)p;
  case DT_BOOL: return *(uint8_t *)p;
  case DT_COUNT: break;
  }
  return NAN;
}

/* Running sums of each step's loss and each metric, weighted by batch
 * size: a step's loss over the batches it ran on, the metrics over the
 * batches the data-reading steps ran on (with one step, the same). */
typedef struct Means {
  double loss[MAX_STEPS], lweight[MAX_STEPS], metric[16], weight;
} Means;

static void accumulate_loss(Means *a, int step, double loss, int64_t bs) {
  a->loss[step] += loss * (double)bs;
  a->lweight[step] += (double)bs;
}

static void accumulate(gradc_model *m, const Graph *g, Means *a, int64_t bs) {
  for (int i = 0; i < g->nmetrics && i < 16; i++)
    a->metric[i] += scalar_of(m, g->metrics[i].node, g->metrics[i].name) * (double)bs;
  a->weight += (double)bs;
}

/* NaN for a step that did not run (a generator step the epoch's data
 * ran out before). */
static double mean_loss(const Means *a, int step) {
  return a->lweight[step] > 0 ? a->loss[step] / a->lweight[step] : NAN;
}

/* Numbers of the per-epoch lines and the history, without fprintf: in a
 * process that has loaded libquadmath (OpenBLAS's libgfortran brings it,
 * and registers a printf type) glibc sends every printf call through its
 * slow positional path, which was a third of a tiny model's epoch.
 * strfromd formats the double as "%.Nf" does, without that path. */
static void put_int(FILE *f, long long v, int width) {
  char b[24];
  int i = (int)sizeof b;
  unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
  do b[--i] = (char)('0' + u % 10); while (u /= 10);
  if (v < 0) b[--i] = '-';
  for (int pad = width - ((int)sizeof b - i); pad > 0; pad--) fputc(' ', f);
  fwrite(b + i, 1, sizeof b - (size_t)i, f);
}

static void put_fixed(FILE *f, double v, int decimals) {
  static const char *const fmt[] = {"%.0f", "%.1f", "%.2f", "%.3f", "%.4f", "%.5f", "%.6f"};
  char b[400];   /* %.6f of DBL_MAX is 316 characters */
  strfromd(b, sizeof b, fmt[decimals], v);
  fputs(b, f);
}

/* "loss" with one step, else "NAME_loss" per step (Keras' GAN examples
 * print d_loss and g_loss). */
static void put_means(FILE *out, const Graph *g, const Means *a, const char *prefix) {
  double w = a->weight > 0 ? a->weight : 1;
  for (int s = 0; s < g->nsteps; s++)
    if (a->lweight[s] > 0 || g->nsteps == 1) {
      fputs(" - ", out);
      fputs(prefix, out);
      if (g->nsteps > 1) fputs(g->steps[s].name, out), fputc('_', out);
      fputs("loss: ", out);
      put_fixed(out, a->lweight[s] > 0 ? mean_loss(a, s) : 0, 4);
    }
  for (int i = 0; i < g->nmetrics && i < 16; i++) {
    fputs(" - ", out);
    fputs(prefix, out);
    fputs(g->metrics[i].name, out);
    fputs(": ", out);
    put_fixed(out, a->metric[i] / w, 4);
  }
}

static void progress(FILE *out, int64_t step, int64_t steps, double elapsed, const Graph *g,
                     const Means *a, bool final) {
  int width = 30, done = steps ? (int)(width * step / steps) : width;
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < done ? '=' : '.';
  if (!final && done < width) bar[done] = '>';
  bar[width] = 0;
  int digits = 1;
  for (int64_t k = steps; k >= 10; k /= 10) digits++;
  fputc('\r', out);
  put_int(out, step, digits);
  fputc('/', out);
  put_int(out, steps, 0);
  fputs(" [", out);
  fputs(bar, out);
  fputs("] - ", out);
  if (final) {
    double per = step ? elapsed / (double)step : 0;
    put_fixed(out, elapsed, 0);
    fputs("s ", out);
    put_fixed(out, per * 1e3, 0);
    fputs("ms/step", out);
  } else {
    double eta = step ? elapsed / (double)step * (double)(steps - step) : 0;
    fputs("ETA: ", out);
    put_fixed(out, eta, 0);
    fputc('s', out);
  }
  put_means(out, g, a, "");
}

/* Loss and metrics over a whole dataset, forward only. */
static gradc_status evaluate(gradc_model *m, const Graph *g, const Feed *f, const Dataset *d,
                             int64_t batch, Dist *dist, Means *out, RtError *err) {
  memset(out, 0, sizeof *out);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
  if (!idx) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  /* data parallel: each rank its share of the samples, then the sums */
  int64_t lo, mine;
  double w;
  dist_share(dist, d->n, &lo, &mine, &w);
  for (int64_t at = lo; at < lo + mine; at += batch) {
    int64_t bs = lo + mine - at < batch ? lo + mine - at : batch;
    gradc_status s = gradc_bind(m, bs);
    if (s) {
      free(idx);
      return rt_fail(err, s, "%s", gradc_last_error(m));
    }
    for (int64_t i = 0; i < bs; i++) idx[i] = at + i;
    feed_gather(m, f, d, idx, bs);
    gradc_forward(m);
    for (int st = 0; st < g->nsteps; st++) {
      const Node *l = g->steps[st].loss;
      accumulate_loss(out, st, scalar_of(m, l, l->name ? l->name : "loss"), bs);
    }
    accumulate(m, g, out, bs);
  }
  free(idx);
  if (dist) dist_sum(dist, out->loss, (int)(sizeof *out / sizeof(double)));
  return GRADC_OK;
}

/* What --data names, by content and names, not by what the user says:
 * a file is an .npz (a zip: "PK\3\4") or else a CSV table; a directory
 * holds CIFAR batches, NAME.npy arrays, MNIST-format IDX files, or
 * folders of images, one per class.  A directory that is none of these is
 * IDX's, whose loader says which files it lacks. */
DataKind cli_data_kind(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return DATA_IDX;
  if (S_ISREG(st.st_mode)) {
    unsigned char magic[6] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 6, f) : 0;
    if (f) fclose(f);
    if (got == 6 && !memcmp(magic, "\x93NUMPY", 6)) return DATA_NPY_FILE;
    return got >= 4 && !memcmp(magic, "PK\3\4", 4) ? DATA_NPZ : DATA_CSV;
  }
  if (!S_ISDIR(st.st_mode)) return DATA_IDX;
  if (data_is_cifar_dir(path)) return DATA_CIFAR;
  if (data_arrays_have(path, "x_train") || data_arrays_have(path, "x")) return DATA_NPY_DIR;
  char a[4096], b[4096];
  bool seq;
  RtError ignored;
  if (!data_mnist_paths(path, true, a, b, sizeof a, &seq, &ignored) ||
      !data_mnist_paths(path, false, a, b, sizeof a, &seq, &ignored))
    return DATA_IDX;
  return cli_is_image_dir(path) ? DATA_IMAGES : DATA_IDX;
}

static bool is_table(const char *path) { return cli_data_kind(path) == DATA_CSV; }

/* The arrays of an .npz or a directory of .npy files that make the split:
 * --arrays' names, else Keras' (x_train, y_train; x_test, y_test), else
 * x and y for the training split.  *y is NULL when there is no label
 * array of the default name. */
static void array_names(const TrainOptions *o, bool train, const char **x, const char **y) {
  *x = o->arrays[train ? 0 : 2], *y = o->arrays[train ? 1 : 3];
  bool keras = data_arrays_have(o->data_dir, train ? "x_train" : "x_test");
  if (!*x) *x = train ? (keras ? "x_train" : "x") : "x_test";
  if (!*y) {
    const char *name = train ? (keras ? "y_train" : "y") : "y_test";
    *y = data_arrays_have(o->data_dir, name) ? name : NULL;
  }
}

/* Does the data have a test split (evaluated at the end of training)? */
static bool has_test_split(const TrainOptions *o) {
  const char *x, *y;
  switch (cli_data_kind(o->data_dir)) {
  case DATA_CSV: return false;
  case DATA_NPZ: case DATA_NPY_DIR: array_names(o, false, &x, &y); return data_arrays_have(o->data_dir, x);
  case DATA_IMAGES: return cli_image_dir_has_test(o->data_dir);
  default: return true;
  }
}

static gradc_status load_data(gradc_model *m, const TrainOptions *o, bool train, Dataset *d, RtError *err) {
  gradc_status s;
  DataKind kind = cli_data_kind(o->data_dir);
  const char *x, *y;
  if (kind != DATA_CSV || o->sequences) {
    switch (kind) {
    case DATA_NPZ: case DATA_NPY_DIR:
      array_names(o, train, &x, &y);
      s = data_load_arrays(o->data_dir, x, y, d, err);
      break;
    case DATA_NPY_FILE:
      /* one array: samples or labels, not both */
      memset(d, 0, sizeof *d);
      return rt_fail(err, GRADC_ERR_DATA,
                     "'%s' is one NumPy array; a dataset is samples and labels: give a directory of x_train.npy and "
                     "y_train.npy (x_test.npy, y_test.npy for the test split), or one .npz of them (np.savez)",
                     o->data_dir);
    case DATA_CIFAR: s = data_load_cifar(o->data_dir, train, o->cifar_coarse, d, err); break;
    case DATA_IMAGES: s = cli_load_image_dir(m, o, train, d, err); break;
    case DATA_CSV: s = data_load_csv_sequences(o->data_dir, d, err); break;
    default: s = data_load_mnist_dir(o->data_dir, train, d, err); break;
    }
    d->pad = o->pad;
    /* [0, 1] as loaded; [-1, 1] for a generator that ends in tanh */
    if (!s && !d->seq && o->signed_pixels)
      for (int64_t i = 0; i < d->n * d->sample_size; i++) d->x[i] = d->x[i] * 2 - 1;
    return s;
  }
  double *v = NULL;
  int64_t rows, cols;
  s = data_load_csv(o->data_dir, &v, &rows, &cols, err);
  if (s) return s;
  memset(d, 0, sizeof *d);
  d->x = rt_alloc_big(sizeof(float) * (size_t)(rows * cols > 0 ? rows * cols : 1));
  if (!d->x) {
    free(v);
    return rt_fail(err, GRADC_ERR_NOMEM, "out of memory for '%s'", o->data_dir);
  }
  for (int64_t i = 0; i < rows * cols; i++) d->x[i] = (float)v[i];
  free(v);
  d->n = rows, d->rank = 1, d->dims[0] = cols, d->sample_size = cols, d->table = true;
  return GRADC_OK;
}

bool cli_interrupted(void) { return interrupted != 0; }

/* --profile: the kernels that took longest, one line each: share of the
 * training time, milliseconds per call, the kernel's root op (with how many
 * ops were fused into it), its shape and the model line it comes from
 * (for a gradient, the line of the forward op and the rule). */
typedef struct KernelTime {
  int id;
  double seconds;
} KernelTime;

static int by_time_desc(const void *a, const void *b) {
  double x = ((const KernelTime *)a)->seconds, y = ((const KernelTime *)b)->seconds;
  return (x < y) - (x > y);
}

static void top_kernels(FILE *out, const Graph *g, const RtContext *rt, double total) {
  enum { TOP = 12 };
  KernelTime *ids = malloc(sizeof(KernelTime) * (size_t)g->nnodes);
  int n_ids = 0;
  if (!ids) return;   /* a report, not worth failing the run for */
  for (int i = 0; i < g->nnodes; i++) {
    double s = rt_kernel_seconds(rt, i, NULL);
    if (s > 0) ids[n_ids++] = (KernelTime){i, s};
  }
  qsort(ids, (size_t)n_ids, sizeof *ids, by_time_desc);
  int nbest = n_ids < TOP ? n_ids : TOP;
  if (nbest) {
    fprintf(out, "profile: the %d kernels that took longest\n", nbest);
    fprintf(out, "  %6s %9s  %-26s %-22s %s\n", "time", "ms/call", "kernel", "shape", "from");
  }
  for (int r = 0; r < nbest; r++) {
    const Node *n = g->nodes[ids[r].id];
    long calls;
    double secs = rt_kernel_seconds(rt, n->id, &calls);
    int fused = 0;
    for (int i = 0; i < g->nnodes; i++) {
      const Node *x = g->nodes[i];
      while (x->inlined_into) x = x->inlined_into;
      fused += x == n && g->nodes[i] != n;
    }
    char what[64], shape[SHAPE_STR_MAX], from[96];
    if (fused) snprintf(what, sizeof what, "%s +%d fused", op_info[n->op].name, fused);
    else snprintf(what, sizeof what, "%s", op_info[n->op].name);
    shape_str(g, &n->shape, shape, sizeof shape);
    const Node *f = n->fwd ? n->fwd : n;
    if (n->fwd && n->rule)
      snprintf(from, sizeof from, "line %d (%s: %s)", f->loc.line, n->rule, op_info[f->op].name);
    else
      snprintf(from, sizeof from, "line %d%s", f->loc.line, n->op == OP_ASSIGN ? " (update)" : "");
    fprintf(out, "  %5.1f%% %9.3f  %-26s %-22s %s\n", 100 * secs / total,
            calls ? 1e3 * secs / (double)calls : 0, what, shape, from);
  }
  free(ids);
}

/* The CIFAR batch file that holds record *i of a split (data_batch_1..5
 * concatenated), *i becoming the record's place in it. */
static void cifar_origin(const char *dir, bool train, int64_t *i, char *file, size_t size) {
  struct stat st;
  snprintf(file, size, "%s/%s", dir, train ? "train.bin" : "test.bin");
  if (stat(file, &st) == 0) return;
  snprintf(file, size, "%s/test_batch.bin", dir);
  for (int k = 1; train && k <= 5; k++) {
    snprintf(file, size, "%s/data_batch_%d.bin", dir, k);
    if (stat(file, &st) != 0) continue;
    int64_t n = (int64_t)st.st_size / 3073;
    if (*i < n) return;
    *i -= n;
  }
}

/* Integer inputs take integers, and one that indexes something (the
 * labels of softmax_cross_entropy, one_hot's positions, embedding rows)
 * only values in [0, n): a label of 200 for 4 classes made every loss NaN,
 * and an id past an embedding's table reads zeros.  Checked when the data
 * is loaded, naming the file, the record and the value; the data of a
 * split of train (train = false: the test split). */
static gradc_status check_values(gradc_model *m, const Feed *f, const Dataset *d, const TrainOptions *o, bool train,
                                 RtError *err) {
  const Graph *g = jitmodel_graph(m);
  for (int p = 0; p < f->n; p++) {
    const FeedPart *part = &f->part[p];
    if (part->dtype != DT_I32) continue;
    const Node *in = NULL;
    for (int i = 0; i < g->nnodes && !in; i++)
      if (g->nodes[i]->op == OP_INPUT && !strcmp(g->nodes[i]->name, part->name)) in = g->nodes[i];
    int64_t bound = in ? check_index_bound(g, in, 0) : 0;
    char takes[160];
    if (bound)
      snprintf(takes, sizeof takes, "integers in [0, %lld) (it indexes %lld entries: classes, one_hot positions or "
               "embedding rows)", (long long)bound, (long long)bound);
    else
      snprintf(takes, sizeof takes, "integers within i32");
    if (d->seq && !part->labels && bound && (d->pad.value < 0 || d->pad.value >= bound))
      return rt_fail(err, GRADC_ERR_ARG, "the padding value %d (--pad-value) is outside what input '%s' takes: %s",
                     d->pad.value, part->name, takes);
    int64_t i, k;
    double v;
    if (!feed_find_outside(f, p, d, bound ? 0 : -2147483648.0, bound ? (double)(bound - 1) : 2147483647.0, &i, &k,
                           &v))
      continue;
    char where[8400];
    if (d->table || (d->seq && is_table(o->data_dir))) {
      long long line = data_csv_line(o->data_dir, i);
      long long field = d->table ? part->col + k + 1 : part->labels ? 1 : k + 2;
      snprintf(where, sizeof where, "%s:%lld: %s %lld", o->data_dir, line, d->table ? "column" : "field", field);
    } else if (cli_data_kind(o->data_dir) == DATA_IMAGES) {
      snprintf(where, sizeof where, "'%s': the label of a sample (its class folder's place in sorted order)",
               o->data_dir);
    } else {
      char files[2][4200];
      bool seq;
      RtError ignored;
      DataKind kind = cli_data_kind(o->data_dir);
      if (kind == DATA_NPZ || kind == DATA_NPY_DIR) {
        const char *names[2];
        array_names(o, train, &names[0], &names[1]);
        for (int w = 0; w < 2; w++)
          snprintf(files[w], sizeof files[w], kind == DATA_NPZ ? "%s:%s.npy" : "%s/%s.npy", o->data_dir,
                   names[w] ? names[w] : "");
      } else if (kind == DATA_CIFAR) {
        snprintf(files[0], sizeof files[0], "%s", o->data_dir);
        cifar_origin(o->data_dir, train, &i, files[1], sizeof files[1]);
      } else if (data_mnist_paths(o->data_dir, train, files[0], files[1], sizeof files[0], &seq, &ignored)) {
        snprintf(files[part->labels], sizeof files[0], "%s", o->data_dir);
      }
      if (part->labels)
        snprintf(where, sizeof where, "'%s': the label of record %lld (from 0)", files[1], (long long)i);
      else
        snprintf(where, sizeof where, "'%s': id %lld of sequence %lld (from 0)", files[0], (long long)k, (long long)i);
    }
    return rt_fail(err, GRADC_ERR_DATA, "%s is %g, but input '%s' takes %s", where, v, part->name, takes);
  }
  return GRADC_OK;
}

/* The first parameter or state tensor holding a NaN or an infinity: its
 * name, the element and the value; false when all are finite. */
/* The float parameters and state, looked up once: they live in the
 * model's state block, which binding never moves (runtime/instance.c
 * allocates it with the model), so the check after every epoch reads them
 * without a search by name - a tiny model's epoch is a few microseconds. */
typedef struct Watched {
  const char *name;
  const void *data;
  int64_t count;
  bool f64;
} Watched;

static int watch_params(gradc_model *m, Watched *w) {
  int n = 0;
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor t;
    if (gradc_tensor_info(m, i, &t) || (t.kind != GRADC_PARAM && t.kind != GRADC_STATE)) continue;
    if (t.dtype != GRADC_F32 && t.dtype != GRADC_F64) continue;
    int64_t count = 0;
    const void *p = gradc_data(m, t.name, &count);
    if (p) w[n++] = (Watched){t.name, p, count, t.dtype == GRADC_F64};
  }
  return n;
}

static bool find_nonfinite(const Watched *w, int n, const char **name, int64_t *at, double *value) {
  for (int i = 0; i < n; i++)
    for (int64_t k = 0; k < w[i].count; k++) {
      double v = w[i].f64 ? ((const double *)w[i].data)[k] : (double)((const float *)w[i].data)[k];
      if (isfinite(v)) continue;
      *name = w[i].name, *at = k, *value = v;
      return true;
    }
  return false;
}

/* Can a checkpoint be written at path?  Asked before training, since a
 * typo in the directory used to cost the whole run: the directory must
 * exist and be writable, and path, if it exists, be a regular file
 * (ckpt.c renames over nothing else). */
static gradc_status check_save_path(const char *path, RtError *err) {
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
    return rt_fail(err, GRADC_ERR_IO, "cannot save the checkpoint to '%s': it exists and is not a regular file "
                   "(checked before training)", path);
  const char *slash = strrchr(path, '/');
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1, slash ? path : ".");
  if (access(dir, W_OK | X_OK) != 0)
    return rt_fail(err, GRADC_ERR_IO, "cannot save the checkpoint to '%s': its directory '%s' %s (checked before "
                   "training)", path, dir, errno == ENOENT ? "does not exist" : strerror(errno));
  return GRADC_OK;
}

/* Writes the checkpoint to o->save; when that fails at the end of a run
 * (the disk filled, the directory went away), to a new file in $TMPDIR
 * (or /tmp), else in the current directory, so that the trained weights
 * survive; the error then says where they are. */
static gradc_status save_checkpoint(gradc_model *m, const TrainOptions *o, FILE *out, RtError *err) {
  gradc_status s = gradc_save(m, o->save);
  if (!s) {
    fprintf(out, "saved checkpoint %s\n", o->save);
    return GRADC_OK;
  }
  char first[1024];
  snprintf(first, sizeof first, "%s", gradc_last_error(m));
  const char *dirs[] = {getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", "."};
  for (int k = 0; k < 2; k++) {
    char rescue[4200];
    snprintf(rescue, sizeof rescue, "%s/%s-rescued-XXXXXX.ckpt", dirs[k], jitmodel_graph(m)->model_name);
    int fd = mkstemps(rescue, 5);    /* a name of our own, never someone's file */
    if (fd < 0) continue;
    close(fd);
    if (!gradc_save(m, rescue))
      return rt_fail(err, s, "%s; the trained weights were saved to '%s' instead", first, rescue);
    unlink(rescue);
  }
  return rt_fail(err, s, "%s; saving them to $TMPDIR or the current directory failed too: the trained weights are "
                 "lost", first);
}

/* An empty field for a step that did not run. */
static void put_csv(FILE *f, const Means *a, int step) {
  fputc(',', f);
  if (a->lweight[step] > 0) put_fixed(f, mean_loss(a, step), 6);
}

static void put_loss_names(FILE *f, const Graph *g, const char *prefix) {
  for (int s = 0; s < g->nsteps; s++)
    fprintf(f, ",%s%s%sloss", prefix, g->nsteps > 1 ? g->steps[s].name : "", g->nsteps > 1 ? "_" : "");
}

/* ------------------------------------------------ callbacks (issue 22) */

/* The value a callback monitors, from the epoch's means: "loss" (one
 * step) or "NAME_loss" (several), a metric's name, each also with "val_"
 * for the validation data.  false when the name is none of these. */
static bool monitor_value(const Graph *g, const char *name, const Means *acc, const Means *vm, double *v) {
  const Means *a = acc;
  if (!strncmp(name, "val_", 4)) a = vm, name += 4;
  double w = a->weight > 0 ? a->weight : 1;
  for (int s = 0; s < g->nsteps; s++) {
    char ln[200];
    snprintf(ln, sizeof ln, "%s%sloss", g->nsteps > 1 ? g->steps[s].name : "", g->nsteps > 1 ? "_" : "");
    if (!strcmp(name, ln)) return *v = mean_loss(a, s), true;
  }
  for (int i = 0; i < g->nmetrics && i < 16; i++)
    if (!strcmp(name, g->metrics[i].name)) return *v = a->metric[i] / w, true;
  return false;
}

/* Before training: every monitored name exists, and val_ ones have
 * validation data (Keras only warns, every epoch, and does nothing). */
static gradc_status check_monitors(const Graph *g, const TrainOptions *o, bool has_val, RtError *err) {
  const struct { const Callback *cb; const char *opt; } cbs[] = {
      {&o->early_stopping, "--early-stopping"}, {&o->reduce_lr, "--reduce-lr-on-plateau"},
      {&o->save_best, "--save-best"}};
  for (size_t k = 0; k < sizeof cbs / sizeof *cbs; k++) {
    if (!cbs[k].cb->on) continue;
    const char *name = cbs[k].cb->monitor;
    Means none = {0};
    double v;
    if (!monitor_value(g, name, &none, &none, &v)) {
      char names[1024] = "";
      size_t used = 0;
      for (int pass = 0; pass < 2; pass++) {
        for (int s = 0; s < g->nsteps; s++)
          used += (size_t)snprintf(names + used, used < sizeof names ? sizeof names - used : 0, "%s%s%s%s%sloss",
                                   used ? ", " : "", pass ? "val_" : "", g->nsteps > 1 ? g->steps[s].name : "",
                                   g->nsteps > 1 ? "_" : "", "");
        for (int i = 0; i < g->nmetrics && i < 16; i++)
          used += (size_t)snprintf(names + used, used < sizeof names ? sizeof names - used : 0, ", %s%s",
                                   pass ? "val_" : "", g->metrics[i].name);
      }
      return rt_fail(err, GRADC_ERR_ARG, "%s monitors '%s', which the model does not report (it reports: %s)",
                     cbs[k].opt, name, names);
    }
    if (!strncmp(name, "val_", 4) && !has_val)
      return rt_fail(err, GRADC_ERR_ARG, "%s monitors '%s', but there is no validation data: give --val-split F "
                     "(or monitor '%s')", cbs[k].opt, name, name + 4);
  }
  return GRADC_OK;
}

/* After each epoch, in Keras' usual order: ModelCheckpoint,
 * ReduceLROnPlateau, EarlyStopping.  *stop when training should end. */
static gradc_status run_callbacks(gradc_model *m, const Graph *g, const TrainOptions *o, Callback *cbs,
                                  Snapshot **best, int epoch, const Means *acc, const Means *vm, FILE *out,
                                  bool *stop, RtError *err) {
  Callback *save = &cbs[0], *reduce = &cbs[1], *early = &cbs[2];
  double v;
  gradc_status s;
  if (save->on && monitor_value(g, save->monitor, acc, vm, &v)) {
    double before = save->best;
    if (cb_save_best(save, epoch, v) == CB_IMPROVED) {
      if ((s = gradc_save(m, o->save_best_path))) return rt_fail(err, s, "%s", gradc_last_error(m));
      fprintf(out, "Epoch %d: %s improved from %.5f to %.5f, saving model to %s\n", epoch + 1, save->monitor,
              before, v, o->save_best_path);
    } else {
      fprintf(out, "Epoch %d: %s did not improve from %.5f\n", epoch + 1, save->monitor, save->best);
    }
  }
  if (reduce->on && monitor_value(g, reduce->monitor, acc, vm, &v) &&
      cb_reduce_lr(reduce, epoch, v) == CB_REDUCE) {
    for (int k = 0; k < g->nsteps; k++) {
      const char *step = g->nsteps > 1 ? g->steps[k].name : NULL;
      double lr;
      if (gradc_get_hyper(m, step, "lr", &lr)) continue;
      if (!(lr > reduce->min_lr)) continue;
      double nl = fmax(lr * reduce->factor, reduce->min_lr);
      if ((s = gradc_set_hyper(m, step, "lr", nl))) return rt_fail(err, s, "%s", gradc_last_error(m));
      fprintf(out, "Epoch %d: ReduceLROnPlateau reducing learning rate%s%s to %g.\n", epoch + 1,
              step ? " of " : "", step ? step : "", nl);
    }
  }
  if (early->on && monitor_value(g, early->monitor, acc, vm, &v)) {
    CbAction a = cb_early_stopping(early, epoch, v);
    if (a == CB_IMPROVED && early->restore_best && (s = cb_snapshot_take(m, g, best, err))) return s;
    if (a == CB_STOP) {
      *stop = true;
      fprintf(out, "Epoch %d: early stopping\n", epoch + 1);
      if (early->restore_best && *best) {
        fprintf(out, "Restoring model weights from the end of the best epoch: %d.\n", early->best_epoch + 1);
        if ((s = cb_snapshot_restore(m, *best, err))) return s;
      }
    }
  }
  return GRADC_OK;
}

/* The order gradc train runs the steps in: the model's schedule, each
 * entry repeated, else every step once in file order.  A step whose loss
 * reads a fed input takes the next batch; one that reads none (a GAN's
 * generator: its data is its own random z) runs on the batch before, so
 * an epoch is one pass over the data by the steps that read it.  Where
 * no step reads the data, every step takes a batch. */
typedef struct Sched {
  const ScheduleEntry *ent;
  int n, e, r;               /* entries; the next one and its repeat */
  bool reads[MAX_STEPS];
  ScheduleEntry each[MAX_STEPS];
} Sched;

static int schedule_peek(const Sched *sc) { return sc->ent[sc->e].step; }

static void schedule_next(Sched *sc) {
  if (++sc->r < sc->ent[sc->e].times) return;
  sc->r = 0;
  sc->e = (sc->e + 1) % sc->n;
}

static void schedule_plan(const Graph *g, Sched *sc) {
  memset(sc, 0, sizeof *sc);
  for (int i = 0; i < g->nsteps; i++) sc->each[i] = (ScheduleEntry){i, 1};
  sc->ent = g->nschedule ? g->schedule : sc->each;
  sc->n = g->nschedule ? g->nschedule : g->nsteps;
  unsigned char *mark = malloc((size_t)g->nnodes + 1);
  bool any = false;
  for (int st = 0; mark && st < g->nsteps; st++) {
    Node *root = g->steps[st].loss;
    graph_mark_needed(g, &root, 1, true, mark);
    for (int i = 0; i < g->nnodes; i++) sc->reads[st] |= mark[i] && g->nodes[i]->op == OP_INPUT;
  }
  free(mark);
  for (int i = 0; i < sc->n; i++) any |= sc->reads[sc->ent[i].step];
  for (int st = 0; !any && st < g->nsteps; st++) sc->reads[st] = true;
}

/* [batch, H, W, C] with C 1 or 3, [batch, H, W], or [batch, N] with N a
 * square (a flattened MNIST image): h, w, c; false for anything else. */
static bool image_shape(const Node *y, int64_t *h, int64_t *w, int64_t *c) {
  const Shape *s = &y->shape;
  if (!dtype_is_float(y->dtype) || s->rank < 2 || !s->d[0].sym) return false;
  for (int i = 1; i < s->rank; i++)
    if (s->d[i].sym) return false;
  if (s->rank == 4 && (s->d[3].n == 1 || s->d[3].n == 3)) {
    *h = s->d[1].n, *w = s->d[2].n, *c = s->d[3].n;
    return true;
  }
  if (s->rank == 3) {
    *h = s->d[1].n, *w = s->d[2].n, *c = 1;
    return true;
  }
  int64_t r = (int64_t)(sqrt((double)s->d[1].n) + 0.5);
  if (s->rank != 2 || r < 2 || r * r != s->d[1].n) return false;
  *h = *w = r, *c = 1;
  return true;
}

/* The floats of a tensor (f32 or f64) into out. */
static void read_floats(gradc_model *m, const Node *n, const char *name, float *out, int64_t count) {
  const void *p = gradc_data(m, name, NULL);
  for (int64_t i = 0; i < count; i++)
    out[i] = n->dtype == DT_F64 ? (float)((const double *)p)[i] : ((const float *)p)[i];
}

/* The output to draw: --sample-output, else the first image-shaped one. */
static gradc_status image_output(const Graph *g, const TrainOptions *o, const Binding **out, int64_t *h,
                                 int64_t *w, int64_t *c, RtError *err) {
  *out = NULL;
  for (int i = 0; i < g->noutputs && !*out; i++) {
    bool named = o->sample_output && !strcmp(o->sample_output, g->outputs[i].name);
    if (o->sample_output && !named) continue;
    if (image_shape(g->outputs[i].node, h, w, c)) *out = &g->outputs[i];
    else if (named) {
      char b[SHAPE_STR_MAX];
      return rt_fail(err, GRADC_ERR_ARG, "output '%s' is %s%s, not an image: [batch, H, W, 1 or 3], [batch, H, W] "
                     "or [batch, N*N] of floats", o->sample_output, dtype_names[g->outputs[i].node->dtype],
                     shape_str(g, &g->outputs[i].node->shape, b, sizeof b));
    }
  }
  if (!*out && o->sample_output) return rt_fail(err, GRADC_ERR_ARG, "the model has no output '%s'", o->sample_output);
  if (!*out)
    return rt_fail(err, GRADC_ERR_ARG, "the model has no image output to draw: [batch, H, W, 1 or 3], [batch, H, W] "
                   "or [batch, N*N] of floats");
  return GRADC_OK;
}

/* Before training: the directory exists (made if missing) and the model
 * has something to draw, so a typo fails now, not after the first epoch. */
static gradc_status samples_ready(const Graph *g, const TrainOptions *o, RtError *err) {
  const Binding *b;
  int64_t h, w, c;
  gradc_status s = image_output(g, o, &b, &h, &w, &c, err);
  if (s) return s;
  struct stat st;
  if (mkdir(o->samples, 0777) != 0 && errno != EEXIST)
    return rt_fail(err, GRADC_ERR_IO, "cannot make the samples directory '%s': %s", o->samples, strerror(errno));
  if (stat(o->samples, &st) != 0 || !S_ISDIR(st.st_mode) || access(o->samples, W_OK) != 0)
    return rt_fail(err, GRADC_ERR_IO, "--samples needs a writable directory; '%s' is not one", o->samples);
  return GRADC_OK;
}

static gradc_status draw_samples(gradc_model *m, const TrainOptions *o, const Dataset *d, const Feed *f,
                                 const char *path, int64_t count, RtError *err) {
  const Graph *g = jitmodel_graph(m);
  const Binding *out;
  int64_t h = 0, w = 0, c = 0;
  gradc_status s0 = image_output(g, o, &out, &h, &w, &c, err);
  if (s0) return s0;
  /* An input of the output's shape that the output is computed from: an
   * auto-encoder's image, drawn above its reconstruction. */
  const Node *in = NULL;
  unsigned char *mark = malloc((size_t)g->nnodes + 1);
  if (!mark) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  Node *root = out->node;
  graph_mark_needed(g, &root, 1, false, mark);
  for (int i = 0; i < g->nnodes && !in; i++)
    if (mark[i] && g->nodes[i]->op == OP_INPUT && shape_eq(&g->nodes[i]->shape, &out->node->shape) &&
        dtype_is_float(g->nodes[i]->dtype))
      in = g->nodes[i];
  free(mark);
  if (d && count > d->n) count = d->n;
  int64_t size = h * w * c, cols = 8, cells = count;
  float *px = malloc(sizeof(float) * (size_t)(size * count * (in ? 2 : 1)));
  float *tmp = in ? malloc(sizeof(float) * (size_t)(size * count)) : NULL;
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)count);
  gradc_status s = !px || (in && !tmp) || !idx ? rt_fail(err, GRADC_ERR_NOMEM, "out of memory") : GRADC_OK;
  if (!s && (s = gradc_bind(m, count))) rt_fail(err, s, "%s", gradc_last_error(m));
  if (!s) {
    for (int64_t i = 0; i < count; i++) idx[i] = i;
    if (d) feed_gather(m, f, d, idx, count);
    gradc_forward(m);
    if (!in) {
      read_floats(m, out->node, out->name, px, size * count);
    } else {
      /* rows of cols inputs, each above the row of their reconstructions */
      read_floats(m, in, in->name, tmp, size * count);
      float *y = px + size * count;
      read_floats(m, out->node, out->name, y, size * count);
      int64_t rows = (count + cols - 1) / cols;       /* a short last row: blank cells */
      float *grid = malloc(sizeof(float) * (size_t)(2 * rows * cols * size));
      if (!grid) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
      for (int64_t r = 0; !s && r < rows; r++)
        for (int pass = 0; pass < 2; pass++)
          for (int64_t j = 0; j < cols; j++) {
            float *cell = grid + ((2 * r + pass) * cols + j) * size;
            int64_t at = r * cols + j;
            if (at < count) memcpy(cell, (pass ? y : tmp) + at * size, sizeof(float) * (size_t)size);
            else for (int64_t e = 0; e < size; e++) cell[e] = NAN;
          }
      free(px);
      px = grid, cells = 2 * rows * cols;
    }
  }
  if (!s) s = cli_png_grid(path, px, cells, h, w, c, cols, o->signed_pixels ? -1 : 0, 1, err);
  free(px), free(tmp), free(idx);
  return s;
}

gradc_status cli_train(gradc_model *m, const TrainOptions *o, RtError *err) {
  const Graph *g = jitmodel_graph(m);
  FILE *out = o->out ? o->out : stdout;
  bool tty = isatty(fileno(out));
  if (!g->nsteps) return rt_fail(err, GRADC_ERR_ARG, "the model has no train statement");
  if (o->batch < 1) return rt_fail(err, GRADC_ERR_ARG, "batch size must be at least 1, got %lld", (long long)o->batch);
  if (o->epochs < 1) return rt_fail(err, GRADC_ERR_ARG, "epochs must be at least 1, got %d", o->epochs);
  bool has_inputs = false;
  for (int i = 0; i < g->nnodes; i++) has_inputs |= g->nodes[i]->op == OP_INPUT;

  Dataset train = {0}, val = {0}, test = {0};
  Feed feed = {0};
  gradc_status s = o->save ? check_save_path(o->save, err) : GRADC_OK;
  if (!s && o->save_best_path) s = check_save_path(o->save_best_path, err);
  if (!s && o->samples) s = samples_ready(g, o, err);
  if (s) return s;
  if (has_inputs) {
    if ((s = load_data(m, o, true, &train, err))) goto done;
    if ((s = feed_plan(m, &train, &feed, err))) goto done;
    if ((s = check_values(m, &feed, &train, o, true, err))) goto done;
    if (o->val_split > 0 && (s = data_split(&train, o->val_split, &val, err))) goto done;
    if (train.n < 1) {
      s = rt_fail(err, GRADC_ERR_DATA, "no training samples left after the validation split");
      goto done;
    }
    if (o->batch > train.n) {
      s = rt_fail(err, GRADC_ERR_ARG, "batch size %lld is larger than the %lld training samples",
                  (long long)o->batch, (long long)train.n);
      goto done;
    }
  }
  if (!s && o->dist) {
    /* Several train statements (a GAN's critic and generator) follow the
     * schedule, which every rank computes alike from the same model; each
     * step reduces its own gradients, on the rows the last reading step
     * bound, with that batch's weights. */
    s = dist_agree(o->dist, o->model_path, GRADC_VERSION, has_inputs ? train.n : 1, o->batch, o->epochs,
                     o->seed, err);
    if (!s) s = dist_attach(o->dist, m, err);
    if (s) goto done;
  }
  if ((s = check_monitors(g, o, val.n > 0, err))) goto done;
  Callback cbs[3] = {o->save_best, o->reduce_lr, o->early_stopping};
  Snapshot *best = NULL;
  bool stop = false;
  FILE *hist = NULL;
  int hist_errno = 0;      /* the first failed write: reported at the end, after the save */
  if (o->history && (!o->dist || o->dist->rank == 0)) {   /* rank 0 writes for all */
    hist = fopen(o->history, "w");
    if (!hist) {
      s = rt_fail(err, GRADC_ERR_IO, "cannot write the history file '%s': %s", o->history, strerror(errno));
      goto done;
    }
    fprintf(hist, "epoch");
    put_loss_names(hist, g, "");
    for (int i = 0; i < g->nmetrics; i++) fprintf(hist, ",%s", g->metrics[i].name);
    if (val.n) {
      put_loss_names(hist, g, "val_");
      for (int i = 0; i < g->nmetrics; i++) fprintf(hist, ",val_%s", g->metrics[i].name);
    }
    fprintf(hist, ",seconds\n");
    if (fflush(hist) != 0 || ferror(hist)) hist_errno = errno ? errno : EIO;
  }
  interrupted = 0;
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, &old);

  int64_t n = has_inputs ? train.n : 1;
  int64_t steps = has_inputs ? (n + o->batch - 1) / o->batch : 1;
  int64_t *perm = malloc(sizeof(int64_t) * (size_t)n);
  Watched *watched = malloc(sizeof(Watched) * (size_t)(gradc_tensor_count(m) + 1));
  int nwatched = watched ? watch_params(m, watched) : 0;
  double step_seconds = 0, in_step = 0;   /* epochs; inside the compiled steps */
  rt_profile_reset(rt_context(m));
  if (!perm || !watched) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  /* The workspaces of both batch sizes (full, last partial) are made and
   * touched before the clock starts: allocation is set-up, not training,
   * and would otherwise weigh on the first epoch alone. */
  int64_t sizes[2] = {n % o->batch, n < o->batch ? n : o->batch};
  for (int k = 0; k < 2; k++) {   /* this rank's share of them */
    int64_t first;
    double w;
    dist_share(o->dist, sizes[k], &first, &sizes[k], &w);
  }
  for (int k = 0; !s && has_inputs && k < 2; k++)
    if (sizes[k] && (s = gradc_bind(m, sizes[k])))
      rt_fail(err, s, "%s", gradc_last_error(m));
  int bad_epoch = 0;
  int64_t bad_step = 0;
  double bad_loss = 0, last_loss = 0;
  Sched sc;
  schedule_plan(g, &sc);
  /* Output and history are flushed after an epoch when the last flush is
   * 0.2 s old: a long epoch's lines appear at once, while a tiny model's
   * (linear regression: a microsecond an epoch) do not cost two write
   * calls each, which were most of its epoch. */
  double flushed = now_s();
  for (int epoch = 0; !s && epoch < o->epochs && !interrupted; epoch++) {
    if (o->epochs > 1 || !tty) {
      fputs("Epoch ", out);
      put_int(out, epoch + 1, 0);
      fputc('/', out);
      put_int(out, o->epochs, 0);
      fputc('\n', out);
    }
    /* --no-shuffle: the file's order every epoch (time series, curricula) */
    if (o->no_shuffle)
      for (int64_t i = 0; i < n; i++) perm[i] = i;
    else
      data_permutation(perm, n, o->seed, epoch);
    Means acc = {0};
    double t0 = now_s(), last = 0;
    int64_t step = 0, bs = 0, rows = 0;   /* batches taken; the bound batch size; this rank's rows */
    for (;;) {
      int st = schedule_peek(&sc);
      if (sc.reads[st] && step == steps) break;     /* the schedule goes on next epoch */
      if (interrupted) break;
      schedule_next(&sc);
      if (sc.reads[st] || !bs) {
        int64_t at = step * o->batch;
        bs = has_inputs ? (n - at < o->batch ? n - at : o->batch) : 1;
        /* Data parallel: this rank's rows of the global batch; one with
         * none (a last batch of fewer rows than ranks) steps on one row
         * that its weight 0 leaves out of the sum. */
        int64_t first = 0;
        double w = 1;
        rows = bs;
        if (o->dist) {
          dist_share(o->dist, bs, &first, &rows, &w);
          dist_set_batch(o->dist, bs);
        }
        int64_t fed = rows ? rows : 1;
        if (!rows) first = 0;
        /* the random ops draw this rank's rows of the global batch (its
         * dropout masks are rows [first, first + fed) of one process's) */
        if (o->dist && (s = gradc_set_row_offset(m, first))) {
          rt_fail(err, s, "%s", gradc_last_error(m));
          break;
        }
        if ((s = gradc_bind(m, fed))) {
          rt_fail(err, s, "%s", gradc_last_error(m));
          break;
        }
        if (has_inputs) feed_gather(m, &feed, &train, perm + at + first, fed);
      }
      double loss;
      double t_step = o->profile ? now_s() : 0;
      s = g->nsteps == 1 ? gradc_train_step(m, &loss) : gradc_step(m, g->steps[st].name, &loss);
      if (o->profile) in_step += now_s() - t_step;
      if (s) {
        rt_fail(err, s, "epoch %d, step %lld%s%s: %s", epoch + 1, (long long)step + sc.reads[st],
                g->nsteps > 1 ? " of train step " : "", g->nsteps > 1 ? g->steps[st].name : "",
                gradc_last_error(m));
        break;
      }
      if (!isfinite(loss) && !bad_epoch) bad_epoch = epoch + 1, bad_step = step + 1, bad_loss = loss;
      accumulate_loss(&acc, st, loss, rows);
      if (sc.reads[st]) {
        accumulate(m, g, &acc, rows);
        step++;
      }
      double t = now_s() - t0;
      if (tty && t - last > 0.1) {
        progress(out, step, steps, t, g, &acc, false);
        fflush(out);
        last = t;
      }
    }
    if (s) break;
    /* the epoch's means over every rank's rows (the live bar showed this
     * rank's) */
    if (o->dist) {
      dist_sum(o->dist, acc.loss, (int)(sizeof acc / sizeof(double)));
      dist_sync_state(o->dist, m);
    }
    if (o->dist && o->mpi_check && (s = dist_check_same(o->dist, m, epoch + 1, err))) break;
    double secs = now_s() - t0;
    step_seconds += secs;
    progress(out, step, steps, secs, g, &acc, true);
    Means vm = {0};
    if (val.n && !interrupted) {
      if ((s = evaluate(m, g, &feed, &val, o->batch, o->dist, &vm, err))) break;
      put_means(out, g, &vm, "val_");
    }
    fputc('\n', out);
    if (o->samples && !interrupted) {
      char path[4200];
      snprintf(path, sizeof path, "%s/epoch_%03d.png", o->samples, epoch + 1);
      if ((s = draw_samples(m, o, has_inputs ? (val.n ? &val : &train) : NULL, &feed, path, 32, err))) break;
      fprintf(out, "samples: %s\n", path);
    }
    bool flush = epoch + 1 == o->epochs || now_s() - flushed >= 0.2;
    if (flush) {
      fflush(out);
      flushed = now_s();
    }
    last_loss = 0;
    for (int k = 0; k < g->nsteps; k++) last_loss += acc.lweight[k] > 0 ? mean_loss(&acc, k) : 0;
    if (hist && !hist_errno) {
      double w = acc.weight > 0 ? acc.weight : 1, vw = vm.weight > 0 ? vm.weight : 1;
      put_int(hist, epoch + 1, 0);
      for (int k = 0; k < g->nsteps; k++) put_csv(hist, &acc, k);
      for (int i = 0; i < g->nmetrics; i++) fputc(',', hist), put_fixed(hist, acc.metric[i] / w, 6);
      if (val.n) {
        for (int k = 0; k < g->nsteps; k++) put_csv(hist, &vm, k);
        for (int i = 0; i < g->nmetrics; i++) fputc(',', hist), put_fixed(hist, vm.metric[i] / vw, 6);
      }
      fputc(',', hist);
      put_fixed(hist, secs, 3);
      fputc('\n', hist);
      if ((flush && fflush(hist) != 0) || ferror(hist)) hist_errno = errno ? errno : EIO;
    }
    /* Parameters that went NaN or infinite stay so: no point in more
     * epochs, and nothing of them may be saved over a checkpoint. */
    const char *bad_name;
    int64_t bad_at;
    double bad_value;
    if (find_nonfinite(watched, nwatched, &bad_name, &bad_at, &bad_value)) {
      char first[160] = "";
      if (bad_epoch)
        snprintf(first, sizeof first, "; the loss was first %g in epoch %d, step %lld", bad_loss, bad_epoch,
                 (long long)bad_step);
      s = rt_fail(err, GRADC_ERR_NUMERIC, "training diverged: after epoch %d, parameter '%s' holds %g (element "
                  "%lld)%s; nothing was saved%s%s%s. --check-numerics names the node where it starts; a smaller "
                  "--lr may help", epoch + 1, bad_name, bad_value, (long long)bad_at, first,
                  o->save ? ": '" : "", o->save ? o->save : "", o->save ? "' is unchanged" : "");
      break;
    }
    if ((s = run_callbacks(m, g, o, cbs, &best, epoch, &acc, &vm, out, &stop, err)) || stop) break;
  }
  cb_snapshot_free(best);
  if (!s && !isfinite(last_loss))
    s = rt_fail(err, GRADC_ERR_NUMERIC, "training ended with a loss of %g (first %g in epoch %d, step %lld); "
                "nothing was saved. --check-numerics names the node where it starts", last_loss, bad_loss,
                bad_epoch, (long long)bad_step);
  free(perm);
  free(watched);
  sigaction(SIGINT, &old, NULL);
  if (o->profile && step_seconds > 0) {
    long calls;
    double t = rt_sgemm_seconds(rt_context(m), &calls);
    /* Step time: inside the compiled train steps; training time adds
     * what the loop around them does (copying batches in, the metrics). */
    fprintf(out, "profile: %.3f s of %.3f s step time in sgemm (%.1f%%, %ld calls, %s kernels); "
            "%.1f%% of %.3f s training time; %.0f samples/s\n", t, in_step,
            in_step > 0 ? 100 * t / in_step : 0, calls, gemm_kernels(), 100 * t / step_seconds, step_seconds,
            (double)n * o->epochs / step_seconds);
    top_kernels(out, g, rt_context(m), step_seconds);
  }
  if (hist && fclose(hist) != 0 && !hist_errno) hist_errno = errno ? errno : EIO;
  if (interrupted) fprintf(out, "\ninterrupted: stopping after the current step\n");
  /* A failed run (NaN parameters, bad data) must not overwrite a good
   * checkpoint; an interrupted one saves what it has.  A history that
   * could not be written fails the run, but after the weights are safe. */
  if (o->save && !s && (!o->dist || o->dist->rank == 0)) s = save_checkpoint(m, o, out, err);
  if (hist_errno && !s)
    s = rt_fail(err, GRADC_ERR_IO, "cannot write the history file '%s': %s", o->history, strerror(hist_errno));
  if (!s && !interrupted && has_inputs && o->test && has_test_split(o)) {
    if ((s = load_data(m, o, false, &test, err))) goto done;
    if ((s = check_values(m, &feed, &test, o, false, err))) goto done;
    Means tm;
    if ((s = evaluate(m, g, &feed, &test, o->batch, o->dist, &tm, err))) goto done;
    fprintf(out, "test: %lld samples", (long long)test.n);
    put_means(out, g, &tm, "test_");
    fputc('\n', out);
  }
done:
  data_free(&train);
  data_free(&val);
  data_free(&test);
  return s;
}

gradc_status cli_evaluate(gradc_model *m, const TrainOptions *o, RtError *err) {
  const Graph *g = jitmodel_graph(m);
  FILE *out = o->out ? o->out : stdout;
  Dataset test = {0};
  Feed feed;
  gradc_status s = load_data(m, o, false, &test, err);
  if (!s) s = feed_plan(m, &test, &feed, err);
  if (!s) s = check_values(m, &feed, &test, o, false, err);
  if (!s && o->confusion) s = confusion_check(m, o, &feed, err);
  Means tm;
  if (!s) s = evaluate(m, g, &feed, &test, o->batch, o->dist, &tm, err);
  if (!s) {
    fprintf(out, "test: %lld samples", (long long)test.n);
    put_means(out, g, &tm, "test_");
    fputc('\n', out);
  }
  if (!s && o->confusion) s = cli_confusion(m, o, &test, &feed, err);
  data_free(&test);
  return s;
}

/* Prints the predicted class (argmax of the first output) of the first
 * `count` test samples, with its probability when the output sums to 1. */
/* ------------------------------------------------ predict --format csv|npy */

/* The output's values for the first count samples: CSV (a header of
 * NAME[i,j] per element of a sample, a row per sample) or NumPy .npy
 * (format 1.0, little-endian, C order, shape [count] + the sample's
 * shape; an output without a batch dimension is written whole, once). */
static gradc_status predict_values(gradc_model *m, const Graph *g, const TrainOptions *o, int64_t count, FILE *out,
                                   RtError *err) {
  const Binding *b = &g->outputs[0];
  if (o->predict_output) {
    b = NULL;
    for (int i = 0; i < g->noutputs; i++)
      if (!strcmp(g->outputs[i].name, o->predict_output)) b = &g->outputs[i];
    if (!b) {
      char names[1024] = "";
      for (int i = 0; i < g->noutputs; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", g->outputs[i].name);
      return rt_fail(err, GRADC_ERR_ARG, "--output '%s' is not an output of the model (its outputs: %s)",
                     o->predict_output, names);
    }
  }
  bool npy = !strcmp(o->predict_format, "npy");
  if (npy && !o->predict_path) return rt_fail(err, GRADC_ERR_ARG, "predict --format npy needs -o FILE.npy");
  Dataset test = {0};
  Feed feed;
  bool has_inputs = false;
  for (int i = 0; i < g->nnodes; i++) has_inputs |= g->nodes[i]->op == OP_INPUT;
  gradc_status s = GRADC_OK;
  if (has_inputs) {
    s = load_data(m, o, false, &test, err);
    if (!s) s = feed_plan(m, &test, &feed, err);
    if (!s) s = check_values(m, &feed, &test, o, false, err);
    if (!s && count > test.n) count = test.n;
  }
  const Node *y = b->node;
  bool batched = y->shape.rank > 0 && y->shape.d[0].sym;
  if (!batched) count = 1;
  int64_t *idx = s ? NULL : malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
  if (!s && !idx) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  if (!s && (s = gradc_bind(m, has_inputs ? count : 1))) rt_fail(err, s, "%s", gradc_last_error(m));
  if (!s) {
    for (int64_t i = 0; i < count; i++) idx[i] = i;
    if (has_inputs) feed_gather(m, &feed, &test, idx, count);
    if ((s = gradc_forward(m))) rt_fail(err, s, "%s", gradc_last_error(m));
  }
  int64_t have = 0;
  const void *data = s ? NULL : gradc_data(m, b->name, &have);
  if (!s && !data) s = rt_fail(err, GRADC_ERR_ARG, "predict cannot read output '%s': %s", b->name, gradc_last_error(m));
  int64_t per = batched ? have / (count ? count : 1) : have;   /* elements per sample */
  OutFile file = {0};
  if (!s && o->predict_path) s = out_open(&file, o->predict_path, err);
  FILE *w = file.f ? file.f : out;
  if (!s && npy) {
    static const char *const descr[] = {[DT_F32] = "<f4", [DT_F64] = "<f8", [DT_I32] = "<i4", [DT_BOOL] = "|b1"};
    /* a Python tuple: (), (n,), (a, b) */
    char shape[256] = "", head[512];
    size_t at = 0;
    for (int k = 0; k < y->shape.rank; k++)
      at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%lld", k ? ", " : "",
                             (long long)(k == 0 && batched ? count : y->shape.d[k].n));
    if (y->shape.rank == 1) snprintf(shape + at, sizeof shape - at, ",");
    int len = snprintf(head, sizeof head, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       descr[y->dtype], shape);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;  /* the header ends on a 64-byte boundary */
    fwrite("\x93NUMPY\x01\x00", 1, 8, w);
    uint16_t hl = (uint16_t)(len + pad + 1);
    unsigned char le[2] = {(unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    fwrite(le, 1, 2, w);
    fprintf(w, "%s%*s\n", head, pad, "");
    size_t bytes = y->dtype == DT_F64 ? 8 : y->dtype == DT_BOOL ? 1 : 4;
    fwrite(data, bytes, (size_t)have, w);       /* the machine is little-endian (x86-64, aarch64) */
  } else if (!s) {
    /* put_int and strfromd, not fprintf (put_fixed): 10,000 images of
     * 784 values are 7.8 million numbers */
    fputs("sample", w);
    for (int64_t e = 0; e < per; e++) {
      fputc(',', w), fputs(b->name, w), fputc('[', w);
      put_int(w, e, 0);
      fputc(']', w);
    }
    fputc('\n', w);
    char num[32];
    for (int64_t i = 0; i < count; i++) {
      put_int(w, i, 0);
      for (int64_t e = 0; e < per; e++) {
        int64_t k = i * per + e;
        fputc(',', w);
        switch (y->dtype) {
        case DT_F32: strfromd(num, sizeof num, "%.9g", ((const float *)data)[k]), fputs(num, w); break;
        case DT_F64: strfromd(num, sizeof num, "%.17g", ((const double *)data)[k]), fputs(num, w); break;
        case DT_I32: put_int(w, ((const int32_t *)data)[k], 0); break;
        case DT_BOOL: put_int(w, ((const uint8_t *)data)[k], 0); break;
        case DT_COUNT: break;
        }
      }
      fputc('\n', w);
    }
  }
  if (file.f) {
    s = out_commit(&file, s, err);
    if (!s) fprintf(out, "wrote %lld sample%s of output '%s' to %s\n", (long long)count, count == 1 ? "" : "s",
                 b->name, o->predict_path);
  }
  free(idx);
  data_free(&test);
  return s;
}

gradc_status cli_predict(gradc_model *m, const TrainOptions *o, int64_t count, RtError *err) {
  const Graph *g = jitmodel_graph(m);
  FILE *out = o->out ? o->out : stdout;
  if (!g->noutputs) return rt_fail(err, GRADC_ERR_ARG, "the model declares no output to predict");
  if (o->predict_format && strcmp(o->predict_format, "table")) return predict_values(m, g, o, count, out, err);
  if (o->predict_output || o->predict_path)
    return rt_fail(err, GRADC_ERR_ARG, "--output and -o go with --format csv or npy");
  const Node *y = g->outputs[0].node;
  /* A row per sample: the first dimension must be the batch (an output
   * of [2,3] printed count rows, read past its 6 values), the second a
   * number of classes. */
  const Dim *d = y->shape.d;
  if (y->shape.rank != 2 || !dtype_is_float(y->dtype) || !d[0].sym || d[0].n != 1 || d[1].sym) {
    char shape[SHAPE_STR_MAX];
    shape_str(g, &y->shape, shape, sizeof shape);
    return rt_fail(err, GRADC_ERR_ARG, "predict needs a float output of shape [batch, classes]; '%s' is %s%s",
                   g->outputs[0].name, dtype_names[y->dtype], shape);
  }
  Dataset test = {0};
  Feed feed;
  gradc_status s = load_data(m, o, false, &test, err);
  if (!s) s = feed_plan(m, &test, &feed, err);
  if (!s) s = check_values(m, &feed, &test, o, false, err);
  if (!s && count > test.n) count = test.n;
  int64_t *idx = s ? NULL : malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
  if (!s && !idx) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  if (!s && (s = gradc_bind(m, count))) rt_fail(err, s, "%s", gradc_last_error(m));
  if (!s) {
    for (int64_t i = 0; i < count; i++) idx[i] = i;
    feed_gather(m, &feed, &test, idx, count);
    gradc_forward(m);
    int64_t C = y->shape.d[1].n, right = 0, have = 0;
    const void *data = gradc_data(m, g->outputs[0].name, &have);
    if (!data || have != count * C)
      s = rt_fail(err, GRADC_ERR_ARG, "predict cannot read output '%s': %s", g->outputs[0].name,
                  data ? "its size is not batch x classes" : gradc_last_error(m));
#define P(i, c) (y->dtype == DT_F64 ? ((const double *)data)[(i) * C + (c)] : (double)((const float *)data)[(i) * C + (c)])
    if (!s) fprintf(out, "%8s %9s %7s %11s\n", "sample", "predicted", "label", "probability");
    for (int64_t i = 0; !s && i < count; i++) {
      int64_t best = 0;
      for (int64_t c = 1; c < C; c++)
        if (P(i, c) > P(i, best)) best = c;
      right += test.y && best == test.y[i];
      fprintf(out, "%8lld %9lld %7d %11.4f\n", (long long)i, (long long)best, test.y ? test.y[i] : -1, P(i, best));
    }
#undef P
    if (!s && test.y) fprintf(out, "%lld of %lld correct\n", (long long)right, (long long)count);
  }
  free(idx);
  data_free(&test);
  return s;
}

/* The step counter the random ops draw for (NULL: none draws). */
static int32_t *random_counter(gradc_model *m, const Graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *c = (op_info[g->nodes[i]->op].flags & F_RANDOM) ? graph_random_step(g->nodes[i]) : NULL;
    if (c && c->name) return gradc_data(m, c->name, NULL);
  }
  return NULL;
}

static gradc_status write_file(const char *path, const void *head, size_t nhead, const uint8_t *body, size_t n,
                               RtError *err) {
  OutFile o;
  gradc_status s = out_open(&o, path, err);
  if (s) return s;
  fwrite(head, 1, nhead, o.f);
  fwrite(body, 1, n, o.f);
  return out_commit(&o, GRADC_OK, err);      /* a short write shows in ferror */
}

/* count images as an MNIST-format test split in dir (t10k-images-idx3-
 * ubyte, and labels all 0), pixels mapped from [lo, hi] to 0..255, for a
 * classifier to read (gradc score).  Forward runs in chunks, each with
 * the random ops' counter moved on so no chunk repeats another's draws;
 * the counter is put back after. */
static gradc_status sample_idx(gradc_model *m, const TrainOptions *o, const Dataset *d, const Feed *f,
                               const char *dir, int64_t count, RtError *err) {
  const Graph *g = jitmodel_graph(m);
  const Binding *out;
  int64_t h, w, c;
  gradc_status s = image_output(g, o, &out, &h, &w, &c, err);
  if (s) return s;
  if (c != 1)
    return rt_fail(err, GRADC_ERR_ARG, "IDX images have one channel; output '%s' has %lld", out->name, (long long)c);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return rt_fail(err, GRADC_ERR_IO, "cannot make the directory '%s': %s", dir, strerror(errno));
  enum { CHUNK = 250 };
  int64_t size = h * w;
  uint8_t *px = malloc((size_t)(size * count)), *labels = calloc((size_t)count, 1);
  float *buf = malloc(sizeof(float) * (size_t)(size * CHUNK));
  int64_t *idx = malloc(sizeof(int64_t) * CHUNK);
  if (!px || !labels || !buf || !idx) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for %lld images", (long long)count);
  int32_t *counter = random_counter(m, g), start = counter ? *counter : 0;
  for (int64_t at = 0; !s && at < count; at += CHUNK) {
    int64_t bs = count - at < CHUNK ? count - at : CHUNK;
    if ((s = gradc_bind(m, bs))) {
      rt_fail(err, s, "%s", gradc_last_error(m));
      break;
    }
    counter = random_counter(m, g);       /* a new binding may move it */
    if (counter) *counter = start + (int32_t)(at / CHUNK);
    for (int64_t i = 0; d && i < bs; i++) idx[i] = (at + i) % d->n;
    if (d) feed_gather(m, f, d, idx, bs);
    gradc_forward(m);
    read_floats(m, out->node, out->name, buf, size * bs);
    for (int64_t i = 0; i < size * bs; i++) {
      double lo = o->signed_pixels ? -1 : 0, t = ((double)buf[i] - lo) / (1 - lo) * 255.0 + 0.5;
      px[at * size + i] = !(t > 0) ? 0 : t >= 255 ? 255 : (uint8_t)t;
    }
  }
  if ((counter = random_counter(m, g))) *counter = start;
  char path[4200];
  uint8_t head[16] = {0, 0, 8, 3}, lhead[8] = {0, 0, 8, 1};
  uint32_t dims[3] = {(uint32_t)count, (uint32_t)h, (uint32_t)w};
  for (int k = 0; k < 3; k++)
    for (int b = 0; b < 4; b++) head[4 + 4 * k + b] = (uint8_t)(dims[k] >> (24 - 8 * b));
  memcpy(lhead + 4, head + 4, 4);
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
  if (!s) s = write_file(path, head, sizeof head, px, (size_t)(size * count), err);
  snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
  if (!s) s = write_file(path, lhead, sizeof lhead, labels, (size_t)count, err);
  free(px), free(labels), free(buf), free(idx);
  return s;
}

gradc_status cli_sample(gradc_model *m, const TrainOptions *o, const char *path, int64_t count, bool idx,
                        RtError *err) {
  const Graph *g = jitmodel_graph(m);
  bool has_inputs = false;
  for (int i = 0; i < g->nnodes; i++) has_inputs |= g->nodes[i]->op == OP_INPUT;
  Dataset test = {0};
  Feed feed;
  gradc_status s = has_inputs ? load_data(m, o, false, &test, err) : GRADC_OK;
  if (!s && has_inputs) s = feed_plan(m, &test, &feed, err);
  if (!s && has_inputs) s = check_values(m, &feed, &test, o, false, err);
  if (!s && idx) s = sample_idx(m, o, has_inputs ? &test : NULL, &feed, path, count, err);
  else if (!s) s = draw_samples(m, o, has_inputs ? &test : NULL, &feed, path, count, err);
  data_free(&test);
  return s;
}

/* The Inception score of the test split under the model's first output,
 * a classifier's probabilities p(y|x) [batch, classes]:
 * IS = exp(mean_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the
 * split (Salimans et al. 2016; here with a Fashion-MNIST classifier
 * rather than Inception).  Rows that are not probabilities (logits) are
 * refused rather than guessed at. */
gradc_status cli_score(gradc_model *m, const TrainOptions *o, double *score, int64_t *n, RtError *err) {
  const Graph *g = jitmodel_graph(m);
  if (!g->noutputs) return rt_fail(err, GRADC_ERR_ARG, "the model declares no output: score needs class probabilities");
  const Node *y = g->outputs[0].node;
  const Dim *dm = y->shape.d;
  if (y->shape.rank != 2 || !dtype_is_float(y->dtype) || !dm[0].sym || dm[0].n != 1 || dm[1].sym) {
    char b[SHAPE_STR_MAX];
    return rt_fail(err, GRADC_ERR_ARG, "score needs class probabilities [batch, classes] as the first output; '%s' is %s%s",
                   g->outputs[0].name, dtype_names[y->dtype], shape_str(g, &y->shape, b, sizeof b));
  }
  int64_t C = dm[1].n;
  Dataset test = {0};
  Feed feed;
  gradc_status s = load_data(m, o, false, &test, err);
  if (!s) s = feed_plan(m, &test, &feed, err);
  if (!s) s = check_values(m, &feed, &test, o, false, err);
  double *p = s ? NULL : malloc(sizeof(double) * (size_t)(test.n * C));
  int64_t *idx = s ? NULL : malloc(sizeof(int64_t) * (size_t)o->batch);
  if (!s && (!p || !idx)) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  for (int64_t at = 0; !s && at < test.n; at += o->batch) {
    int64_t bs = test.n - at < o->batch ? test.n - at : o->batch;
    if ((s = gradc_bind(m, bs))) {
      rt_fail(err, s, "%s", gradc_last_error(m));
      break;
    }
    for (int64_t i = 0; i < bs; i++) idx[i] = at + i;
    feed_gather(m, &feed, &test, idx, bs);
    gradc_forward(m);
    const void *data = gradc_data(m, g->outputs[0].name, NULL);
    for (int64_t i = 0; i < bs * C; i++)
      p[at * C + i] = y->dtype == DT_F64 ? ((const double *)data)[i] : (double)((const float *)data)[i];
    for (int64_t i = 0; !s && i < bs; i++) {
      double sum = 0;
      bool ok = true;
      for (int64_t k = 0; k < C; k++) ok &= p[(at + i) * C + k] >= 0, sum += p[(at + i) * C + k];
      if (!ok || fabs(sum - 1) > 1e-3)
        s = rt_fail(err, GRADC_ERR_ARG, "output '%s' of sample %lld is not a probability distribution (sums to %g): "
                    "score needs softmax probabilities", g->outputs[0].name, (long long)(at + i), sum);
    }
  }
  if (!s) {
    double *py = calloc((size_t)C, sizeof(double)), kl = 0;
    if (!py) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; py && i < test.n; i++)
      for (int64_t k = 0; k < C; k++) py[k] += p[i * C + k] / (double)test.n;
    for (int64_t i = 0; py && i < test.n; i++)
      for (int64_t k = 0; k < C; k++) {
        double q = p[i * C + k];
        if (q > 0) kl += q * (log(q) - log(py[k]));
      }
    if (py) *score = exp(kl / (double)test.n), *n = test.n;
    free(py);
  }
  free(p), free(idx);
  data_free(&test);
  return s;
}
