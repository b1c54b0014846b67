/*
 * model.c - the API of include/gradc.h: a compiled model and its memory.
 *
 * A model owns its compilation (graph, diagnostics), the JIT'd entry points,
 * the persistent storage of parameters and optimizer state, and one
 * workspace per batch size holding inputs and every intermediate value.
 * gradc_bind selects (allocating on first use) the workspace of a batch
 * size, so alternating full and final partial batches allocates nothing
 * after the first epoch, and a step never allocates.
 *
 * The buffer table handed to the compiled code has one pointer per graph
 * node: its own storage, or the storage of the node it aliases (reshapes).
 * With it the code gets the model's run-time context (context.c: its
 * thread pool, scratch, profile tables), so that nothing a step touches is
 * shared with another model.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler.h"
#include "runtime.h"

enum { MAX_WORKSPACES = 4 };

typedef struct Workspace {
  int64_t batch;
  int64_t sym[MAX_SYMS + 1];     /* the binding it was planned for */
  char *mem;
  size_t bytes;
  size_t *offset;          /* per node id; SIZE_MAX = not in the workspace */
} Workspace;

typedef struct Named {
  const char *name;
  gradc_kind kind;
  const Node *node;
} Named;

struct gradc_model {
  Compilation *comp;
  const Graph *g;
  Jit *jit;
  RtContext *rt;
  gradc_options opt;
  double compile_ms;
  void **persist;          /* per node id: params and state */
  void **buf;              /* per node id: the table the code reads */
  Workspace ws[MAX_WORKSPACES];
  int nws;
  Workspace *cur;
  int64_t sym[MAX_SYMS + 1];
  Named *named;
  int nnamed;
  char *warnings;
  char err[8192];
};

static _Thread_local char thread_err[8192];

static gradc_status fail(gradc_model *m, gradc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static gradc_status fail(gradc_model *m, gradc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m ? m->err : thread_err, m ? sizeof m->err : sizeof thread_err, fmt, ap);
  va_end(ap);
  return s;
}

const char *gradc_last_error(const gradc_model *m) { return m ? m->err : thread_err; }

gradc_status rt_api_fail(gradc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(thread_err, sizeof thread_err, fmt, ap);
  va_end(ap);
  return s;
}

double gradc_compile_ms(const gradc_model *m) { return m ? m->compile_ms : 0; }

const char *gradc_warnings(const gradc_model *m) { return m && m->warnings ? m->warnings : ""; }

void gradc_options_default(gradc_options *o) {
  *o = (gradc_options){.opt_level = 3, .seed = 1, .threads = 0, .lr = 0, .check_numerics = 0};
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static bool persistent(const Node *n) { return n->op == OP_PARAM || n->op == OP_STATE; }

/* Elements under the current binding; -1 past 2^62 (a static count is
 * below 2^40, but times a batch of up to 2^24 it can overflow). */
static int64_t bound_count(const gradc_model *m, const Shape *s) {
  int64_t c = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t d = s->d[i].n * m->sym[s->d[i].sym];
    if (d != 0 && c > ((int64_t)1 << 62) / d) return -1;
    c *= d;
  }
  return c;
}

static void add_named(gradc_model *m, const char *name, gradc_kind kind, const Node *n) {
  m->named[m->nnamed++] = (Named){name, kind, n};
}

static char *diag_text(const Diags *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  diag_print(f, d);
  fclose(f);
  return text;
}

