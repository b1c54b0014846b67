/*
 * instance.c - a model instance: a model's memory and its steps, built
 * from the model's descriptor (abi.h).
 *
 * There is one implementation of what a trained model is at run time, and
 * two ways to build its input: the JIT compiles a model file and hands the
 * descriptor it builds in memory (compiler/jitmodel.c, the gradc_model of
 * include/gradc.h), and a compiled shared object holds the same descriptor
 * as constants (compiler/emit.c) and calls these functions from its
 * support library (aot.c, the .so's gradc_aot_model).  So the two cannot
 * diverge: they bind, lay out, initialise, step, look up and checkpoint
 * with the same code, and a checkpoint of one is byte for byte the other's.
 *
 * An instance owns
 *   - its parameters and optimizer state, one block with each tensor at a
 *     64-byte aligned offset, initialised by init.c from the descriptor's
 *     initializers (the numbers the evaluator computes for a seed);
 *   - workspaces, one per binding of the symbolic dimensions, laid out by
 *     layout.c from the live ranges the descriptor recorded (the offsets
 *     plan.c computes); up to `workspaces` of them are kept, so that
 *     alternating full and final partial batches allocate nothing after
 *     the first epoch, and a step never allocates.  When the cache is full
 *     the oldest binding's block is reused if it is large enough, else
 *     replaced.  A .so keeps one and may lay it out in the caller's memory
 *     (its bind's workspace argument), which stays valid until the next
 *     bind and is reused by bind_dim while the layout fits;
 *   - the buffer table the entry points read, one pointer per node: its
 *     own storage or that of the node it aliases (the descriptor's storage
 *     table), in the state block or the workspace;
 *   - its run-time context (context.c: thread pool, scratch, profile
 *     tables), handed to every entry point, so that two instances never
 *     share what a step touches and step concurrently in two threads;
 *   - the last error, a sentence naming the API's function (m->api:
 *     "gradc_bind" for the JIT, "<model>_bind" for a .so).
 *
 * Train steps and their run-time hyperparameters come from the
 * descriptor's step table: step s runs entry point fns[1 + s], its loss is
 * the tensor its record names, and a hyperparameter is the f64 state
 * tensor its record points to - looked up by index, never by building a
 * name.  Those tensors are the optional ones of a checkpoint, which older
 * versions wrote without them.
 *
 * The public functions of include/gradc.h that only forward to an
 * instance are at the end of this file; what the JIT adds (compiling,
 * warnings, --check-numerics) is in compiler/jitmodel.c.  This file needs
 * nothing but libc and the runtime's own files, since every .so links it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* gradc.h retypes abi.h's numbers (it cannot include it). */
#define X(id, name) _Static_assert(ABI_##id == (int)GRADC_##id, "abi.h's kind " #id " is gradc.h's");
GRADC_ABI_KINDS(X)
#undef X
#define X(id, name, ctype, bytes) _Static_assert(DT_##id == (int)GRADC_##id, "abi.h's dtype " #id " is gradc.h's");
GRADC_ABI_DTYPES(X)
#undef X
_Static_assert(sizeof ((gradc_tensor *)0)->dims == ABI_MAX_RANK * sizeof(int64_t) &&
                   sizeof ((gradc_tensor *)0)->symbolic == ABI_MAX_RANK * sizeof(int),
               "gradc_tensor holds every dimension a model may have");

enum { MAX_WORKSPACES = 4, MAX_DIM = RT_MAX_DIM };

typedef struct Workspace {
  int64_t sym[ABI_MAX_SYMS + 1];   /* the binding it is laid out for */
  char *mem;
  size_t bytes, capacity;          /* its layout's, and mem's */
  size_t *offset;                  /* per workspace buffer */
  bool owned;                      /* ours to free (not the caller's) */
} Workspace;

