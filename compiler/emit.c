/*
 * emit.c - the AOT emitter: a model as an object file (or assembly, or
 * LLVM IR) for a target machine that need not be this one.
 *
 * Input: an optimized graph and the target (triple, CPU).  Output: one
 * module holding
 *
 *   - the step functions of codegen.c, as <prefix>__forward and
 *     <prefix>__train_step, hidden;
 *   - the model's descriptor (compiler.h, "emit.c, header.c, runtime/aot.c"):
 *     its named tensors with dtypes, shapes and initializers, the workspace
 *     buffers with their live ranges, each node's storage - what the
 *     support library needs to lay out memory exactly as plan.c does and to
 *     initialise exactly as init.c does - as private constants;
 *   - the public entry points <prefix>_<name> (aot_entries), each a
 *     one-line forward to the support library's gradc_aot_<name> with the
 *     descriptor as first argument.
 *
 * Linking that object with libgradc_aot.a (runtime/aot.c, layout.c,
 * init.c), OpenBLAS and libm gives a shared object that needs neither LLVM
 * nor gradc at run time; the CLI does that link (runtime/main.c).
 *
 * The default CPU is x86-64-v2 on x86-64 (SSE4.2, no AVX: any x86-64
 * machine from the last decade), "generic" elsewhere; --cpu native takes
 * this host's CPU name and features exactly as the JIT does, so that the
 * .so computes bit for bit what the JIT computes here.  Code generation runs
 * at LLVM's default level like the JIT's own (LLJIT), after the same
 * default<On> pipeline.
 */
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "llvm_internal.h"

const AotEntry aot_entries[] = {
    {"new", "p"},           {"free", "vp"},           {"init", "ipl"},
    {"bind", "iplp"},       {"forward", "ip"},        {"train_step", "ipp"},
    {"workspace_size", "ll"}, {"state_size", "l"},    {"checkpoint_size", "l"},
    {"get_state", "ippl"},  {"set_state", "ippl"},    {"save", "ipp"},
    {"load", "ipp"},        {"tensor_count", "i"},    {"tensor_info", "ipip"},
    {"data", "pppp"},       {"last_error", "pp"},     {"set_hyper", "ipppd"},
    {"get_hyper", "ipppp"}, {"bind_dim", "ippl"},
};
const int aot_nentries = (int)(sizeof aot_entries / sizeof *aot_entries);

int aot_tensors(const Graph *g, AotTensor *out) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *x = g->nodes[i];
    int kind = x->op == OP_INPUT ? ABI_INPUT : x->op == OP_PARAM ? ABI_PARAM : x->op == OP_STATE ? ABI_STATE : -1;
    if (kind >= 0) out[n++] = (AotTensor){x->name, kind, x};
  }
  for (int i = 0; i < g->noutputs; i++) out[n++] = (AotTensor){g->outputs[i].name, ABI_OUTPUT, g->outputs[i].node};
  for (int i = 0; i < g->nmetrics; i++) out[n++] = (AotTensor){g->metrics[i].name, ABI_METRIC, g->metrics[i].node};
  if (g->loss) out[n++] = (AotTensor){g->loss->name ? g->loss->name : "loss", ABI_LOSS, g->loss};
  return n;
}

typedef struct Emit {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMTypeRef i32, i64, ptr, f64, vd;
  const char *prefix;
} Emit;