/* Takes ownership of c. */
static gradc_status build(Compilation *c, const gradc_options *opt, bool profile, double t0,
                          gradc_model **out) {
  *out = NULL;
  if (!c) return fail(NULL, GRADC_ERR_NOMEM, "out of memory while compiling");
  char *text = diag_text(&c->diags);
  if (!c->graph) {
    gradc_status s = c->status == COMPILE_ERR_IO      ? GRADC_ERR_IO
                     : c->status == COMPILE_ERR_NOMEM ? GRADC_ERR_NOMEM
                                                      : GRADC_ERR_MODEL;
    fail(NULL, s, "%s", text ? text : "compilation failed");
    free(text);
    compilation_free(c);
    return s;
  }
  gradc_model *m = calloc(1, sizeof *m);
  const Graph *g = c->graph;
  if (!m) {
    free(text);
    compilation_free(c);
    return fail(NULL, GRADC_ERR_NOMEM, "out of memory");
  }
  m->comp = c;
  m->g = g;
  m->warnings = text;
  m->opt = *opt;
  for (int k = 0; k <= MAX_SYMS; k++) m->sym[k] = 1;
  m->persist = calloc((size_t)g->nnodes, sizeof(void *));
  m->buf = calloc((size_t)g->nnodes, sizeof(void *));
  m->named = calloc((size_t)g->nnodes + 4, sizeof(Named));
  if (!m->persist || !m->buf || !m->named) {
    gradc_free(m);
    return fail(NULL, GRADC_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!persistent(n)) continue;
    size_t bytes = (size_t)shape_static_count(&n->shape) * dtype_size(n->dtype);
    m->persist[i] = rt_calloc_big(bytes);
    if (!m->persist[i]) {
      gradc_free(m);
      return fail(NULL, GRADC_ERR_NOMEM, "out of memory for parameter '%s' (%zu bytes)", n->name, bytes);
    }
    m->buf[i] = m->persist[i];
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_INPUT) add_named(m, n->name, GRADC_INPUT, n);
    else if (n->op == OP_PARAM) add_named(m, n->name, GRADC_PARAM, n);
    else if (n->op == OP_STATE) add_named(m, n->name, GRADC_STATE, n);
  }
  for (int i = 0; i < g->noutputs; i++) add_named(m, g->outputs[i].name, GRADC_OUTPUT, g->outputs[i].node);
  for (int i = 0; i < g->nmetrics; i++) add_named(m, g->metrics[i].name, GRADC_METRIC, g->metrics[i].node);
  if (g->loss) add_named(m, g->loss->name ? g->loss->name : "loss", GRADC_LOSS, g->loss);

  int threads = opt->threads > 0 ? opt->threads : rt_default_threads();
  rt_blas_threads(threads);
  m->rt = rt_context_new(threads);
  if (!m->rt) {
    gradc_free(m);
    return fail(NULL, GRADC_ERR_NOMEM, "out of memory");
  }
  int nsyms;
  const AbiSymbol *syms = rt_symbols(profile, &nsyms);
  /* the code is outlined for threads > 1 */
  JitOptions jo = {.opt_level = opt->opt_level, .symbols = syms, .nsymbols = nsyms,
                   .profile = profile, .parallel = rt_context_threads(m->rt) > 1};
  char err[2048];
  m->jit = jit_compile(g, &jo, err, sizeof err);
  if (!m->jit) {
    gradc_free(m);
    return fail(NULL, GRADC_ERR_JIT, "%s", err);
  }
  gradc_status s = gradc_init(m, opt->seed);
  if (s) {
    fail(NULL, s, "%s", m->err);
    gradc_free(m);
    return s;
  }
  m->compile_ms = now_ms() - t0;
  *out = m;
  return GRADC_OK;
}

static gradc_options resolve_options(const gradc_options *opt) {
  gradc_options o;
  gradc_options_default(&o);
  if (opt) o = *opt;
  return o;
}

/* The one pipeline (compiler/compile.c) with the API's options; -O0 and
 * --check-numerics (which needs every value in memory) run no pass. */
CompileOptions rt_compile_options(const gradc_options *o) {
  CompileOptions co = compile_defaults();
  co.opt_level = o->check_numerics ? 0 : o->opt_level;
  co.lr = o->lr;
  return co;
}

