#!/usr/bin/python3
"""One epoch of the DLwP MLP (784-512-10, RMSprop 1e-3, batch 128) on
Fashion-MNIST: gradc against PyTorch, same data, optimizer, batch size and
thread count, in one run.  Prints epoch seconds, samples/second, the ratio,
gradc's share of time inside its matrix products (of the time inside its
compiled train steps, and of the whole epoch, which adds copying the batches
in), and gradc with its graph passes off (-O 0: every value stored, nothing
fused) for comparison.

Fair setup (shared/BENCHMARKS.md): torch.set_num_threads(n) with
OMP_WAIT_POLICY=PASSIVE, Glorot-uniform weights and zero biases as the model
file, RMSprop(alpha=0.9, eps=1e-7) which matches Keras', a shuffled epoch,
timing the training loop only (data already in memory for both).

usage: /usr/bin/python3 bench/mlp_vs_torch.py (Debian's python3 with python3-torch) [--threads 1,2] [--repeats 3] [--model models/mnist_mlp.nn]
"""
import argparse, csv, os, re, statistics, subprocess, sys, tempfile

from common import DATA, load_idx, print_blas_kernels, torch_epoch_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def torch_epoch(threads, repeats, hidden=(512,), opt_name="rmsprop"):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    _, dims, xb = load_idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
    _, _, yb = load_idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(np.frombuffer(xb, dtype=np.uint8).reshape(dims[0], -1).astype(np.float32) / 255.0)
    y = torch.from_numpy(np.frombuffer(yb, dtype=np.uint8).astype(np.int64))

    def make(r):
        layers, d = [], 784
        for h in hidden:
            layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]
            d = h
        layers.append(torch.nn.Linear(d, 10))
        net = torch.nn.Sequential(*layers)
        for m in net:
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                torch.nn.init.zeros_(m.bias)
        if opt_name == "adam":
            return net, torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        return net, torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)

    return torch_epoch_seconds(make, x, y, repeats)


def gradc_epoch(gradc, model, threads, repeats, opt="3"):
    times, shares = [], []
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            hist = os.path.join(tmp, "h.csv")
            out = subprocess.run([gradc, "train", model, "--epochs", "1", "--batch", "128",
                                  "--threads", str(threads), "--seed", str(r + 1), "--no-test",
                                  "-O", opt, "--profile", "--history", hist],
                                 capture_output=True, text=True, check=True).stdout
            with open(hist) as f:
                row = list(csv.DictReader(f))[-1]
            times.append(float(row["seconds"]))
            m = re.search(r"step time in sgemm \(([\d.]+)%.*; ([\d.]+)% of", out)
            shares.append((float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan")))
    return statistics.median(times), tuple(statistics.median(s[i] for s in shares) for i in range(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "mnist_mlp.nn"))
    ap.add_argument("--gradc", default=os.path.join(ROOT, "build", "gradc"))
    args = ap.parse_args()
    n = 60000
    print_blas_kernels()
    print(f"{'threads':>7} {'gradc s':>9} {'-O0 s':>9} {'torch s':>9} {'torch/gradc':>12} {'-O0/gradc':>10} "
          f"{'gradc smp/s':>12} {'torch smp/s':>12} {'sgemm/step':>11} {'sgemm/epoch':>12}")
    for t in [int(s) for s in args.threads.split(",")]:
        # Interleaved, so that a noisy neighbour slows all three alike.
        g, share = gradc_epoch(args.gradc, args.model, t, args.repeats)
        g0, _ = gradc_epoch(args.gradc, args.model, t, args.repeats, opt="0")
        p = torch_epoch(t, args.repeats)
        print(f"{t:>7} {g:>9.3f} {g0:>9.3f} {p:>9.3f} {p / g:>12.2f} {g0 / g:>10.2f} {n / g:>12.0f} "
              f"{n / p:>12.0f} {share[0]:>10.1f}% {share[1]:>11.1f}%")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