static LLVMValueRef i64c(Emit *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

static LLVMValueRef dbits(Emit *e, double d) {
  int64_t v;
  memcpy(&v, &d, sizeof v);
  return i64c(e, v);
}

static LLVMValueRef private_global(Emit *e, LLVMTypeRef t, LLVMValueRef init, const char *name) {
  LLVMValueRef gv = LLVMAddGlobal(e->mod, t, name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  return gv;
}

static LLVMValueRef cstring(Emit *e, const char *s) {
  LLVMValueRef str = LLVMConstStringInContext(e->ctx, s, (unsigned)strlen(s), 0);
  return private_global(e, LLVMTypeOf(str), str, "name");
}

/* The descriptor and the AotModel constant that points to it and to the
 * step functions. */
static LLVMValueRef gen_descriptor(Emit *e, const Graph *g, LLVMValueRef fwd, LLVMValueRef step) {
  Arena *a = g->arena;
  AotTensor *t = arena_alloc(a, sizeof *t * (size_t)(g->nnodes + 1));
  int nt = aot_tensors(g, t);
  PlanBuffer *pb = arena_alloc(a, sizeof *pb * (size_t)(g->nnodes + 1));
  int nb = plan_buffers(g, pb);
  GRADC_ASSERT(nb >= 0);
  size_t total = AOT_H_SIZE + (size_t)nt * AOT_T_SIZE + (size_t)nb * AOT_B_SIZE + (size_t)g->nnodes;
  LLVMValueRef *d = arena_alloc(a, sizeof *d * total);
  /* names: the model, the tensors, the symbolic dims, the optimizer and
   * its run-time hyperparameters */
  const OptInfo *info = &opt_info[g->opt.kind];
  size_t nnames = (size_t)nt + 1 + (size_t)g->nsym + 1 + (size_t)info->nhyper;
  LLVMValueRef *names = arena_alloc(a, sizeof *names * nnames);
  LLVMValueRef *values = arena_alloc(a, sizeof *values * (size_t)(nt + 1));
  int nvalues = 0;
  for (size_t k = 0; k < total; k++) d[k] = i64c(e, 0);
  d[AOT_H_VERSION] = i64c(e, AOT_VERSION);
  d[AOT_H_NNODES] = i64c(e, g->nnodes);
  d[AOT_H_NSYM] = i64c(e, g->nsym);
  d[AOT_H_REUSE] = i64c(e, g->reuse_memory);
  d[AOT_H_NTENSORS] = i64c(e, nt);
  d[AOT_H_NBUFFERS] = i64c(e, nb);
  d[AOT_H_TRAIN] = i64c(e, g->has_train);
  names[0] = cstring(e, g->model_name);
  int nname = nt + 1;
  d[AOT_H_SYM_NAME] = i64c(e, nname);
  for (int k = 1; k <= g->nsym; k++) names[nname++] = cstring(e, g->sym[k]);
  d[AOT_H_OPT_NAME] = i64c(e, nname);
  names[nname++] = cstring(e, info->name);
  /* As model.c's find_hyper lists them: the table's names that are state
   * tensors optimizer/NAME, f64 scalars. */
  d[AOT_H_HYPER_NAME] = i64c(e, nname);
  int nhyper = 0;
  for (int k = 0; g->has_train && k < info->nhyper; k++)
    for (int i = 0; i < nt; i++) {
      const Node *n = t[i].node;
      if (t[i].kind == ABI_STATE && !strncmp(t[i].name, "optimizer/", 10) && !strcmp(t[i].name + 10, info->hyper[k].name) &&
          n->dtype == DT_F64 && n->shape.rank == 0) {
        names[nname++] = cstring(e, info->hyper[k].name);
        nhyper++;
        break;
      }
    }
  d[AOT_H_NHYPER] = i64c(e, nhyper);
  for (int i = 0; i < nt; i++) {
    LLVMValueRef *r = d + AOT_H_SIZE + (size_t)i * AOT_T_SIZE;
    const Node *n = t[i].node;
    bool persistent = t[i].kind == ABI_PARAM || t[i].kind == ABI_STATE;
    const Node *s = cg_buffer_node(n);
    r[AOT_T_KIND] = i64c(e, t[i].kind);
    r[AOT_T_DTYPE] = i64c(e, n->dtype);
    r[AOT_T_NODE] = i64c(e, s ? s->id : -1);
    r[AOT_T_RANK] = i64c(e, n->shape.rank);
    r[AOT_T_VALUES] = i64c(e, -1);
    if (persistent) {
      r[AOT_T_NODE] = i64c(e, n->id);
      r[AOT_T_INIT] = i64c(e, n->a.init.kind);
      r[AOT_T_INIT_A] = dbits(e, n->a.init.a);
      r[AOT_T_INIT_B] = dbits(e, n->a.init.b);
      r[AOT_T_FAN_IN] = i64c(e, fan_in(&n->shape));
      r[AOT_T_FAN_OUT] = i64c(e, fan_out(&n->shape));
      if (n->a.init.kind == INIT_VALUES) {
        int64_t c = shape_static_count(&n->shape);
        LLVMValueRef *v = arena_alloc(a, sizeof *v * (size_t)(c ? c : 1));
        for (int64_t k = 0; k < c; k++) v[k] = LLVMConstReal(e->f64, n->a.values[k]);
        LLVMTypeRef at = LLVMArrayType2(e->f64, (uint64_t)c);
        values[nvalues] = private_global(e, at, LLVMConstArray2(e->f64, v, (uint64_t)c), "init");
        r[AOT_T_VALUES] = i64c(e, nvalues++);
      }
    }
    r[AOT_T_NAME] = i64c(e, i + 1);
    names[i + 1] = cstring(e, t[i].name);
    for (int k = 0; k < n->shape.rank; k++) {
      r[AOT_T_DIM_N + k] = i64c(e, n->shape.d[k].n);
      r[AOT_T_DIM_SYM + k] = i64c(e, n->shape.d[k].sym);
    }
  }
  for (int b = 0; b < nb; b++) {
    LLVMValueRef *r = d + AOT_H_SIZE + (size_t)nt * AOT_T_SIZE + (size_t)b * AOT_B_SIZE;
    const Node *n = pb[b].node;
    r[AOT_B_NODE] = i64c(e, n->id);
    r[AOT_B_BEGIN] = i64c(e, pb[b].begin);
    r[AOT_B_END] = i64c(e, pb[b].end);
    r[AOT_B_ESIZE] = i64c(e, (int64_t)dtype_size(n->dtype));
    r[AOT_B_RANK] = i64c(e, n->shape.rank);
    for (int k = 0; k < n->shape.rank; k++) {
      r[AOT_B_DIM_N + k] = i64c(e, n->shape.d[k].n);
      r[AOT_B_DIM_SYM + k] = i64c(e, n->shape.d[k].sym);
    }
  }
  LLVMValueRef *nodes = d + AOT_H_SIZE + (size_t)nt * AOT_T_SIZE + (size_t)nb * AOT_B_SIZE;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *s = cg_buffer_node(g->nodes[i]);
    nodes[i] = i64c(e, s ? s->id : -1);
  }
  LLVMValueRef desc = private_global(e, LLVMArrayType2(e->i64, total), LLVMConstArray2(e->i64, d, total), "desc");
  LLVMValueRef nv = private_global(e, LLVMArrayType2(e->ptr, (uint64_t)nname),
                                   LLVMConstArray2(e->ptr, names, (uint64_t)nname), "names");
  LLVMValueRef vv = private_global(e, LLVMArrayType2(e->ptr, (uint64_t)nvalues),
                                   LLVMConstArray2(e->ptr, values, (uint64_t)nvalues), "values");
  LLVMValueRef fields[5] = {desc, nv, vv, fwd, step};
  LLVMValueRef model = LLVMConstStructInContext(e->ctx, fields, 5, 0);
  return private_global(e, LLVMTypeOf(model), model, "model");
}

static LLVMTypeRef sig_type(Emit *e, char c) {
  switch (c) {
  case 'v': return e->vd;
  case 'p': return e->ptr;
  case 'i': return e->i32;
  case 'l': return e->i64;
  case 'd': return e->f64;
  default: break;
  }
  GRADC_ASSERT(!"bad entry signature");
  return NULL;
}

/* <prefix>_<name>(args) { return gradc_aot_<name>(&model, args); } */
static void gen_entry(Emit *e, const AotEntry *en, LLVMValueRef model) {
  int np = (int)strlen(en->sig) - 1;
  LLVMTypeRef params[8], inner[9];
  inner[0] = e->ptr;
  for (int k = 0; k < np; k++) params[k] = inner[k + 1] = sig_type(e, en->sig[k + 1]);
  LLVMTypeRef ret = sig_type(e, en->sig[0]);
  LLVMTypeRef outer_t = LLVMFunctionType(ret, params, (unsigned)np, 0);
  LLVMTypeRef inner_t = LLVMFunctionType(ret, inner, (unsigned)np + 1, 0);
  char name[300];
  snprintf(name, sizeof name, "gradc_aot_%s", en->name);
  LLVMValueRef callee = LLVMAddFunction(e->mod, name, inner_t);
  snprintf(name, sizeof name, "%s_%s", e->prefix, en->name);
  LLVMValueRef fn = LLVMAddFunction(e->mod, name, outer_t);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(e->ctx, fn, "entry"));
  LLVMValueRef args[9] = {model};
  for (int k = 0; k < np; k++) args[k + 1] = LLVMGetParam(fn, (unsigned)k);
  LLVMValueRef r = LLVMBuildCall2(b, inner_t, callee, args, (unsigned)np + 1, "");
  if (en->sig[0] == 'v') LLVMBuildRetVoid(b);
  else LLVMBuildRet(b, r);
  LLVMDisposeBuilder(b);
}

