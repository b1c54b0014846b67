/*
 * run.c - gradc run: a model file as a calculator.
 *
 * Compiles a program through the public API (no train statement needed),
 * feeds its inputs from .npy or .csv files, runs forward once and prints
 * every output with its dtype and shape, numpy-style: elements right-
 * aligned to one width, floats in the shortest form that reads back to
 * the same f32/f64 (what numpy's repr prints), integral floats as "2.",
 * and, past RUN_THRESHOLD elements, the first and last RUN_EDGE of each
 * axis with "..." between (numpy's threshold and edgeitems); at most
 * 8 digits after the point (numpy's precision).  With
 * --format npy each output is written to DIR/NAME.npy instead.  Of a
 * padded result (boolean_mask, unique, one-argument where) only its valid
 * block is printed or written.
 *
 * A symbolic dimension takes its value from the first fed file whose
 * input declares one; every symbolic dimension is bound to it (gradc_bind),
 * and 1 when nothing is fed.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* numpy's print options: threshold, edgeitems, precision, linewidth */
enum { RUN_THRESHOLD = 1000, RUN_EDGE = 3, RUN_PRECISION = 8, RUN_LINE_WIDTH = 75 };

/* The values of a fed file as doubles, with its shape. */
typedef struct Array {
  int rank;
  int64_t dims[8];
  int64_t count;
  double *v;
} Array;

static gradc_status fail(RtError *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return GRADC_ERR_DATA;
}

/* A .npy file through the runtime's one reader (loaders.c), as doubles. */
static gradc_status read_npy(const char *path, Array *a, RtError *err) {
  NpyArray n;
  gradc_status s = npy_read(path, &n, err);
  if (s) return s;
  a->rank = n.rank, a->count = n.count;
  for (int k = 0; k < n.rank; k++) a->dims[k] = n.dims[k];
  a->v = malloc(sizeof(double) * (size_t)(n.count ? n.count : 1));
  if (!a->v) {
    npy_free(&n);
    return fail(err, "%s: out of memory%s", path, "");
  }
  for (int64_t i = 0; i < n.count; i++) a->v[i] = npy_value(&n, i);
  npy_free(&n);
  return GRADC_OK;
}

/* CSV: numbers separated by commas, one row per line; a file of one row
 * is a vector, else [rows, columns]. */
static gradc_status read_csv(const char *path, FILE *f, Array *a, RtError *err) {
  int64_t cap = 64, rows = 0, cols = -1, n = 0, line = 0;
  a->v = malloc(sizeof(double) * (size_t)cap);
  char buf[1 << 16];
  while (a->v && fgets(buf, sizeof buf, f)) {
    line++;
    int64_t c = 0;
    char *p = buf;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\n' || *p == '\r' || !*p) continue;
    for (;;) {
      char *e;
      errno = 0;
      double x = strtod(p, &e);
      if (e == p || errno || !isfinite(x)) {
        char at[64];
        snprintf(at, sizeof at, "%" PRId64 ", field %" PRId64, line, c + 1);
        return fail(err, "%s:%s: expected a decimal number", path, at);
      }
      if (n == cap) {
        double *v = realloc(a->v, sizeof(double) * (size_t)(cap *= 2));
        if (!v) return fail(err, "%s: out of memory%s", path, "");
        a->v = v;
      }
      a->v[n++] = x, c++;
      while (*e == ' ' || *e == '\t') e++;
      if (*e != ',') break;
      p = e + 1;
    }
    if (cols >= 0 && c != cols) {
      char at[96];
      snprintf(at, sizeof at, "%" PRId64 " has %" PRId64 " fields, expected %" PRId64, line, c, cols);
      return fail(err, "%s: line %s", path, at);
    }
    cols = c, rows++;
  }
  if (!a->v || rows == 0) return fail(err, "%s: expected numbers, found %s", path, a->v ? "none" : "no memory");
  a->count = n;
  a->rank = rows == 1 ? 1 : 2;
  a->dims[0] = rows == 1 ? cols : rows, a->dims[1] = cols;
  return GRADC_OK;
}

