/*
 * emit.c - the AOT emitter: a model as an object file (or assembly, or
 * LLVM IR) for a target machine that need not be this one.
 *
 * Input: an optimized graph and the target (triple, CPU).  Output: one
 * module holding
 *
 *   - the functions of codegen.c, as <prefix>__forward and one
 *     <prefix>__step_NAME per train step, hidden;
 *   - the model's descriptor (runtime/abi.h), the numbers descriptor.c
 *     computes for the JIT too: its named tensors with dtypes, shapes and
 *     initializers, the workspace buffers with their live ranges, each
 *     node's storage, the train steps with their hyperparameters, and the
 *     array of entry points - what a model instance (runtime/instance.c)
 *     needs to lay out memory exactly as the JIT's does, to initialise
 *     exactly as init.c does and to run the steps - as private constants;
 *   - the public entry points <prefix>_<name> (abi.h's GRADC_ABI_ENTRIES),
 *     each a one-line forward to the support library's gradc_aot_<name>
 *     with the descriptor as first argument, and per train step
 *     <prefix>_step_NAME(m, &loss), gradc_aot_step with its name.
 *
 * Linking that object with libgradc_aot.a (runtime/aot.c, instance.c and
 * what they use), OpenBLAS and libm gives a shared object that needs
 * neither LLVM nor gradc at run time; the CLI does that link
 * (cli/link.c).
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

typedef struct Emit {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMTypeRef i32, i64, ptr, f64, vd;
  const char *prefix;
} Emit;

static LLVMValueRef i64c(Emit *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

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

/* The descriptor (descriptor.c, the JIT's numbers) as constants, and the
 * AbiModel constant that points to it, its strings and values, and the
 * entry points fns[0] forward, fns[1 + s] step s. */
static LLVMValueRef gen_descriptor(Emit *e, const Graph *g, LLVMValueRef *entry) {
  Arena *a = g->arena;
  Descriptor dd;
  desc_build(g, &dd);
  size_t total = abi_size(dd.desc);
  LLVMValueRef *d = arena_alloc(a, sizeof *d * total);
  for (size_t k = 0; k < total; k++) d[k] = i64c(e, dd.desc[k]);
  LLVMValueRef *names = arena_alloc(a, sizeof *names * (size_t)dd.nnames);
  for (int k = 0; k < dd.nnames; k++) names[k] = cstring(e, dd.names[k]);
  LLVMValueRef *values = arena_alloc(a, sizeof *values * (size_t)(dd.nvalues + 1));
  for (int k = 0; k < dd.nvalues; k++) {
    int64_t c = dd.nvalue[k];
    LLVMValueRef *v = arena_alloc(a, sizeof *v * (size_t)(c ? c : 1));
    for (int64_t x = 0; x < c; x++) v[x] = LLVMConstReal(e->f64, dd.values[k][x]);
    values[k] = private_global(e, LLVMArrayType2(e->f64, (uint64_t)c), LLVMConstArray2(e->f64, v, (uint64_t)c), "init");
  }
  GRADC_ASSERT(1 + dd.nsteps == graph_nfunctions(g));
  LLVMValueRef desc = private_global(e, LLVMArrayType2(e->i64, total), LLVMConstArray2(e->i64, d, total), "desc");
  LLVMValueRef nv = private_global(e, LLVMArrayType2(e->ptr, (uint64_t)dd.nnames),
                                   LLVMConstArray2(e->ptr, names, (uint64_t)dd.nnames), "names");
  LLVMValueRef vv = private_global(e, LLVMArrayType2(e->ptr, (uint64_t)dd.nvalues),
                                   LLVMConstArray2(e->ptr, values, (uint64_t)dd.nvalues), "values");
  LLVMValueRef fv = private_global(e, LLVMArrayType2(e->ptr, (uint64_t)(1 + dd.nsteps)),
                                   LLVMConstArray2(e->ptr, entry, (uint64_t)(1 + dd.nsteps)), "fns");
  LLVMValueRef fields[4] = {desc, nv, vv, fv};
  LLVMValueRef model = LLVMConstStructInContext(e->ctx, fields, 4, 0);
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

/* <prefix>_<name>(args) { return gradc_aot_<name>(&model, args); }, the
 * signature sig as abi.h's GRADC_ABI_ENTRIES spells it. */
static void gen_entry(Emit *e, const char *entry, const char *sig, LLVMValueRef model) {
  int np = (int)strlen(sig) - 1;
  LLVMTypeRef params[8], inner[9];
  inner[0] = e->ptr;
  for (int k = 0; k < np; k++) params[k] = inner[k + 1] = sig_type(e, sig[k + 1]);
  LLVMTypeRef ret = sig_type(e, sig[0]);
  LLVMTypeRef outer_t = LLVMFunctionType(ret, params, (unsigned)np, 0);
  LLVMTypeRef inner_t = LLVMFunctionType(ret, inner, (unsigned)np + 1, 0);
  char name[300];
  snprintf(name, sizeof name, "gradc_aot_%s", entry);
  LLVMValueRef callee = LLVMAddFunction(e->mod, name, inner_t);
  snprintf(name, sizeof name, "%s_%s", e->prefix, entry);
  LLVMValueRef fn = LLVMAddFunction(e->mod, name, outer_t);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(e->ctx, fn, "entry"));
  LLVMValueRef args[9] = {model};
  for (int k = 0; k < np; k++) args[k + 1] = LLVMGetParam(fn, (unsigned)k);
  LLVMValueRef r = LLVMBuildCall2(b, inner_t, callee, args, (unsigned)np + 1, "");
  if (sig[0] == 'v') LLVMBuildRetVoid(b);
  else LLVMBuildRet(b, r);
  LLVMDisposeBuilder(b);
}

