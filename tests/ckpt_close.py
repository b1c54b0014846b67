#!/usr/bin/python3
"""Are two gradc checkpoints equal to a tolerance?  Every tensor of one must
be in the other with the same dtype and shape, and every element within
atol + rtol * |a| (checkpoints read by bench/ckpt_diff.py's reader).

usage: tests/ckpt_close.py A.ckpt B.ckpt [RTOL [ATOL]]   (exit 0: close; 1: not,
with the worst element of each tensor that is not)
"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from ckpt_diff import read, values  # noqa: E402


def main():
    a_path, b_path = sys.argv[1], sys.argv[2]
    rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
    atol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-6
    _, _, order, a = read(a_path)
    _, _, _, b = read(b_path)
    bad = 0
    if set(a) != set(b):
        print(f"tensors differ: only in {a_path}: {sorted(set(a) - set(b))}, only in {b_path}: {sorted(set(b) - set(a))}")
        return 1
    for name in order:
        (da, sa, xa), (db, sb, xb) = a[name], b[name]
        if (da, sa) != (db, sb):
            print(f"{name}: dtype/shape {da}{sa} vs {db}{sb}")
            bad += 1
            continue
        va, vb = values(da, xa), values(db, xb)
        worst = max(((abs(x - y) - atol - rtol * abs(x), i, x, y) for i, (x, y) in enumerate(zip(va, vb))),
                    default=(-1, 0, 0, 0))
        if worst[0] > 0:
            print(f"{name}[{worst[1]}]: {worst[2]!r} vs {worst[3]!r} (beyond rtol {rtol}, atol {atol})")
            bad += 1
    return 1 if bad else 0


sys.exit(main())
