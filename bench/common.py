"""What the benchmark scripts share: Fashion-MNIST's IDX files, the PyTorch
timing loop, and the line naming OpenBLAS's kernel set."""
import gzip, os, statistics, struct, time

DATA = "/usr/share/datasets/fashion-mnist"
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def subset(dst, n):
    """The first n images and labels (and 1,000 test ones) as IDX files."""
    for name in FILES:
        magic, dims, body = load_idx(os.path.join(DATA, name))
        per = 1
        for d in dims[1:]:
            per *= d
        k = n if name.startswith("train") else min(1000, dims[0])
        head = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), k, *dims[1:])
        with gzip.open(os.path.join(dst, name), "wb", compresslevel=1) as f:
            f.write(head + body[:k * per])


def gradc_epoch(gradc, model, threads, repeats, data=DATA, profile=True):
    """Median seconds of `repeats` one-epoch `gradc train` runs (seeds 1..),
    and with profile the median share of step time in products."""
    import csv, re, subprocess, tempfile
    times, shares = [], []
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            hist = os.path.join(tmp, "h.csv")
            out = subprocess.run([gradc, "train", model, "--epochs", "1", "--batch", "128",
                                  "--threads", str(threads), "--seed", str(r + 1), "--no-test",
                                  "--data", data, "--history", hist] + (["--profile"] if profile else []),
                                 capture_output=True, text=True, check=True).stdout
            with open(hist) as f:
                times.append(float(list(csv.DictReader(f))[-1]["seconds"]))
            m = re.search(r"step time in sgemm \(([\d.]+)%", out)
            shares.append(float(m.group(1)) if m else float("nan"))
    return statistics.median(times), statistics.median(shares)


def scaled_data(tmp, n):
    """The data directory for n training images: the dataset itself, or
    the first n written into tmp."""
    if n == 60000:
        return DATA
    subset(tmp, n)
    return tmp


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