/* int <prefix>_step_NAME(void *m, double *loss)
 *   { return gradc_aot_step(&model, m, "NAME", loss); } */
static void gen_step_entry(Emit *e, const char *step, LLVMValueRef model) {
  LLVMTypeRef outer[2] = {e->ptr, e->ptr}, inner[4] = {e->ptr, e->ptr, e->ptr, e->ptr};
  LLVMTypeRef outer_t = LLVMFunctionType(e->i32, outer, 2, 0);
  LLVMTypeRef inner_t = LLVMFunctionType(e->i32, inner, 4, 0);
  LLVMValueRef callee = LLVMGetNamedFunction(e->mod, "gradc_aot_step");
  if (!callee) callee = LLVMAddFunction(e->mod, "gradc_aot_step", inner_t);
  char name[300];
  snprintf(name, sizeof name, "%s_step_%s", e->prefix, step);
  LLVMValueRef fn = LLVMAddFunction(e->mod, name, outer_t);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(e->ctx, fn, "entry"));
  LLVMValueRef args[4] = {model, LLVMGetParam(fn, 0), cstring(e, step), LLVMGetParam(fn, 1)};
  LLVMBuildRet(b, LLVMBuildCall2(b, inner_t, callee, args, 4, ""));
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
  double t = time_now_ms();
  e->mod = cg_module(e->ctx, g, step_prefix, false, false);
  int nfns = graph_nfunctions(g);
  LLVMValueRef *entry = arena_alloc(g->arena, sizeof *entry * (size_t)nfns);
  for (int i = 0; i < nfns; i++) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", step_prefix, cg_function_name(g, i));
    entry[i] = LLVMGetNamedFunction(e->mod, name);
    GRADC_ASSERT(entry[i]);
    /* Hidden: a program may hold several models, and a static link of two
     * model objects must not see two definitions. */
    LLVMSetVisibility(entry[i], LLVMHiddenVisibility);
  }
  LLVMValueRef model = gen_descriptor(e, g, entry);
#define X(name, sig) gen_entry(e, #name, sig, model);
  GRADC_ABI_ENTRIES(X)
#undef X
  for (int s = 0; s < g->nsteps; s++) gen_step_entry(e, g->steps[s].name, model);

  time_add(o->times, "IR generation (codegen and descriptor)", t);
  int opt = o->opt_level < 0 ? 0 : o->opt_level > 3 ? 3 : o->opt_level;
  bool ok = llvm_optimize(e->mod, tm, opt, NULL, o->times, err, errlen);
  t = time_now_ms();
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
    time_add(o->times, o->kind == EMIT_LLVM ? "writing the IR" : "LLVM machine code generation (to the file)", t);
  }
  LLVMDisposeModule(e->mod);
  LLVMContextDispose(e->ctx);
  LLVMDisposeTargetMachine(tm);
  return ok;
}
