#!/usr/bin/python3
"""Row-wise Fashion-MNIST (each image as 28 time steps of 28 pixels) through
a GRU(128) and an LSTM(128), last state into Dense(10), Adam 1e-3, batch 128:
gradc (models/fmnist_gru.nn, models/fmnist_lstm.nn) against PyTorch's
nn.GRU / nn.LSTM of the same sizes, in one run, at each thread count.
Prints epoch seconds, samples/second, the ratio, and gradc's share of step
time in its matrix products.

Keras 2's GRU (reset_after=True) is PyTorch's formulation, so both sides do
the same arithmetic: per step one [batch, 128] x [128, 3*128] (GRU) or
[128, 4*128] (LSTM) recurrent product forward and two backward, plus the
input products, which gradc computes for all steps at once.  Fair setup as
shared/BENCHMARKS.md: torch.set_num_threads(n), OMP_WAIT_POLICY=PASSIVE,
OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset (run through bench/ab.sh or unset
them yourself), Glorot inputs and orthogonal recurrent weights as Keras,
the training loop timed, data in memory.

usage: /usr/bin/python3 bench/rnn_vs_torch.py [--threads 1,2] [--repeats 2] [--samples 60000] [--cells gru,lstm]
"""
import argparse, os, sys, tempfile

from common import DATA, FILES, gradc_epoch, load_idx, print_blas_kernels, scaled_data, torch_epoch_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def torch_epoch(cell, threads, repeats, n):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    _, _, xb = load_idx(os.path.join(DATA, FILES[0]))
    _, _, yb = load_idx(os.path.join(DATA, FILES[1]))
    x = torch.from_numpy(np.frombuffer(xb, dtype=np.uint8)[:n * 784].reshape(n, 28, 28)
                         .astype(np.float32) / 255.0)
    y = torch.from_numpy(np.frombuffer(yb, dtype=np.uint8)[:n].astype(np.int64))
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(28, 128, batch_first=True)
            self.fc = nn.Linear(128, 10)
            for name, p in self.rnn.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(p)
                elif name.startswith("weight_hh"):
                    nn.init.orthogonal_(p)
                else:
                    nn.init.zeros_(p)
            nn.init.xavier_uniform_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

        def forward(self, v):
            out, _ = self.rnn(v)
            return self.fc(out[:, -1])

    def make(r):
        net = Net()
        return net, torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    return torch_epoch_seconds(make, x, y, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--cells", default="gru,lstm")
    ap.add_argument("--gradc", default=os.path.join(ROOT, "build", "gradc"))
    args = ap.parse_args()
    n = args.samples
    scale = 60000 / n
    with tempfile.TemporaryDirectory() as tmp:
        data = scaled_data(tmp, n)
        print_blas_kernels(peer_apart=False)
        print(f"{n} images per run, times scaled to a 60,000-image epoch; load "
              f"{open('/proc/loadavg').read().split()[0]}")
        print(f"{'cell':>5} {'threads':>7} {'gradc s':>9} {'torch s':>9} {'torch/gradc':>12} "
              f"{'gradc smp/s':>12} {'torch smp/s':>12} {'sgemm/step':>11}")
        for cell in args.cells.split(","):
            model = os.path.join(ROOT, "models", f"fmnist_{cell}.nn")
            for t in [int(s) for s in args.threads.split(",")]:
                g, share, _ = gradc_epoch(args.gradc, model, t, args.repeats, data)
                p = torch_epoch(cell, t, args.repeats, n)
                g, p = g * scale, p * scale
                print(f"{cell:>5} {t:>7} {g:>9.2f} {p:>9.2f} {p / g:>12.2f} {60000 / g:>12.0f} "
                      f"{60000 / p:>12.0f} {share:>10.1f}%")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
