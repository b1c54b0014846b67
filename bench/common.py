"""What the benchmark scripts share: Fashion-MNIST's IDX files, the PyTorch
timing loop run in a process of its own with a fair environment, the lines
naming the CPU and each side's kernels, and the machine's measured FMA
peak (bench/fma_peak.c)."""
import gzip, json, os, re, statistics, struct, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))

# This project's machines set these for everything they run; they slow
# PyTorch's OpenBLAS (OPENBLAS_CORETYPE=Haswell: AVX2 kernels on an AVX-512
# CPU), so the peer runs without them, in its own process (OpenBLAS reads
# them when it loads).  gradc runs under whatever the environment says.
PEER_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

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
    with profile the median share of step time in products, and gradc's
    kernels line."""
    import csv
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
    return statistics.median(times), statistics.median(shares), gradc_kernels(out)


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


def print_blas_kernels(peer_apart=True):
    """The CPU, and the environment each side runs under (peer_apart: the
    peer in a process of its own, run_peer)."""
    print("CPU: " + cpu_name())
    print("environment: " + ", ".join(f"{k}={os.environ[k]}" if k in os.environ else f"{k} unset"
                                       for k in PEER_UNSET)
          + ("; gradc runs under it, PyTorch with both unset (in a process of its own)" if peer_apart
             else "; both run under it (PyTorch in this process)"))


def cpu_name():
    """The model name with family and model, which tell Zen 4 from Zen 5."""
    info = {}
    for line in open("/proc/cpuinfo"):
        if ":" in line:
            k, v = (x.strip() for x in line.split(":", 1))
            info.setdefault(k, v)
        if not line.strip() and info:
            break
    zen = {(25, 17): "Zen 4", (25, 97): "Zen 4", (25, 160): "Zen 4c", (26, 2): "Zen 5", (26, 17): "Zen 5",
           (26, 68): "Zen 5"}.get((int(info.get("cpu family", 0)), int(info.get("model", 0))), "")
    return (f"{info.get('model name', '?')} (family {info.get('cpu family', '?')} model {info.get('model', '?')}"
            f"{', ' + zen if zen else ''}), {os.cpu_count()} cores")


def fma_peak(threads):
    """GFLOP/s per core of the widest FMA the CPU has (AVX-512, else AVX2),
    measured with `threads` threads at once by bench/fma_peak.c, and its
    name."""
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "fma_peak")
        subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "fma_peak.c"), "-lpthread"], check=True)
        out = subprocess.run([exe, str(threads)], capture_output=True, text=True, check=True).stdout
    best = re.findall(r"^(\w+) threads=\d+ gflops_per_core=([\d.]+)", out, re.M)
    isa, gf = best[0]
    return float(gf), isa


def gradc_kernels(out):
    """gradc's own line naming its kernels, from `gradc train`'s output."""
    m = re.search(r"products: (.*?) kernels, OpenBLAS (\S+) kernels for the rest", out)
    return f"gradc: products in {m.group(1)} kernels, OpenBLAS {m.group(2)} for the rest" if m else "gradc: ?"


def torch_kernels():
    """Which kernels this process's PyTorch runs (call after importing torch)."""
    import ctypes
    import torch
    core = "?"
    for line in open("/proc/self/maps"):
        if "libopenblas" in line:
            lib = ctypes.CDLL(line.split()[-1])
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
            break
    cap = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    dnn = re.search(r"MKL-DNN (v[\d.]+)", torch.__config__.show())
    return (f"PyTorch {torch.__version__}: OpenBLAS {core} kernels (nn.Linear), oneDNN {dnn.group(1) if dnn else '?'} "
            f"convolutions (its own choice of ISA), ATen elementwise {cap.group(1) if cap else '?'}")


def run_peer(script, **args):
    """Runs `script --peer JSON` in a child process with PEER_UNSET removed
    from its environment and OMP_WAIT_POLICY=PASSIVE; returns the JSON the
    child prints last (seconds, kernels)."""
    env = {k: v for k, v in os.environ.items() if k not in PEER_UNSET}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, script, "--peer", json.dumps(args)], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])