static gradc_status read_array(const char *path, Array *a, RtError *err) {
  size_t len = strlen(path);
  if (len > 4 && !strcmp(path + len - 4, ".npy")) return read_npy(path, a, err);
  FILE *f = fopen(path, "rb");
  if (!f) return fail(err, "cannot read '%s': %s", path, strerror(errno));
  gradc_status st = read_csv(path, f, a, err);
  fclose(f);
  return st;
}

/* ------------------------------------------------------------- printing */

/* How one tensor's elements are written: numpy's rules.  Floats are
 * positional, each in its shortest form that reads back to the same value
 * in the tensor's precision, padded so the points line up ("6.       "
 * beside "6.6666665"); scientific for all of them, with one mantissa
 * precision, when the largest magnitude is 1e8 or more, the smallest
 * non-zero one below 1e-4, or their ratio above 1e3. */
typedef struct Format {
  gradc_dtype dtype;
  bool sci;
  int prec;                  /* sci: digits after the point */
  int left, right;           /* positional: widths around the point */
  int width;                 /* of every element */
} Format;

static double elem(const void *data, gradc_dtype dt, int64_t i) {
  switch (dt) {
  case GRADC_F32: return ((const float *)data)[i];
  case GRADC_F64: return ((const double *)data)[i];
  case GRADC_I32: return ((const int32_t *)data)[i];
  case GRADC_BOOL: return ((const unsigned char *)data)[i];
  }
  return 0;
}

static bool reads_back(const char *s, double x, bool f32) {
  double back = strtod(s, NULL);
  return f32 ? (float)back == (float)x : back == x;
}

/* The shortest positional form of x, at most RUN_PRECISION digits after
 * the point (trailing zeros dropped), and how many it has. */
static int positional(char *out, size_t size, double x, bool f32) {
  int p = 0;
  for (; p < RUN_PRECISION; p++) {
    snprintf(out, size, "%.*f", p, x);
    if (reads_back(out, x, f32)) break;
  }
  if (p == RUN_PRECISION) {
    snprintf(out, size, "%.*f", p, x);
    while (p > 0 && out[strlen(out) - 1] == '0') out[strlen(out) - 1] = 0, p--;
  }
  if (p == 0 && !strchr(out, '.')) strncat(out, ".", size - strlen(out) - 1);
  return p;
}

static int scientific_digits(double x, bool f32) {
  char s[64];
  for (int p = 0; p < RUN_PRECISION; p++) {
    snprintf(s, sizeof s, "%.*e", p, x);
    if (reads_back(s, x, f32)) return p;
  }
  return RUN_PRECISION;
}

static void format_raw(char *out, size_t size, const Format *f, double x) {
  bool f32 = f->dtype == GRADC_F32;
  if (f->dtype == GRADC_I32) snprintf(out, size, "%.0f", x);
  else if (f->dtype == GRADC_BOOL) snprintf(out, size, "%s", x != 0 ? "True" : "False");
  else if (isnan(x)) snprintf(out, size, "nan");
  else if (isinf(x)) snprintf(out, size, x < 0 ? "-inf" : "inf");
  else if (f->sci) snprintf(out, size, "%.*e", f->prec, x);
  else {
    char s[400];
    int p = positional(s, sizeof s, x, f32);
    int left = (int)(strchr(s, '.') - s);
    snprintf(out, size, "%*s%s%*s", f->left - left, "", s, f->right - p, "");
  }
}