struct gradc_model {
  const AbiModel *am;
  const int64_t *d;
  const char *const *names;
  int nt, nb, nnodes, nsym, nsteps;
  const char *api;
  int max_workspaces;
  char *state;
  size_t *state_off;               /* per node: params and state; SIZE_MAX */
  int *buffer_of;                  /* per node: its workspace buffer, -1 */
  void **buf;                      /* per node: the table the code reads */
  int64_t sym[ABI_MAX_SYMS + 1];
  Workspace ws[MAX_WORKSPACES];    /* oldest first */
  int nws;
  Workspace *cur;                  /* NULL: unbound */
  LayoutBuffer *layout;            /* per buffer, for plan() */
  CkptTensor *ckpt;                /* params and state in node order */
  int nckpt;
  RtContext *rt;
  void *owner;
  char err[8192];
};

static _Thread_local char thread_err[8192];

gradc_status inst_fail(gradc_model *m, gradc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m ? m->err : thread_err, m ? sizeof m->err : sizeof thread_err, fmt, ap);
  va_end(ap);
  return s;
}

gradc_status rt_api_fail(gradc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(thread_err, sizeof thread_err, fmt, ap);
  va_end(ap);
  return s;
}

const char *inst_last_error(const gradc_model *m) { return m ? m->err : thread_err; }

/* ------------------------------------------------------------ the descriptor */

static bool is_persistent(const int64_t *t) { return t[ABI_T_KIND] == ABI_PARAM || t[ABI_T_KIND] == ABI_STATE; }

static size_t tensor_bytes(const int64_t *t) {
  size_t c = abi_dtype_bytes((DType)t[ABI_T_DTYPE]);
  for (int k = 0; k < t[ABI_T_RANK]; k++) c *= (size_t)t[ABI_T_DIM_N + k];
  return c;
}

static size_t state_bytes(const int64_t *t) { return (tensor_bytes(t) + 63) & ~(size_t)63; }

/* Is tensor i a run-time hyperparameter of some step? */
static bool is_hyper(const int64_t *d, int64_t i) {
  for (int64_t p = 0; p < d[ABI_H_NHYPERS]; p++)
    if (abi_hyper(d, p)[ABI_P_TENSOR] == i) return true;
  return false;
}

size_t inst_state_size(const AbiModel *am) {
  size_t total = 0;
  for (int64_t i = 0; i < am->desc[ABI_H_NTENSORS]; i++)
    if (is_persistent(abi_tensor(am->desc, i))) total += state_bytes(abi_tensor(am->desc, i));
  return total;
}

/* The parameters and state as checkpoint tensors, in node order; data in
 * state at state_off (per node) when state is not NULL.  t has room for
 * every tensor; returns how many. */
static int ckpt_tensors(const AbiModel *am, char *state, const size_t *state_off, CkptTensor *t) {
  int n = 0;
  for (int64_t i = 0; i < am->desc[ABI_H_NTENSORS]; i++) {
    const int64_t *r = abi_tensor(am->desc, i);
    if (!is_persistent(r)) continue;
    t[n] = (CkptTensor){.name = am->names[r[ABI_T_NAME]], .dtype = (gradc_dtype)r[ABI_T_DTYPE],
                        .rank = (int)r[ABI_T_RANK], .data = state ? state + state_off[r[ABI_T_NODE]] : NULL,
                        .optional = is_hyper(am->desc, i)};
    for (int k = 0; k < t[n].rank; k++) t[n].dims[k] = r[ABI_T_DIM_N + k];
    n++;
  }
  return n;
}

size_t inst_checkpoint_size(const AbiModel *am) {
  CkptTensor *t = malloc(sizeof *t * (size_t)(am->desc[ABI_H_NTENSORS] + 1));
  size_t n = t ? ckpt_size(am->names[0], t, ckpt_tensors(am, NULL, NULL, t)) : 0;
  free(t);
  return n;
}

/* The workspace layout for the dimension values sym: fills lb and off (a
 * record per buffer); the block's size, SIZE_MAX when too large. */
static size_t plan(const int64_t *d, const int64_t *sym, LayoutBuffer *lb, size_t *off) {
  for (int64_t b = 0; b < d[ABI_H_NBUFFERS]; b++) {
    const int64_t *r = abi_buffer(d, b);
    lb[b] = (LayoutBuffer){(int)r[ABI_B_BEGIN], (int)r[ABI_B_END],
                           layout_bytes((int)r[ABI_B_RANK], r + ABI_B_DIM_N, r + ABI_B_DIM_SYM, sym,
                                        (size_t)r[ABI_B_ESIZE])};
    if (lb[b].bytes == SIZE_MAX) return SIZE_MAX;
  }
  return layout_assign(lb, (int)d[ABI_H_NBUFFERS], d[ABI_H_REUSE] != 0, off);
}

