"""gradc's failures as Python exceptions with gradc's message: a wrong
model file (ModelError with file, line, column), wrong dtypes and shapes
(what was expected and what came), unknown names, checkpoints of another
model, missing files."""
import os

import numpy as np
import pytest

import gradc
from conftest import MODELS

MLP = os.path.join(MODELS, "mnist_mlp.nn")


@pytest.fixture(scope="module")
def mlp():
    return gradc.compile(MLP, threads=1)


def test_model_error_has_the_location(tmp_path):
    bad = tmp_path / "bad.nn"
    bad.write_text("input x : f32[batch, 784]\nparam W : f32[512, 10] = zeros\nlogits = x @ W\n")
    with pytest.raises(gradc.ModelError) as e:
        gradc.compile(str(bad))
    assert (e.value.file, e.value.line, e.value.col) == (str(bad), 3, 12)
    assert "matmul inner dimensions differ" in str(e.value) and "logits = x @ W" in str(e.value)
    assert e.value.status == 1 and isinstance(e.value, ValueError)


def test_model_error_from_a_string():
    with pytest.raises(gradc.ModelError) as e:
        gradc.compile("input x : f32[batch, 3]\ny = relu(x, 2)\n", name="mine.nn")
    assert e.value.file == "mine.nn" and e.value.line == 2


def test_missing_file_is_a_file_error():
    with pytest.raises(gradc.FileError, match="nope.nn"):
        gradc.compile("/nonexistent/nope.nn")


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.uint8])
def test_wrong_dtype_says_what_was_expected(mlp, dtype):
    with pytest.raises(gradc.DataError) as e:
        mlp.feed(x=np.zeros((4, 784), dtype), y=np.zeros(4, np.int32))
    assert str(e.value) == ("input 'x' is f32[batch,784]: expected a float32 array, got %s "
                            "(convert with .astype(np.float32))" % np.dtype(dtype))


def test_wrong_label_dtype(mlp):
    with pytest.raises(gradc.DataError, match=r"input 'y' is i32\[batch\]: expected an int32 array, got int64"):
        mlp.feed(x=np.zeros((4, 784), np.float32), y=np.zeros(4, np.int64))


@pytest.mark.parametrize("shape", [(4, 783), (4, 28, 28), (784,), (4, 784, 1)])
def test_wrong_shape_says_the_expected_shape(mlp, shape):
    with pytest.raises(gradc.ShapeError) as e:
        mlp.feed(x=np.zeros(shape, np.float32))
    assert "input 'x' is f32[batch,784]: expected an array of shape (batch, 784), got shape %s" % (shape,) \
        == str(e.value)


def test_inputs_must_agree_on_the_batch(mlp):
    with pytest.raises(gradc.ShapeError, match="input 'y' has 5 samples but another input has 4"):
        mlp.feed(x=np.zeros((4, 784), np.float32), y=np.zeros(5, np.int32))
    with pytest.raises(gradc.ShapeError, match="has 5 samples but another input has 4"):
        mlp.fit(np.zeros((4, 784), np.float32), np.zeros(5, np.int32), verbose=0)


def test_fit_checks_like_feed(mlp):
    with pytest.raises(gradc.DataError, match="expected a float32 array, got float64"):
        mlp.fit(np.zeros((8, 784)), np.zeros(8, np.int32), verbose=0)
    with pytest.raises(gradc.ShapeError, match=r"expected an array of shape \(batch, 784\), got shape \(8, 28, 28\)"):
        mlp.fit(np.zeros((8, 28, 28), np.float32), np.zeros(8, np.int32), verbose=0)
    with pytest.raises(gradc.ArgumentError, match="inputs are x, y"):
        mlp.fit(np.zeros((8, 784), np.float32), verbose=0)


def test_unknown_names(mlp):
    with pytest.raises(gradc.ArgumentError, match="no input 'z'; its inputs are x, y"):
        mlp.feed(z=np.zeros(3, np.float32))
    with pytest.raises(gradc.ArgumentError, match="no tensor 'W9'"):
        mlp["W9"]
    with pytest.raises(gradc.ArgumentError, match="rho") as e:
        mlp.set_hyper("beta1", 0.5)
    assert "lr" in str(e.value)
    with pytest.raises(gradc.ArgumentError, match="train"):
        mlp.step("critic")


def test_checkpoint_of_another_model(tmp_path):
    other = gradc.compile("input x : f32[batch, 2]\nparam w : f32[2] = ones\nloss = mean(x * w)\n"
                          "train loss with sgd(lr=0.1)\n", name="other.nn")
    other.save(tmp_path / "other.ckpt")
    m = gradc.compile(MLP, threads=1)
    w = m["W1"].copy()
    with pytest.raises(gradc.CheckpointError):
        m.load(tmp_path / "other.ckpt")
    assert np.array_equal(m["W1"], w)                 # unchanged on failure
    with pytest.raises(gradc.FileError, match="missing.ckpt"):
        m.load(tmp_path / "missing.ckpt")


def test_batch_out_of_range(mlp):
    with pytest.raises(gradc.ShapeError):
        mlp.bind(0)
