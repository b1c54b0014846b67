/*
 * jitmodel.c - the JIT's side of include/gradc.h: a model file compiled in
 * this process into a model instance.
 *
 *   model file -> compile() -> graph -> jit_compile (native code)
 *              -> desc_build (the descriptor, in memory) -> inst_new
 *
 * The instance (runtime/instance.c) is the one a compiled shared object
 * runs on too, built there from the same descriptor emitted as constants;
 * so binding, memory, initial values, steps, hyperparameters and
 * checkpoints are one implementation, and the public functions that only
 * forward to it live with it.  What is the JIT's alone is here: compiling
 * (the one pipeline with the API's options, the thread count the code is
 * compiled for, --profile's instrumented code), the compilation the model
 * keeps (its warnings, the time it took, the graph that gradc dump and
 * gradc train read through jitmodel_graph), and --check-numerics, which names
 * the graph node where a NaN or infinity first appears - something only
 * the graph can say.
 *
 * A JitModel hangs on its instance (inst_set_owner) and owns everything
 * the instance points into: the compilation's arena (descriptor, names,
 * initial values), the JIT'd code (entry points).  gradc_free frees the
 * instance first, then those.
 */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler.h"
#include "runtime.h"

typedef struct JitModel {
  Compilation *comp;
  Jit *jit;
  AbiModel am;
  StepFn **fns;                /* the descriptor's: forward, then each step */
  char *warnings;
  double compile_ms;
  bool check_numerics;
  TimeReport times;            /* --time-report: compile()'s rows, then the JIT's */
} JitModel;

static char *diag_text(const Diags *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  diag_print(f, d);
  fclose(f);
  return text;
}

static void jit_model_free(JitModel *j) {
  if (!j) return;
  jit_free(j->jit);
  free(j->fns);
  free(j->warnings);
  compilation_free(j->comp);
  free(j);
}

/* The descriptor in the graph's arena; false when the arena runs out. */
static bool describe(const Graph *g, Descriptor *d) {
  jmp_buf oom;
  if (setjmp(oom)) {
    arena_on_oom(g->arena, NULL);
    return false;
  }
  arena_on_oom(g->arena, &oom);
  desc_build(g, d);
  arena_on_oom(g->arena, NULL);
  return true;
}