size_t inst_workspace_size(const AbiModel *am, const int64_t *sym) {
  size_t nb = (size_t)am->desc[ABI_H_NBUFFERS] + 1;
  LayoutBuffer *lb = malloc(sizeof *lb * nb);
  size_t *off = malloc(sizeof *off * nb);
  size_t bytes = lb && off ? plan(am->desc, sym, lb, off) : SIZE_MAX;
  free(lb), free(off);
  return bytes;
}

/* ------------------------------------------------------------ the instance */

gradc_model *inst_new(const AbiModel *am, const InstanceOptions *o) {
  const int64_t *d = am->desc;
  if (d[ABI_H_VERSION] != ABI_VERSION) {
    inst_fail(NULL, GRADC_ERR_ARG, "%s: the model's descriptor has version %lld; this runtime reads %d", am->names[0],
              (long long)d[ABI_H_VERSION], ABI_VERSION);
    return NULL;
  }
  gradc_model *m = calloc(1, sizeof *m);
  if (!m) {
    inst_fail(NULL, GRADC_ERR_NOMEM, "%s: out of memory", am->names[0]);
    return NULL;
  }
  *m = (gradc_model){.am = am, .d = d, .names = am->names, .nt = (int)d[ABI_H_NTENSORS],
                     .nb = (int)d[ABI_H_NBUFFERS], .nnodes = (int)d[ABI_H_NNODES], .nsym = (int)d[ABI_H_NSYM],
                     .nsteps = (int)d[ABI_H_NSTEPS], .api = o->api,
                     .max_workspaces = o->workspaces < 1 ? 1 : o->workspaces > MAX_WORKSPACES ? MAX_WORKSPACES
                                                                                              : o->workspaces};
  for (int k = 0; k <= ABI_MAX_SYMS; k++) m->sym[k] = 1;
  size_t n = (size_t)m->nnodes + 1, sb = inst_state_size(am);
  m->state_off = malloc(sizeof *m->state_off * n);
  m->buffer_of = malloc(sizeof *m->buffer_of * n);
  m->buf = calloc(n, sizeof *m->buf);
  m->layout = malloc(sizeof *m->layout * (size_t)(m->nb + 1));
  m->ckpt = malloc(sizeof *m->ckpt * (size_t)(m->nt + 1));
  m->state = rt_calloc_big(sb);
  m->rt = rt_context_new(o->threads);
  if (!m->state_off || !m->buffer_of || !m->buf || !m->layout || !m->ckpt || !m->state || !m->rt) {
    inst_free(m);
    inst_fail(NULL, GRADC_ERR_NOMEM, "%s: out of memory for %zu bytes of parameters and state", am->names[0], sb);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) m->state_off[i] = SIZE_MAX, m->buffer_of[i] = -1;
  size_t at = 0;
  for (int i = 0; i < m->nt; i++) {
    const int64_t *t = abi_tensor(d, i);
    if (!is_persistent(t)) continue;
    m->state_off[t[ABI_T_NODE]] = at;
    m->buf[t[ABI_T_NODE]] = m->state + at;
    at += state_bytes(t);
  }
  for (int b = 0; b < m->nb; b++) m->buffer_of[abi_buffer(d, b)[ABI_B_NODE]] = b;
  m->nckpt = ckpt_tensors(am, m->state, m->state_off, m->ckpt);
  return m;
}

static void drop_workspace(gradc_model *m, int i) {
  if (m->ws[i].owned) free(m->ws[i].mem);
  free(m->ws[i].offset);
  memmove(&m->ws[i], &m->ws[i + 1], sizeof *m->ws * (size_t)(m->nws - i - 1));
  m->nws--;
}

