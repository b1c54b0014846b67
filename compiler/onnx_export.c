/*
 * onnx_export.c - a parsed graph as an ONNX ModelProto (opset 17).
 */
#include <stdio.h>

#include "onnx.h"
#include "onnx.pb-c.h"

bool onnx_export(const Graph *g, OnnxValueFn *value, void *ctx, const char *path, char *err, size_t errlen) {
  (void)g, (void)value, (void)ctx, (void)path;
  snprintf(err, errlen, "export is not written yet");
  return false;
}
