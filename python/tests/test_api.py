"""The rest of the Model API: named train steps, hyperparameters, init,
symbolic dimensions, outputs and metrics, Keras' return values and
callbacks."""
import os

import numpy as np
import pytest

import gradc
from conftest import MODELS, ROOT, read_idx

MLP = os.path.join(MODELS, "mnist_mlp.nn")
TWO_STEPS = os.path.join(ROOT, "tests", "models", "two_steps.nn")


def test_named_steps_train_their_own_parameters():
    m = gradc.compile(TWO_STEPS, threads=1)
    assert m.steps == ["first", "second"]
    rng = np.random.RandomState(0)
    m.feed(x=rng.rand(8, 4).astype(np.float32), y=rng.rand(8, 1).astype(np.float32))
    with pytest.raises(gradc.ArgumentError, match="first"):
        m.step()                                   # several steps: the name is needed
    before = {n: m[n].copy() for n in ("a.w", "b.w")}
    loss = m.step("first")
    assert isinstance(loss, float) and loss > 0
    assert not np.array_equal(m["a.w"], before["a.w"]) and np.array_equal(m["b.w"], before["b.w"])
    m.step("second")
    assert not np.array_equal(m["b.w"], before["b.w"])
    assert m.get_hyper("lr", step="first") == pytest.approx(0.01)
    assert m.get_hyper("momentum", step="second") == pytest.approx(0.9)


def test_set_hyper_is_compiling_with_that_lr():
    x = np.random.RandomState(1).rand(16, 784).astype(np.float32)
    y = (np.arange(16) % 10).astype(np.int32)
    a, b = gradc.compile(MLP, threads=1), gradc.compile(MLP, threads=1, lr=0.01)
    a.set_hyper("lr", 0.01)
    for m in (a, b):
        m.feed(x=x, y=y)
        m.step()
        m.step()
    assert np.array_equal(a["W1"], b["W1"])
    assert a.get_hyper("lr") == 0.01


def test_init_is_compiling_with_that_seed():
    a, b = gradc.compile(MLP, threads=1, seed=1), gradc.compile(MLP, threads=1, seed=4)
    assert not np.array_equal(a["W1"], b["W1"])
    a.init(4)
    assert np.array_equal(a["W1"], b["W1"])


def test_symbolic_dimensions_by_name():
    m = gradc.compile(os.path.join(ROOT, "tests", "aot", "dims.nn"))
    m.bind(2)
    m.bind_dim("n", 3)
    assert m["x"].shape == (2, 3)
    m["x"] = np.arange(6, dtype=np.float32).reshape(2, 3)
    m.forward()
    assert list(m.outputs()["s"]) == [3, 12]
    with pytest.raises(gradc.ArgumentError, match="batch"):
        m.bind_dim("q", 3)


def test_outputs_are_copies_and_metrics_floats():
    m = gradc.compile(MLP, threads=1)
    m.feed(x=np.zeros((3, 784), np.float32), y=np.array([0, 1, 2], np.int32))
    m.forward()
    out = m.outputs()
    assert set(out) == {"probs"} and out["probs"].shape == (3, 10) and out["probs"].flags.owndata
    assert m.metrics() == {"accuracy": pytest.approx(1 / 3)}


def test_keras_return_values(mnist_dir):
    x, y = read_idx(mnist_dir, "train")
    m = gradc.compile(MLP, threads=1)
    h = m.fit({"x": x, "y": y}, epochs=2, batch_size=64, validation_data=(x[:50], y[:50]), verbose=0)
    assert isinstance(h, gradc.History) and h.epoch == [0, 1] and m.history is h
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert h.history["val_loss"][-1] == m.evaluate(x[:50], y[:50], batch_size=64)[0]
    assert isinstance(m.evaluate(x, y, return_dict=True), dict)
    reg = gradc.compile("input x : f32[batch, 2]\ninput y : f32[batch]\nparam w : f32[2] = zeros\n"
                        "output p = sum(x * w, axis=1)\nloss = mean(square(p - y))\ntrain loss with sgd(lr=0.1)\n")
    xs = np.ones((5, 2), np.float32)
    assert isinstance(reg.evaluate(xs, np.ones(5, np.float32)), float)      # no metrics: the loss alone
    assert reg.predict(xs).shape == (5,)


