/*
 * llvm_internal.h - what codegen.c hands jit.c (and the AOT emitter): the
 * only declarations that mention LLVM types.  Nothing outside those files
 * includes it.
 */
#ifndef GRADC_LLVM_INTERNAL_H
#define GRADC_LLVM_INTERNAL_H

#include <llvm-c/Core.h>

#include "compiler.h"

/* One module with <prefix>forward and <prefix>train_step (see codegen.c). */
LLVMModuleRef cg_module(LLVMContextRef ctx, const Graph *g, const char *prefix);

/* jit.c, shared with the AOT emitter (emit.c). */
#include <llvm-c/TargetMachine.h>
/* A position-independent target machine; every target LLVM was built with
 * is registered on first use.  NULL after writing the reason into err. */
LLVMTargetMachineRef llvm_target_machine(const char *triple, const char *cpu, const char *features,
                                         LLVMCodeGenOptLevel level, LLVMCodeModel model, char *err,
                                         size_t errlen);
/* Gives mod tm's triple and data layout, verifies it and runs LLVM's
 * default<O{opt}> pipeline; *ir_before (if not NULL) gets the IR before
 * the pipeline (malloc'd).  False after writing the reason into err. */
bool llvm_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char **ir_before, char *err,
                   size_t errlen);

#endif