gradc_status rt_compile_file(const char *path, const gradc_options *opt, bool profile, gradc_model **out) {
  if (!out || !path) return fail(NULL, GRADC_ERR_ARG, "gradc_compile_file: NULL argument");
  double t0 = now_ms();
  gradc_options o = resolve_options(opt);
  CompileOptions co = rt_compile_options(&o);
  return build(compile_path(path, &co), &o, profile, t0, out);
}

gradc_status gradc_compile_file(const char *path, const gradc_options *opt, gradc_model **out) {
  return rt_compile_file(path, opt, false, out);
}

gradc_status gradc_compile_string(const char *name, const char *source, const gradc_options *opt,
                                  gradc_model **out) {
  if (!out || !source) return fail(NULL, GRADC_ERR_ARG, "gradc_compile_string: NULL argument");
  double t0 = now_ms();
  gradc_options o = resolve_options(opt);
  CompileOptions co = rt_compile_options(&o);
  return build(compile(name ? name : "model.nn", source, strlen(source), &co), &o, false, t0, out);
}

void gradc_free(gradc_model *m) {
  if (!m) return;
  jit_free(m->jit);
  rt_context_free(m->rt);
  if (m->persist && m->g)
    for (int i = 0; i < m->g->nnodes; i++) free(m->persist[i]);
  for (int w = 0; w < m->nws; w++) {
    free(m->ws[w].mem);
    free(m->ws[w].offset);
  }
  free(m->persist);
  free(m->buf);
  free(m->named);
  free(m->warnings);
  compilation_free(m->comp);
  free(m);
}

/* The static memory plan (plan.c) for this batch size: one block. */
static gradc_status make_workspace(gradc_model *m, int64_t batch, Workspace *w) {
  const Graph *g = m->g;
  w->batch = batch;
  memcpy(w->sym, m->sym, sizeof w->sym);
  w->offset = malloc(sizeof(size_t) * (size_t)g->nnodes);
  if (!w->offset) return fail(m, GRADC_ERR_NOMEM, "out of memory");
  size_t at = plan_offsets(g, m->sym, g->reuse_memory, w->offset, NULL);
  if (at == SIZE_MAX) {
    free(w->offset);
    w->offset = NULL;
    return fail(m, GRADC_ERR_NOMEM, "the workspace for batch %lld would need more than 2^62 bytes",
                (long long)batch);
  }
  w->bytes = at;
  w->mem = rt_alloc_big(at);
  if (!w->mem) {
    free(w->offset);
    w->offset = NULL;
    return fail(m, GRADC_ERR_NOMEM, "out of memory: the workspace for batch %lld needs %zu bytes",
                (long long)batch, at);
  }
  memset(w->mem, 0, at);
  return GRADC_OK;
}

/* Selects (making on first use) the workspace of the binding in m->sym. */
static gradc_status select_workspace(gradc_model *m, int64_t batch) {
  Workspace *w = NULL;
  for (int i = 0; i < m->nws; i++)
    if (!memcmp(m->ws[i].sym, m->sym, sizeof m->sym)) w = &m->ws[i];
  if (!w) {
    if (m->nws == MAX_WORKSPACES) {       /* drop the oldest */
      free(m->ws[0].mem);
      free(m->ws[0].offset);
      memmove(&m->ws[0], &m->ws[1], sizeof(Workspace) * (MAX_WORKSPACES - 1));
      m->nws--;
    }
    Workspace fresh = {0};
    gradc_status s = make_workspace(m, batch, &fresh);
    if (s) {
      m->cur = NULL;
      return s;
    }
    m->ws[m->nws] = fresh;
    w = &m->ws[m->nws++];
  }
  m->cur = w;
  for (int i = 0; i < m->g->nnodes; i++) {
    const Node *n = m->g->nodes[i];
    if (persistent(n)) continue;
    const Node *s = cg_buffer_node(n);
    m->buf[i] = s && !persistent(s) ? w->mem + w->offset[s->id] : s ? m->persist[s->id] : NULL;
  }
  return GRADC_OK;
}