static Format make_format(const void *data, gradc_dtype dt, int64_t count) {
  Format f = {.dtype = dt};
  bool fl = dt == GRADC_F32 || dt == GRADC_F64;
  if (fl) {
    double lo = INFINITY, hi = 0;
    for (int64_t i = 0; i < count; i++) {
      double a = fabs(elem(data, dt, i));
      if (!isfinite(a)) continue;
      if (a > hi) hi = a;
      if (a > 0 && a < lo) lo = a;
    }
    f.sci = hi >= 1e8 || (lo < 1e-4) || (isfinite(lo) && hi / lo > 1e3);
    for (int64_t i = 0; i < count; i++) {
      double x = elem(data, dt, i);
      if (!isfinite(x)) continue;
      if (f.sci) {
        int p = scientific_digits(x, dt == GRADC_F32);
        if (p > f.prec) f.prec = p;
      } else {
        char s[400];
        int p = positional(s, sizeof s, x, dt == GRADC_F32);
        int left = (int)(strchr(s, '.') - s);
        if (p > f.right) f.right = p;
        if (left > f.left) f.left = left;
      }
    }
  }
  for (int64_t i = 0; i < count; i++) {
    char s[512];
    format_raw(s, sizeof s, &f, elem(data, dt, i));
    if ((int)strlen(s) > f.width) f.width = (int)strlen(s);
  }
  return f;
}

typedef struct Printer {
  FILE *out;
  const gradc_tensor *t;
  const void *data;
  bool summarise;
  Format f;
} Printer;

static bool skipped(const Printer *p, int axis, int64_t k) {
  return p->summarise && p->t->dims[axis] > 2 * RUN_EDGE && k >= RUN_EDGE && k < p->t->dims[axis] - RUN_EDGE;
}

/* One axis of the array from element offset at, numpy's layout: rows of
 * the last axis on one line, a blank line between blocks of rank >= 3. */
static void print_axis(const Printer *p, int axis, int64_t at, int indent) {
  const gradc_tensor *t = p->t;
  int64_t stride = 1;
  for (int i = axis + 1; i < t->rank; i++) stride *= t->dims[i];
  fputc('[', p->out);
  if (axis == t->rank - 1) {
    /* numpy's line width: a word goes on the next line, under the first,
     * when it would end past 75 less one column per enclosing bracket */
    int col = axis + 1, limit = RUN_LINE_WIDTH - 1 - axis;
    bool first = true;
    for (int64_t k = 0; k < t->dims[axis]; k++) {
      if (skipped(p, axis, k) && k != RUN_EDGE) continue;
      char s[512];
      if (skipped(p, axis, k)) snprintf(s, sizeof s, "...");
      else {
        char raw[512];
        format_raw(raw, sizeof raw, &p->f, elem(p->data, t->dtype, at + k));
        snprintf(s, sizeof s, "%*s", p->f.width, raw);
      }
      int w = (int)strlen(s);
      if (!first && col + 1 + w > limit) {
        fprintf(p->out, "\n%*s", axis + 1, "");
        col = axis + 1;
      } else if (!first) {
        fputc(' ', p->out);
        col++;
      }
      fputs(s, p->out);
      col += w, first = false;
    }
    fputc(']', p->out);
    return;
  }
  for (int64_t k = 0; k < t->dims[axis]; k++) {
    if (skipped(p, axis, k)) {
      if (k == RUN_EDGE) fprintf(p->out, "\n%*s...", indent + 1, "");
      continue;
    }
    if (k > 0) {
      for (int nl = 0; nl < t->rank - 1 - axis; nl++) fputc('\n', p->out);
      fprintf(p->out, "%*s", indent + 1, "");
    }
    print_axis(p, axis + 1, at + k * stride, indent + 1);
  }
  fputc(']', p->out);
}

static const char *const dtype_name[] = {"f32", "f64", "i32", "bool"};

static void print_header(FILE *out, const gradc_tensor *t) {
  fprintf(out, "%s: %s[", t->name, dtype_name[t->dtype]);
  for (int i = 0; i < t->rank; i++) fprintf(out, "%s%" PRId64, i ? ", " : "", t->dims[i]);
  fputc(']', out);
}

