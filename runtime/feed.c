/*
 * feed.c - a dataset into a model's inputs, and the public dataset API
 * (gradc_dataset_*) over it.
 *
 * Data meets the model by dtype: a dataset's images feed the model's one
 * float input (shaped to its declaration: [batch,784] or [batch,28,28,1]
 * alike, as long as the per-sample sizes agree) and its labels the one i32
 * input.  A table (a CSV file, Dataset.table) feeds the inputs in
 * declaration order, one column per value of a sample.  feed_plan decides
 * once which input takes which columns; feed_gather then copies a batch of
 * samples, in any order, into the bound input buffers, converting to each
 * input's dtype.  A dataset of sequences (ids per sample, Dataset.seq)
 * feeds its ids to the one input that is not the i32[batch] labels, each
 * sequence padded or truncated to that input's length as Keras'
 * pad_sequences does (SeqPad).  The fit loop of `gradc train`
 * (cli/train.c) and gradc_dataset_feed share both.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* "[batch,784]": a tensor record's shape with the descriptor's names. */
static void shape_text(const AbiModel *am, const int64_t *t, char *out, size_t n) {
  size_t used = (size_t)snprintf(out, n, "[");
  for (int64_t k = 0; k < t[ABI_T_RANK] && used < n; k++) {
    int64_t dn = t[ABI_T_DIM_N + k], ds = t[ABI_T_DIM_SYM + k];
    const char *sym = ds ? am->names[am->desc[ABI_H_SYM_NAME] + ds - 1] : "";
    if (!ds) used += (size_t)snprintf(out + used, n - used, "%s%lld", k ? "," : "", (long long)dn);
    else if (dn == 1) used += (size_t)snprintf(out + used, n - used, "%s%s", k ? "," : "", sym);
    else used += (size_t)snprintf(out + used, n - used, "%s%lld*%s", k ? "," : "", (long long)dn, sym);
  }
  if (used < n) snprintf(out + used, n - used, "]");
}

gradc_status feed_plan(const gradc_model *m, const Dataset *d, Feed *f, RtError *err) {
  const AbiModel *am = inst_model(m);
  const int64_t *desc = am->desc;
  memset(f, 0, sizeof *f);
  bool have_x = false, have_y = false;
  int64_t col = 0;
  for (int64_t i = 0; i < desc[ABI_H_NTENSORS]; i++) {
    const int64_t *t = abi_tensor(desc, i);
    if (t[ABI_T_KIND] != ABI_INPUT) continue;
    const char *name = am->names[t[ABI_T_NAME]];
    DType dt = (DType)t[ABI_T_DTYPE];
    int64_t rank = t[ABI_T_RANK];
    if (rank < 1 || t[ABI_T_DIM_SYM] == 0 || t[ABI_T_DIM_N] != 1)
      return rt_fail(err, GRADC_ERR_DATA, "input '%s' must have the symbolic batch as its first dimension",
                     name);
    int64_t w = 1;
    for (int64_t k = 1; k < rank; k++) {
      if (t[ABI_T_DIM_SYM + k])
        return rt_fail(err, GRADC_ERR_DATA, "input '%s' may only have the batch dimension symbolic", name);
      w *= t[ABI_T_DIM_N + k];
    }
    if (f->n == MAX_FEED) return rt_fail(err, GRADC_ERR_DATA, "more than %d inputs to feed", MAX_FEED);
    if (d->seq) {                 /* sequences: the ids to one input, labels to i32[batch] */
      bool labels = dt == DT_I32 && rank == 1 && !have_y;
      if (!labels && have_x)
        return rt_fail(err, GRADC_ERR_DATA,
                       "cannot feed input '%s' from a sequence dataset: it feeds one input (the "
                       "ids, padded or truncated to its length) and one i32[batch] input (labels)",
                       name);
      have_x |= !labels, have_y |= labels;
      f->part[f->n++] = (FeedPart){name, dt, 0, w, labels};
      continue;
    }
    if (d->table) {               /* CSV: inputs take columns in declaration order */
      f->part[f->n++] = (FeedPart){name, dt, col, w, false};
      col += w;
      continue;
    }
    bool labels = dt == DT_I32 && !have_y;
    bool is_float = dt == DT_F32 || dt == DT_F64;
    if ((labels && rank != 1) || (!labels && (!is_float || have_x)))
      return rt_fail(err, GRADC_ERR_DATA,
                     "cannot feed input '%s' (%s) from an image dataset: it feeds one float input "
                     "(images) and one i32[batch] input (labels)",
                     name, abi_dtype_name(dt));
    if (!labels && w != d->sample_size) {
      char b[160];
      shape_text(am, t, b, sizeof b);
      return rt_fail(err, GRADC_ERR_DATA,
                     "input '%s' is %s, %lld values per sample, but the data has %lld values per "
                     "sample (%lldx%lld images)",
                     name, b, (long long)w, (long long)d->sample_size, (long long)d->dims[0],
                     (long long)d->dims[1]);
    }
    if (labels && !d->y) return rt_fail(err, GRADC_ERR_DATA, "the data has no labels for input '%s'", name);
    have_x |= !labels, have_y |= labels;
    f->part[f->n++] = (FeedPart){name, dt, 0, w, labels};
  }
  if (d->table && col != d->sample_size)
    return rt_fail(err, GRADC_ERR_DATA,
                   "the model's inputs take %lld values per sample but the CSV has %lld columns "
                   "(inputs are fed from the columns in declaration order)",
                   (long long)col, (long long)d->sample_size);
  return GRADC_OK;
}

