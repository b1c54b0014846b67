"""The README's Python example runs as printed (on the synthetic data in
place of /usr/share/datasets/fashion-mnist) and saves the checkpoint that
the command line the README names as its equal saves."""
import os
import re
import subprocess
import sys

from conftest import MODELS, ROOT, run_gradc


def test_readme_example_is_gradc_train(mnist_dir, gradc_bin, tmp_path):
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 10 <= len(code.strip().splitlines()) <= 16
    claim = re.search(r"`fit` gives exactly what `gradc train ([^`]*)`", section).group(1).split()
    code = code.replace("/usr/share/datasets/fashion-mnist/", mnist_dir + "/")
    code = code.replace('"models/mnist_mlp.nn"', repr(os.path.join(MODELS, "mnist_mlp.nn")))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    p = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    assert p.returncode == 0, p.stderr
    assert "Total params: 407,050" in p.stdout and "val_accuracy" in p.stdout
    epochs = re.search(r"epochs=(\d+)", code).group(1)
    run_gradc("train", os.path.join(MODELS, "mnist_mlp.nn"), "--data", mnist_dir, "--epochs", epochs,
              "--no-test", "--save", tmp_path / "cli.ckpt", *claim, cwd=str(tmp_path))
    assert (tmp_path / "mnist_mlp.ckpt").read_bytes() == (tmp_path / "cli.ckpt").read_bytes()
