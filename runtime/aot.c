/*
 * aot.c - the support library of compiled shared objects (libgradc_aot.a).
 *
 * `gradc compile` links the model's object (emit.c) with this archive,
 * OpenBLAS and libm into a .so.  Its public functions <model>_<name> are
 * one-line forwards to gradc_aot_<name> here, with the model's descriptor
 * (compiler.h, "emit.c, header.c, runtime/aot.c") as first argument.  Every
 * symbol of the archive is hidden: several models' .so files live in one
 * program without sharing anything.
 *
 * What it does is what runtime/model.c does for the JIT, from the
 * descriptor instead of the graph: parameters and optimizer state in one
 * block, initialised by init.c's code (the same numbers for the same
 * seed); one workspace per binding of the symbolic dimensions (all to the
 * batch, or one by name) laid out by layout.c from the live ranges plan.c
 * recorded (the same offsets); the run-time hyperparameters by name (the
 * descriptor lists the valid ones); the buffer table the step
 * functions read; and the parameter state as a gradc checkpoint (runtime/
 * ckpt.c's format); and the instance's run-time context (context.c: its
 * thread pool and scratch), which the step functions receive, so that two
 * instances, of one .so or of two, step concurrently in two threads.  The
 * archive holds this file, init.c, layout.c and the runtime's products
 * (gemm.c, pool.c, context.c), and needs nothing but libc, libm and
 * OpenBLAS.
 *
 * Checkpoints without zlib: gradc writes its payload as a zlib stream of
 * stored blocks (level 0), which is what this file writes too - a 5-byte
 * header per 65535 bytes, an Adler-32 at the end.  For reading, a small
 * inflate (after zlib's contrib/puff) also takes the compressed checkpoints
 * of older gradc versions.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"

enum { HEADER_BYTES = 32, STORED_MAX = 65535, MAX_BATCH = 1 << 24 };

/* The tensor description of the generated header (header.c prints the
 * same struct; keep the two in step). */
typedef struct gradc_aot_tensor {
  const char *name;
  int kind, dtype, rank;
  int64_t dims[8];
  int symbolic[8];
  int64_t count;
  size_t bytes;
  void *data;
} gradc_aot_tensor;

typedef struct gradc_aot_model {
  const AotModel *am;
  const int64_t *desc;
  int nt, nb, nnodes, nsym;
  const int64_t *tensors, *buffers, *storage;
  size_t *state_off;           /* per node; SIZE_MAX for non-persistent */
  int *buffer_of;              /* per node: its workspace buffer, -1 for none */
  char *state;
  void **buf;                  /* the table the step functions read */
  int64_t sym[MAX_SYMS + 1];
  int64_t batch;               /* 0 before bind */
  LayoutBuffer *layout;
  size_t *ws_off;              /* per buffer */
  char *ws;
  size_t ws_bytes;
  bool ws_owned;
  RtContext *rt;               /* threads: OpenBLAS's default count */
  char err[512];
} gradc_aot_model;

static _Thread_local char thread_err[512];

static int fail(gradc_aot_model *m, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(gradc_aot_model *m, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m ? m->err : thread_err, m ? sizeof m->err : sizeof thread_err, fmt, ap);
  va_end(ap);
  return status;
}

/* ------------------------------------------------------------ the descriptor */

static const int64_t *tensor_rec(const int64_t *d, int i) { return d + AOT_H_SIZE + (size_t)i * AOT_T_SIZE; }

static const int64_t *buffer_rec(const int64_t *d, int b) {
  return d + AOT_H_SIZE + (size_t)d[AOT_H_NTENSORS] * AOT_T_SIZE + (size_t)b * AOT_B_SIZE;
}

static bool is_persistent(const int64_t *t) { return t[AOT_T_KIND] == GRADC_PARAM || t[AOT_T_KIND] == GRADC_STATE; }

/* A run-time hyperparameter, the f64 scalar state optimizer/NAME (as
 * model.c's is_hyper): a checkpoint from before gradc had them lacks it,
 * and loading keeps the model's value. */
static bool is_hyper(const AotModel *am, const int64_t *t) {
  return t[AOT_T_KIND] == GRADC_STATE && t[AOT_T_DTYPE] == DT_F64 && t[AOT_T_RANK] == 0 &&
         !strncmp(am->names[t[AOT_T_NAME]], "optimizer/", 10);
}

static size_t dtype_bytes(int64_t dt) { return dt == DT_F64 ? 8 : dt == DT_BOOL ? 1 : 4; }

/* Elements of a persistent tensor (no symbolic dims). */
static int64_t static_count(const int64_t *t) {
  int64_t c = 1;
  for (int k = 0; k < t[AOT_T_RANK]; k++) c *= t[AOT_T_DIM_N + k];
  return c;
}

static size_t state_bytes(const int64_t *t) {
  return ((size_t)static_count(t) * dtype_bytes(t[AOT_T_DTYPE]) + 63) & ~(size_t)63;
}

size_t gradc_aot_state_size(const AotModel *am) {
  size_t total = 0;
  for (int i = 0; i < am->desc[AOT_H_NTENSORS]; i++)
    if (is_persistent(tensor_rec(am->desc, i))) total += state_bytes(tensor_rec(am->desc, i));
  return total;
}

/* Every symbolic dimension set to batch (sym[0] = 1). */
static void all_dims(int64_t *sym, int64_t batch) {
  for (int k = 0; k <= MAX_SYMS; k++) sym[k] = k ? batch : 1;
}

/* The workspace layout for the values sym of the symbolic dimensions:
 * fills lb and off (nb entries each). */
