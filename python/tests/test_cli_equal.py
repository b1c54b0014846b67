"""The numbers of a Python run equal the command line's, bit for bit, for
the same seed: the checkpoint after fit is byte for byte the one `gradc
train --save` writes, its history the CLI's history CSV, and evaluate the
CLI's eval; summary counts what `gradc summary` counts."""
import csv
import os

import numpy as np

import gradc
from conftest import MODELS, read_idx, run_gradc

MLP = os.path.join(MODELS, "mnist_mlp.nn")


def test_fit_checkpoint_is_the_clis(mnist_dir, gradc_bin, tmp_path):
    cli_ckpt, history = tmp_path / "cli.ckpt", tmp_path / "history.csv"
    run_gradc("train", MLP, "--data", mnist_dir, "--epochs", 3, "--batch", 32, "--seed", 7, "--val-split", 0.2,
              "--threads", 1, "--no-test", "--save", cli_ckpt, "--history", history)
    x, y = read_idx(mnist_dir, "train")
    m = gradc.compile(MLP, threads=1, seed=7)
    h = m.fit(x, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0)
    py_ckpt = tmp_path / "py.ckpt"
    m.save(py_ckpt)
    assert py_ckpt.read_bytes() == cli_ckpt.read_bytes()
    with open(history) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 == len(h.history["loss"])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [float(r[key]) for r in rows] == [float("%.6f" % v) for v in h.history[key]], key


def test_other_seed_other_checkpoint(mnist_dir, gradc_bin, tmp_path):
    """The comparison above can fail: fit's order depends on the seed."""
    x, y = read_idx(mnist_dir, "train")
    a, b = gradc.compile(MLP, threads=1, seed=7), gradc.compile(MLP, threads=1, seed=7)
    a.fit(x, y, epochs=1, batch_size=32, verbose=0)
    b.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=8)
    assert not np.array_equal(a["W1"], b["W1"])


def test_evaluate_is_the_clis_eval(mnist_dir, gradc_bin, tmp_path):
    ckpt = tmp_path / "cli.ckpt"
    run_gradc("train", MLP, "--data", mnist_dir, "--epochs", 1, "--batch", 50, "--seed", 3, "--threads", 1,
              "--no-test", "--save", ckpt)
    out = run_gradc("eval", MLP, "--load", ckpt, "--data", mnist_dir, "--batch", 40)
    m = gradc.compile(MLP, threads=1)
    m.load(ckpt)
    x, y = read_idx(mnist_dir, "t10k")
    logs = m.evaluate(x, y, batch_size=40, return_dict=True)
    assert "test: 100 samples - test_loss: %.4f - test_accuracy: %.4f" % (logs["loss"], logs["accuracy"]) in out
    loss, accuracy = m.evaluate(x, y, batch_size=40)
    assert (loss, accuracy) == (logs["loss"], logs["accuracy"])


def test_predict_is_the_clis(mnist_dir, gradc_bin, tmp_path):
    ckpt = tmp_path / "cli.ckpt"
    run_gradc("train", MLP, "--data", mnist_dir, "--epochs", 1, "--batch", 50, "--threads", 1, "--no-test",
              "--save", ckpt)
    out = run_gradc("predict", MLP, "--load", ckpt, "--data", mnist_dir, "--count", 20)
    m = gradc.compile(MLP, threads=1)
    m.load(ckpt)
    x, _ = read_idx(mnist_dir, "t10k")
    probs = m.predict(x[:20], batch_size=7)
    assert probs.shape == (20, 10) and probs.dtype == np.float32
    rows = [line.split() for line in out.splitlines()[1:21]]
    assert [int(r[1]) for r in rows] == list(probs.argmax(axis=1))
    assert [r[3] for r in rows] == ["%.4f" % p for p in probs.max(axis=1)]


def test_summary_counts_what_the_cli_counts(gradc_bin):
    cli = run_gradc("summary", MLP)
    text = gradc.compile(MLP, threads=1).summary(print_fn=lambda s: None)
    total = [line for line in text.splitlines() if line.startswith("Total params:")]
    assert total == ["Total params: 407,050"]
    assert "Total params: 407,050" in cli
