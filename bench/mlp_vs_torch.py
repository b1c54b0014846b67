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
timing the training loop only (data already in memory for both).  PyTorch
runs in a process of its own with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
unset (common.run_peer); both sides' kernels are printed.

Each time is also a share of the machine's FMA peak (bench/fma_peak.c,
per core x threads): an epoch's products are 60,000 x (2 x 784 x 512 x 2
+ 2 x 512 x 10 x 3) = 98.2 GFLOP (the first layer's input needs no
gradient).

usage: /usr/bin/python3 bench/mlp_vs_torch.py (Debian's python3 with python3-torch) [--threads 1,2] [--repeats 3] [--model models/mnist_mlp.nn]
"""
import argparse, csv, json, os, re, statistics, subprocess, sys, tempfile

from common import DATA, fma_peak, gradc_kernels, load_idx, print_blas_kernels, run_peer, torch_epoch_seconds, \
    torch_kernels

GFLOP = 60000 * (2 * 784 * 512 * 2 + 2 * 512 * 10 * 3) / 1e9

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def torch_epoch(threads, repeats, hidden=(512,), opt_name="rmsprop"):
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
    """Median epoch seconds of `repeats` runs, timed without --profile (its
    marks cost time on 2 threads), then one --profile run for the shares of
    time in products; and gradc's kernels line."""
    times, shares, out = [], [], ""
    for r in range(repeats + 1):
        profile = r == repeats
        with tempfile.TemporaryDirectory() as tmp:
            hist = os.path.join(tmp, "h.csv")
            out = subprocess.run([gradc, "train", model, "--epochs", "1", "--batch", "128",
                                  "--threads", str(threads), "--seed", str(r % repeats + 1), "--no-test",
                                  "-O", opt, "--history", hist] + (["--profile"] if profile else []),
                                 capture_output=True, text=True, check=True).stdout
            if not profile:
                with open(hist) as f:
                    times.append(float(list(csv.DictReader(f))[-1]["seconds"]))
                continue
            m = re.search(r"step time in sgemm \(([\d.]+)%.*; ([\d.]+)% of", out)
            shares.append((float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan")))
    return statistics.median(times), shares[0], gradc_kernels(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "mnist_mlp.nn"))
    ap.add_argument("--gradc", default=os.path.join(ROOT, "build", "gradc"))
    ap.add_argument("--peer", help=argparse.SUPPRESS)   # the PyTorch child: JSON arguments
    args = ap.parse_args()
    if args.peer:
        a = json.loads(args.peer)
        seconds = torch_epoch(a["threads"], a["repeats"])
        print(json.dumps({"seconds": seconds, "kernels": torch_kernels()}))
        return
    n = 60000
    print_blas_kernels()
    print(f"{'threads':>7} {'gradc s':>9} {'-O0 s':>9} {'torch s':>9} {'torch/gradc':>12} {'-O0/gradc':>10} "
          f"{'gradc smp/s':>12} {'torch smp/s':>12} {'sgemm/step':>11} {'sgemm/epoch':>12} "
          f"{'peak GF/s':>10} {'gradc %pk':>10} {'torch %pk':>10}")
    lines = set()
    for t in [int(s) for s in args.threads.split(",")]:
        # Interleaved, so that a noisy neighbour slows all three alike.
        peak, isa = fma_peak(t)
        g, share, kg = gradc_epoch(args.gradc, args.model, t, args.repeats)
        g0, _, _ = gradc_epoch(args.gradc, args.model, t, args.repeats, opt="0")
        peer = run_peer(os.path.abspath(__file__), threads=t, repeats=args.repeats)
        p = peer["seconds"]
        lines |= {kg, peer["kernels"], f"FMA peak: {isa}"}
        print(f"{t:>7} {g:>9.3f} {g0:>9.3f} {p:>9.3f} {p / g:>12.2f} {g0 / g:>10.2f} {n / g:>12.0f} "
              f"{n / p:>12.0f} {share[0]:>10.1f}% {share[1]:>11.1f}% {peak * t:>10.1f} "
              f"{100 * GFLOP / g / (peak * t):>9.1f}% {100 * GFLOP / p / (peak * t):>9.1f}%")
        sys.stdout.flush()
    for line in sorted(lines):
        print(line)
    print(f"%pk: {GFLOP:.1f} GFLOP of products per epoch over the time, against the measured peak per core x threads")


if __name__ == "__main__":
    main()