static size_t plan(const AotModel *am, const int64_t *sym, LayoutBuffer *lb, size_t *off) {
  const int64_t *d = am->desc;
  for (int b = 0; b < d[AOT_H_NBUFFERS]; b++) {
    const int64_t *r = buffer_rec(d, b);
    lb[b] = (LayoutBuffer){(int)r[AOT_B_BEGIN], (int)r[AOT_B_END],
                           layout_bytes((int)r[AOT_B_RANK], r + AOT_B_DIM_N, r + AOT_B_DIM_SYM, sym, (size_t)r[AOT_B_ESIZE])};
    if (lb[b].bytes == SIZE_MAX) return SIZE_MAX;
  }
  return layout_assign(lb, (int)d[AOT_H_NBUFFERS], d[AOT_H_REUSE] != 0, off);
}

size_t gradc_aot_workspace_size(const AotModel *am, int64_t batch) {
  if (batch < 1 || batch > MAX_BATCH) return 0;
  int nb = (int)am->desc[AOT_H_NBUFFERS];
  LayoutBuffer *lb = malloc(sizeof *lb * (size_t)(nb + 1));
  size_t *off = malloc(sizeof *off * (size_t)(nb + 1));
  int64_t sym[MAX_SYMS + 1];
  all_dims(sym, batch);
  size_t bytes = lb && off ? plan(am, sym, lb, off) : SIZE_MAX;
  free(lb), free(off);
  return bytes == SIZE_MAX ? 0 : bytes;
}

/* ------------------------------------------------------------ the model */

static int check(const AotModel *am, gradc_aot_model *m, const char *fn) {
  if (!m) return fail(NULL, GRADC_ERR_ARG, "%s_%s: NULL model", am->names[0], fn);
  if (m->am != am)
    return fail(m, GRADC_ERR_ARG, "%s_%s: the handle belongs to model '%s'", am->names[0], fn, m->am->names[0]);
  return GRADC_OK;
}

void gradc_aot_free(const AotModel *am, gradc_aot_model *m) {
  (void)am;
  if (!m) return;
  free(m->state_off), free(m->buffer_of), free(m->state), free(m->buf);
  free(m->layout), free(m->ws_off);
  if (m->ws_owned) free(m->ws);
  rt_context_free(m->rt);
  free(m);
}

int gradc_aot_init(const AotModel *am, gradc_aot_model *m, uint64_t seed) {
  int s = check(am, m, "init");
  if (s) return s;
  for (int i = 0; i < m->nt; i++) {
    const int64_t *t = tensor_rec(m->desc, i);
    if (!is_persistent(t)) continue;
    int64_t c = static_count(t);
    double *tmp = malloc(sizeof(double) * (size_t)(c ? c : 1));
    if (!tmp) return fail(m, GRADC_ERR_NOMEM, "out of memory initialising '%s'", am->names[t[AOT_T_NAME]]);
    double a, b;
    memcpy(&a, &t[AOT_T_INIT_A], sizeof a);
    memcpy(&b, &t[AOT_T_INIT_B], sizeof b);
    const double *values = t[AOT_T_VALUES] >= 0 ? am->values[t[AOT_T_VALUES]] : NULL;
    init_fill((InitKind)t[AOT_T_INIT], a, b, (DType)t[AOT_T_DTYPE], (double)t[AOT_T_FAN_IN], (double)t[AOT_T_FAN_OUT],
              am->names[t[AOT_T_NAME]], values, seed, tmp, c);
    void *p = m->state + m->state_off[t[AOT_T_NODE]];
    for (int64_t k = 0; k < c; k++) {
      switch (t[AOT_T_DTYPE]) {
      case DT_F32: ((float *)p)[k] = (float)tmp[k]; break;
      case DT_F64: ((double *)p)[k] = tmp[k]; break;
      case DT_I32: ((int32_t *)p)[k] = (int32_t)tmp[k]; break;
      default: ((uint8_t *)p)[k] = tmp[k] != 0; break;
      }
    }
    free(tmp);
  }
  return GRADC_OK;
}

gradc_aot_model *gradc_aot_new(const AotModel *am) {
  const int64_t *d = am->desc;
  if (d[AOT_H_VERSION] != AOT_VERSION) {
    fail(NULL, GRADC_ERR_ARG, "%s: descriptor version %lld, this support library reads %d", am->names[0],
         (long long)d[AOT_H_VERSION], AOT_VERSION);
    return NULL;
  }
  gradc_aot_model *m = calloc(1, sizeof *m);
  if (!m) {
    fail(NULL, GRADC_ERR_NOMEM, "%s_new: out of memory", am->names[0]);
    return NULL;
  }
  m->am = am;
  m->desc = d;
  m->nt = (int)d[AOT_H_NTENSORS];
  m->nb = (int)d[AOT_H_NBUFFERS];
  m->nnodes = (int)d[AOT_H_NNODES];
  m->nsym = (int)d[AOT_H_NSYM];
  m->tensors = tensor_rec(d, 0);
  m->buffers = buffer_rec(d, 0);
  m->storage = buffer_rec(d, m->nb);
  for (int k = 0; k <= MAX_SYMS; k++) m->sym[k] = 1;
  size_t n = (size_t)m->nnodes + 1;
  m->state_off = malloc(sizeof *m->state_off * n);
  m->buffer_of = malloc(sizeof *m->buffer_of * n);
  m->buf = calloc(n, sizeof *m->buf);
  m->layout = malloc(sizeof *m->layout * (size_t)(m->nb + 1));
  m->ws_off = malloc(sizeof *m->ws_off * (size_t)(m->nb + 1));
  size_t sb = gradc_aot_state_size(am);
  m->state = aligned_alloc(64, sb ? sb : 64);
  m->rt = rt_context_new(rt_default_threads());
  if (!m->state_off || !m->buffer_of || !m->buf || !m->layout || !m->ws_off || !m->state || !m->rt) {
    gradc_aot_free(am, m);
    fail(NULL, GRADC_ERR_NOMEM, "%s_new: out of memory", am->names[0]);
    return NULL;
  }
  memset(m->state, 0, sb);
  for (size_t i = 0; i < n; i++) m->state_off[i] = SIZE_MAX, m->buffer_of[i] = -1;
  size_t at = 0;
  for (int i = 0; i < m->nt; i++) {
    const int64_t *t = tensor_rec(d, i);
    if (!is_persistent(t)) continue;
    m->state_off[t[AOT_T_NODE]] = at;
    m->buf[t[AOT_T_NODE]] = m->state + at;
    at += state_bytes(t);
  }
  for (int b = 0; b < m->nb; b++) m->buffer_of[buffer_rec(d, b)[AOT_B_NODE]] = b;
  /* Like gradc_compile: usable at once, initialised from seed 1. */
  if (gradc_aot_init(am, m, 1)) {
    fail(NULL, GRADC_ERR_NOMEM, "%s", m->err);
    gradc_aot_free(am, m);
    return NULL;
  }
  return m;
}