/* Element k of sample i of the batch, in dtype dt. */
static void put(void *dst, DType dt, int64_t at, double v) {
  switch (dt) {
  case DT_F32: ((float *)dst)[at] = (float)v; break;
  case DT_F64: ((double *)dst)[at] = v; break;
  case DT_I32: ((int32_t *)dst)[at] = (int32_t)v; break;
  case DT_BOOL: ((uint8_t *)dst)[at] = v != 0; break;
  default: break;
  }
}

/* Sequence s of d into the w values at dst + at, as Keras' pad_sequences:
 * a longer one loses its first ids ('pre') or its last ('post'), a shorter
 * one gets pad.value before ('pre') or after ('post') its ids. */
static void put_sequence(void *dst, DType dt, int64_t at, int64_t w, const Dataset *d, int64_t s) {
  const float *ids = d->x + d->seq[s];
  int64_t len = d->seq[s + 1] - d->seq[s];
  if (len > w) {
    if (!d->pad.truncate_post) ids += len - w;
    len = w;
  }
  int64_t pad = w - len, first = d->pad.pad_post ? 0 : pad;
  for (int64_t k = 0; k < w; k++)
    put(dst, dt, at + k, k >= first && k < first + len ? ids[k - first] : d->pad.value);
}

void feed_gather(gradc_model *m, const Feed *f, const Dataset *d, const int64_t *idx, int64_t bs) {
  for (int p = 0; p < f->n; p++) {
    DType dt = f->part[p].dtype;
    void *dst = gradc_data(m, f->part[p].name, NULL);
    int64_t w = f->part[p].width;
    for (int64_t i = 0; i < bs; i++) {
      if (f->part[p].labels) {
        ((int32_t *)dst)[i] = d->y[idx[i]];
        continue;
      }
      if (d->seq) {
        put_sequence(dst, dt, i * w, w, d, idx[i]);
        continue;
      }
      const float *src = d->x + idx[i] * d->sample_size + f->part[p].col;
      if (dt == DT_F32 && w == 1) {   /* a column of a CSV: no memcpy call per value */
        ((float *)dst)[i] = *src;
        continue;
      }
      if (dt == DT_F32) {
        memcpy((float *)dst + i * w, src, sizeof(float) * (size_t)w);
        continue;
      }
      for (int64_t k = 0; k < w; k++) put(dst, dt, i * w + k, src[k]);
    }
  }
}