def test_callbacks(mnist_dir):
    x, y = read_idx(mnist_dir, "train")
    m = gradc.compile(MLP, threads=1)
    seen, rates = [], []

    def on_epoch_end(epoch, logs):
        seen.append((epoch, sorted(logs)))
        rates.append(m.get_hyper("lr"))
        if epoch == 2:
            m.stop_training = True
    batches = []
    h = m.fit(x, y, epochs=10, batch_size=100, verbose=0, callbacks=[
        gradc.LearningRateScheduler(lambda epoch, lr: 0.001 / (epoch + 1)),
        gradc.LambdaCallback(on_epoch_end=on_epoch_end, on_train_batch_end=lambda b, logs: batches.append(b))])
    assert h.epoch == [0, 1, 2] and [e for e, _ in seen] == [0, 1, 2]
    assert seen[0][1] == ["accuracy", "loss"]
    assert rates == pytest.approx([0.001, 0.0005, 0.001 / 3])
    assert batches == [0, 1, 2] * 3


def test_closed_model():
    m = gradc.compile(MLP, threads=1)
    w = m["W1"]
    before = w.copy()
    m.close()
    with pytest.raises(gradc.ArgumentError, match="closed"):
        m.step()
    with pytest.raises(gradc.ArgumentError, match="closed"):
        m["W1"]
    assert m._m is not None                        # a view is alive: not freed yet
    junk = [np.ones(1 << 20, np.float32) for _ in range(4)]
    assert np.array_equal(w, before)
    del w, junk
    import gc
    gc.collect()
    assert m._m is None                            # the last view went: freed


def test_a_model_without_inputs_fits_as_the_cli(gradc_bin, tmp_path):
    from conftest import run_gradc
    path = os.path.join(MODELS, "himmelblau.nn")
    run_gradc("train", path, "--epochs", 5, "--no-test", "--save", tmp_path / "cli.ckpt", cwd=str(tmp_path))
    m = gradc.compile(path)
    h = m.fit(epochs=5, verbose=0)
    assert len(h.history["loss"]) == 5
    m.save(tmp_path / "py.ckpt")
    assert (tmp_path / "py.ckpt").read_bytes() == (tmp_path / "cli.ckpt").read_bytes()


def test_feed_rebinds_after_a_bind():
    m = gradc.compile(MLP, threads=1)
    m.feed(x=np.zeros((64, 784), np.float32), y=np.zeros(64, np.int32))
    m.bind(8)
    m.feed(x=np.ones((64, 784), np.float32), y=np.zeros(64, np.int32))
    assert m["x"].shape == (64, 784) and m["x"].all()
    d = gradc.compile(os.path.join(ROOT, "tests", "aot", "dims.nn"))
    d.bind(2)
    d.bind_dim("n", 3)
    d.feed(x=np.ones((5, 3), np.float32))              # n stays 3, the batch becomes 5
    d.forward()
    assert list(d.outputs()["s"]) == [3] * 5
    with pytest.raises(gradc.ShapeError, match=r"expected an array of shape \(batch, batch\), got shape \(5, 4\)"):
        d.feed(x=np.ones((5, 4), np.float32))


def test_predict_refuses_outputs_that_are_not_per_sample():
    m = gradc.compile(os.path.join(MODELS, "himmelblau.nn"))
    with pytest.raises(gradc.ArgumentError, match=r"'f' is f32\[\]: use forward"):
        m.predict(None)


def test_row_offset_makes_shards_draw_the_whole_batch(tmp_path):
    src = tmp_path / "draws.nn"
    src.write_text("output r = random_normal([batch, 3])\n")
    whole, shard = gradc.compile(str(src), seed=7), gradc.compile(str(src), seed=7)
    whole.bind(5)
    whole.forward()
    r = whole.outputs()["r"]
    shard.bind(2)
    shard.forward()
    assert np.array_equal(shard.outputs()["r"], r[:2])
    shard.set_row_offset(3)
    shard.forward()                                # forward draws the same again: rows 3 and 4
    assert np.array_equal(shard.outputs()["r"], r[3:5])
    with pytest.raises(gradc.ArgumentError, match="must be >= 0, got -1"):
        shard.set_row_offset(-1)
