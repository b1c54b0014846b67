#!/usr/bin/python3
"""Before/after gradc epoch times on a shared machine: wall seconds of each
epoch (the history file) and the CPU seconds a training epoch costs
(user + system of the process, from getrusage: runs with E and 1 epochs,
(cpu(E) - cpu(1)) / (E - 1), so compiling and loading the data cancel).
The builds alternate (ABBA...), so that a noisy neighbour weighs on both.

usage: bench/ab_cpu.py --gradc BEFORE,AFTER --model M.nn [--data DIR] [--threads 1] [--rounds 4] [--epochs 3]
"""
import argparse, csv, os, resource, statistics, subprocess, tempfile


def run(gradc, model, data, threads, epochs):
    with tempfile.TemporaryDirectory() as tmp:
        hist = os.path.join(tmp, "h.csv")
        cmd = [gradc, "train", model, "--epochs", str(epochs), "--batch", "128", "--threads", str(threads),
               "--seed", "1", "--no-test", "--history", hist] + (["--data", data] if data else [])
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(hist) as f:
            walls = [float(row["seconds"]) for row in csv.DictReader(f)]
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return cpu, walls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradc", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    builds = a.gradc.split(",")
    names = ["before", "after"]
    res = {n: {"cpu": [], "wall": []} for n in names}
    for r in range(a.rounds):
        order = [0, 1] if r % 2 == 0 else [1, 0]
        for i in order:
            load = open("/proc/loadavg").read().split()[0]
            c1, _ = run(builds[i], a.model, a.data, a.threads, 1)
            cE, walls = run(builds[i], a.model, a.data, a.threads, a.epochs)
            per = (cE - c1) / (a.epochs - 1)
            res[names[i]]["cpu"].append(per)
            res[names[i]]["wall"] += walls
            print(f"round {r} {names[i]:6} load {load}: cpu/epoch {per:.3f} s, wall epochs "
                  + " ".join(f"{w:.3f}" for w in walls), flush=True)
    for n in names:
        c, w = res[n]["cpu"], res[n]["wall"]
        print(f"{n:6} cpu/epoch median {statistics.median(c):.3f} min {min(c):.3f} | "
              f"wall/epoch median {statistics.median(w):.3f} min {min(w):.3f} (n={len(w)})")
    print("after/before: cpu median %.3f, cpu min %.3f, wall min %.3f" % (
        statistics.median(res['after']['cpu']) / statistics.median(res['before']['cpu']),
        min(res['after']['cpu']) / min(res['before']['cpu']),
        min(res['after']['wall']) / min(res['before']['wall'])))


if __name__ == "__main__":
    main()