/* Lays out the workspace for the dimension values sym in workspace
 * (caller-owned), or, for NULL, in ours (reused when large enough) or - with
 * keep_callers - in the caller's of the last bind while the layout fits the
 * bytes that bind asked for; then points the buffer table into it. */
static int place(const AotModel *am, gradc_aot_model *m, const int64_t *sym, void *workspace, bool keep_callers) {
  size_t bytes = plan(am, sym, m->layout, m->ws_off);
  if (bytes == SIZE_MAX)
    return fail(m, GRADC_ERR_NOMEM, "the workspace for batch %lld would need more than 2^62 bytes", (long long)sym[1]);
  if (workspace) {
    if (m->ws_owned) free(m->ws);
    m->ws = workspace, m->ws_owned = false, m->ws_bytes = bytes;
  } else if (m->ws_owned ? m->ws_bytes < bytes : !(keep_callers && m->ws && m->ws_bytes >= bytes)) {
    char *w = aligned_alloc(64, bytes ? (bytes + 63) & ~(size_t)63 : 64);
    if (!w) {
      m->batch = 0;
      return fail(m, GRADC_ERR_NOMEM, "out of memory: the workspace for batch %lld needs %zu bytes",
                  (long long)sym[1], bytes);
    }
    memset(w, 0, bytes);
    if (m->ws_owned) free(m->ws);
    m->ws = w, m->ws_owned = true, m->ws_bytes = bytes;
  }
  memcpy(m->sym, sym, sizeof m->sym);
  m->batch = sym[1];
  for (int i = 0; i < m->nnodes; i++) {
    int64_t st = m->storage[i];
    if (m->state_off[i] != SIZE_MAX) continue;
    m->buf[i] = st < 0 ? NULL
                : m->state_off[st] != SIZE_MAX ? (void *)(m->state + m->state_off[st])
                : m->buffer_of[st] >= 0 ? (void *)(m->ws + m->ws_off[m->buffer_of[st]])
                : NULL;
  }
  return GRADC_OK;
}

int gradc_aot_bind(const AotModel *am, gradc_aot_model *m, int64_t batch, void *workspace) {
  int s = check(am, m, "bind");
  if (s) return s;
  if (batch < 1 || batch > MAX_BATCH)
    return fail(m, GRADC_ERR_SHAPE, "batch size must be between 1 and %d, got %lld", MAX_BATCH, (long long)batch);
  if (workspace && (uintptr_t)workspace % 64)
    return fail(m, GRADC_ERR_ARG, "the workspace must be 64-byte aligned");
  int64_t sym[MAX_SYMS + 1];
  all_dims(sym, batch);
  return place(am, m, sym, workspace, false);
}

/* As model.c's gradc_bind_dim: one symbolic dimension by name, the others
 * keeping their values (1 before any bind). */
