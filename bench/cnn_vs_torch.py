#!/usr/bin/python3
"""The seeds' CNN (models/cnn_seed.nn: conv 32 3x3 relu, conv 64 3x3 relu,
max pool 2x2, dropout 0.25, dense 128 relu, dropout 0.5, dense 10; Adam 1e-3,
batch 128) on Fashion-MNIST: gradc against PyTorch, same data, optimizer,
initialisation family, batch size and thread count, in one run.

Fair setup (shared/BENCHMARKS.md): torch.set_num_threads(n) with
OMP_WAIT_POLICY=PASSIVE; Glorot-uniform weights and zero biases as the model
file; Adam(lr=1e-3, eps=1e-7) as Keras'; a shuffled epoch; timing the
training loop only (data already in memory for both).  PyTorch runs its
native NCHW layout (its fastest CPU convolution path), gradc NHWC.

--samples N times both on the first N training images (a multiple of 128)
and prints the time scaled to a 60,000-image epoch, for quick runs on a
shared machine; the default is the whole epoch.

usage: /usr/bin/python3 bench/cnn_vs_torch.py [--threads 1,2] [--repeats 3] [--samples 60000]
"""
import argparse, os, sys, tempfile

from common import DATA, FILES, gradc_epoch, load_idx, print_blas_kernels, scaled_data, torch_epoch_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
def torch_epoch(threads, repeats, n):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    _, dims, xb = load_idx(os.path.join(DATA, FILES[0]))
    _, _, yb = load_idx(os.path.join(DATA, FILES[1]))
    x = torch.from_numpy(np.frombuffer(xb, dtype=np.uint8)[:n * 784].reshape(n, 1, 28, 28)
                         .astype(np.float32) / 255.0)
    y = torch.from_numpy(np.frombuffer(yb, dtype=np.uint8)[:n].astype(np.int64))
    nn = torch.nn

    def make(r):
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
                            nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
        for m in net:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    return torch_epoch_seconds(make, x, y, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "cnn_seed.nn"))
    ap.add_argument("--gradc", default=os.path.join(ROOT, "build", "gradc"))
    args = ap.parse_args()
    n = args.samples
    scale = 60000 / n
    with tempfile.TemporaryDirectory() as tmp:
        data = scaled_data(tmp, n)
        print_blas_kernels()
        print(f"{n} images per run, times scaled to a 60,000-image epoch")
        print(f"{'threads':>7} {'gradc s':>9} {'torch s':>9} {'torch/gradc':>12}")
        for t in [int(s) for s in args.threads.split(",")]:
            g = gradc_epoch(args.gradc, args.model, t, args.repeats, data, profile=False)[0] * scale
            p = torch_epoch(t, args.repeats, n) * scale
            print(f"{t:>7} {g:>9.2f} {p:>9.2f} {p / g:>12.2f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
