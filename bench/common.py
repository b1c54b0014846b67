"""What the benchmark scripts share: Fashion-MNIST's IDX files, the PyTorch
timing loop, and the line naming OpenBLAS's kernel set."""
import gzip, os, statistics, struct, time

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(path):
    """(magic, dims, body) of a gzip'd IDX file."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return magic, dims, raw[4 + 4 * ndim:]


def torch_epoch_seconds(make, x, y, repeats, batch=128):
    """Median seconds of `repeats` shuffled epochs over (x, y); make(r)
    returns a fresh (net, optimizer) for run r.  The first run in a process
    pays one-time costs (oneDNN primitive creation, allocator growth; up to
    2x the steady epoch time measured here), which gradc's JIT compile is
    not timed for either: one untimed run of a few batches first."""
    import torch
    n = x.shape[0]
    lossf = torch.nn.CrossEntropyLoss()
    times = []
    for r in range(-1, repeats):
        torch.manual_seed(max(r, 0))
        net, opt = make(r)
        net.train()
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n if r >= 0 else min(n, 20 * batch), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
        if r >= 0:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def print_blas_kernels():
    print("OpenBLAS kernels (both): " + os.environ.get("OPENBLAS_CORETYPE", "chosen by OpenBLAS from the CPU")
          + (" (OPENBLAS_CORETYPE)" if "OPENBLAS_CORETYPE" in os.environ else ""))
