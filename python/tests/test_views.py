"""m[name] is a view of the tensor's own storage: the array's pointer is
what gradc_data returns, writes reach the model, outputs are read-only,
parameters' views outlive re-bindings, and a view keeps its model alive."""
import ctypes
import gc
import os

import numpy as np
import pytest

import gradc
from conftest import MODELS

MLP = os.path.join(MODELS, "mnist_mlp.nn")


def gradc_data(m, name):
    count = ctypes.c_int64()
    return m._api.data(m._m, name.encode(), ctypes.byref(count)), count.value


def test_the_arrays_pointer_is_the_parameters():
    m = gradc.compile(MLP, threads=1)
    for name in ("W1", "b1", "W2", "b2"):
        view = m[name]
        address, count = gradc_data(m, name)
        assert view.__array_interface__["data"][0] == address == view.ctypes.data
        assert view.size == count and view.flags.writeable and not view.flags.owndata
    assert m["W1"].shape == (784, 512) and m["W1"].dtype == np.float32


def test_writes_reach_the_model(tmp_path):
    m = gradc.compile(MLP, threads=1)
    m["W2"][...] = 0
    m["b2"][:] = np.arange(10, dtype=np.float32)
    m.feed(x=np.ones((4, 784), np.float32), y=np.zeros(4, np.int32))
    m.forward()
    probs = m["probs"]
    expected = np.exp(np.arange(10)) / np.exp(np.arange(10)).sum()
    np.testing.assert_allclose(probs, np.tile(expected, (4, 1)), rtol=1e-6)
    m.save(tmp_path / "a.ckpt")
    other = gradc.compile(MLP, threads=1, seed=5)
    other.load(tmp_path / "a.ckpt")
    assert not other["W2"].any() and list(other["b2"]) == list(range(10))


def test_outputs_metrics_and_loss_are_read_only():
    m = gradc.compile(MLP, threads=1)
    m.feed(x=np.zeros((2, 784), np.float32), y=np.zeros(2, np.int32))
    m.step()
    for name in ("probs", "accuracy"):
        with pytest.raises(ValueError):
            m[name][...] = 1
    with pytest.raises(gradc.ArgumentError, match="only inputs, parameters and state"):
        m["probs"] = np.zeros((2, 10), np.float32)
    m["x"][0, 0] = 0.5                       # inputs are the caller's to fill
    assert m["x"][0, 0] == 0.5


def test_parameter_views_survive_rebinding():
    m = gradc.compile(MLP, threads=1)
    w = m["W1"]
    address = w.ctypes.data
    m.bind(8)
    x8 = m["x"]
    m.bind(300)
    assert m["x"].shape == (300, 784) and x8.shape == (8, 784)
    assert m["W1"].ctypes.data == address == gradc_data(m, "W1")[0]


def test_a_view_keeps_its_model_alive():
    m = gradc.compile(MLP, threads=1)
    w = m["W1"]
    before = w.copy()
    del m
    gc.collect()
    junk = [np.ones(1 << 20, np.float32) for _ in range(4)]   # reuse freed memory if any was freed
    assert np.array_equal(w, before)
    assert isinstance(w.base.model, gradc.Model)
    del junk


def test_unbound_inputs_say_so():
    m = gradc.compile(MLP, threads=1)
    with pytest.raises(gradc.ArgumentError, match="bind"):
        m["x"]
