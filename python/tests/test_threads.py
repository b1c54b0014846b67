"""Two models trained in two Python threads compute what each computes
alone, and a step lets go of the GIL: another Python thread runs while
it does."""
import os
import sys
import threading
import time

import numpy as np

import gradc
from conftest import MODELS, read_idx

MLP = os.path.join(MODELS, "mnist_mlp.nn")


def train(seed, x, y, out):
    m = gradc.compile(MLP, threads=2, seed=seed)
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    out[seed] = {n: m[n].copy() for n in ("W1", "b1", "W2", "b2")}


def test_two_models_in_two_threads(mnist_dir):
    x, y = read_idx(mnist_dir, "train")
    alone, together = {}, {}
    for seed in (1, 2):
        train(seed, x, y, alone)
    threads = [threading.Thread(target=train, args=(seed, x, y, together)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        for name, value in alone[seed].items():
            assert np.array_equal(together[seed][name], value), (seed, name)
    assert not np.array_equal(alone[1]["W1"], alone[2]["W1"])


def test_a_step_releases_the_gil():
    """With a switch interval of 100 s, a thread that sleeps in a loop runs
    during main's C call only if that call let go of the GIL."""
    m = gradc.compile(MLP, threads=1)
    big = 4096
    m.feed(x=np.random.RandomState(0).rand(big, 784).astype(np.float32), y=np.zeros(big, np.int32))
    m.step()                                       # warm: the workspace, the pool
    ticks, stop = [0], threading.Event()

    def sleeper():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    old = sys.getswitchinterval()
    sys.setswitchinterval(100)
    t = threading.Thread(target=sleeper)
    try:
        t.start()
        time.sleep(0.01)
        before, t0 = ticks[0], time.perf_counter()
        m.step()
        during, seconds = ticks[0] - before, time.perf_counter() - t0
    finally:
        stop.set()
        sys.setswitchinterval(old)
        t.join()
    assert seconds > 0.01, "the step was too short to tell"
    assert during >= 2, "no Python thread ran during a %.3f s step: the GIL was held" % seconds