static void print_tensor(FILE *out, const gradc_tensor *t, const void *data) {
  print_header(out, t);
  fputs(" =", out);
  Printer p = {out, t, data, t->count > RUN_THRESHOLD, make_format(data, t->dtype, t->count)};
  if (t->rank == 0) {
    char s[512];
    format_raw(s, sizeof s, &p.f, elem(data, t->dtype, 0));
    fprintf(out, " %s\n", s);
    return;
  }
  fputs(t->rank == 1 ? " " : "\n", out);
  print_axis(&p, 0, 0, 0);
  fputc('\n', out);
}

/* numpy's format 1.0: magic, a header padded to 64 bytes, the data. */
static gradc_status write_npy(const char *dir, const gradc_tensor *t, const void *data, RtError *err) {
  static const char *const descr[] = {"<f4", "<f8", "<i4", "|b1"};
  static const size_t esize[] = {4, 8, 4, 1};
  char path[4096], head[512];
  snprintf(path, sizeof path, "%s/%s.npy", dir, t->name);
  for (char *c = path + strlen(dir) + 1; *c; c++)
    if (*c == '/') *c = '_';
  int n = snprintf(head, sizeof head, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[t->dtype]);
  for (int i = 0; i < t->rank; i++) n += snprintf(head + n, sizeof head - (size_t)n, "%" PRId64 ",%s", t->dims[i],
                                                   i + 1 < t->rank ? " " : "");
  if (t->rank > 1) n--;
  n += snprintf(head + n, sizeof head - (size_t)n, "), }");
  while ((10 + n + 1) % 64) head[n++] = ' ';
  head[n++] = '\n';
  FILE *f = fopen(path, "wb");
  if (!f) return fail(err, "cannot write '%s': %s", path, strerror(errno));
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 255), (unsigned char)(n >> 8)};
  bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(head, 1, (size_t)n, f) == (size_t)n &&
            fwrite(data, esize[t->dtype], (size_t)t->count, f) == (size_t)t->count;
  ok &= fclose(f) == 0;
  return ok ? GRADC_OK : fail(err, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
}

/* ------------------------------------------------------------ the command */

/* The results of boolean_mask, unique and one-argument where are padded
 * to a static bound; the model outputs the valid extent of each as
 * NAME#valid (compiler/tensor.c), and only that leading block is printed
 * or written.  *block is t with the valid dims; *copy the block's
 * elements when they are not all of t's (to be freed), else NULL. */
static const char *const valid_suffix = "#valid";

static bool is_valid_extent(const char *name) {
  size_t n = strlen(name), k = strlen(valid_suffix);
  return n > k && !strcmp(name + n - k, valid_suffix);
}

static gradc_status valid_block(gradc_model *m, const gradc_tensor *t, const void *data, gradc_tensor *block,
                                void **copy, RtError *err) {
  static const size_t esize[] = {4, 8, 4, 1};
  char name[512];
  *block = *t, *copy = NULL;
  snprintf(name, sizeof name, "%s%s", t->name, valid_suffix);
  const int32_t *valid = gradc_data(m, name, NULL);
  if (!valid) return GRADC_OK;
  block->count = 1;
  for (int i = 0; i < t->rank; i++) {
    if (valid[i] < 0 || valid[i] > t->dims[i])
      return fail(err, "%s: a valid extent of %d along axis %d, outside [0, %" PRId64 "]", t->name, (int)valid[i],
                  i, t->dims[i]);
    block->dims[i] = valid[i], block->count *= valid[i];
  }
  if (block->count == t->count) return GRADC_OK;
  size_t es = esize[t->dtype];
  unsigned char *out = malloc(es * (size_t)(block->count ? block->count : 1));
  if (!out) return fail(err, "%s: out of memory%s", t->name, "");
  for (int64_t k = 0; k < block->count; k++) {
    int64_t rest = k, src = 0, stride = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
      src += rest % block->dims[i] * stride;
      rest /= block->dims[i], stride *= t->dims[i];
    }
    memcpy(out + (size_t)k * es, (const unsigned char *)data + (size_t)src * es, es);
  }
  *copy = out;
  return GRADC_OK;
}

