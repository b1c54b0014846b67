"""cmake --install puts the package next to the library: imported from an
installed prefix, with no GRADC_LIB, it loads that prefix's libgradc.so
(found through _install.py) and trains the installed model file; moved
to another directory, it still does."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

BUILD = os.environ.get("GRADC_BUILD_DIR", os.path.join(ROOT, "build"))

SCRIPT = """
import numpy as np, gradc, os
from gradc import _lib
m = gradc.compile(os.path.join(%r, "share/gradc/models/mnist_mlp.nn"), threads=1)
m.feed(x=np.zeros((2, 784), np.float32), y=np.zeros(2, np.int32))
print(round(m.step(), 4), _lib.load_library("gradc")._name, gradc.__file__)
"""


def run_installed(prefix, pydir):
    env = {k: v for k, v in os.environ.items() if k not in ("GRADC_LIB", "GRADC_RUNTIME_LIB", "PYTHONPATH")}
    env["PYTHONPATH"] = os.path.join(prefix, pydir)
    out = subprocess.run([sys.executable, "-c", SCRIPT % prefix], env=env, cwd="/", stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_installed_package_finds_its_library(tmp_path):
    if not shutil.which("cmake") or not os.path.exists(os.path.join(BUILD, "cmake_install.cmake")):
        pytest.skip("no cmake or no build tree at %s" % BUILD)
    prefix = str(tmp_path / "prefix")
    subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], check=True, stdout=subprocess.DEVNULL)
    pydir = "lib/python3/dist-packages"
    assert os.path.exists(os.path.join(prefix, pydir, "gradc", "_install.py"))
    loss, lib, module = run_installed(prefix, pydir)
    assert float(loss) == pytest.approx(2.3026, abs=1e-4)        # log(10): zero inputs
    assert lib.startswith(os.path.join(prefix, "lib")) and module.startswith(prefix)
    moved = str(tmp_path / "moved")
    os.rename(prefix, moved)
    loss, lib, module = run_installed(moved, pydir)
    assert lib.startswith(moved) and module.startswith(moved)
