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

#endif