static bool is_x86_64(const char *triple) { return !strncmp(triple, "x86_64", 6); }

/* LLVM takes any CPU name, says "'x' is not a recognized processor" on
 * stderr and goes on - for x86-64 into a fatal error (no 64-bit feature)
 * at code generation.  The C API has no way to ask whether a name is
 * known, so the target machine for a user-given CPU is made with stderr
 * captured, and that message becomes an error; anything else LLVM says
 * is passed on. */
static LLVMTargetMachineRef checked_machine(const char *triple, const char *cpu, const char *feat, bool user_cpu,
                                           char *err, size_t errlen) {
  FILE *cap = user_cpu ? tmpfile() : NULL;
  int saved = cap ? dup(2) : -1;
  if (saved >= 0) {
    fflush(stderr);
    dup2(fileno(cap), 2);
  }
  LLVMTargetMachineRef tm =
      llvm_target_machine(triple, cpu, feat, LLVMCodeGenLevelDefault, LLVMCodeModelDefault, err, errlen);
  if (saved >= 0) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char said[2048];
    size_t n = 0;
    if (fseek(cap, 0, SEEK_SET) == 0) n = fread(said, 1, sizeof said - 1, cap);
    said[n] = 0;
    if (tm && strstr(said, "not a recognized processor")) {
      snprintf(err, errlen, "unknown CPU '%s' for target '%s' (x86-64: x86-64, x86-64-v2, x86-64-v3, "
               "x86-64-v4, skylake, znver3, ...; or native)", cpu, triple);
      LLVMDisposeTargetMachine(tm);
      tm = NULL;
    } else {
      fputs(said, stderr);
    }
  }
  if (cap) fclose(cap);
  return tm;
}