void inst_free(gradc_model *m) {
  if (!m) return;
  while (m->nws) drop_workspace(m, 0);
  free(m->state_off), free(m->buffer_of), free(m->buf), free(m->layout), free(m->ckpt);
  free(m->state);
  rt_context_free(m->rt);
  free(m);
}

void inst_set_owner(gradc_model *m, void *owner) { m->owner = owner; }
void *inst_owner(const gradc_model *m) { return m->owner; }
const AbiModel *inst_model(const gradc_model *m) { return m->am; }
RtContext *rt_context(const gradc_model *m) { return m->rt; }
void **inst_buffers(gradc_model *m) { return m->buf; }
const int64_t *inst_sym(const gradc_model *m) { return m->sym; }
bool inst_bound(const gradc_model *m) { return m->cur != NULL; }
int inst_steps(const gradc_model *m) { return m->nsteps; }
int inst_tensor_count(const AbiModel *am) { return (int)am->desc[ABI_H_NTENSORS]; }

gradc_status inst_init(gradc_model *m, uint64_t seed) {
  for (int i = 0; i < m->nt; i++) {
    const int64_t *t = abi_tensor(m->d, i);
    if (!is_persistent(t)) continue;
    const char *name = m->names[t[ABI_T_NAME]];
    int64_t c = (int64_t)(tensor_bytes(t) / abi_dtype_bytes((DType)t[ABI_T_DTYPE]));
    double *tmp = malloc(sizeof(double) * (size_t)(c ? c : 1));
    if (!tmp) return inst_fail(m, GRADC_ERR_NOMEM, "out of memory initialising '%s'", name);
    double a, b;
    memcpy(&a, &t[ABI_T_INIT_A], sizeof a);
    memcpy(&b, &t[ABI_T_INIT_B], sizeof b);
    const double *values = t[ABI_T_VALUES] >= 0 ? m->am->values[t[ABI_T_VALUES]] : NULL;
    if (!init_fill((InitKind)t[ABI_T_INIT], a, b, (DType)t[ABI_T_DTYPE], (double)t[ABI_T_FAN_IN],
                   (double)t[ABI_T_FAN_OUT], name, values, seed, tmp, c)) {
      free(tmp);
      return inst_fail(m, GRADC_ERR_ARG, "the model's descriptor has an unknown initializer %lld for '%s'",
                       (long long)t[ABI_T_INIT], name);
    }
    void *p = m->state + m->state_off[t[ABI_T_NODE]];
    for (int64_t k = 0; k < c; k++) {
      switch ((DType)t[ABI_T_DTYPE]) {
      case DT_F32: ((float *)p)[k] = (float)tmp[k]; break;
      case DT_F64: ((double *)p)[k] = tmp[k]; break;
      case DT_I32: ((int32_t *)p)[k] = (int32_t)tmp[k]; break;
      case DT_BOOL: ((uint8_t *)p)[k] = tmp[k] != 0; break;
      case DT_COUNT: break;
      }
    }
    free(tmp);
  }
  return GRADC_OK;
}

/* ------------------------------------------------------------ binding */

/* Points the buffer table into w, the workspace of the binding sym. */
static void select_workspace(gradc_model *m, Workspace *w) {
  memcpy(m->sym, w->sym, sizeof m->sym);
  m->cur = w;
  const int64_t *storage = abi_storage(m->d);
  for (int i = 0; i < m->nnodes; i++) {
    int64_t st = storage[i];
    if (m->state_off[i] != SIZE_MAX) continue;
    m->buf[i] = st < 0                          ? NULL
                : m->state_off[st] != SIZE_MAX ? (void *)(m->state + m->state_off[st])
                : m->buffer_of[st] >= 0        ? (void *)(w->mem + w->offset[m->buffer_of[st]])
                                               : NULL;
  }
}

/* Binds the dimension values sym: the kept workspace of that binding, or
 * a new layout in callers (the caller's memory), in the oldest kept block
 * when the cache is full and it is large enough, or in a new block.  A
 * bind (not bind_dim) first forgets the caller's memory of the last one. */