int gradc_aot_bind_dim(const AotModel *am, gradc_aot_model *m, const char *dim, int64_t value) {
  int s = check(am, m, "bind_dim");
  if (s) return s;
  if (!dim) return fail(m, GRADC_ERR_ARG, "%s_bind_dim: NULL argument", am->names[0]);
  const int64_t *d = am->desc;
  const char *const *sym_name = am->names + d[AOT_H_SYM_NAME] - 1;   /* 1-based */
  int k = 1;
  while (k <= m->nsym && strcmp(sym_name[k], dim)) k++;
  if (k > m->nsym) {
    char names[512] = "";
    for (int i = 1; i <= m->nsym; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", i > 1 ? ", " : "", sym_name[i]);
    return fail(m, GRADC_ERR_ARG, "%s_bind_dim: the model has no symbolic dimension '%s'; it has: %s", am->names[0],
                dim, m->nsym ? names : "none");
  }
  if (value < 1 || value > MAX_BATCH)
    return fail(m, GRADC_ERR_SHAPE, "%s must be between 1 and %d, got %lld", dim, MAX_BATCH, (long long)value);
  int64_t sym[MAX_SYMS + 1];
  memcpy(sym, m->sym, sizeof sym);
  sym[k] = value;
  return place(am, m, sym, NULL, true);
}

int gradc_aot_forward(const AotModel *am, gradc_aot_model *m) {
  int s = check(am, m, "forward");
  if (s) return s;
  if (!m->batch) return fail(m, GRADC_ERR_ARG, "%s_forward: call %s_bind first to set the batch size", am->names[0], am->names[0]);
  am->forward(m->rt, m->buf, m->sym);
  return GRADC_OK;
}

int gradc_aot_train_step(const AotModel *am, gradc_aot_model *m, double *loss) {
  int s = check(am, m, "train_step");
  if (s) return s;
  if (!m->batch)
    return fail(m, GRADC_ERR_ARG, "%s_train_step: call %s_bind first to set the batch size", am->names[0], am->names[0]);
  if (!m->desc[AOT_H_TRAIN]) return fail(m, GRADC_ERR_ARG, "the model has no train statement");
  am->train_step(m->rt, m->buf, m->sym);
  for (int i = 0; loss && i < m->nt; i++) {
    const int64_t *t = tensor_rec(m->desc, i);
    if (t[AOT_T_KIND] != GRADC_LOSS || t[AOT_T_NODE] < 0) continue;
    void *p = m->buf[t[AOT_T_NODE]];
    *loss = t[AOT_T_DTYPE] == DT_F64 ? *(double *)p : (double)*(float *)p;
  }
  return GRADC_OK;
}

/* ------------------------------------------------------------ tensors */

int gradc_aot_tensor_count(const AotModel *am) { return (int)am->desc[AOT_H_NTENSORS]; }

int gradc_aot_tensor_info(const AotModel *am, const gradc_aot_model *m, int i, gradc_aot_tensor *out) {
  if (m && m->am != am) return fail((gradc_aot_model *)m, GRADC_ERR_ARG, "the handle belongs to another model");
  if (!out || i < 0 || i >= am->desc[AOT_H_NTENSORS])
    return fail((gradc_aot_model *)m, GRADC_ERR_ARG, "%s_tensor_info: no tensor %d", am->names[0], i);
  const int64_t *t = tensor_rec(am->desc, i);
  bool bound = m && m->batch;
  memset(out, 0, sizeof *out);
  out->name = am->names[t[AOT_T_NAME]];
  out->kind = (int)t[AOT_T_KIND];
  out->dtype = (int)t[AOT_T_DTYPE];
  out->rank = (int)t[AOT_T_RANK];
  out->count = 1;
  for (int k = 0; k < out->rank; k++) {
    bool sym = t[AOT_T_DIM_SYM + k] != 0;
    out->symbolic[k] = sym;
    out->dims[k] = sym && !bound ? -1 : t[AOT_T_DIM_N + k] * (bound ? m->sym[t[AOT_T_DIM_SYM + k]] : 1);
    out->count *= out->dims[k] < 0 ? 0 : out->dims[k];
  }
  out->bytes = (size_t)out->count * dtype_bytes(t[AOT_T_DTYPE]);
  if (m && t[AOT_T_NODE] >= 0 && (bound || is_persistent(t))) out->data = m->buf[t[AOT_T_NODE]];
  return GRADC_OK;
}

void *gradc_aot_data(const AotModel *am, gradc_aot_model *m, const char *name, int64_t *count) {
  if (check(am, m, "data") || !name) return NULL;
  for (int i = 0; i < m->nt; i++) {
    gradc_aot_tensor t;
    gradc_aot_tensor_info(am, m, i, &t);
    if (strcmp(t.name, name)) continue;
    if (!t.data) {
      fail(m, GRADC_ERR_ARG, "'%s' has no storage %s", name, m->batch ? "(a constant)" : "before bind sets the batch size");
      return NULL;
    }
    if (count) *count = t.count;
    return t.data;
  }
  fail(m, GRADC_ERR_ARG, "the model has no tensor named '%s'", name);
  return NULL;
}

/* ------------------------------------------------------------ hyperparameters */

/* As model.c's find_hyper: the run-time scalar optimizer/NAME of the train
 * step, or NULL after the message listing the valid names. */
static double *find_hyper(const AotModel *am, gradc_aot_model *m, const char *fn, const char *step, const char *name) {
  if (check(am, m, fn)) return NULL;
  const int64_t *d = am->desc;
  if (!name) {
    fail(m, GRADC_ERR_ARG, "%s_%s: NULL argument", am->names[0], fn);
    return NULL;
  }
  if (!d[AOT_H_TRAIN]) {
    fail(m, GRADC_ERR_ARG, "%s_%s: the model has no train step", am->names[0], fn);
    return NULL;
  }
  if (step && strcmp(step, "train")) {
    fail(m, GRADC_ERR_ARG, "%s_%s: the model has no step '%s'; its step is 'train'", am->names[0], fn, step);
    return NULL;
  }
  for (int i = 0; i < m->nt; i++) {
    const int64_t *t = tensor_rec(d, i);
    if (is_hyper(am, t) && !strcmp(am->names[t[AOT_T_NAME]] + 10, name))
      return (double *)(m->state + m->state_off[t[AOT_T_NODE]]);
  }
  char names[512] = "";
  for (int k = 0; k < d[AOT_H_NHYPER]; k++)
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
             am->names[d[AOT_H_HYPER_NAME] + k]);
  fail(m, GRADC_ERR_ARG, "%s_%s: the %s optimizer has no run-time hyperparameter '%s'; it has: %s", am->names[0], fn,
       am->names[d[AOT_H_OPT_NAME]], name, names);
  return NULL;
}

