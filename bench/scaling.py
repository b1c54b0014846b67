#!/usr/bin/python3
"""Data-parallel scaling on this machine: samples per second of
`gradc train` as 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1
thread (mpirun, cli/mpi.c; the gradients summed through shared memory), for models/mnist_mlp.nn (the whole 60,000-image
epoch) and models/cnn_seed.nn (its first --cnn-samples images), batch 128,
and the share of the 2-rank epoch inside the gradient reductions.

The 2-rank runs go again with --mpi-reduce collective (the gradients
summed by MPI_Alltoall and MPI_Allgather instead of the default shared-
memory window) and with --mpi-overlap (the reductions in a thread during
the backward pass): samples/s, and the share of the reduction time the
steps did not wait for.

Each configuration trains --epochs epochs (default 2) and is timed on its
last (the first pays for first touches); the median of --repeats runs.
Prints one table row per model and the machine's load before and after.

usage: bench/scaling.py [--gradc build/gradc] [--repeats 3] [--epochs 2] [--cnn-samples 7680]
"""
import argparse, csv, os, re, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, subset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, GRADC_CACHE="off", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run(gradc, model, data, ranks, threads, epochs, samples, overlap=False, reduce="auto"):
    """(samples/s of the last epoch, seconds in reductions per epoch or 0,
    seconds of the last epoch, share of the reductions hidden or None)."""
    with tempfile.TemporaryDirectory() as tmp:
        hist = os.path.join(tmp, "h.csv")
        cmd = [gradc, "train", model, "--epochs", str(epochs), "--batch", "128", "--threads", str(threads),
               "--no-test", "--data", data, "--history", hist]
        if ranks > 1:
            cmd = (["mpirun", "--oversubscribe", "-np", str(ranks)] + cmd + ["--mpi-reduce", reduce]
                   + (["--mpi-overlap"] if overlap else []))
        out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=True).stdout
        with open(hist) as f:
            secs = float(list(csv.DictReader(f))[-1]["seconds"])
        m = re.search(r"communication: ([\d.]+) s in", out)
        comm = float(m.group(1)) / epochs if m else 0.0
        h = re.search(r"(\d+)% hidden", out)
        return samples / secs, comm, secs, float(h.group(1)) if h else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradc", default=os.path.join(ROOT, "build", "gradc"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--cnn-samples", type=int, default=7680)
    a = ap.parse_args()
    print("load before:", open("/proc/loadavg").read().strip())
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
    print(f"CPU: {cpu[0] if cpu else '?'} x {len(cpu)}")
    with tempfile.TemporaryDirectory() as small:
        subset(small, a.cnn_samples)
        jobs = [("mnist_mlp", DATA, 60000), ("cnn_seed", small, a.cnn_samples)]
        print(f"{'model':10} {'1r x 1t':>9} {'1r x 2t':>9} {'2r x 1t':>9} {'2r/1r1t':>8} {'2r/1r2t':>8} "
              f"{'comm share (2r)':>16} {'2r coll.':>9} {'comm share':>10} {'2r overlap':>10} {'hidden':>7}")
        for name, data, n in jobs:
            model = os.path.join(ROOT, "models", name + ".nn")
            res = {}
            for ranks, threads, overlap, reduce in ((1, 1, False, "auto"), (1, 2, False, "auto"),
                                                    (2, 1, False, "auto"), (2, 1, False, "collective"),
                                                    (2, 1, True, "auto")):
                rs = [run(a.gradc, model, data, ranks, threads, a.epochs, n, overlap, reduce)
                      for _ in range(a.repeats)]
                res[ranks, threads, overlap, reduce] = (statistics.median(r[0] for r in rs),
                                                        statistics.median(r[1] for r in rs),
                                                        statistics.median(r[2] for r in rs),
                                                        statistics.median(r[3] for r in rs) if overlap else None)
            one, two_t = res[1, 1, False, "auto"][0], res[1, 2, False, "auto"][0]
            sh, co, ov = res[2, 1, False, "auto"], res[2, 1, False, "collective"], res[2, 1, True, "auto"]
            share = lambda r: 100 * r[1] / r[2] if r[2] else 0.0  # noqa: E731
            print(f"{name:10} {one:9.0f} {two_t:9.0f} {sh[0]:9.0f} {sh[0] / one:8.2f} {sh[0] / two_t:8.2f} "
                  f"{share(sh):15.1f}% {co[0]:9.0f} {share(co):9.1f}% {ov[0]:10.0f} {ov[3]:6.0f}%", flush=True)
    print("samples/s of the last epoch, medians of", a.repeats, "runs; load after:",
          open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