static gradc_status place(gradc_model *m, const int64_t *sym, void *callers, bool bind_dim) {
  m->cur = NULL;
  for (int i = m->nws - 1; i >= 0 && !bind_dim; i--)
    if (!m->ws[i].owned) drop_workspace(m, i);
  for (int i = 0; i < m->nws && !callers; i++)
    if (!memcmp(m->ws[i].sym, sym, sizeof m->ws[i].sym)) {
      select_workspace(m, &m->ws[i]);
      return GRADC_OK;
    }
  Workspace w = {.offset = malloc(sizeof(size_t) * (size_t)(m->nb + 1))};
  memcpy(w.sym, sym, sizeof w.sym);
  if (!w.offset) return inst_fail(m, GRADC_ERR_NOMEM, "out of memory");
  w.bytes = plan(m->d, sym, m->layout, w.offset);
  if (w.bytes == SIZE_MAX) {
    free(w.offset);
    return inst_fail(m, GRADC_ERR_NOMEM, "the workspace for batch %lld would need more than 2^62 bytes",
                     (long long)sym[1]);
  }
  Workspace *oldest = m->nws == m->max_workspaces ? &m->ws[0] : NULL;
  if (callers) {
    w.mem = callers, w.capacity = w.bytes;
  } else if (oldest && oldest->capacity >= w.bytes) {
    w.mem = oldest->mem, w.capacity = oldest->capacity, w.owned = oldest->owned;
    oldest->owned = false;             /* moved to w, not freed with the old binding */
  } else {
    w.mem = rt_alloc_big(w.bytes);
    if (!w.mem) {
      free(w.offset);
      return inst_fail(m, GRADC_ERR_NOMEM, "out of memory: the workspace for batch %lld needs %zu bytes",
                       (long long)sym[1], w.bytes);
    }
    memset(w.mem, 0, w.bytes);
    w.capacity = w.bytes, w.owned = true;
  }
  if (oldest) drop_workspace(m, 0);
  m->ws[m->nws] = w;
  select_workspace(m, &m->ws[m->nws++]);
  return GRADC_OK;
}

gradc_status inst_bind(gradc_model *m, int64_t batch, void *workspace) {
  if (batch < 1 || batch > MAX_DIM)
    return inst_fail(m, GRADC_ERR_SHAPE, "batch size must be between 1 and %d, got %lld", MAX_DIM, (long long)batch);
  if (workspace && (uintptr_t)workspace % 64) return inst_fail(m, GRADC_ERR_ARG, "the workspace must be 64-byte aligned");
  int64_t sym[ABI_MAX_SYMS + 1];
  for (int k = 0; k <= ABI_MAX_SYMS; k++) sym[k] = k ? batch : 1;
  return place(m, sym, workspace, false);
}