/* Takes ownership of c. */
static gradc_status build(Compilation *c, const gradc_options *opt, bool profile, double t0, const TimeReport *front,
                          gradc_model **out) {
  *out = NULL;
  if (!c) return rt_api_fail(GRADC_ERR_NOMEM, "out of memory while compiling");
  char *text = diag_text(&c->diags);
  if (!c->graph) {
    gradc_status s = c->status == COMPILE_ERR_IO      ? GRADC_ERR_IO
                     : c->status == COMPILE_ERR_NOMEM ? GRADC_ERR_NOMEM
                                                      : GRADC_ERR_MODEL;
    rt_api_fail(s, "%s", text ? text : "compilation failed");
    free(text);
    compilation_free(c);
    return s;
  }
  JitModel *j = calloc(1, sizeof *j);
  if (!j) {
    free(text);
    compilation_free(c);
    return rt_api_fail(GRADC_ERR_NOMEM, "out of memory");
  }
  j->comp = c;
  j->warnings = text;
  j->times = *front;
  j->check_numerics = opt->check_numerics != 0;
  const Graph *g = c->graph;
  int threads = opt->threads > 0 ? opt->threads : rt_default_threads();
  rt_blas_threads(threads);
  int nsyms;
  const AbiSymbol *syms = rt_symbols(profile, &nsyms);
  /* the code is outlined for threads > 1 (the pool's count: 1..64) */
  JitOptions jo = {.opt_level = opt->opt_level, .symbols = syms, .nsymbols = nsyms, .profile = profile,
                   .parallel = threads > 1, .times = &j->times, .use_cache = true};
  char err[2048];
  j->jit = jit_compile(g, &jo, err, sizeof err);
  if (!j->jit) {
    jit_model_free(j);
    return rt_api_fail(GRADC_ERR_JIT, "%s", err);
  }
  Descriptor d;
  double t = time_now_ms();
  bool described = describe(g, &d);
  t = time_add(&j->times, "plan and descriptor", t);
  if (!described) {
    jit_model_free(j);
    return rt_api_fail(GRADC_ERR_NOMEM, "out of memory");
  }
  GRADC_ASSERT(1 + d.nsteps == graph_nfunctions(g));
  j->fns = calloc((size_t)graph_nfunctions(g), sizeof *j->fns);
  if (!j->fns) {
    jit_model_free(j);
    return rt_api_fail(GRADC_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < graph_nfunctions(g); i++) j->fns[i] = jit_function(j->jit, i);
  j->am = (AbiModel){d.desc, d.names, d.values, j->fns};
  InstanceOptions io = {.api = "gradc", .threads = threads, .workspaces = 4};
  gradc_model *m = inst_new(&j->am, &io);
  if (!m) {
    jit_model_free(j);
    return GRADC_ERR_NOMEM;       /* inst_new's message */
  }
  inst_set_owner(m, j);
  t = time_add(&j->times, "instance (memory)", t);
  gradc_status s = inst_init(m, opt->seed);
  time_add(&j->times, "initial values", t);
  if (s) {
    rt_api_fail(s, "%s", gradc_last_error(m));
    gradc_free(m);
    return s;
  }
  j->compile_ms = time_now_ms() - t0;
  *out = m;
  return GRADC_OK;
}

void gradc_free(gradc_model *m) {
  if (!m) return;
  JitModel *j = inst_owner(m);
  inst_free(m);
  jit_model_free(j);
}

void gradc_options_default(gradc_options *o) {
  *o = (gradc_options){.opt_level = 3, .seed = 1, .threads = 0, .lr = 0, .check_numerics = 0};
}

static gradc_options resolve_options(const gradc_options *opt) {
  gradc_options o;
  gradc_options_default(&o);
  if (opt) o = *opt;
  return o;
}

/* The one pipeline (compile.c) with the API's options; -O0 and
 * --check-numerics (which needs every value in memory) run no pass. */
CompileOptions jitmodel_compile_options(const gradc_options *o) {
  CompileOptions co = compile_defaults();
  co.opt_level = o->check_numerics ? 0 : o->opt_level;
  co.lr = o->lr;
  co.data_parallel = o->data_parallel != 0;
  return co;
}

gradc_status jitmodel_compile_file(const char *path, const gradc_options *opt, bool profile,
                                   const struct OnnxImportOptions *onnx, gradc_model **out) {
  if (!out || !path) return rt_api_fail(GRADC_ERR_ARG, "gradc_compile_file: NULL argument");
  double t0 = time_now_ms();
  gradc_options o = resolve_options(opt);
  CompileOptions co = jitmodel_compile_options(&o);
  TimeReport front = {0};
  co.times = &front;
  co.onnx = onnx;
  return build(compile_path(path, &co), &o, profile, t0, &front, out);
}

gradc_status gradc_compile_file(const char *path, const gradc_options *opt, gradc_model **out) {
  return jitmodel_compile_file(path, opt, false, NULL, out);
}

gradc_status gradc_compile_string(const char *name, const char *source, const gradc_options *opt,
                                  gradc_model **out) {
  if (!out || !source) return rt_api_fail(GRADC_ERR_ARG, "gradc_compile_string: NULL argument");
  double t0 = time_now_ms();
  gradc_options o = resolve_options(opt);
  CompileOptions co = jitmodel_compile_options(&o);
  TimeReport front = {0};
  co.times = &front;
  return build(compile(name ? name : "model.nn", source, strlen(source), &co), &o, false, t0, &front, out);
}

static const JitModel *owner(const gradc_model *m) { return m ? inst_owner(m) : NULL; }

double gradc_compile_ms(const gradc_model *m) { return m ? owner(m)->compile_ms : 0; }

const char *gradc_warnings(const gradc_model *m) { return m && owner(m)->warnings ? owner(m)->warnings : ""; }

const Graph *jitmodel_graph(const gradc_model *m) { return owner(m)->comp->graph; }

const TimeReport *jitmodel_times(const gradc_model *m) { return &owner(m)->times; }

bool jitmodel_from_cache(const gradc_model *m) { return jit_from_cache(owner(m)->jit); }

/* ------------------------------------------------------------ check_numerics */

/* The first node in execution order holding a NaN or infinity is named;
 * its source line tells the user where to look. */
static gradc_status non_finite(gradc_model *m, double loss) {
  const Graph *g = jitmodel_graph(m);
  void **buf = inst_buffers(m);
  const int64_t *sym = inst_sym(m);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    const Node *s = cg_buffer_node(n);
    if (!s || s != n || !dtype_is_float(n->dtype) || n->op == OP_ASSIGN) continue;
    int64_t c = 1;
    for (int k = 0; k < n->shape.rank; k++) c *= n->shape.d[k].n * sym[n->shape.d[k].sym];
    for (int64_t k = 0; k < c; k++) {
      double v = n->dtype == DT_F32 ? ((float *)buf[i])[k] : ((double *)buf[i])[k];
      if (!isfinite(v))
        return inst_fail(m, GRADC_ERR_NUMERIC,
                         "the loss is %g: the first non-finite value is %g in node %%%d (%s%s%s) at %s:%d:%d", loss,
                         v, n->id, op_info[n->op].name, n->name ? " " : "", n->name ? n->name : "", g->src->name,
                         n->loc.line, n->loc.col);
    }
  }
  return inst_fail(m, GRADC_ERR_NUMERIC, "the loss is %g", loss);
}

static gradc_status run_step(gradc_model *m, const char *fn, const char *name, double *loss) {
  int st = inst_find_step(m, fn, name);
  if (st < 0) return GRADC_ERR_ARG;
  /* Unbound, inst_step says so. */
  if (!owner(m)->check_numerics || !inst_bound(m)) return inst_step(m, fn, st, loss);
  /* Forward first: a bad batch is reported before it can touch the
   * parameters, with every intermediate value still in memory. */
  inst_forward(m);
  double f = inst_loss(m, st);
  if (!isfinite(f)) {
    if (loss) *loss = f;
    return non_finite(m, f);
  }
  double v;
  inst_step(m, fn, st, &v);
  if (loss) *loss = v;
  if (!isfinite(v)) return non_finite(m, v);
  return GRADC_OK;
}

gradc_status gradc_train_step(gradc_model *m, double *loss) {
  if (!m) return rt_api_fail(GRADC_ERR_ARG, "gradc_train_step: NULL model");
  return run_step(m, "train_step", NULL, loss);
}

gradc_status gradc_step(gradc_model *m, const char *step, double *loss) {
  if (!m) return rt_api_fail(GRADC_ERR_ARG, "gradc_step: NULL model");
  return run_step(m, "step", step, loss);
}
