/*
 * jit.c - LLVM module -> native code in this process, through ORC LLJIT.
 *
 * The module is optimised with LLVM's new pass manager at the requested
 * level for the host CPU (its name and features, so AVX2/AVX-512 are used
 * where present), then handed to an LLJIT whose target machine is detected
 * from the same host.  Calls the module makes to the outside (gradc_sgemm,
 * libm) resolve to the addresses the runtime passes in, then to symbols of
 * the process.
 *
 * LLVM's C API drifts between versions; every call of it that the JIT needs
 * is here (LLVM 19).
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler.h"
#include "llvm_internal.h"

struct Jit {
  LLVMOrcLLJITRef jit;
  StepFn *entry[CG_ENTRIES];
  char *ir_before, *ir_after, *asm_text;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static bool take_error(LLVMErrorRef e, char *err, size_t errlen, const char *what) {
  if (!e) return false;
  char *m = LLVMGetErrorMessage(e);
  snprintf(err, errlen, "%s: %s", what, m);
  LLVMDisposeErrorMessage(m);
  return true;
}

static char *dup_llvm(char *s) {
  char *r = strdup(s ? s : "");
  LLVMDisposeMessage(s);
  return r;
}

/* Every target this LLVM was built with: the AOT emitter cross-compiles. */
static void initialise_targets(void) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
}

LLVMTargetMachineRef llvm_target_machine(const char *triple, const char *cpu, const char *features,
                                         LLVMCodeGenOptLevel level, LLVMCodeModel model, char *err,
                                         size_t errlen) {
  /* Once per process, whichever thread compiles first. */
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, initialise_targets);
  LLVMTargetRef t;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
    snprintf(err, errlen, "no LLVM target for '%s': %s", triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, cpu, features, level, LLVMRelocPIC, model);
  if (!tm) snprintf(err, errlen, "LLVM could not create a target machine for '%s'", triple);
  return tm;
}

static LLVMTargetMachineRef host_machine(int opt, char *err, size_t errlen) {
  static const LLVMCodeGenOptLevel levels[] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                               LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
  LLVMTargetMachineRef tm =
      llvm_target_machine(triple, cpu, feat, levels[opt], LLVMCodeModelJITDefault, err, errlen);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  return tm;
}

bool llvm_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char **ir_before, char *err,
                   size_t errlen) {
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, dl);
  LLVMDisposeTargetData(dl);
  char *verr = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &verr)) {
    /* Our bug, not the user's: say so plainly. */
    snprintf(err, errlen, "internal error: invalid LLVM IR generated: %.600s", verr ? verr : "");
    LLVMDisposeMessage(verr);
    return false;
  }
  LLVMDisposeMessage(verr);
  if (ir_before) *ir_before = dup_llvm(LLVMPrintModuleToString(mod));
  LLVMPassBuilderOptionsRef pbo = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(pbo, opt >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(pbo, opt >= 2);
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", opt);
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, pbo);
  LLVMDisposePassBuilderOptions(pbo);
  return !take_error(e, err, errlen, "LLVM optimisation failed");
}

Jit *jit_compile(const Graph *g, const JitOptions *o, char *err, size_t errlen) {
  Jit *j = calloc(1, sizeof *j);
  if (!j) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  double t0 = now_ms();
  int opt = o->opt_level < 0 ? 0 : o->opt_level > 3 ? 3 : o->opt_level;
  LLVMTargetMachineRef tm = host_machine(opt, err, errlen);
  if (!tm) {
    free(j);
    return NULL;
  }
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsc);
  LLVMModuleRef mod = cg_module(ctx, g, "", o->profile, o->parallel);
  bool failed = !llvm_optimize(mod, tm, opt, o->keep_ir ? &j->ir_before : NULL, err, errlen);
  if (!failed && o->keep_ir) j->ir_after = dup_llvm(LLVMPrintModuleToString(mod));
  if (!failed && o->keep_asm) {
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &msg, &buf)) {
      j->asm_text = strndup(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
      LLVMDisposeMemoryBuffer(buf);
    }
    LLVMDisposeMessage(msg);
  }
  LLVMDisposeTargetMachine(tm);
  if (failed) {
    LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    jit_free(j);
    return NULL;
  }

  LLVMOrcJITTargetMachineBuilderRef jtmb;
  LLVMErrorRef e;
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  e = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
  if (!take_error(e, err, errlen, "LLVM cannot target this machine")) {
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
    e = LLVMOrcCreateLLJIT(&j->jit, builder);
    failed = take_error(e, err, errlen, "LLVM JIT creation failed");
  } else {
    LLVMOrcDisposeLLJITBuilder(builder);
    failed = true;
  }
  if (failed) {
    LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    jit_free(j);
    return NULL;
  }
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  if (o->nsymbols) {
    LLVMOrcCSymbolMapPair *pairs = calloc((size_t)o->nsymbols, sizeof *pairs);
    for (int i = 0; pairs && i < o->nsymbols; i++) {
      pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->jit, o->symbols[i].name);
      pairs[i].Sym.Address = (LLVMOrcExecutorAddress)o->symbols[i].addr;
      pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    }
    if (pairs) {
      e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, (size_t)o->nsymbols));
      free(pairs);
      failed = take_error(e, err, errlen, "LLVM JIT symbol definition failed");
    }
  }
  LLVMOrcDefinitionGeneratorRef gen;
  if (!failed) {
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit),
                                                              NULL, NULL);
    if (!take_error(e, err, errlen, "LLVM JIT symbol search failed")) LLVMOrcJITDylibAddGenerator(jd, gen);
    else failed = true;
  }
  if (!failed) {
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    mod = NULL;
    e = LLVMOrcLLJITAddLLVMIRModule(j->jit, jd, tsm);
    if (take_error(e, err, errlen, "LLVM JIT could not add the module")) {
      LLVMOrcDisposeThreadSafeModule(tsm);
      failed = true;
    }
  }
  if (mod) LLVMDisposeModule(mod);
  LLVMOrcDisposeThreadSafeContext(tsc);    /* the module keeps what it needs */
  for (int i = 0; i < CG_ENTRIES && !failed; i++) {
    char name[64], what[100];
    LLVMOrcExecutorAddress at = 0;
    cg_entry_name(name, sizeof name, "", i);
    snprintf(what, sizeof what, "LLVM JIT could not compile %s", name);
    failed = take_error(LLVMOrcLLJITLookup(j->jit, &at, name), err, errlen, what);
    j->entry[i] = (StepFn *)(uintptr_t)at;
  }
  if (failed) {
    jit_free(j);
    return NULL;
  }
  (void)t0;
  return j;
}

StepFn *jit_entry(const Jit *j, int entry) { return j->entry[entry]; }
const char *jit_ir(const Jit *j, bool optimised) { return optimised ? j->ir_after : j->ir_before; }
const char *jit_asm(const Jit *j) { return j->asm_text; }

void jit_free(Jit *j) {
  if (!j) return;
  if (j->jit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
    if (e) LLVMConsumeError(e);
  }
  free(j->ir_before);
  free(j->ir_after);
  free(j->asm_text);
  free(j);
}