int gradc_aot_set_hyper(const AotModel *am, gradc_aot_model *m, const char *step, const char *name, double value) {
  double *h = find_hyper(am, m, "set_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *h = value;
  return GRADC_OK;
}

int gradc_aot_get_hyper(const AotModel *am, gradc_aot_model *m, const char *step, const char *name, double *value) {
  int s = check(am, m, "get_hyper");
  if (s) return s;
  if (!value) return fail(m, GRADC_ERR_ARG, "%s_get_hyper: NULL argument", am->names[0]);
  double *h = find_hyper(am, m, "get_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *value = *h;
  return GRADC_OK;
}

const char *gradc_aot_last_error(const AotModel *am, const gradc_aot_model *m) {
  (void)am;
  return m ? m->err : thread_err;
}

/* ------------------------------------------------------------ checkpoints */

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static uint32_t adler32_of(const unsigned char *p, size_t n) {
  uint32_t a = 1, b = 0;
  while (n) {
    size_t run = n < 5552 ? n : 5552;    /* zlib's NMAX: no overflow before the modulo */
    for (size_t i = 0; i < run; i++) a += p[i], b += a;
    a %= 65521, b %= 65521;
    p += run, n -= run;
  }
  return b << 16 | a;
}

static unsigned char *put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
  return p + bytes;
}

static uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
  return v;
}

static size_t payload_size(const AotModel *am) {
  size_t n = 4 + strlen(am->names[0]) + 4;
  for (int i = 0; i < am->desc[AOT_H_NTENSORS]; i++) {
    const int64_t *t = tensor_rec(am->desc, i);
    if (is_persistent(t))
      n += 4 + strlen(am->names[t[AOT_T_NAME]]) + 4 + 4 + 8 * (size_t)t[AOT_T_RANK] +
           (size_t)static_count(t) * dtype_bytes(t[AOT_T_DTYPE]);
  }
  return n;
}

static size_t stored_size(size_t payload) {
  size_t blocks = payload ? (payload + STORED_MAX - 1) / STORED_MAX : 1;
  return 2 + 5 * blocks + payload + 4;
}

size_t gradc_aot_checkpoint_size(const AotModel *am) { return HEADER_BYTES + stored_size(payload_size(am)); }

int gradc_aot_get_state(const AotModel *am, const gradc_aot_model *m, void *blob, size_t size) {
  int s = check(am, (gradc_aot_model *)m, "get_state");
  if (s) return s;
  size_t need = gradc_aot_checkpoint_size(am), psize = payload_size(am);
  if (!blob || size < need)
    return fail((gradc_aot_model *)m, GRADC_ERR_ARG, "%s_get_state needs %zu bytes, got %zu", am->names[0], need, size);
  unsigned char *payload = malloc(psize), *p = payload;
  if (!payload) return fail((gradc_aot_model *)m, GRADC_ERR_NOMEM, "out of memory");
  size_t len = strlen(am->names[0]);
  p = put_le(p, len, 4);
  memcpy(p, am->names[0], len), p += len;
  unsigned char *count_at = p;
  p += 4;
  uint32_t count = 0;
  for (int i = 0; i < m->nt; i++) {
    const int64_t *t = tensor_rec(m->desc, i);
    if (!is_persistent(t)) continue;
    const char *name = am->names[t[AOT_T_NAME]];
    len = strlen(name);
    p = put_le(p, len, 4);
    memcpy(p, name, len), p += len;
    p = put_le(p, (uint64_t)t[AOT_T_DTYPE], 4);
    p = put_le(p, (uint64_t)t[AOT_T_RANK], 4);
    for (int k = 0; k < t[AOT_T_RANK]; k++) p = put_le(p, (uint64_t)t[AOT_T_DIM_N + k], 8);
    size_t bytes = (size_t)static_count(t) * dtype_bytes(t[AOT_T_DTYPE]);
    memcpy(p, m->state + m->state_off[t[AOT_T_NODE]], bytes), p += bytes;
    count++;
  }
  put_le(count_at, count, 4);
  unsigned char *h = blob;
  memcpy(h, "GRADCKPT", 8), h += 8;
  h = put_le(h, 1, 4);
  h = put_le(h, psize, 8);
  h = put_le(h, crc32_of(payload, psize), 4);
  h = put_le(h, stored_size(psize), 8);
  *h++ = 0x78, *h++ = 0x01;              /* deflate, 32K window, no dictionary */
  size_t done = 0;
  do {
    size_t n = psize - done < STORED_MAX ? psize - done : STORED_MAX;
    *h++ = done + n == psize;            /* BFINAL, BTYPE 00 (stored) */
    h = put_le(h, n, 2);
    h = put_le(h, ~n & 0xffff, 2);
    memcpy(h, payload + done, n), h += n;
    done += n;
  } while (done < psize);
  uint32_t ad = adler32_of(payload, psize);
  *h++ = (unsigned char)(ad >> 24), *h++ = (unsigned char)(ad >> 16);
  *h++ = (unsigned char)(ad >> 8), *h++ = (unsigned char)ad;
  free(payload);
  return GRADC_OK;
}

/* ---------------------------------------------------------- inflate */

/* A zlib stream is decoded here without zlib (RFC 1950/1951), in the
 * manner of zlib's own reference decoder, contrib/puff: canonical Huffman
 * codes decoded bit by bit - slow next to zlib, but a checkpoint is read
 * once.  Every read is checked against the input, every write and every
 * back-reference against the output, so a damaged or hostile file is an
 * error, never a read or write out of bounds. */

typedef struct Bits {
  const unsigned char *p;
  size_t n, at;              /* input and the next byte to take */
  uint32_t buf;
  int cnt;                   /* bits in buf */
  unsigned char *out;
  size_t size, got;          /* output capacity and bytes written */
} Bits;

/* need (<= 16) bits, least significant first; -1 past the end. */
static int take(Bits *s, int need) {
  uint32_t v = s->buf;
  while (s->cnt < need) {
    if (s->at >= s->n) return -1;
    v |= (uint32_t)s->p[s->at++] << s->cnt;
    s->cnt += 8;
  }
  s->buf = v >> need;
  s->cnt -= need;
  return (int)(v & ((1u << need) - 1));
}

