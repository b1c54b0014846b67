#!/usr/bin/python3
"""What gradc costs where compute is nothing: the seeds' linear regression
(models/linear_regression.nn: y = w*x + b, 100 points, full batch, plain
SGD), in one run, 1 thread everywhere:

  1. a train step through the C API (bench/tiny_step.c: gradc_train_step
     on the bound batch, and with the batch copied in before each step);
  2. an epoch (here one step) through `gradc train`, output and history
     to files: the wall time of EPOCHS epochs less that of 10, so process
     start and compilation are not counted;
  3. the peers, in a process of their own with OPENBLAS_CORETYPE and
     OPENBLAS_L2_SIZE unset: PyTorch's loop (zero_grad, forward, MSE,
     backward, SGD step) and the seed's NumPy gradient descent
     (vectorised: the two gradients by hand, as S4's step_gradient).

Issue 21's targets: <= 1 us per step through the API, <= 2 us per epoch
through `gradc train`.  Medians of --repeats runs, with their range.

usage: /usr/bin/python3 bench/tiny_overhead.py [--repeats 3] [--epochs 1000000] [--steps 1000000]
(GRADC_BIN and GRADC_LIB default to build/ of the source tree.)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import cpu_name, print_blas_kernels, run_peer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = os.path.join(ROOT, "models", "linear_regression.nn")
LR = 1e-4


def points(path):
    """100 points of y = 1.477 x + 0.089 + noise (the course's line)."""
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 10, 100)
    y = 1.477 * x + 0.089 + rng.normal(0, 0.1, 100)
    np.savetxt(path, np.c_[x, y], delimiter=",", fmt="%.6f")


def peer(args):
    """PyTorch's and NumPy's microseconds per step: medians of 5 timings."""
    import numpy as np
    import torch
    torch.set_num_threads(1)
    data = np.loadtxt(args["data"], delimiter=",", dtype=np.float32)
    steps = args["steps"]
    x, y = torch.from_numpy(data[:, 0].copy()), torch.from_numpy(data[:, 1].copy())
    out = {}
    times = []
    for _ in range(5):
        w = torch.zeros((), requires_grad=True)
        b = torch.zeros((), requires_grad=True)
        opt = torch.optim.SGD([w, b], lr=LR)
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = ((w * x + b - y) ** 2).mean()
            loss.backward()
            opt.step()
        times.append((time.perf_counter() - t0) / steps * 1e6)
    out["torch_us"] = statistics.median(times)
    out["torch_loss"] = float(loss)
    xs, ys = data[:, 0], data[:, 1]
    times = []
    for _ in range(5):
        w = b = np.float32(0)
        t0 = time.perf_counter()
        for _ in range(steps):
            err = w * xs + b - ys
            w, b = w - LR * 2 * np.mean(err * xs), b - LR * 2 * np.mean(err)
        times.append((time.perf_counter() - t0) / steps * 1e6)
    out["numpy_us"] = statistics.median(times)
    out["torch"] = torch.__version__
    out["numpy"] = np.__version__
    print(json.dumps(out))


def cli_seconds(gradc, data, epochs, tmp):
    hist, log = os.path.join(tmp, "h.csv"), os.path.join(tmp, "out.txt")
    with open(log, "w") as f:
        t0 = time.perf_counter()
        subprocess.run([gradc, "train", MODEL, "--data", data, "--epochs", str(epochs), "--batch", "100",
                        "--threads", "1", "--no-test", "--no-cache", "--history", hist], stdout=f, check=True)
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1000000)
    ap.add_argument("--steps", type=int, default=1000000, help="API steps per timing")
    ap.add_argument("--peer-steps", type=int, default=20000)
    ap.add_argument("--peer")
    a = ap.parse_args()
    if a.peer:
        return peer(json.loads(a.peer))
    gradc = os.environ.get("GRADC_BIN", os.path.join(ROOT, "build", "gradc"))
    lib = os.environ.get("GRADC_LIB", os.path.join(ROOT, "build"))
    print_blas_kernels()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "points.csv")
        points(data)
        exe = os.path.join(tmp, "tiny_step")
        subprocess.run(["cc", "-O2", "-I", os.path.join(ROOT, "include"), os.path.join(HERE, "tiny_step.c"),
                        "-L", lib, "-lgradc", "-lgradc_runtime", "-Wl,-rpath," + lib, "-o", exe], check=True)
        api, fed, cli = [], [], []
        for _ in range(a.repeats):
            out = subprocess.run([exe, MODEL, data, str(a.steps)], capture_output=True, text=True,
                                 check=True).stdout
            v = dict(kv.split("=") for kv in out.split())
            api.append(float(v["step_us"]))
            fed.append(float(v["fed_step_us"]))
            base = cli_seconds(gradc, data, 10, tmp)
            cli.append((cli_seconds(gradc, data, a.epochs, tmp) - base) / (a.epochs - 10) * 1e6)
        p = [run_peer(os.path.abspath(__file__), data=data, steps=a.peer_steps) for _ in range(a.repeats)]
    torch_us = [r["torch_us"] for r in p]
    numpy_us = [r["numpy_us"] for r in p]

    def cell(v):
        return f"{statistics.median(v):.3f} us ({min(v):.3f}-{max(v):.3f})"

    print(f"linear regression, 100 points, full batch, 1 thread; {a.repeats} runs; CPU {cpu_name()}")
    print(f"  gradc API, step alone:            {cell(api)}   target <= 1 us")
    print(f"  gradc API, batch copied + step:   {cell(fed)}")
    print(f"  gradc train, per epoch:           {cell(cli)}   target <= 2 us")
    print(f"  PyTorch {p[0]['torch']} loop, per step: {cell(torch_us)}")
    print(f"  NumPy {p[0]['numpy']} by hand, per step: {cell(numpy_us)}")
    t, n = statistics.median(torch_us), statistics.median(numpy_us)
    print(f"ratios: PyTorch / gradc API step {t / statistics.median(api):.0f}x, "
          f"PyTorch / gradc train epoch {t / statistics.median(cli):.0f}x, "
          f"NumPy / gradc train epoch {n / statistics.median(cli):.1f}x")


if __name__ == "__main__":
    sys.exit(main())