gradc_status inst_bind_dim(gradc_model *m, const char *dim, int64_t value) {
  if (!dim) return inst_fail(m, GRADC_ERR_ARG, "%s_bind_dim: NULL argument", m->api);
  const char *const *sym_name = m->names + m->d[ABI_H_SYM_NAME] - 1;   /* 1-based */
  int k = 1;
  while (k <= m->nsym && strcmp(sym_name[k], dim)) k++;
  if (k > m->nsym) {
    char names[512] = "";
    for (int i = 1; i <= m->nsym; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", i > 1 ? ", " : "", sym_name[i]);
    return inst_fail(m, GRADC_ERR_ARG, "%s_bind_dim: the model has no symbolic dimension '%s'; it has: %s", m->api,
                     dim, m->nsym ? names : "none");
  }
  if (value < 1 || value > MAX_DIM)
    return inst_fail(m, GRADC_ERR_SHAPE, "%s must be between 1 and %d, got %lld", dim, MAX_DIM, (long long)value);
  int64_t sym[ABI_MAX_SYMS + 1];
  memcpy(sym, m->sym, sizeof sym);
  sym[k] = value;
  return place(m, sym, NULL, true);
}

/* ------------------------------------------------------------ steps */

static gradc_status need_bound(gradc_model *m, const char *fn) {
  if (m->cur) return GRADC_OK;
  return inst_fail(m, GRADC_ERR_ARG, "%s_%s: call %s_bind first to set the batch size", m->api, fn, m->api);
}

gradc_status inst_forward(gradc_model *m) {
  gradc_status s = need_bound(m, "forward");
  if (s) return s;
  m->am->fns[0](m->rt, m->buf, m->sym);
  return GRADC_OK;
}

double inst_loss(const gradc_model *m, int step) {
  int64_t l = abi_step(m->d, step)[ABI_S_LOSS];
  const int64_t *t = l >= 0 ? abi_tensor(m->d, l) : NULL;
  if (!t || t[ABI_T_NODE] < 0) return 0;
  const void *p = m->buf[t[ABI_T_NODE]];
  /* in its own precision: an f64 loss keeps every bit */
  return t[ABI_T_DTYPE] == DT_F64 ? *(const double *)p : (double)*(const float *)p;
}

/* "a, b": the steps' names, for messages. */
static void step_names(const gradc_model *m, char *out, size_t n) {
  out[0] = 0;
  for (int s = 0; s < m->nsteps; s++)
    snprintf(out + strlen(out), n - strlen(out), "%s%s", s ? ", " : "", m->names[abi_step(m->d, s)[ABI_S_NAME]]);
}

int inst_find_step(gradc_model *m, const char *fn, const char *name) {
  if (!m->nsteps) {
    inst_fail(m, GRADC_ERR_ARG, "%s_%s: the model has no train statement", m->api, fn);
    return -1;
  }
  if (!name && m->nsteps == 1) return 0;
  char steps[512];
  step_names(m, steps, sizeof steps);
  if (!name) {
    inst_fail(m, GRADC_ERR_ARG, "%s_%s: the model has %d train steps; name one: %s", m->api, fn, m->nsteps, steps);
    return -1;
  }
  for (int s = 0; s < m->nsteps; s++)
    if (!strcmp(m->names[abi_step(m->d, s)[ABI_S_NAME]], name)) return s;
  inst_fail(m, GRADC_ERR_ARG, "%s_%s: the model has no train step '%s'; its steps are: %s", m->api, fn, name, steps);
  return -1;
}

const char *inst_step_name(const gradc_model *m, int step) {
  return step >= 0 && step < m->nsteps ? m->names[abi_step(m->d, step)[ABI_S_NAME]] : NULL;
}

gradc_status inst_step(gradc_model *m, const char *fn, int step, double *loss) {
  gradc_status s = need_bound(m, fn);
  if (s) return s;
  if (step < 0 || step >= m->nsteps)
    return inst_fail(m, GRADC_ERR_ARG, "%s_%s: the model has no train step %d", m->api, fn, step);
  m->rt->allreduce_failed = 0;
  m->am->fns[1 + step](m->rt, m->buf, m->sym);
  if (loss) *loss = inst_loss(m, step);
  if (m->rt->allreduce_failed)
    return inst_fail(m, GRADC_ERR_ARG, "%s_%s: the gradient reduction (the allreduce callback) failed with %d; the "
                     "parameters are no longer those of the other replicas", m->api, fn, m->rt->allreduce_failed);
  return GRADC_OK;
}

gradc_status inst_set_allreduce(gradc_model *m, const char *fn, gradc_allreduce_fn cb, void *user) {
  if (cb && !m->d[ABI_H_ALLREDUCE])
    return inst_fail(m, GRADC_ERR_ARG, "%s_%s: the model was compiled without data parallelism, so its steps never "
                     "reduce gradients (gradc_options.data_parallel, gradc compile --data-parallel)", m->api, fn);
  m->rt->allreduce = cb;
  m->rt->allreduce_user = user;
  return GRADC_OK;
}

double *inst_hyper(gradc_model *m, const char *fn, const char *step, const char *name) {
  if (!name) {
    inst_fail(m, GRADC_ERR_ARG, "%s_%s: NULL argument", m->api, fn);
    return NULL;
  }
  int s = inst_find_step(m, fn, step);
  if (s < 0) return NULL;
  const int64_t *r = abi_step(m->d, s);
  char names[512] = "";
  for (int64_t k = 0; k < r[ABI_S_NHYPER]; k++) {
    const int64_t *h = abi_hyper(m->d, r[ABI_S_HYPER] + k);
    const char *hn = m->names[h[ABI_P_NAME]];
    if (!strcmp(hn, name)) return (double *)(m->state + m->state_off[abi_tensor(m->d, h[ABI_P_TENSOR])[ABI_T_NODE]]);
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "", hn);
  }
  inst_fail(m, GRADC_ERR_ARG, "%s_%s: the %s optimizer of step '%s' has no run-time hyperparameter '%s'; it has: %s",
            m->api, fn, m->names[r[ABI_S_OPT_NAME]], m->names[r[ABI_S_NAME]], name, *names ? names : "none");
  return NULL;
}