gradc_status gradc_bind(gradc_model *m, int64_t batch) {
  if (!m) return fail(NULL, GRADC_ERR_ARG, "gradc_bind: NULL model");
  if (batch < 1 || batch > (1 << 24))
    return fail(m, GRADC_ERR_SHAPE, "batch size must be between 1 and %d, got %lld", 1 << 24,
                (long long)batch);
  for (int k = 1; k <= m->g->nsym; k++) m->sym[k] = batch;
  return select_workspace(m, batch);
}

gradc_status gradc_bind_dim(gradc_model *m, const char *dim, int64_t value) {
  if (!m || !dim) return fail(m, GRADC_ERR_ARG, "gradc_bind_dim: NULL argument");
  const Graph *g = m->g;
  int k = 1;
  while (k <= g->nsym && strcmp(g->sym[k], dim)) k++;
  if (k > g->nsym) {
    char names[512] = "";
    for (int i = 1; i <= g->nsym; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", i > 1 ? ", " : "",
               g->sym[i]);
    return fail(m, GRADC_ERR_ARG, "gradc_bind_dim: the model has no symbolic dimension '%s'; it has: %s",
                dim, g->nsym ? names : "none");
  }
  if (value < 1 || value > (1 << 24))
    return fail(m, GRADC_ERR_SHAPE, "%s must be between 1 and %d, got %lld", dim, 1 << 24,
                (long long)value);
  m->sym[k] = value;
  return select_workspace(m, m->sym[1]);
}

gradc_status gradc_init(gradc_model *m, uint64_t seed) {
  if (!m) return fail(NULL, GRADC_ERR_ARG, "gradc_init: NULL model");
  const Graph *g = m->g;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!persistent(n)) continue;
    int64_t c = shape_static_count(&n->shape);
    double *tmp = malloc(sizeof(double) * (size_t)(c ? c : 1));
    if (!tmp) return fail(m, GRADC_ERR_NOMEM, "out of memory initialising '%s'", n->name);
    init_values(n, seed, tmp, c);
    for (int64_t k = 0; k < c; k++) {
      switch (n->dtype) {
      case DT_F32: ((float *)m->persist[i])[k] = (float)tmp[k]; break;
      case DT_F64: ((double *)m->persist[i])[k] = tmp[k]; break;
      case DT_I32: ((int32_t *)m->persist[i])[k] = (int32_t)tmp[k]; break;
      case DT_BOOL: ((uint8_t *)m->persist[i])[k] = tmp[k] != 0; break;
      case DT_COUNT: break;
      }
    }
    free(tmp);
  }
  return GRADC_OK;
}

static const Named *find(const gradc_model *m, const char *name) {
  for (int i = 0; i < m->nnamed; i++)
    if (!strcmp(m->named[i].name, name)) return &m->named[i];
  return NULL;
}

void *gradc_data(gradc_model *m, const char *name, int64_t *count) {
  if (!m || !name) return NULL;
  const Named *t = find(m, name);
  if (!t) {
    fail(m, GRADC_ERR_ARG, "the model has no tensor named '%s'", name);
    return NULL;
  }
  if (!persistent(t->node) && !m->cur) {
    fail(m, GRADC_ERR_ARG, "'%s' has no storage before gradc_bind sets the batch size", name);
    return NULL;
  }
  const Node *s = cg_buffer_node(t->node);
  if (!s) {
    fail(m, GRADC_ERR_ARG, "'%s' is a constant and has no storage", name);
    return NULL;
  }
  if (count) *count = bound_count(m, &t->node->shape);
  return m->buf[s->id];
}

/* The optimizer's run-time scalars are the f64 scalar states named
 * optimizer/NAME (compiler/optimizer.c makes one per value its update
 * reads). */
static bool is_hyper(const Named *t) {
  return t->kind == GRADC_STATE && !strncmp(t->name, "optimizer/", 10) &&
         t->node->dtype == DT_F64 && t->node->shape.rank == 0;
}

