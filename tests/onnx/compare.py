#!/usr/bin/python3
"""compare.py what A B TOL: exit 0 when gradc's numbers A equal PyTorch's B.

  out   A and B raw float32 files: |a - b| <= TOL * max|b| for every element
        (relative to the output's scale: a logit near 0 has no relative
        error of its own worth the name)
  loss  A and B text files of one loss a line: |a - b| <= TOL * |b| each
"""
import sys

import numpy as np

what, a, b, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if what == "out":
    x, y = np.fromfile(a, np.float32), np.fromfile(b, np.float32)
    scale = np.max(np.abs(y))
else:
    x, y = np.loadtxt(a, ndmin=1), np.loadtxt(b, ndmin=1)
    scale = np.abs(y)
if x.shape != y.shape:
    sys.exit(f"{a} has {x.shape} values, {b} has {y.shape}")
err = np.abs(x - y) / np.maximum(scale, 1e-30)
print(f"max relative difference {err.max():.3g} (tolerance {tol:g})")
sys.exit(0 if err.max() <= tol else 1)
