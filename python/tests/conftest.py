"""Shared set-up of the Python suite: the package from python/, the
libraries and the gradc binary of a build (GRADC_LIB, GRADC_BIN, set by
ctest; else build/ of the source tree), and small synthetic datasets in
MNIST's IDX format that both `gradc train` and NumPy read."""
import atexit
import gzip
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.setdefault("GRADC_LIB", os.path.join(ROOT, "build", "libgradc.so"))
os.environ.setdefault("GRADC_CACHE", "off")
GRADC_BIN = os.environ.get("GRADC_BIN", os.path.join(ROOT, "build", "gradc"))
MODELS = os.path.join(ROOT, "models")


def write_idx(directory, split, images, labels, compress=False):
    """images (n, rows, cols) uint8 and labels (n,) as IDX files."""
    n, rows, cols = images.shape
    head = np.array([2051, n, rows, cols], dtype=">u4").tobytes()
    opener = gzip.open if compress else open
    ext = ".gz" if compress else ""
    with opener(os.path.join(directory, "%s-images-idx3-ubyte%s" % (split, ext)), "wb") as f:
        f.write(head + images.astype(np.uint8).tobytes())
    with opener(os.path.join(directory, "%s-labels-idx1-ubyte%s" % (split, ext)), "wb") as f:
        f.write(np.array([2049, n], dtype=">u4").tobytes() + labels.astype(np.uint8).tobytes())


def read_idx(directory, split):
    """The arrays gradc's loader makes of the files: pixels scaled to
    [0, 1] as runtime/data.c does ((float)v / 255.0f), labels as i32."""
    def raw(name):
        path = os.path.join(directory, name)
        opener = gzip.open if os.path.exists(path + ".gz") else open
        with opener(path + (".gz" if opener is gzip.open else ""), "rb") as f:
            return f.read()
    img = raw("%s-images-idx3-ubyte" % split)
    lab = raw("%s-labels-idx1-ubyte" % split)
    n, rows, cols = np.frombuffer(img, ">u4", 3, 4)
    x = np.frombuffer(img, np.uint8, offset=16).reshape(n, rows * cols).astype(np.float32) / np.float32(255)
    y = np.frombuffer(lab, np.uint8, offset=8).astype(np.int32)
    return x, y


def synthetic(n, seed):
    """28x28 images of 10 classes: class c lights rows 2c..2c+2, plus noise."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % 10
    images = rng.randint(0, 60, size=(n, 28, 28))
    for c in range(10):
        images[labels == c, 2 * c:2 * c + 3, :] += 150
    return images.astype(np.uint8), labels


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    write_idx(str(d), "train", *synthetic(300, 1), compress=True)
    write_idx(str(d), "t10k", *synthetic(100, 2))
    return str(d)


@pytest.fixture(scope="session")
def gradc_bin():
    if not os.path.exists(GRADC_BIN):
        pytest.fail("no gradc binary at %s (build first, or set GRADC_BIN)" % GRADC_BIN)
    return GRADC_BIN


_QUIET_DIR = []


def run_gradc(*args, cwd=None):
    """gradc with args, in cwd or a temporary directory of its own: train
    writes MODEL_history.csv where it runs, never into the source tree."""
    if cwd is None:
        if not _QUIET_DIR:
            _QUIET_DIR.append(tempfile.mkdtemp(prefix="gradc-pytest-"))
            atexit.register(shutil.rmtree, _QUIET_DIR[0], True)
        cwd = _QUIET_DIR[0]
    p = subprocess.run([GRADC_BIN] + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode:
        raise AssertionError("gradc %s failed (%d): %s%s" % (" ".join(map(str, args)), p.returncode, p.stdout,
                                                            p.stderr))
    return p.stdout