static double *find_hyper(gradc_model *m, const char *fn, const char *step, const char *name) {
  if (!m || !name) {
    fail(m, GRADC_ERR_ARG, "%s: NULL argument", fn);
    return NULL;
  }
  if (!m->g->has_train) {
    fail(m, GRADC_ERR_ARG, "%s: the model has no train step", fn);
    return NULL;
  }
  if (step && strcmp(step, "train")) {
    fail(m, GRADC_ERR_ARG, "%s: the model has no step '%s'; its step is 'train'", fn, step);
    return NULL;
  }
  for (int i = 0; i < m->nnamed; i++)
    if (is_hyper(&m->named[i]) && !strcmp(m->named[i].name + 10, name))
      return m->persist[m->named[i].node->id];
  /* The valid names in the optimizer table's order. */
  const OptInfo *info = &opt_info[m->g->opt.kind];
  char names[512] = "";
  for (int k = 0; k < info->nhyper; k++)
    for (int i = 0; i < m->nnamed; i++)
      if (is_hyper(&m->named[i]) && !strcmp(m->named[i].name + 10, info->hyper[k].name))
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", *names ? ", " : "",
                 info->hyper[k].name);
  fail(m, GRADC_ERR_ARG, "%s: the %s optimizer has no run-time hyperparameter '%s'; it has: %s", fn,
       info->name, name, names);
  return NULL;
}

