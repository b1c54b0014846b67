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
 * Checkpoints go through the JIT's own codec (ckpt.c, which needs no
 * zlib: zstream.c), so a .so and the JIT write the same bytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"

enum { MAX_BATCH = 1 << 24 };

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
  char err[sizeof ((RtError *)0)->msg];
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

/* The parameters and state as checkpoint tensors, in node order (as the
 * JIT's); data only with a model.  t has room for every tensor. */
static int ckpt_tensors(const AotModel *am, const gradc_aot_model *m, CkptTensor *t) {
  int n = 0;
  for (int i = 0; i < am->desc[AOT_H_NTENSORS]; i++) {
    const int64_t *r = tensor_rec(am->desc, i);
    if (!is_persistent(r)) continue;
    t[n] = (CkptTensor){.name = am->names[r[AOT_T_NAME]], .dtype = (gradc_dtype)r[AOT_T_DTYPE],
                        .rank = (int)r[AOT_T_RANK], .data = m ? m->state + m->state_off[r[AOT_T_NODE]] : NULL,
                        .optional = is_hyper(am, r)};
    for (int k = 0; k < t[n].rank; k++) t[n].dims[k] = r[AOT_T_DIM_N + k];
    n++;
  }
  return n;
}

size_t gradc_aot_checkpoint_size(const AotModel *am) {
  CkptTensor *t = malloc(sizeof *t * (size_t)(am->desc[AOT_H_NTENSORS] + 1));
  size_t n = t ? ckpt_size(am->names[0], t, ckpt_tensors(am, NULL, t)) : 0;
  free(t);
  return n;
}

/* Runs one of the codec's functions on the model's tensors. */
typedef enum { GET_STATE, SET_STATE, SAVE, LOAD } CkptOp;

static int checkpoint(const AotModel *am, gradc_aot_model *m, CkptOp op, void *blob, size_t size, const char *path) {
  CkptTensor *t = malloc(sizeof *t * (size_t)(m->nt + 1));
  if (!t) return fail(m, GRADC_ERR_NOMEM, "out of memory");
  int n = ckpt_tensors(am, m, t);
  RtError e = {{0}};
  gradc_status s = op == GET_STATE ? ckpt_write(blob, size, am->names[0], t, n, &e)
                   : op == SET_STATE ? ckpt_read(blob, size, am->names[0], t, n, &e)
                   : op == SAVE ? ckpt_save(path, am->names[0], t, n, &e)
                   : ckpt_load(path, am->names[0], t, n, &e);
  free(t);
  return s ? fail(m, s, "%s", e.msg) : GRADC_OK;
}

int gradc_aot_get_state(const AotModel *am, const gradc_aot_model *m, void *blob, size_t size) {
  gradc_aot_model *mm = (gradc_aot_model *)m;
  int s = check(am, mm, "get_state");
  if (s) return s;
  size_t need = gradc_aot_checkpoint_size(am);
  if (!blob || size < need)
    return fail(mm, GRADC_ERR_ARG, "%s_get_state needs %zu bytes, got %zu", am->names[0], need, size);
  return checkpoint(am, mm, GET_STATE, blob, size, NULL);
}

int gradc_aot_set_state(const AotModel *am, gradc_aot_model *m, const void *blob, size_t size) {
  int s = check(am, m, "set_state");
  if (s) return s;
  return checkpoint(am, m, SET_STATE, (void *)blob, size, NULL);
}

int gradc_aot_save(const AotModel *am, const gradc_aot_model *m, const char *path) {
  gradc_aot_model *mm = (gradc_aot_model *)m;
  int s = check(am, mm, "save");
  if (s) return s;
  if (!path) return fail(mm, GRADC_ERR_ARG, "%s_save: NULL path", am->names[0]);
  return checkpoint(am, mm, SAVE, NULL, 0, path);
}

int gradc_aot_load(const AotModel *am, gradc_aot_model *m, const char *path) {
  int s = check(am, m, "load");
  if (s) return s;
  if (!path) return fail(m, GRADC_ERR_ARG, "%s_load: NULL path", am->names[0]);
  return checkpoint(am, m, LOAD, NULL, 0, path);
}
