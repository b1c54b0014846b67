#!/usr/bin/python3
"""The alpha-beta cost model of docs/scaling.md, as markdown tables: the
predicted time of one step's gradient reduction, the scaling efficiency at
128 samples per rank without and with overlap, and the batch per rank
below which communication no longer hides behind the backward pass, for
mnist_mlp and cnn_seed on 8-256 ranks over 25 and 100 Gbit/s links.

usage: bench/scaling_model.py [--alpha-us 20] [--loop-beta-ns 1.07] [--loop-alpha-us 1.5]
"""
import argparse

# bytes of f32 gradients, gradient tensors (one reduction each: gradc's
# latency term counts them), seconds of compute per sample on one Zen 4
# core (README: MLP 0.55 s per 60,000 images, CNN about 1,640 samples/s)
MODELS = {"mnist_mlp": (407050 * 4, 4, 0.55 / 60000), "cnn_seed": (1199882 * 4, 8, 1 / 1640)}
RANKS = (2, 8, 16, 32, 64, 128, 256)


def reduce_seconds(n, nbytes, tensors, alpha, beta):
    """A ring (or gradc's alltoall + allgather): 2 (N-1) messages of
    latency alpha per tensor, 2 (N-1)/N of the bytes at beta per byte."""
    return tensors * 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes * beta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alpha-us", type=float, default=20.0, help="per-message latency over the network")
    ap.add_argument("--batch", type=int, default=128, help="samples per rank per step")
    a = ap.parse_args()
    alpha = a.alpha_us * 1e-6
    for name, (nbytes, tensors, per_sample) in MODELS.items():
        compute = a.batch * per_sample
        print(f"\n{name}: {nbytes / 1e6:.2f} MB of gradients in {tensors} tensors, "
              f"{1e3 * compute:.2f} ms of compute per step at {a.batch} samples per rank; alpha {a.alpha_us:g} us\n")
        print("| link | " + " | ".join(f"N={n}" for n in RANKS) + " |")
        print("|---|" + "---|" * len(RANKS))
        for gbit in (25, 100):
            beta = 8 / (gbit * 1e9)
            cells = []
            for n in RANKS:
                t = reduce_seconds(n, nbytes, tensors, alpha, beta)
                plain = compute / (compute + t)
                # overlap: the reductions run during the backward pass (2/3 of compute)
                hidden = compute / (compute / 3 + max(2 * compute / 3, t))
                bstar = t / (2 / 3 * per_sample)
                cells.append(f"{1e3 * t:.1f} ms, {plain:.2f} / {hidden:.2f}, b*={bstar:.0f}")
            print(f"| {gbit} Gbit/s | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
