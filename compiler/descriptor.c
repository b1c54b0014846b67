/*
 * descriptor.c - a graph as a model descriptor (runtime/abi.h): what a
 * model instance needs to know about its model to run it.
 *
 * Input: an optimized graph (fuse() has decided storage).  Output: the
 * descriptor's i64 array, its strings and its initial values, in the
 * graph's arena - the numbers of abi.h's layout, nothing of the graph's
 * own types.  This is the one way from a graph to a descriptor: the JIT
 * (jitmodel.c) hands it to an instance as it is, the emitter (emit.c)
 * writes the same numbers into a .so's object as constants, and the .so
 * header (header.c) documents the model from it.  So an instance of the
 * JIT and an instance of a .so see one model the same way: the same named
 * tensors in the same order, the same initializers, the same workspace
 * buffers and live ranges (plan.c), the same train steps.
 *
 * What a descriptor holds of the graph: the named tensors (inputs,
 * parameters and state in node order, then outputs, metrics and losses:
 * gradc_tensor_info's order) with dtypes, shapes (symbolic dimensions as
 * n * sym), initializers and their Keras fans, and the node whose storage
 * holds each; the workspace buffers with their live ranges; per node its
 * storage node; and the train steps: each one's name, loss, optimizer and
 * run-time hyperparameters, the latter by the index of the f64 state
 * tensor that holds each, so that the runtime never builds a tensor name.
 * All that a descriptor says about training comes from model_training
 * below, the one function that reads the graph's train statements.
 */
#include <string.h>

#include "compiler.h"

/* The losses and train steps of a model, as the descriptor records them. */
typedef struct StepInfo {
  const char *name;
  const Node *loss;            /* NULL: none */
  const char *opt;             /* the optimizer's name */
  int nhyper;
  const char *hyper_name[OPT_MAX_HYPERS];
  const Node *hyper[OPT_MAX_HYPERS];   /* f64 scalar STATE nodes */
} StepInfo;

typedef struct Training {
  int nlosses;
  Binding losses[MAX_STEPS];   /* each distinct loss once, in step order */
  int nsteps;
  StepInfo steps[MAX_STEPS];
} Training;

/* Reads g's train statements, in file order.  A step's run-time
 * hyperparameters are the f64 scalar STATE nodes PREFIXoptimizer/NAME that
 * its update made for the values it reads (optimizer.c), listed in the
 * optimizer table's order. */
static void model_training(const Graph *g, Training *t) {
  memset(t, 0, sizeof *t);
  for (int s = 0; s < g->nsteps; s++) {
    const TrainStep *ts = &g->steps[s];
    bool seen = false;
    for (int i = 0; i < t->nlosses && !seen; i++) seen = t->losses[i].node == ts->loss;
    if (!seen) t->losses[t->nlosses++] = (Binding){ts->loss->name ? ts->loss->name : "loss", ts->loss};
    const OptInfo *info = &opt_info[ts->opt.kind];
    StepInfo *si = &t->steps[t->nsteps++];
    *si = (StepInfo){.name = ts->name, .loss = ts->loss, .opt = info->name};
    size_t pl = strlen(ts->prefix);
    for (int k = 0; k < info->nhyper; k++)
      for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op == OP_STATE && n->dtype == DT_F64 && n->shape.rank == 0 &&
            !strncmp(n->name, ts->prefix, pl) && !strncmp(n->name + pl, "optimizer/", 10) &&
            !strcmp(n->name + pl + 10, info->hyper[k].name)) {
          si->hyper_name[si->nhyper] = info->hyper[k].name;
          si->hyper[si->nhyper++] = n;
          break;
        }
      }
  }
}

DescTensor *desc_tensors(const Graph *g, int *count) {
  Training tr;
  model_training(g, &tr);
  DescTensor *out = arena_alloc(g->arena, sizeof *out * (size_t)(g->nnodes + g->noutputs + g->nmetrics + tr.nlosses + 1));
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *x = g->nodes[i];
    if (x->op == OP_INPUT) out[n++] = (DescTensor){x->name, ABI_INPUT, x};
    else if (x->op == OP_PARAM) out[n++] = (DescTensor){x->name, ABI_PARAM, x};
    else if (x->op == OP_STATE) out[n++] = (DescTensor){x->name, ABI_STATE, x};
  }
  for (int i = 0; i < g->noutputs; i++) out[n++] = (DescTensor){g->outputs[i].name, ABI_OUTPUT, g->outputs[i].node};
  for (int i = 0; i < g->nmetrics; i++) out[n++] = (DescTensor){g->metrics[i].name, ABI_METRIC, g->metrics[i].node};
  for (int i = 0; i < tr.nlosses; i++) out[n++] = (DescTensor){tr.losses[i].name, ABI_LOSS, tr.losses[i].node};
  *count = n;
  return out;
}

