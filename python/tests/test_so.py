"""gradc.load_so drives a shared object made by `gradc compile` with the
same Model methods, through the .so's own <prefix>_* entry points: its
fit equals the JIT's bit for bit (--cpu native), its checkpoints are the
CLI's, its views are zero-copy, and the process never loads LLVM or
libgradc.so for it."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gradc
from conftest import MODELS, ROOT, read_idx, run_gradc

MLP = os.path.join(MODELS, "mnist_mlp.nn")


@pytest.fixture(scope="module")
def mlp_so(tmp_path_factory, gradc_bin):
    d = tmp_path_factory.mktemp("so")
    path = d / "libmnist_mlp.so"
    run_gradc("compile", MLP, "-o", path, "--cpu", "native")
    return str(path)


def test_prefix_is_found(mlp_so, tmp_path, gradc_bin):
    m = gradc.load_so(mlp_so)
    assert m.name == "mnist_mlp" and m.inputs == ["x", "y"] and m.steps == ["train"]
    named = tmp_path / "libother.so"
    run_gradc("compile", MLP, "-o", named, "--name", "mlp2", "--cpu", "native")
    assert gradc.load_so(str(named)).name == "mlp2"
    with pytest.raises(OSError, match="wrong_"):
        gradc.load_so(str(named), prefix="wrong")


def test_fit_equals_the_jits(mlp_so, mnist_dir, tmp_path):
    x, y = read_idx(mnist_dir, "train")
    so, jit = gradc.load_so(mlp_so), gradc.compile(MLP, threads=1, seed=1)
    hs = so.fit(x, y, epochs=2, batch_size=32, validation_split=0.1, verbose=0)
    hj = jit.fit(x, y, epochs=2, batch_size=32, validation_split=0.1, verbose=0)
    assert hs.history == hj.history
    so.save(tmp_path / "so.ckpt")
    jit.save(tmp_path / "jit.ckpt")
    assert (tmp_path / "so.ckpt").read_bytes() == (tmp_path / "jit.ckpt").read_bytes()
    fresh = gradc.load_so(mlp_so)
    fresh.load(tmp_path / "jit.ckpt")
    assert np.array_equal(fresh.predict(x[:50]), jit.predict(x[:50]))


def test_views_feed_step_and_errors(mlp_so):
    m = gradc.load_so(mlp_so)
    import ctypes
    count = ctypes.c_int64()
    address = m._api.data(m._m, b"W1", ctypes.byref(count))
    assert m["W1"].ctypes.data == address and count.value == 784 * 512
    m.feed(x=np.zeros((3, 784), np.float32), y=np.array([0, 1, 2], np.int32))
    loss = m.step()
    assert loss == pytest.approx(np.log(10), rel=1e-6)        # zero inputs: uniform softmax
    m.set_hyper("lr", 0.5)
    assert m.get_hyper("lr") == 0.5
    with pytest.raises(gradc.DataError, match="expected a float32 array"):
        m.feed(x=np.zeros((3, 784)))
    with pytest.raises(gradc.ArgumentError, match="mnist_mlp_step"):
        m.step("nope")


def test_no_llvm_is_loaded(mlp_so, mnist_dir):
    script = ("import sys, numpy as np; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
              "import gradc, conftest\n"
              "x, y = conftest.read_idx(%r, 'train')\n"
              "m = gradc.load_so(%r); m.fit(x, y, epochs=1, batch_size=64, verbose=0)\n"
              "maps = open('/proc/self/maps').read()\n"
              "print('llvm' if 'LLVM' in maps else '', 'libgradc.so' if '/libgradc.so' in maps else '')\n"
              % (os.path.join(ROOT, "python"), os.path.dirname(__file__), mnist_dir, mlp_so))
    out = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout
    assert out.strip() == ""