bool emit_file(const Graph *g, EmitOptions *o, const char *path, char *err, size_t errlen) {
  char *host = LLVMGetDefaultTargetTriple();
  char *triple = LLVMNormalizeTargetTriple(o->triple ? o->triple : host);
  size_t arch = strcspn(host, "-");
  o->host_arch = !strncmp(triple, host, arch) && triple[arch] == '-';
  LLVMDisposeMessage(host);
  bool native = o->cpu && !strcmp(o->cpu, "native");
  char *cpu = native ? LLVMGetHostCPUName() : NULL, *feat = native ? LLVMGetHostCPUFeatures() : NULL;
  const char *cpu_name = native ? cpu : o->cpu ? o->cpu : is_x86_64(triple) ? "x86-64-v2" : "generic";
  snprintf(o->triple_used, sizeof o->triple_used, "%s", triple);
  snprintf(o->cpu_used, sizeof o->cpu_used, "%s", cpu_name);
  LLVMTargetMachineRef tm = checked_machine(triple, cpu_name, feat ? feat : "", !native && o->cpu, err, errlen);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  LLVMDisposeMessage(triple);
  if (!tm) return false;
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  unsigned psize = LLVMPointerSize(dl);
  LLVMDisposeTargetData(dl);
  if (psize != 8) {
    snprintf(err, errlen, "target '%s' has %u-byte pointers; gradc compiles for 64-bit machines only",
             o->triple_used, psize);
    LLVMDisposeTargetMachine(tm);
    return false;
  }

  Emit ev = {.ctx = LLVMContextCreate(), .prefix = o->prefix}, *e = &ev;
  e->i32 = LLVMInt32TypeInContext(e->ctx);
  e->i64 = LLVMInt64TypeInContext(e->ctx);
  e->f64 = LLVMDoubleTypeInContext(e->ctx);
  e->ptr = LLVMPointerTypeInContext(e->ctx, 0);
  e->vd = LLVMVoidTypeInContext(e->ctx);
  char step_prefix[200];
  snprintf(step_prefix, sizeof step_prefix, "%s__", o->prefix);
  e->mod = cg_module(e->ctx, g, step_prefix, false, false);
  char name[256];
  snprintf(name, sizeof name, "%s__forward", o->prefix);
  LLVMValueRef fwd = LLVMGetNamedFunction(e->mod, name);
  snprintf(name, sizeof name, "%s__train_step", o->prefix);
  LLVMValueRef step = LLVMGetNamedFunction(e->mod, name);
  GRADC_ASSERT(fwd && step);
  /* Hidden: a program may hold several models, and a static link of two
   * model objects must not see two definitions. */
  LLVMSetVisibility(fwd, LLVMHiddenVisibility);
  LLVMSetVisibility(step, LLVMHiddenVisibility);
  LLVMValueRef model = gen_descriptor(e, g, fwd, step);
  for (int i = 0; i < aot_nentries; i++) gen_entry(e, &aot_entries[i], model);

  int opt = o->opt_level < 0 ? 0 : o->opt_level > 3 ? 3 : o->opt_level;
  bool ok = llvm_optimize(e->mod, tm, opt, NULL, err, errlen);
  if (ok) {
    char *msg = NULL;
    /* The C API takes a non-const file name. */
    char *file = strdup(path);
    bool failed = !file;
    if (failed) snprintf(err, errlen, "out of memory");
    else if (o->kind == EMIT_LLVM) failed = LLVMPrintModuleToFile(e->mod, file, &msg);
    else failed = LLVMTargetMachineEmitToFile(tm, e->mod, file,
                                              o->kind == EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile, &msg);
    if (failed && msg) snprintf(err, errlen, "cannot write '%s': %s", path, msg);
    LLVMDisposeMessage(msg);
    free(file);
    ok = !failed;
  }
  LLVMDisposeModule(e->mod);
  LLVMContextDispose(e->ctx);
  LLVMDisposeTargetMachine(tm);
  return ok;
}