enum { MAXBITS = 15, MAXLCODES = 286, MAXDCODES = 30, FIXLCODES = 288 };

typedef struct Huff {
  short count[MAXBITS + 1];  /* codes of each length */
  short symbol[FIXLCODES];   /* symbols in canonical order */
} Huff;

/* Builds h from code lengths; 0 complete, > 0 incomplete, < 0 over-subscribed. */
static int build(Huff *h, const short *length, int n) {
  short offs[MAXBITS + 1];
  memset(h->count, 0, sizeof h->count);
  for (int sym = 0; sym < n; sym++) h->count[length[sym]]++;
  if (h->count[0] == n) return 0;
  int left = 1;
  for (int len = 1; len <= MAXBITS; len++) {
    left <<= 1;
    left -= h->count[len];
    if (left < 0) return left;
  }
  offs[1] = 0;
  for (int len = 1; len < MAXBITS; len++) offs[len + 1] = (short)(offs[len] + h->count[len]);
  for (int sym = 0; sym < n; sym++)
    if (length[sym]) h->symbol[offs[length[sym]]++] = (short)sym;
  return left;
}

static int decode(Bits *s, const Huff *h) {
  int code = 0, first = 0, index = 0;
  for (int len = 1; len <= MAXBITS; len++) {
    int b = take(s, 1);
    if (b < 0) return -1;
    code |= b;
    int count = h->count[len];
    if (code - count < first) return h->symbol[index + (code - first)];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  return -1;
}

static const char *codes(Bits *s, const Huff *lencode, const Huff *distcode) {
  static const short lbase[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                  35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  static const short lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  static const short dbase[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                  257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
  static const short dext[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
  for (;;) {
    int sym = decode(s, lencode);
    if (sym < 0) return "its compressed data is damaged (a code)";
    if (sym < 256) {
      if (s->got >= s->size) return "its data is longer than its header says";
      s->out[s->got++] = (unsigned char)sym;
    } else if (sym == 256) {
      return NULL;
    } else {
      sym -= 257;
      if (sym >= 29) return "its compressed data is damaged (a length)";
      int e = take(s, lext[sym]);
      int dsym = e < 0 ? -1 : decode(s, distcode);
      if (dsym < 0 || dsym >= 30) return "its compressed data is damaged (a distance)";
      int de = take(s, dext[dsym]);
      if (de < 0) return "its compressed data is cut short";
      size_t len = (size_t)(lbase[sym] + e), dist = (size_t)(dbase[dsym] + de);
      if (dist > s->got) return "its compressed data is damaged (a distance too far back)";
      if (s->size - s->got < len) return "its data is longer than its header says";
      for (size_t k = 0; k < len; k++, s->got++) s->out[s->got] = s->out[s->got - dist];
    }
  }
}

static const char *stored(Bits *s) {
  s->buf = 0, s->cnt = 0;    /* to the next byte boundary */
  if (s->n - s->at < 4) return "its zlib stream is cut short";
  size_t len = (size_t)get_le(s->p + s->at, 2);
  if ((get_le(s->p + s->at + 2, 2) ^ 0xffff) != len) return "a stored block's length check fails";
  s->at += 4;
  if (s->n - s->at < len) return "its zlib stream is cut short";
  if (s->size - s->got < len) return "its data is longer than its header says";
  memcpy(s->out + s->got, s->p + s->at, len);
  s->at += len, s->got += len;
  return NULL;
}

static const char *fixed(Bits *s) {
  short lengths[FIXLCODES];
  Huff lencode, distcode;
  int sym = 0;
  for (; sym < 144; sym++) lengths[sym] = 8;
  for (; sym < 256; sym++) lengths[sym] = 9;
  for (; sym < 280; sym++) lengths[sym] = 7;
  for (; sym < FIXLCODES; sym++) lengths[sym] = 8;
  build(&lencode, lengths, FIXLCODES);
  for (sym = 0; sym < MAXDCODES; sym++) lengths[sym] = 5;
  build(&distcode, lengths, MAXDCODES);
  return codes(s, &lencode, &distcode);
}

static const char *dynamic(Bits *s) {
  static const short order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
  short lengths[MAXLCODES + MAXDCODES];
  Huff lencode, distcode;
  int nlen = take(s, 5), ndist = take(s, 5), ncode = take(s, 4);
  if (nlen < 0 || ndist < 0 || ncode < 0) return "its zlib stream is cut short";
  nlen += 257, ndist += 1, ncode += 4;
  if (nlen > MAXLCODES || ndist > MAXDCODES) return "its compressed data is damaged (code counts)";
  int index = 0;
  for (; index < ncode; index++) {
    int b = take(s, 3);
    if (b < 0) return "its zlib stream is cut short";
    lengths[order[index]] = (short)b;
  }
  for (; index < 19; index++) lengths[order[index]] = 0;
  if (build(&lencode, lengths, 19) != 0) return "its compressed data is damaged (the code-length code)";
  for (index = 0; index < nlen + ndist;) {
    int sym = decode(s, &lencode);
    if (sym < 0) return "its compressed data is damaged (code lengths)";
    if (sym < 16) {
      lengths[index++] = (short)sym;
      continue;
    }
    int len = 0, rep;
    if (sym == 16) {
      if (index == 0) return "its compressed data is damaged (a repeat with nothing before)";
      len = lengths[index - 1];
      rep = take(s, 2), rep = rep < 0 ? -1 : 3 + rep;
    } else if (sym == 17) {
      rep = take(s, 3), rep = rep < 0 ? -1 : 3 + rep;
    } else {
      rep = take(s, 7), rep = rep < 0 ? -1 : 11 + rep;
    }
    if (rep < 0) return "its zlib stream is cut short";
    if (index + rep > nlen + ndist) return "its compressed data is damaged (too many lengths)";
    while (rep--) lengths[index++] = (short)len;
  }
  if (lengths[256] == 0) return "its compressed data is damaged (no end-of-block code)";
  int err = build(&lencode, lengths, nlen);
  if (err < 0 || (err > 0 && nlen - lencode.count[0] != 1)) return "its compressed data is damaged (literal code)";
  err = build(&distcode, lengths + nlen, ndist);
  if (err < 0 || (err > 0 && ndist - distcode.count[0] != 1)) return "its compressed data is damaged (distance code)";
  return codes(s, &lencode, &distcode);
}

/* The payload of a zlib stream into out (exactly size bytes). */
static const char *inflate_zlib(const unsigned char *z, size_t zlen, unsigned char *out, size_t size) {
  if (zlen < 2 || (z[0] & 0x0f) != 8 || (z[0] >> 4) > 7 || (z[0] * 256u + z[1]) % 31 || (z[1] & 0x20))
    return "its payload is not a zlib stream";
  Bits s = {.p = z, .n = zlen, .at = 2, .out = out, .size = size};
  int last;
  do {
    last = take(&s, 1);
    int type = last < 0 ? -1 : take(&s, 2);
    const char *why = type < 0 ? "its zlib stream is cut short"
                      : type == 0 ? stored(&s) : type == 1 ? fixed(&s) : type == 2 ? dynamic(&s)
                      : "its compressed data is damaged (block type 3)";
    if (why) return why;
  } while (!last);
  if (s.got != size) return "its data is shorter than its header says";
  /* The Adler-32 follows at the next byte boundary. */
  if (s.n - s.at != 4) return "its zlib stream has a bad length";
  const unsigned char *a = z + s.at;
  uint32_t ad = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
  if (ad != adler32_of(out, size)) return "its Adler-32 check fails";
  return NULL;
}

int gradc_aot_set_state(const AotModel *am, gradc_aot_model *m, const void *blob, size_t size) {
  int s = check(am, m, "set_state");
  if (s) return s;
  const unsigned char *f = blob;
  if (!blob || size < 8 || memcmp(f, "GRADCKPT", 8))
    return fail(m, GRADC_ERR_CHECKPOINT, "not a gradc checkpoint (it does not start with GRADCKPT)");
  if (size < HEADER_BYTES) return fail(m, GRADC_ERR_CHECKPOINT, "the checkpoint is truncated: %zu bytes", size);
  uint64_t version = get_le(f + 8, 4), psize = get_le(f + 12, 8), crc = get_le(f + 20, 4), csize = get_le(f + 24, 8);
  if (version != 1) return fail(m, GRADC_ERR_CHECKPOINT, "checkpoint format version %llu; this reads 1", (unsigned long long)version);
  if (csize != size - HEADER_BYTES)
    return fail(m, GRADC_ERR_CHECKPOINT, "the checkpoint's header says %llu bytes follow, but %zu do",
                (unsigned long long)csize, size - HEADER_BYTES);
  /* deflate never expands more than 1032:1, so a larger claim is a damaged
   * header - refused before it becomes an allocation (as in ckpt.c). */
  if (psize > csize * 1032 + 1024) return fail(m, GRADC_ERR_CHECKPOINT, "the checkpoint is corrupted: its sizes disagree");
  unsigned char *payload = malloc(psize + 1);
  if (!payload) return fail(m, GRADC_ERR_NOMEM, "out of memory");
  const char *why = inflate_zlib(f + HEADER_BYTES, (size_t)csize, payload, (size_t)psize);
  if (!why && crc32_of(payload, (size_t)psize) != crc) why = "its checksum does not match: the file is corrupted";
  /* The payload against the model: name, then each tensor by name with
   * dtype and shape; data is copied only when everything matches. */
  const unsigned char *p = payload, *end = payload + psize;
  const unsigned char **data = calloc((size_t)m->nt + 1, sizeof *data);
  if (!data) why = "out of memory";
  uint64_t count = 0;
  if (!why) {
    uint64_t len = end - p >= 4 ? get_le(p, 4) : UINT64_MAX;
    if (len > (uint64_t)(end - p) - 4) why = "it is corrupted (the model name)";
    else if (len != strlen(am->names[0]) || memcmp(p + 4, am->names[0], len)) {
      fail(m, GRADC_ERR_CHECKPOINT, "the checkpoint is for model '%.*s', not '%s'", len > 200 ? 200 : (int)len,
           (const char *)p + 4, am->names[0]);
      why = m->err;
    } else {
      p += 4 + len;
      if (end - p >= 4) count = get_le(p, 4), p += 4;
      else count = UINT64_MAX;
    }
  }
  uint64_t expected = 0, optional = 0;
  for (int i = 0; i < m->nt; i++) {
    expected += is_persistent(tensor_rec(m->desc, i));
    optional += is_hyper(am, tensor_rec(m->desc, i));
  }
  if (!why && (count > expected || count < expected - optional)) {
    fail(m, GRADC_ERR_CHECKPOINT, "the checkpoint holds %llu tensors, the model %llu", (unsigned long long)count,
         (unsigned long long)expected);
    why = m->err;
  }
  for (uint64_t j = 0; !why && j < count; j++) {
    if (end - p < 4) { why = "it is corrupted (a tensor name)"; break; }
    uint64_t len = get_le(p, 4);
    if (len > (uint64_t)(end - p) - 4 || (uint64_t)(end - p) - 4 - len < 8) { why = "it is corrupted (a tensor)"; break; }
    const char *name = (const char *)p + 4;
    p += 4 + len;
    uint64_t dtype = get_le(p, 4), rank = get_le(p + 4, 4);
    p += 8;
    if (rank > 8 || (uint64_t)(end - p) < 8 * rank) { why = "it is corrupted (a shape)"; break; }
    int found = -1;
    for (int i = 0; i < m->nt; i++) {
      const int64_t *t = tensor_rec(m->desc, i);
      const char *tn = am->names[t[AOT_T_NAME]];
      if (is_persistent(t) && strlen(tn) == len && !memcmp(tn, name, len)) found = i;
    }
    if (found < 0 || data[found]) {
      fail(m, GRADC_ERR_CHECKPOINT, "'%.*s' is %s", len > 200 ? 200 : (int)len, name,
           found < 0 ? "in the checkpoint but not in the model" : "twice in the checkpoint");
      why = m->err;
      break;
    }
    const int64_t *t = tensor_rec(m->desc, found);
    bool same = dtype == (uint64_t)t[AOT_T_DTYPE] && rank == (uint64_t)t[AOT_T_RANK];
    for (uint64_t k = 0; same && k < rank; k++) same = get_le(p + 8 * k, 8) == (uint64_t)t[AOT_T_DIM_N + k];
    p += 8 * rank;
    if (!same) {
      fail(m, GRADC_ERR_CHECKPOINT, "'%s' has another dtype or shape in the checkpoint than in the model",
           am->names[t[AOT_T_NAME]]);
      why = m->err;
      break;
    }
    size_t bytes = (size_t)static_count(t) * dtype_bytes(t[AOT_T_DTYPE]);
    if ((size_t)(end - p) < bytes) { why = "it is corrupted (a tensor's data)"; break; }
    data[found] = p;
    p += bytes;
  }
  if (!why && p != end) why = "it is corrupted (stray bytes after the last tensor)";
  for (int i = 0; !why && i < m->nt; i++) {
    const int64_t *t = tensor_rec(m->desc, i);
    if (is_persistent(t) && !data[i] && !is_hyper(am, t)) {
      fail(m, GRADC_ERR_CHECKPOINT, "'%s' is missing from the checkpoint", am->names[t[AOT_T_NAME]]);
      why = m->err;
    }
  }
  if (!why)
    for (int i = 0; i < m->nt; i++) {
      const int64_t *t = tensor_rec(m->desc, i);
      if (is_persistent(t) && data[i])
        memcpy(m->state + m->state_off[t[AOT_T_NODE]], data[i], (size_t)static_count(t) * dtype_bytes(t[AOT_T_DTYPE]));
    }
  free(data);
  free(payload);
  if (!why) return GRADC_OK;
  if (why == m->err) return GRADC_ERR_CHECKPOINT;
  return fail(m, GRADC_ERR_CHECKPOINT, "cannot load the checkpoint: %s", why);
}

/* Files: the blob written through a temporary file and a rename, so a
 * failed save leaves the previous checkpoint in place. */
int gradc_aot_save(const AotModel *am, const gradc_aot_model *m, const char *path) {
  gradc_aot_model *mm = (gradc_aot_model *)m;
  int s = check(am, mm, "save");
  if (s) return s;
  if (!path) return fail(mm, GRADC_ERR_ARG, "%s_save: NULL path", am->names[0]);
  size_t n = gradc_aot_checkpoint_size(am);
  char *blob = malloc(n), *tmp = malloc(strlen(path) + 8);
  if (!blob || !tmp) {
    free(blob), free(tmp);
    return fail(mm, GRADC_ERR_NOMEM, "out of memory");
  }
  gradc_aot_get_state(am, m, blob, n);
  sprintf(tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  bool ok = f && fwrite(blob, 1, n, f) == n;
  if (f && fclose(f) != 0) ok = false;
  if (ok && rename(tmp, path) != 0) ok = false;
  s = ok ? GRADC_OK : fail(mm, GRADC_ERR_IO, "cannot save the checkpoint '%s': %s", path, strerror(errno));
  if (!ok) remove(tmp);
  free(blob), free(tmp);
  return s;
}

int gradc_aot_load(const AotModel *am, gradc_aot_model *m, const char *path) {
  int s = check(am, m, "load");
  if (s) return s;
  if (!path) return fail(m, GRADC_ERR_ARG, "%s_load: NULL path", am->names[0]);
  FILE *f = fopen(path, "rb");
  if (!f) return fail(m, GRADC_ERR_IO, "cannot open the checkpoint '%s': %s", path, strerror(errno));
  /* gradc's own stored stream may split blocks differently, so allow some
   * slack over our size; anything larger cannot be this model's. */
  size_t want = 2 * gradc_aot_checkpoint_size(am) + 4096;
  char *blob = malloc(want);
  size_t got = blob ? fread(blob, 1, want, f) : 0;
  bool err = ferror(f);
  fclose(f);
  if (!blob) return fail(m, GRADC_ERR_NOMEM, "out of memory");
  s = err ? fail(m, GRADC_ERR_IO, "cannot read the checkpoint '%s'", path)
      : got == want ? fail(m, GRADC_ERR_CHECKPOINT, "'%s' is larger than a checkpoint of model '%s' can be", path, am->names[0])
      : gradc_aot_set_state(am, m, blob, got);
  free(blob);
  if (s && !err && got < want) {  /* set_state's message, with the file's name */
    char msg[sizeof m->err];
    memcpy(msg, m->err, sizeof msg);
    fail(m, s, "%.200s: %.300s", path, msg);
  }
  return s;
}