static int64_t double_bits(double v) {
  int64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

static void put_dims(int64_t *n, int64_t *sym, const Shape *s) {
  for (int k = 0; k < s->rank; k++) n[k] = s->d[k].n, sym[k] = s->d[k].sym;
}

/* The index of the tensor of kind that node n is, -1 for none. */
static int64_t tensor_of(const DescTensor *t, int nt, AbiKind kind, const Node *n) {
  for (int i = 0; i < nt; i++)
    if (t[i].kind == kind && t[i].node == n) return i;
  return -1;
}

void desc_build(const Graph *g, Descriptor *out) {
  Arena *a = g->arena;
  Training tr;
  model_training(g, &tr);
  int nt;
  DescTensor *t = desc_tensors(g, &nt);
  PlanBuffer *pb = arena_alloc(a, sizeof *pb * (size_t)(g->nnodes + 1));
  int nb = plan_buffers(g, pb);
  GRADC_ASSERT(nb >= 0);
  int nhypers = 0;
  for (int s = 0; s < tr.nsteps; s++) nhypers += tr.steps[s].nhyper;

  int64_t *d = arena_alloc(a, sizeof *d * abi_fields(nt, nb, tr.nsteps, nhypers, g->nnodes));   /* zeroed */
  d[ABI_H_VERSION] = ABI_VERSION;
  d[ABI_H_NNODES] = g->nnodes;
  d[ABI_H_NSYM] = g->nsym;
  d[ABI_H_REUSE] = g->reuse_memory;
  d[ABI_H_NTENSORS] = nt;
  d[ABI_H_NBUFFERS] = nb;
  d[ABI_H_NSTEPS] = tr.nsteps;
  d[ABI_H_NHYPERS] = nhypers;
  for (int i = 0; i < g->nnodes; i++) d[ABI_H_ALLREDUCE] += g->nodes[i]->op == OP_ALLREDUCE;
  /* names: the model, the tensors, the symbolic dims, then per step its
   * name, its optimizer's and its hyperparameters' */
  const char **names = arena_alloc(a, sizeof *names * (size_t)(1 + nt + g->nsym + 2 * tr.nsteps + nhypers));
  int nnames = 0;
  names[nnames++] = g->model_name;
  const double **values = arena_alloc(a, sizeof *values * (size_t)(nt + 1));
  int64_t *nvalue = arena_alloc(a, sizeof *nvalue * (size_t)(nt + 1));
  int nvalues = 0;

  for (int i = 0; i < nt; i++) {
    int64_t *r = (int64_t *)abi_tensor(d, i);
    const Node *n = t[i].node;
    const Node *s = cg_buffer_node(n);
    bool persistent = t[i].kind == ABI_PARAM || t[i].kind == ABI_STATE;
    r[ABI_T_KIND] = t[i].kind;
    r[ABI_T_DTYPE] = n->dtype;
    r[ABI_T_NODE] = persistent ? n->id : s ? s->id : -1;
    r[ABI_T_RANK] = n->shape.rank;
    r[ABI_T_VALUES] = -1;
    r[ABI_T_NAME] = nnames;
    names[nnames++] = t[i].name;
    put_dims(r + ABI_T_DIM_N, r + ABI_T_DIM_SYM, &n->shape);
    if (!persistent) continue;
    r[ABI_T_INIT] = n->a.init.kind;
    r[ABI_T_INIT_A] = double_bits(n->a.init.a);
    r[ABI_T_INIT_B] = double_bits(n->a.init.b);
    r[ABI_T_FAN_IN] = fan_in(&n->shape);
    r[ABI_T_FAN_OUT] = fan_out(&n->shape);
    if (n->a.init.kind == INIT_VALUES) {
      values[nvalues] = n->a.values;
      nvalue[nvalues] = shape_static_count(&n->shape);
      r[ABI_T_VALUES] = nvalues++;
    }
  }
  d[ABI_H_SYM_NAME] = nnames;
  for (int k = 1; k <= g->nsym; k++) names[nnames++] = g->sym[k];

  for (int b = 0; b < nb; b++) {
    int64_t *r = (int64_t *)abi_buffer(d, b);
    const Node *n = pb[b].node;
    r[ABI_B_NODE] = n->id;
    r[ABI_B_BEGIN] = pb[b].begin;
    r[ABI_B_END] = pb[b].end;
    r[ABI_B_ESIZE] = (int64_t)dtype_size(n->dtype);
    r[ABI_B_RANK] = n->shape.rank;
    put_dims(r + ABI_B_DIM_N, r + ABI_B_DIM_SYM, &n->shape);
  }

  for (int s = 0, p = 0; s < tr.nsteps; s++) {
    const StepInfo *st = &tr.steps[s];
    int64_t *r = (int64_t *)abi_step(d, s);
    r[ABI_S_NAME] = nnames;
    names[nnames++] = st->name;
    r[ABI_S_LOSS] = st->loss ? tensor_of(t, nt, ABI_LOSS, st->loss) : -1;
    r[ABI_S_OPT_NAME] = nnames;
    names[nnames++] = st->opt;
    r[ABI_S_HYPER] = p;
    r[ABI_S_NHYPER] = st->nhyper;
    for (int k = 0; k < st->nhyper; k++, p++) {
      int64_t *h = (int64_t *)abi_hyper(d, p);
      h[ABI_P_NAME] = nnames;
      names[nnames++] = st->hyper_name[k];
      h[ABI_P_TENSOR] = tensor_of(t, nt, ABI_STATE, st->hyper[k]);
      GRADC_ASSERT(h[ABI_P_TENSOR] >= 0);
    }
  }

  int64_t *storage = (int64_t *)abi_storage(d);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *s = cg_buffer_node(g->nodes[i]);
    storage[i] = s ? s->id : -1;
  }
  *out = (Descriptor){.desc = d, .names = names, .nnames = nnames, .values = values, .nvalue = nvalue,
                      .nvalues = nvalues, .nsteps = tr.nsteps};
}