/* ------------------------------------------------------------ tensors */

bool inst_tensor(const AbiModel *am, const gradc_model *m, int i, gradc_aot_tensor *out) {
  if (!out || i < 0 || i >= am->desc[ABI_H_NTENSORS]) return false;
  const int64_t *t = abi_tensor(am->desc, i);
  bool bound = m && m->cur;
  memset(out, 0, sizeof *out);
  out->name = am->names[t[ABI_T_NAME]];
  out->kind = (int)t[ABI_T_KIND];
  out->dtype = (int)t[ABI_T_DTYPE];
  out->rank = (int)t[ABI_T_RANK];
  out->count = 1;
  for (int k = 0; k < out->rank; k++) {
    int64_t sym = t[ABI_T_DIM_SYM + k];
    out->symbolic[k] = sym != 0;
    out->dims[k] = sym && !bound ? -1 : t[ABI_T_DIM_N + k] * (bound ? m->sym[sym] : 1);
    int64_t d = out->dims[k] < 0 ? 0 : out->dims[k];
    /* -1 past 2^62 elements (a static count is below 2^40, but times
     * dimensions of up to 2^24 it can overflow) */
    if (out->count > 0 && d != 0 && out->count > ((int64_t)1 << 62) / d) out->count = -1;
    else if (out->count >= 0) out->count *= d;
  }
  out->bytes = out->count < 0 ? SIZE_MAX : (size_t)out->count * abi_dtype_bytes((DType)out->dtype);
  if (m && t[ABI_T_NODE] >= 0 && (bound || is_persistent(t))) out->data = m->buf[t[ABI_T_NODE]];
  return true;
}

void *inst_data(gradc_model *m, const char *name, int64_t *count) {
  for (int i = 0; i < m->nt; i++) {
    const int64_t *r = abi_tensor(m->d, i);
    if (strcmp(m->names[r[ABI_T_NAME]], name)) continue;
    gradc_aot_tensor t;
    inst_tensor(m->am, m, i, &t);
    if (!is_persistent(r) && !m->cur) {
      inst_fail(m, GRADC_ERR_ARG, "'%s' has no storage before %s_bind sets the batch size", name, m->api);
      return NULL;
    }
    if (!t.data) {
      inst_fail(m, GRADC_ERR_ARG, "'%s' is a constant and has no storage", name);
      return NULL;
    }
    if (count) *count = t.count;
    return t.data;
  }
  inst_fail(m, GRADC_ERR_ARG, "the model has no tensor named '%s'", name);
  return NULL;
}

/* ------------------------------------------------------------ checkpoints */

static gradc_status ckpt_result(gradc_model *m, gradc_status s, const RtError *e) {
  return s ? inst_fail(m, s, "%s", e->msg) : GRADC_OK;
}

gradc_status inst_get_state(gradc_model *m, void *blob, size_t size) {
  size_t need = ckpt_size(m->names[0], m->ckpt, m->nckpt);
  if (!blob || size < need)
    return inst_fail(m, GRADC_ERR_ARG, "%s_get_state needs %zu bytes, got %zu", m->api, need, blob ? size : 0);
  RtError e = {{0}};
  return ckpt_result(m, ckpt_write(blob, size, m->names[0], m->ckpt, m->nckpt, &e), &e);
}

gradc_status inst_set_state(gradc_model *m, const void *blob, size_t size) {
  RtError e = {{0}};
  return ckpt_result(m, ckpt_read(blob, size, m->names[0], m->ckpt, m->nckpt, &e), &e);
}

