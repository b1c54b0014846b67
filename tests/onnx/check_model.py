#!/usr/bin/python3
"""check_model.py F.onnx: onnx.checker with full shape inference, and the
opset and the names of the inputs, outputs and initializers."""
import sys

import onnx

m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
print("opset", [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0])
print("inputs", " ".join(i.name for i in m.graph.input))
print("outputs", " ".join(o.name for o in m.graph.output))
print("initializers", " ".join(sorted(t.name for t in m.graph.initializer)))
