/*
 * rterror.c - the runtime's error values: rt_fail, which every runtime
 * function uses to record what went wrong, and the names of the statuses.
 *
 * The numbers of the statuses are gradc.h's; a shared object returns some
 * of them under the names abi.h gives them (GRADC_AOT_ERR_IO, ...), and
 * the assertions below keep the two the same.
 *
 * Errors are values (STYLE): a function formats one complete sentence into
 * the caller's RtError and returns the status, and the API or the CLI
 * decides what to do with it.  Nothing here prints or exits.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"

/* gradc.h's statuses and the .so header's (abi.h's rows, which header.c
 * prints) are one set of numbers; gradc.h cannot include abi.h, so the
 * numbers are held together here. */
#define X(id, value, what) _Static_assert(ABI_##id == (int)GRADC_##id, "abi.h's status " #id " is gradc.h's");
GRADC_ABI_STATUS(X)
#undef X

gradc_status rt_fail(RtError *e, gradc_status status, const char *fmt, ...) {
  if (!e) return status;
  /* Formatted into a local buffer first, so that a caller may pass its own
   * e->msg as an argument ("epoch 3: %s", e->msg) without the overlapping
   * vsnprintf that C leaves undefined. */
  char buf[sizeof e->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  memcpy(e->msg, buf, sizeof buf);
  return status;
}

const char *gradc_status_str(gradc_status s) {
  /* A switch rather than a table indexed by s: the compiler's -Wswitch
   * then names any status added to gradc.h without a name here. */
  switch (s) {
  case GRADC_OK: return "ok";
  case GRADC_ERR_MODEL: return "error in the model";
  case GRADC_ERR_IO: return "input/output error";
  case GRADC_ERR_DATA: return "bad data";
  case GRADC_ERR_CHECKPOINT: return "bad checkpoint";
  case GRADC_ERR_SHAPE: return "shape mismatch";
  case GRADC_ERR_NOMEM: return "out of memory";
  case GRADC_ERR_ARG: return "bad argument";
  case GRADC_ERR_JIT: return "JIT compilation failed";
  case GRADC_ERR_NUMERIC: return "non-finite number";
  case GRADC_STATUS_COUNT: break;
  }
  return "unknown status";
}