gradc_status gradc_set_hyper(gradc_model *m, const char *step, const char *name, double value) {
  double *h = find_hyper(m, "gradc_set_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *h = value;
  return GRADC_OK;
}

gradc_status gradc_get_hyper(gradc_model *m, const char *step, const char *name, double *value) {
  if (!value) return fail(m, GRADC_ERR_ARG, "gradc_get_hyper: NULL argument");
  double *h = find_hyper(m, "gradc_get_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *value = *h;
  return GRADC_OK;
}

int gradc_tensor_count(const gradc_model *m) { return m ? m->nnamed : 0; }

gradc_status gradc_tensor_info(const gradc_model *m, int i, gradc_tensor *out) {
  if (!m || !out || i < 0 || i >= m->nnamed)
    return fail((gradc_model *)m, GRADC_ERR_ARG, "gradc_tensor_info: no tensor %d", i);
  const Named *t = &m->named[i];
  const Node *n = t->node;
  memset(out, 0, sizeof *out);
  out->name = t->name;
  out->kind = t->kind;
  out->dtype = (gradc_dtype)n->dtype;
  out->rank = n->shape.rank;
  out->count = 1;
  for (int k = 0; k < n->shape.rank; k++) {
    Dim d = n->shape.d[k];
    out->symbolic[k] = d.sym != 0;
    out->dims[k] = d.sym && !m->cur ? -1 : d.n * m->sym[d.sym];
    out->count *= out->dims[k] < 0 ? 0 : out->dims[k];
  }
  return GRADC_OK;
}

static gradc_status need_bound(gradc_model *m, const char *fn) {
  if (!m) return fail(NULL, GRADC_ERR_ARG, "%s: NULL model", fn);
  if (!m->cur) return fail(m, GRADC_ERR_ARG, "%s: call gradc_bind first to set the batch size", fn);
  return GRADC_OK;
}

gradc_status gradc_forward(gradc_model *m) {
  gradc_status s = need_bound(m, "gradc_forward");
  if (s) return s;
  jit_forward(m->jit)(m->rt, m->buf, m->sym);
  return GRADC_OK;
}

/* With check_numerics, the first node in execution order holding a NaN or
 * infinity is named; its source line tells the user where to look. */
static gradc_status non_finite(gradc_model *m, double loss) {
  const Graph *g = m->g;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    const Node *s = cg_buffer_node(n);
    if (!s || s != n || !dtype_is_float(n->dtype) || n->op == OP_ASSIGN) continue;
    int64_t c = bound_count(m, &n->shape);
    for (int64_t k = 0; k < c; k++) {
      double v = n->dtype == DT_F32 ? ((float *)m->buf[i])[k] : ((double *)m->buf[i])[k];
      if (!isfinite(v))
        return fail(m, GRADC_ERR_NUMERIC,
                    "the loss is %g: the first non-finite value is %g in node %%%d (%s%s%s) at %s:%d:%d",
                    loss, v, n->id, op_info[n->op].name, n->name ? " " : "",
                    n->name ? n->name : "", g->src->name, n->loc.line, n->loc.col);
    }
  }
  return fail(m, GRADC_ERR_NUMERIC, "the loss is %g", loss);
}

/* The loss in its own precision: an f64 loss keeps every bit. */
static double loss_value(const gradc_model *m, const Node *l) {
  void *p = m->buf[cg_buffer_node(l)->id];
  return l->dtype == DT_F32 ? (double)*(float *)p : *(double *)p;
}

gradc_status gradc_train_step(gradc_model *m, double *loss) {
  gradc_status s = need_bound(m, "gradc_train_step");
  if (s) return s;
  if (!m->g->has_train) return fail(m, GRADC_ERR_ARG, "the model has no train statement");
  const Node *l = m->g->loss;
  if (m->opt.check_numerics) {
    /* Forward first: a bad batch is reported before it can touch the
     * parameters, with every intermediate value still in memory. */
    jit_forward(m->jit)(m->rt, m->buf, m->sym);
    double f = loss_value(m, l);
    if (!isfinite(f)) {
      if (loss) *loss = f;
      return non_finite(m, f);
    }
  }
  jit_train_step(m->jit)(m->rt, m->buf, m->sym);
  double v = loss_value(m, l);
  if (loss) *loss = v;
  if (m->opt.check_numerics && !isfinite(v)) return non_finite(m, v);
  return GRADC_OK;
}

/* Parameters and optimizer state, in graph order, as checkpoint tensors. */
static int ckpt_tensors(const gradc_model *m, CkptTensor *t) {
  int n = 0;
  for (int i = 0; i < m->g->nnodes; i++) {
    const Node *x = m->g->nodes[i];
    if (!persistent(x)) continue;
    t[n] = (CkptTensor){.name = x->name, .dtype = (gradc_dtype)x->dtype, .rank = x->shape.rank,
                        .data = m->persist[i],
                        .optional = is_hyper(&(Named){x->name, GRADC_STATE, x})};
    for (int k = 0; k < x->shape.rank; k++) t[n].dims[k] = x->shape.d[k].n;
    n++;
  }
  return n;
}

gradc_status gradc_save(gradc_model *m, const char *path) {
  if (!m || !path) return fail(m, GRADC_ERR_ARG, "gradc_save: NULL argument");
  CkptTensor *t = calloc((size_t)m->g->nnodes + 1, sizeof *t);
  if (!t) return fail(m, GRADC_ERR_NOMEM, "out of memory");
  RtError e = {{0}};
  gradc_status s = ckpt_save(path, m->g->model_name, t, ckpt_tensors(m, t), &e);
  free(t);
  return s ? fail(m, s, "%s", e.msg) : GRADC_OK;
}

gradc_status gradc_load(gradc_model *m, const char *path) {
  if (!m || !path) return fail(m, GRADC_ERR_ARG, "gradc_load: NULL argument");
  CkptTensor *t = calloc((size_t)m->g->nnodes + 1, sizeof *t);
  if (!t) return fail(m, GRADC_ERR_NOMEM, "out of memory");
  RtError e = {{0}};
  gradc_status s = ckpt_load(path, m->g->model_name, t, ckpt_tensors(m, t), &e);
  free(t);
  return s ? fail(m, s, "%s", e.msg) : GRADC_OK;
}

/* For the CLI and benches inside the runtime: the graph behind the model. */
const Graph *rt_graph(const gradc_model *m) { return m->g; }
const Jit *rt_jit(const gradc_model *m) { return m->jit; }
RtContext *rt_context(const gradc_model *m) { return m->rt; }