static gradc_status feed(gradc_model *m, const RunOptions *o, Array *arrays, RtError *err) {
  int64_t batch = 0;
  for (int i = 0; i < o->nfeeds; i++) {
    gradc_status st = read_array(o->feeds[i].path, &arrays[i], err);
    if (st) return st;
    for (int k = 0; k < gradc_tensor_count(m); k++) {
      gradc_tensor t;
      gradc_tensor_info(m, k, &t);
      if (t.kind != GRADC_INPUT || strcmp(t.name, o->feeds[i].name)) continue;
      for (int d = 0; d < t.rank && !batch; d++)
        if (t.symbolic[d] && d < arrays[i].rank) batch = arrays[i].dims[d];
    }
  }
  gradc_status st = gradc_bind(m, batch ? batch : 1);
  if (st) return fail(err, "%s%s", gradc_last_error(m), ""), st;
  for (int i = 0; i < o->nfeeds; i++) {
    gradc_tensor t = {0};
    int k;
    for (k = 0; k < gradc_tensor_count(m); k++) {
      gradc_tensor_info(m, k, &t);
      if (t.kind == GRADC_INPUT && !strcmp(t.name, o->feeds[i].name)) break;
    }
    if (k == gradc_tensor_count(m))
      return fail(err, "--feed %s: the model has no input called '%s'", o->feeds[i].name, o->feeds[i].name);
    if (t.count != arrays[i].count) {
      char what[160];
      snprintf(what, sizeof what, "%s holds %" PRId64 " values, the input %s takes %" PRId64, o->feeds[i].path,
               arrays[i].count, t.name, t.count);
      return fail(err, "--feed: %s%s", what, "");
    }
    void *dst = gradc_data(m, t.name, NULL);
    for (int64_t j = 0; j < t.count; j++) {
      double x = arrays[i].v[j];
      switch (t.dtype) {
      case GRADC_F32: ((float *)dst)[j] = (float)x; break;
      case GRADC_F64: ((double *)dst)[j] = x; break;
      case GRADC_I32: ((int32_t *)dst)[j] = (int32_t)x; break;
      case GRADC_BOOL: ((unsigned char *)dst)[j] = x != 0; break;
      }
    }
  }
  return GRADC_OK;
}

gradc_status cli_run(const RunOptions *o, FILE *out, RtError *err) {
  gradc_options opt;
  gradc_options_default(&opt);
  opt.seed = o->seed;
  opt.opt_level = o->opt_level;
  opt.threads = 1;
  gradc_model *m;
  gradc_status st = gradc_compile_file(o->model, &opt, &m);
  if (st) {
    snprintf(err->msg, sizeof err->msg, "%s", gradc_last_error(NULL));
    return st == GRADC_ERR_MODEL || st == GRADC_ERR_SHAPE ? GRADC_ERR_MODEL : st;
  }
  Array arrays[RUN_MAX_FEEDS] = {{0}};
  st = feed(m, o, arrays, err);
  if (!st && (st = gradc_forward(m))) snprintf(err->msg, sizeof err->msg, "%s", gradc_last_error(m));
  for (int k = 0; !st && k < gradc_tensor_count(m); k++) {
    gradc_tensor t;
    gradc_tensor_info(m, k, &t);
    if (t.kind != GRADC_OUTPUT || is_valid_extent(t.name)) continue;
    const void *data = gradc_data(m, t.name, NULL);
    void *copy;
    gradc_tensor b;
    if ((st = valid_block(m, &t, data, &b, &copy, err))) break;
    if (copy) data = copy;
    if (o->npy_dir) st = write_npy(o->npy_dir, &b, data, err);
    else if (o->shapes_only) print_header(out, &b), fputc('\n', out);
    else print_tensor(out, &b, data);
    free(copy);
  }
  for (int i = 0; i < o->nfeeds; i++) free(arrays[i].v);
  gradc_free(m);
  return st;
}