gradc_status inst_save(gradc_model *m, const char *path) {
  if (!path) return inst_fail(m, GRADC_ERR_ARG, "%s_save: NULL argument", m->api);
  RtError e = {{0}};
  return ckpt_result(m, ckpt_save(path, m->names[0], m->ckpt, m->nckpt, &e), &e);
}

gradc_status inst_load(gradc_model *m, const char *path) {
  if (!path) return inst_fail(m, GRADC_ERR_ARG, "%s_load: NULL argument", m->api);
  RtError e = {{0}};
  return ckpt_result(m, ckpt_load(path, m->names[0], m->ckpt, m->nckpt, &e), &e);
}

/* ------------------------------------------------ include/gradc.h, forwarded */

const char *gradc_last_error(const gradc_model *m) { return inst_last_error(m); }

gradc_status gradc_bind(gradc_model *m, int64_t batch) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_bind: NULL model");
  return inst_bind(m, batch, NULL);
}

gradc_status gradc_bind_dim(gradc_model *m, const char *dim, int64_t value) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_bind_dim: NULL argument");
  return inst_bind_dim(m, dim, value);
}

gradc_status gradc_init(gradc_model *m, uint64_t seed) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_init: NULL model");
  return inst_init(m, seed);
}

gradc_status gradc_forward(gradc_model *m) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_forward: NULL model");
  return inst_forward(m);
}

int gradc_step_count(const gradc_model *m) { return m ? m->nsteps : 0; }

const char *gradc_step_name(const gradc_model *m, int i) { return m ? inst_step_name(m, i) : NULL; }

gradc_status gradc_set_allreduce(gradc_model *m, gradc_allreduce_fn fn, void *user) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_set_allreduce: NULL model");
  return inst_set_allreduce(m, "set_allreduce", fn, user);
}

gradc_status inst_set_row_offset(gradc_model *m, const char *fn, int64_t first_row) {
  if (first_row < 0)
    return inst_fail(m, GRADC_ERR_ARG, "%s_%s: the first row must be >= 0, got %lld", m->api, fn,
                     (long long)first_row);
  m->rt->row_offset = first_row;
  return GRADC_OK;
}

gradc_status gradc_set_row_offset(gradc_model *m, int64_t first_row) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_set_row_offset: NULL model");
  return inst_set_row_offset(m, "set_row_offset", first_row);
}

gradc_status gradc_set_hyper(gradc_model *m, const char *step, const char *name, double value) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_set_hyper: NULL argument");
  double *h = inst_hyper(m, "set_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *h = value;
  return GRADC_OK;
}

gradc_status gradc_get_hyper(gradc_model *m, const char *step, const char *name, double *value) {
  if (!m || !value) return inst_fail(m, GRADC_ERR_ARG, "gradc_get_hyper: NULL argument");
  double *h = inst_hyper(m, "get_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *value = *h;
  return GRADC_OK;
}

int gradc_tensor_count(const gradc_model *m) { return m ? inst_tensor_count(m->am) : 0; }

gradc_status gradc_tensor_info(const gradc_model *m, int i, gradc_tensor *out) {
  gradc_aot_tensor t;
  if (!m || !out || !inst_tensor(m->am, m, i, &t))
    return inst_fail((gradc_model *)m, GRADC_ERR_ARG, "gradc_tensor_info: no tensor %d", i);
  *out = (gradc_tensor){.name = t.name, .kind = (gradc_kind)t.kind, .dtype = (gradc_dtype)t.dtype, .rank = t.rank,
                        .count = t.count};
  memcpy(out->dims, t.dims, sizeof out->dims);
  memcpy(out->symbolic, t.symbolic, sizeof out->symbolic);
  return GRADC_OK;
}

void *gradc_data(gradc_model *m, const char *name, int64_t *count) {
  if (!m || !name) return NULL;
  return inst_data(m, name, count);
}

gradc_status gradc_save(gradc_model *m, const char *path) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_save: NULL argument");
  return inst_save(m, path);
}

gradc_status gradc_load(gradc_model *m, const char *path) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "gradc_load: NULL argument");
  return inst_load(m, path);
}