bool feed_find_outside(const Feed *f, int p, const Dataset *d, double lo, double hi, int64_t *sample, int64_t *elem,
                       double *value) {
  const FeedPart *part = &f->part[p];
  for (int64_t i = 0; i < d->n; i++) {
    int64_t from, count;           /* in d->y (labels) or d->x */
    if (part->labels) from = i, count = 1;
    else if (d->seq) from = d->seq[i], count = d->seq[i + 1] - d->seq[i];
    else from = i * d->sample_size + part->col, count = part->width;
    for (int64_t k = 0; k < count; k++) {
      double v = part->labels ? (double)d->y[from] : (double)d->x[from + k];
      if (v >= lo && v <= hi && v == floor(v)) continue;
      *sample = i, *elem = k, *value = v;
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------------ public API */

struct gradc_dataset {
  Dataset d;
};

gradc_status gradc_dataset_load(const char *dir, int train, gradc_dataset **out) {
  RtError err = {{0}};
  if (!out || !dir) return rt_api_fail(GRADC_ERR_ARG, "gradc_dataset_load: NULL argument");
  *out = calloc(1, sizeof **out);
  if (!*out) return rt_api_fail(GRADC_ERR_NOMEM, "out of memory");
  gradc_status s = data_load_mnist_dir(dir, train != 0, &(*out)->d, &err);
  if (s) {
    free(*out);
    *out = NULL;
    return rt_api_fail(s, "%s", err.msg);
  }
  return GRADC_OK;
}

gradc_status gradc_dataset_load_sequences_csv(const char *path, gradc_dataset **out) {
  RtError err = {{0}};
  if (!out || !path) return rt_api_fail(GRADC_ERR_ARG, "gradc_dataset_load_sequences_csv: NULL argument");
  *out = calloc(1, sizeof **out);
  if (!*out) return rt_api_fail(GRADC_ERR_NOMEM, "out of memory");
  gradc_status s = data_load_csv_sequences(path, &(*out)->d, &err);
  if (s) {
    free(*out);
    *out = NULL;
    return rt_api_fail(s, "%s", err.msg);
  }
  return GRADC_OK;
}

gradc_status gradc_dataset_set_padding(gradc_dataset *d, int padding_post, int truncating_post,
                                       int32_t value) {
  if (!d) return rt_api_fail(GRADC_ERR_ARG, "gradc_dataset_set_padding: NULL argument");
  if (!d->d.seq) return rt_api_fail(GRADC_ERR_ARG, "gradc_dataset_set_padding: the dataset holds no sequences");
  d->d.pad = (SeqPad){padding_post != 0, truncating_post != 0, value};
  return GRADC_OK;
}

int64_t gradc_dataset_size(const gradc_dataset *d) { return d ? d->d.n : 0; }

void gradc_dataset_free(gradc_dataset *d) {
  if (!d) return;
  data_free(&d->d);
  free(d);
}

/* The error of a call on m, as m's (gradc_last_error(m), as gradc.h's
 * conventions say) and the thread's, where earlier versions put it. */
static gradc_status feed_fail(gradc_model *m, gradc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static gradc_status feed_fail(gradc_model *m, gradc_status s, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rt_api_fail(s, "%s", msg);
  return m ? inst_fail(m, s, "%s", msg) : s;
}

gradc_status gradc_dataset_feed(const gradc_dataset *d, gradc_model *m, const int64_t *order,
                                int64_t start, int64_t count) {
  if (!d || !m) return feed_fail(m, GRADC_ERR_ARG, "gradc_dataset_feed: NULL argument");
  if (count < 1)
    return feed_fail(m, GRADC_ERR_ARG, "gradc_dataset_feed: count %lld is not a number of samples", (long long)count);
  if (start < 0 || start > d->d.n - count) {
    /* The last sample's index, held at INT64_MAX: any start and count
     * make a message, never an overflow. */
    int64_t last = start > INT64_MAX - (count - 1) ? INT64_MAX : start + (count - 1);
    return feed_fail(m, GRADC_ERR_ARG, "gradc_dataset_feed: samples %lld..%lld are outside the dataset of %lld",
                     (long long)start, (long long)last, (long long)d->d.n);
  }
  /* The entries of order index the dataset as start and count do, and
   * are checked as they are, before anything changes: an entry out of
   * range would read outside the samples. */
  for (int64_t i = 0; order && i < count; i++)
    if (order[start + i] < 0 || order[start + i] >= d->d.n)
      return feed_fail(m, GRADC_ERR_ARG,
                       "gradc_dataset_feed: order[%lld] is %lld, outside the dataset of %lld samples",
                       (long long)(start + i), (long long)order[start + i], (long long)d->d.n);
  RtError err = {{0}};
  Feed f;
  gradc_status s = feed_plan(m, &d->d, &f, &err);
  if (s) return feed_fail(m, s, "%s", err.msg);
  if ((s = gradc_bind(m, count))) return s;
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)count);
  if (!idx) return feed_fail(m, GRADC_ERR_NOMEM, "out of memory");
  for (int64_t i = 0; i < count; i++) idx[i] = order ? order[start + i] : start + i;
  feed_gather(m, &f, &d->d, idx, count);
  free(idx);
  return GRADC_OK;
}

/* The CLI's own order (cli/train.c calls data_permutation), so that a
 * program that feeds by it trains on the same batches. */
void gradc_shuffle(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
  data_permutation(order, n, seed, epoch);
}
