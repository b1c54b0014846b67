#!/usr/bin/python3
"""What driving gradc from Python costs (python/gradc), in one run:

  1. an epoch of the DLwP MLP (784-512-10, RMSprop, batch 128) on
     Fashion-MNIST through m.fit against `gradc train`'s epoch (its history
     CSV's seconds: the training loop alone, as fit's time is), same
     threads, seed and batches - the target is within 5%;
  2. the same MLP stepped by a Python loop of m.feed(x=..., y=...) and
     m.step() per batch: microseconds per step against the CLI's, and
     against the bare compiled step (m.step() on a fed batch);
  3. the per-step overhead of a Python training loop, where compute is
     negligible (a 16-16-4 MLP at batch 8): gradc's feed + step against
     PyTorch's zero_grad / forward / loss / backward / step, in
     microseconds per step; and PyTorch's loop on the MLP of 2.

usage: /usr/bin/python3 bench/py_overhead.py [--threads 1] [--repeats 3] [--steps 2000]
(GRADC_LIB and GRADC_BIN default to build/ of the source tree.)
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

from common import DATA, gradc_epoch, load_idx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.setdefault("GRADC_LIB", os.path.join(ROOT, "build", "libgradc.so"))
import gradc  # noqa: E402

MLP = os.path.join(ROOT, "models", "mnist_mlp.nn")
TINY = """input x : f32[batch, 16]
input y : i32[batch]
h = dense(x, 16, activation=relu)
logits = dense(h, 4)
loss = mean(softmax_cross_entropy(logits, y))
train loss with rmsprop(lr=0.001, rho=0.9, eps=1e-7)
"""


def fashion():
    _, dims, xb = load_idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
    _, _, yb = load_idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz"))
    x = np.frombuffer(xb, np.uint8).reshape(dims[0], -1).astype(np.float32) / np.float32(255)
    return x, np.frombuffer(yb, np.uint8).astype(np.int32)


def fit_epoch(m, x, y, repeats):
    times = []
    for r in range(repeats):
        m.init(r + 1)                               # gradc_epoch's seeds: the same batches
        t0 = time.perf_counter()
        m.fit(x, y, epochs=1, batch_size=128, verbose=0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def loop_us(m, batches, steps, repeats, feed=True):
    """Median microseconds per step of a feed + step loop (or step alone)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(steps):
            xb, yb = batches[i % len(batches)]
            if feed:
                m.feed(x=xb, y=yb)
            m.step()
        times.append((time.perf_counter() - t0) / steps * 1e6)
    return statistics.median(times)


def torch_us(hidden, din, classes, batches, steps, repeats, threads):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch
    torch.set_num_threads(threads)
    net = torch.nn.Sequential(torch.nn.Linear(din, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    tb = [(torch.from_numpy(xb), torch.from_numpy(yb.astype(np.int64))) for xb, yb in batches]
    times = []
    for r in range(-1, repeats):
        t0 = time.perf_counter()
        for i in range(steps if r >= 0 else 50):
            xb, yb = tb[i % len(tb)]
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(xb), yb)
            loss.backward()
            opt.step()
        if r >= 0:
            times.append((time.perf_counter() - t0) / steps * 1e6)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2000)
    a = ap.parse_args()
    gradc_bin = os.environ.get("GRADC_BIN", os.path.join(ROOT, "build", "gradc"))
    print("load average: %.2f %.2f %.2f, %d cores; threads %d" % (os.getloadavg() + (os.cpu_count(), a.threads)))

    x, y = fashion()
    m = gradc.compile(MLP, threads=a.threads)
    cli = gradc_epoch(gradc_bin, MLP, a.threads, a.repeats, profile=False)[0]
    py = fit_epoch(m, x, y, a.repeats)
    steps = (len(x) + 127) // 128
    print("1. MLP epoch (60000 samples, batch 128): gradc train %.3f s, m.fit %.3f s: %+.1f%%"
          % (cli, py, 100 * (py / cli - 1)))

    batches = [(np.ascontiguousarray(x[i:i + 128]), np.ascontiguousarray(y[i:i + 128])) for i in range(0, 128 * 64, 128)]
    n = min(a.steps, 469)
    fed = loop_us(m, batches, n, a.repeats)
    bare = loop_us(m, batches[:1], n, a.repeats, feed=False)
    print("2. MLP, loop of m.feed + m.step: %.0f us/step; gradc train %.0f us/step; m.step alone %.0f us/step; "
          "Python's share %.1f us/step" % (fed, cli / steps * 1e6, bare, fed - cli / steps * 1e6))

    rng = np.random.RandomState(0)
    tiny_batches = [(rng.rand(8, 16).astype(np.float32), rng.randint(0, 4, 8).astype(np.int32)) for _ in range(16)]
    t = gradc.compile(TINY, threads=1, name="tiny.nn")
    g_tiny = loop_us(t, tiny_batches, a.steps, a.repeats)
    g_tiny_bare = loop_us(t, tiny_batches[:1], a.steps, a.repeats, feed=False)
    try:
        t_tiny = torch_us(16, 16, 4, tiny_batches, a.steps, a.repeats, 1)
        t_mlp = torch_us(512, 784, 10, batches, n, a.repeats, a.threads)
    except ImportError:
        t_tiny = t_mlp = float("nan")
        print("(no PyTorch: apt-get install python3-torch)")
    print("3. per-step cost where compute is negligible (16-16-4 MLP, batch 8): gradc feed + step %.1f us "
          "(step alone %.1f us), PyTorch loop %.1f us" % (g_tiny, g_tiny_bare, t_tiny))
    print("   MLP of 2 in PyTorch's loop: %.0f us/step (gradc's loop: %.0f us/step)" % (t_mlp, fed))


if __name__ == "__main__":
    main()
