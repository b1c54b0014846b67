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

PyTorch runs in a process of its own with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset (common.run_peer); both sides' kernels are printed,
and each time as a share of the machine's FMA peak (bench/fma_peak.c, per
core x threads): an image's products are 71.6 MFLOP (conv 32: 2 x 26 x 26
x 32 x 9, forward and weight gradient; conv 64: 2 x 24 x 24 x 64 x 288,
forward, input and weight gradients; dense 9216-128 and 128-10, three
products each), 4.29 TFLOP an epoch.

--samples N times both on the first N training images (a multiple of 128)
and prints the time scaled to a 60,000-image epoch, for quick runs on a
shared machine; the default is the whole epoch.

--net resnet_small times models/resnet_small.nn instead (issue 21: >= 2x
PyTorch): stem conv 16 3x3 -> BN -> relu, three stages of one basic block
(16, 32, 64 filters; strides 1, 2, 2; 1x1 conv + BN shortcuts where the
shape changes), global average pooling, dense 10; no conv biases; Adam
1e-3.  PyTorch's BatchNorm2d takes Keras' eps 1e-3 and momentum 0.99 (its
momentum=0.01).  Its products are 55.9 MFLOP an image (each conv forward,
input and weight gradients, the stem's input gradient excepted), 3.35 TFLOP
an epoch; batch norm, relu and the residual sums, memory-bound, are not
counted, so its share of peak is lower than the CNN's for the same speed.

usage: /usr/bin/python3 bench/cnn_vs_torch.py [--net seed|resnet_small] [--threads 1,2] [--repeats 3]
                                              [--samples 60000]
"""
import argparse, json, os, sys, tempfile

from common import DATA, FILES, fma_peak, gradc_epoch, load_idx, print_blas_kernels, run_peer, scaled_data, \
    torch_epoch_seconds, torch_kernels

FLOP_PER_IMAGE = {
    "seed": 2 * 26 * 26 * 32 * 9 * 2 + 2 * 24 * 24 * 64 * 288 * 3 + 2 * 9216 * 128 * 3 + 2 * 128 * 10 * 3,
    # multiply-adds of each conv's forward product (outputs x window) times
    # its products: 2 for the stem (no input gradient), 3 for the others
    "resnet_small": 2 * (784 * 16 * 9 * 2 + 784 * 16 * 144 * 3 * 2 + 196 * 32 * 144 * 3 + 196 * 32 * 288 * 3
                         + 196 * 32 * 16 * 3 + 49 * 64 * 288 * 3 + 49 * 64 * 576 * 3 + 49 * 64 * 32 * 3
                         + 64 * 10 * 3),
}

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
def seed_net(nn):
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
                         nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def resnet_small(nn):
    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), bn(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), bn(cout)
            self.sc = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout)) if stride != 1
                       else nn.Identity())

        def forward(self, x):
            h = self.b2(self.c2(nn.functional.relu(self.b1(self.c1(x)))))
            return nn.functional.relu(h + self.sc(x))

    return nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), bn(16), nn.ReLU(), Block(16, 16, 1),
                         Block(16, 32, 2), Block(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10))


def torch_epoch(net_name, threads, repeats, n):
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
        net = seed_net(nn) if net_name == "seed" else resnet_small(nn)
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    return torch_epoch_seconds(make, x, y, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--net", default="seed", choices=sorted(FLOP_PER_IMAGE))
    ap.add_argument("--model", help="the model file (default models/cnn_seed.nn or models/resnet_small.nn)")
    ap.add_argument("--gradc", default=os.path.join(ROOT, "build", "gradc"))
    ap.add_argument("--peer", help=argparse.SUPPRESS)   # the PyTorch child: JSON arguments
    args = ap.parse_args()
    if args.peer:
        a = json.loads(args.peer)
        seconds = torch_epoch(a["net"], a["threads"], a["repeats"], a["n"])
        print(json.dumps({"seconds": seconds, "kernels": torch_kernels()}))
        return
    model = args.model or os.path.join(ROOT, "models", "cnn_seed.nn" if args.net == "seed" else "resnet_small.nn")
    n = args.samples
    scale = 60000 / n
    tflop = 60000 * FLOP_PER_IMAGE[args.net] / 1e12
    with tempfile.TemporaryDirectory() as tmp:
        data = scaled_data(tmp, n)
        print_blas_kernels()
        print(f"{os.path.basename(model)}: {n} images per run, times scaled to a 60,000-image epoch ({tflop:.2f} TFLOP of products)")
        print(f"{'threads':>7} {'gradc s':>9} {'torch s':>9} {'torch/gradc':>12} {'peak GF/s':>10} {'gradc %pk':>10} "
              f"{'torch %pk':>10}")
        lines = set()
        for t in [int(s) for s in args.threads.split(",")]:
            peak, isa = fma_peak(t)
            g, _, kg = gradc_epoch(args.gradc, model, t, args.repeats, data, profile=False)
            g *= scale
            peer = run_peer(os.path.abspath(__file__), net=args.net, threads=t, repeats=args.repeats, n=n)
            p = peer["seconds"] * scale
            lines |= {kg, peer["kernels"], f"FMA peak: {isa}"}
            print(f"{t:>7} {g:>9.2f} {p:>9.2f} {p / g:>12.2f} {peak * t:>10.1f} "
                  f"{100 * tflop * 1e3 / g / (peak * t):>9.1f}% {100 * tflop * 1e3 / p / (peak * t):>9.1f}%")
            sys.stdout.flush()
        for line in sorted(lines):
            print(line)


if __name__ == "__main__":
    main()
