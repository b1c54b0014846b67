"""A compiled model driven with NumPy arrays: one class over the C API.

A Model is a handle of include/gradc.h (compile, compile_string) or of a
shared object's <prefix>_* entry points (load_so); _lib.Api makes the two
look alike, so every method below is written once.  Nothing is computed
here that the C side computes: steps, checkpoints, initial values, the
shuffle order (gradc_shuffle) are the library's; this file checks arrays,
moves them in and out without Python loops over samples, and turns status
codes into exceptions.

Memory.  m["W1"] is a NumPy array over the tensor's own storage, not a copy
(its __array_interface__ points at what gradc_data returns), and the array
keeps the model alive.  Parameters and optimizer state live in one block
allocated with the model: their views stay valid as long as they exist.
Inputs, outputs, metrics and the loss live in the workspace of the current
batch size: their views are valid until the batch size changes (m.bind,
m.feed or fit/evaluate/predict with another batch size), after which the
memory may belong to another binding or be freed - ask m[name] again.

Threads.  ctypes lets go of the GIL during every C call, so a step runs
while other Python threads do.  A model is used by one thread at a time
(gradc.h); each model holds a lock so that two threads sharing one wait
for each other instead of corrupting it.  Two models step in parallel.
"""
import ctypes
import math
import sys
import threading
import time

import numpy as np

from . import _lib
from .errors import ArgumentError, DataError, ShapeError, for_status

DTYPES = {0: np.dtype(np.float32), 1: np.dtype(np.float64), 2: np.dtype(np.int32), 3: np.dtype(np.bool_)}
DTYPE_NAMES = {0: "f32", 1: "f64", 2: "i32", 3: "bool"}
KINDS = ("input", "param", "state", "output", "metric", "loss")
INPUT, PARAM, STATE, OUTPUT, METRIC, LOSS = range(6)
WRITABLE = (INPUT, PARAM, STATE)


class _Storage:
    """What a view's base is: the tensor's memory, as NumPy's array
    interface describes it, and the model that owns it."""
    __slots__ = ("__array_interface__", "model")

    def __init__(self, model, address, shape, dtype, writable):
        self.__array_interface__ = {"data": (address, not writable), "shape": shape,
                                    "typestr": dtype.str, "version": 3}
        self.model = model
        model._nviews += 1

    def __del__(self):
        self.model._nviews -= 1
        if self.model._closed and not self.model._nviews:
            self.model._free()


class TensorInfo:
    """A named tensor: name, kind ("param", ...), dtype (NumPy), shape
    under the current binding (None for a symbolic dimension before any
    binding) and which dimensions are symbolic."""

    def __init__(self, t):
        self.name = t.name.decode()
        self.kind = KINDS[t.kind]
        self.kind_id = t.kind
        self.dtype = DTYPES[t.dtype]
        self.dtype_name = DTYPE_NAMES[t.dtype]
        self.symbolic = tuple(bool(t.symbolic[k]) for k in range(t.rank))
        self.shape = tuple(None if t.dims[k] < 0 else int(t.dims[k]) for k in range(t.rank))

    def declared(self):
        """"f32[batch,784]": the declaration, symbolic dimensions by name."""
        dims = ",".join("batch" if s else str(d) for s, d in zip(self.symbolic, self.shape))
        return "%s[%s]" % (self.dtype_name, dims)

    def __repr__(self):
        return "TensorInfo(%s %s %s)" % (self.kind, self.name, self.declared())


class History:
    """What fit returns, as Keras' History: history maps 'loss', each
    metric and their 'val_' versions to one value per epoch."""

    def __init__(self):
        self.history = {}
        self.epoch = []


class Model:
    """A compiled model.  Made by gradc.compile or gradc.load_so."""

    def __init__(self, api, handle, seed, name):
        self._api = api
        self._m = ctypes.c_void_p(handle)
        self._closed = False
        self._nviews = 0                # _Storage objects alive: arrays over our memory
        self._lock = threading.RLock()
        self._seed = seed
        self.name = name
        self.stop_training = False
        self._gen = 0                  # counts re-bindings: cached views die with them
        self._cache = {}               # name -> (gen, array): workspace views of this binding
        self._batch = None             # fit's views of the inputs and metrics
        # Tensors by index (gradc_tensor_info's), and by name the first of
        # that name: a loss may also be an output (himmelblau's f), and
        # both are one storage.
        self._list, self._index, self._info = [], {}, {}
        t = api.tensor_type()
        for i in range(api.tensor_count(self._m)):
            self._check(api.tensor_info(self._m, i, ctypes.byref(t)))
            info = TensorInfo(t)
            self._list.append(info)
            self._index.setdefault(info.name, i)
            self._info.setdefault(info.name, info)
        self.inputs = self._names(INPUT)
        self.outputs_names = self._names(OUTPUT)
        self.metrics_names = self._names(METRIC)
        self.steps = [api.step_name(self._m, i).decode() for i in range(api.step_count(self._m))]

    # ---------------------------------------------------------------- basics

    def close(self):
        """Ends the model: no call works on it afterwards.  Its memory is
        freed now, or when the last view of it goes, so that no array ever
        points at freed memory."""
        with self._lock:
            self._closed = True
            self._cache.clear()             # our own views go; the caller's keep the memory
            self._batch = None
            if not self._nviews:
                self._free()

    def _free(self):
        if self._m is not None and self._m.value:
            self._api.free(self._m)
        self._m = None

    def __del__(self):
        try:
            self._free()
        except Exception:   # interpreter shutdown: ctypes may be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._closed or not self._m:
            raise ArgumentError("the model was closed")
        return self._m

    def _check(self, status):
        if status:
            raise for_status(status, self._api.last_error(self._m).decode(errors="replace"))

    def _refresh(self, name):
        """Re-reads a tensor's shape after a binding."""
        t = self._api.tensor_type()
        for i, info in enumerate(self._list):
            if info.name == name:
                self._check(self._api.tensor_info(self._handle(), i, ctypes.byref(t)))
                self._list[i] = TensorInfo(t)
        self._info[name] = self._list[self._index[name]]
        return self._info[name]

    def _names(self, kind):
        return [t.name for t in self._list if t.kind_id == kind]

    @property
    def warnings(self):
        """The compilation's warnings (unused parameters, ...), "" if none."""
        return self._api.warnings(self._handle()).decode()

    @property
    def compile_ms(self):
        return self._api.compile_ms(self._handle())

    def tensors(self):
        """Every named tensor's TensorInfo, in gradc_tensor_info's order."""
        for n in list(self._info):
            self._refresh(n)
        return list(self._list)

    def summary(self, print_fn=None):
        """The parameter table, Keras style; printed (by print_fn) and returned."""
        rows = [(t.name, t) for t in self._list if t.kind_id == PARAM]
        width = max([len(n) for n, _ in rows] + [9]) + 2
        lines = ['Model: "%s"' % self.name, "_" * (width + 40),
                 "%-*s%-26s%s" % (width, "Parameter", "Shape", "Param #"), "=" * (width + 40)]
        total = 0
        for n, t in rows:
            count = int(np.prod(t.shape, dtype=np.int64)) if None not in t.shape else 0
            total += count
            lines.append("%-*s%-26s%s" % (width, n, t.declared(), format(count, ",")))
        lines += ["=" * (width + 40), "Total params: %s" % format(total, ","), "_" * (width + 40)]
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    # -------------------------------------------------------------- binding

    def bind(self, batch):
        """Sets the batch size (every symbolic dimension) and allocates its
        workspace; views of inputs and outputs taken before are void."""
        with self._lock:
            self._check(self._api.bind(self._handle(), int(batch)))
            self._rebound()

    def bind_dim(self, dim, value):
        """Sets one symbolic dimension by name (`n` of `f32[batch, n]`)."""
        with self._lock:
            self._check(self._api.bind_dim(self._handle(), dim.encode(), int(value)))
            self._rebound()

    def _rebound(self):
        """After a binding: views of the workspace are stale, shapes new."""
        self._gen += 1
        for name in set(t.name for t in self._list if t.kind_id not in (PARAM, STATE)):
            self._refresh(name)

    # ---------------------------------------------------------------- views

    def _view(self, name):
        self._handle()
        info = self._info.get(name)
        if info is None:
            raise ArgumentError("the model has no tensor '%s'; it has %s" % (name, ", ".join(self._info)))
        cached = self._cache.get(name)
        if cached and cached[0] == self._gen:
            return cached[1]
        count = ctypes.c_int64()
        address = self._api.data(self._handle(), name.encode(), ctypes.byref(count))
        if not address:
            raise for_status(7, self._api.last_error(self._m).decode(errors="replace") or
                             "tensor '%s' has no storage yet: bind a batch size first (m.bind)" % name)
        array = np.asarray(_Storage(self, address, info.shape, info.dtype, info.kind_id in WRITABLE))
        if array.size != count.value:
            raise ShapeError("tensor '%s': %d elements, but its shape %s says %d" %
                             (name, count.value, info.shape, array.size))
        self._cache[name] = (self._gen, array)
        return array

    def __getitem__(self, name):
        """The tensor's storage as a NumPy array, without a copy: writable
        for inputs, parameters and state, read-only for outputs, metrics
        and the loss.  See the module's notes on how long it stays valid."""
        with self._lock:
            return self._view(name)

    def __setitem__(self, name, value):
        """Copies value into the tensor (an input, parameter or state)."""
        with self._lock:
            view = self._view(name)
            if not view.flags.writeable:
                raise ArgumentError("'%s' is an %s: only inputs, parameters and state can be written"
                                    % (name, self._info[name].kind))
            value = np.asarray(value)
            self._check_array(name, value, view.shape)
            np.copyto(view, value)

    def __contains__(self, name):
        return name in self._info

    def _check_array(self, name, array, shape, what="input"):
        info = self._info[name]
        if array.dtype != info.dtype:
            article = "an" if str(info.dtype)[0] in "aeiou" else "a"
            raise DataError("%s '%s' is %s: expected %s %s array, got %s (convert with .astype(np.%s))"
                            % (what, name, info.declared(), article, info.dtype, array.dtype, info.dtype))
        if tuple(array.shape) != tuple(shape):
            expected = tuple("batch" if s else d for s, d in zip(info.symbolic, shape))
            raise ShapeError("%s '%s' is %s: expected an array of shape (%s), got shape %s"
                             % (what, name, info.declared(), ", ".join(str(d) for d in expected) +
                                ("," if len(expected) == 1 else ""), tuple(array.shape)))

    def feed(self, **arrays):
        """Copies arrays into the inputs they name (m.feed(x=..., y=...)),
        binding the batch size of their first dimension when it changes.
        Each array must have the input's dtype and shape exactly; the
        exception says what was expected."""
        with self._lock:
            arrays = {k: np.asarray(v) for k, v in arrays.items()}
            batch, bound, others = None, None, False
            for name, a in arrays.items():
                info = self._info.get(name)
                if info is None or info.kind_id != INPUT:
                    raise ArgumentError("the model has no input '%s'; its inputs are %s"
                                        % (name, ", ".join(self.inputs)))
                if a.dtype != info.dtype or a.ndim != len(info.shape):
                    self._check_array(name, a, info.shape)
                others |= any(info.symbolic[1:])
                if info.symbolic and info.symbolic[0]:
                    if batch is not None and a.shape[0] != batch:
                        raise ShapeError("input '%s' has %d samples but another input has %d"
                                         % (name, a.shape[0], batch))
                    batch, bound = a.shape[0], info.shape[0]
            if batch is not None and batch != bound:
                if batch < 1:
                    raise ShapeError("cannot feed 0 samples")
                # Other symbolic dimensions keep their binding (bind_dim);
                # the batch alone is the first dimension's.
                if others:
                    self.bind_dim("batch", batch)
                else:
                    self.bind(batch)
            for name, a in arrays.items():
                view = self._view(name)
                self._check_array(name, a, view.shape)
                np.copyto(view, a)

    # ---------------------------------------------------------------- steps

    def forward(self):
        """Runs the forward function: outputs and metrics from the inputs."""
        with self._lock:
            self._check(self._api.forward(self._handle()))

    def step(self, name=None):
        """One training step on the fed batch (the step called name, for
        models with several train statements); returns its loss."""
        loss = ctypes.c_double()
        with self._lock:
            self._check(self._api.step(self._handle(), name.encode() if name else None, ctypes.byref(loss)))
        return loss.value

    def outputs(self):
        """The outputs after a step or forward, as copies: name -> array."""
        with self._lock:
            return {n: self._view(n).copy() for n in self.outputs_names}

    def metrics(self):
        """The metrics after a step or forward: name -> float."""
        with self._lock:
            return {n: float(self._view(n)) for n in self.metrics_names}

    def set_hyper(self, name, value, step=None):
        """Sets an optimizer scalar the step reads every time ("lr",
        "beta1", ...): the next step uses it, no recompilation."""
        with self._lock:
            self._check(self._api.set_hyper(self._handle(), step.encode() if step else None, name.encode(),
                                            float(value)))

    def get_hyper(self, name, step=None):
        value = ctypes.c_double()
        with self._lock:
            self._check(self._api.get_hyper(self._handle(), step.encode() if step else None, name.encode(),
                                            ctypes.byref(value)))
        return value.value

    def set_row_offset(self, first_row):
        """Data-parallel training: the global index of the bound batch's
        first row, for the random ops (dropout, random_normal, ...): row j
        draws as row first_row + j, so replicas stepping on consecutive
        shards of a global batch draw what one model stepping on the
        whole batch draws (gradc_set_row_offset)."""
        with self._lock:
            self._check(self._api.set_row_offset(self._handle(), int(first_row)))

    def init(self, seed):
        """Re-initialises parameters and optimizer state from seed (which
        fit also shuffles by, as `gradc train --seed`)."""
        with self._lock:
            self._check(self._api.init(self._handle(), int(seed)))
            self._seed = int(seed)

    def save(self, path):
        """Writes a checkpoint: the CLI's and a .so's format, byte for byte."""
        with self._lock:
            self._check(self._api.save(self._handle(), str(path).encode()))

    def load(self, path):
        """Reads a checkpoint (checked against the model; unchanged on failure)."""
        with self._lock:
            self._check(self._api.load(self._handle(), str(path).encode()))

    # ------------------------------------------------------ fit and friends

    def _arrays(self, x, y, need_all=True):
        """fit's x and y as {input: array}: x a dict by input name, or the
        arrays of the inputs in declaration order (x, then y).  A model
        without inputs (Himmelblau) takes one sample: one step an epoch,
        as gradc train does."""
        if not self.inputs and x is None and y is None:
            return {}, 1
        if isinstance(x, dict):
            arrays = dict(x)
            if y is not None:
                rest = [n for n in self.inputs if n not in arrays]
                if len(rest) != 1:
                    raise ArgumentError("y is given but the inputs left after x's are %s" % (rest or "none"))
                arrays[rest[0]] = y
        else:
            seq = list(x) if isinstance(x, (list, tuple)) else [x]
            if y is not None:
                seq.append(y)
            if len(seq) > len(self.inputs) or (need_all and len(seq) != len(self.inputs)):
                raise ArgumentError("the model's inputs are %s (in declaration order); got %d arrays"
                                    % (", ".join(self.inputs), len(seq)))
            arrays = dict(zip(self.inputs, seq))
        n = None
        out = {}
        for name, a in arrays.items():
            info = self._info.get(name)
            if info is None or info.kind_id != INPUT:
                raise ArgumentError("the model has no input '%s'; its inputs are %s" % (name, ", ".join(self.inputs)))
            a = np.ascontiguousarray(a)
            if a.dtype != info.dtype or a.ndim != len(info.shape):
                self._check_array(name, a, info.shape)
            if not info.symbolic or not info.symbolic[0]:
                raise ArgumentError("input '%s' is %s: fit, evaluate and predict need the batch as its first "
                                    "dimension; use feed and step" % (name, info.declared()))
            self._check_array(name, a, tuple(a.shape[k] if s else d for k, (s, d) in
                                             enumerate(zip(info.symbolic, info.shape))))
            if n is not None and a.shape[0] != n:
                raise ShapeError("input '%s' has %d samples but another input has %d" % (name, a.shape[0], n))
            n = a.shape[0]
            out[name] = a
        if need_all and len(out) != len(self.inputs):
            raise ArgumentError("inputs %s are not given" % [i for i in self.inputs if i not in out])
        return out, n or 0

    def _batch_views(self, bs):
        """Binds batch size bs (when it is not already) and returns the
        views of the inputs, the loss and the metrics under it."""
        if self._bound != bs:
            self.bind(bs)
            self._bound = bs
            self._batch = ({n: self._view(n) for n in self.inputs},
                           [self._view(n) for n in self.metrics_names])
        return self._batch

    def _run_batches(self, arrays, n, batch_size, order, train, step_name, on_batch=None):
        """Steps (train) or forwards over the samples in order, batch by
        batch; the loss and metric means weighted by batch size, as the
        CLI's fit loop computes them."""
        api, m = self._api, self._handle()
        loss = ctypes.c_double()
        name = step_name.encode() if step_name else None
        loss_name = self._loss_name(step_name)
        sums = np.zeros(1 + len(self.metrics_names))
        self._bound = None
        for batch, at in enumerate(range(0, n, batch_size)):
            bs = min(batch_size, n - at)
            inputs, metrics = self._batch_views(bs)
            idx = order[at:at + bs] if order is not None else slice(at, at + bs)
            for k, view in inputs.items():
                if order is not None:
                    np.take(arrays[k], idx, axis=0, out=view)
                elif k in arrays:
                    view[...] = arrays[k][idx]
                else:
                    view[...] = 0      # an input predict was not given (labels)
            if train:
                self._check(api.step(m, name, ctypes.byref(loss)))
                value = loss.value
            else:
                self._check(api.forward(m))
                value = float(self._view(loss_name)) if loss_name else 0.0
            sums[0] += value * bs
            for i, view in enumerate(metrics):
                sums[1 + i] += float(view) * bs
            if on_batch:
                on_batch(batch, at, bs, value)
        means = sums / max(n, 1)
        logs = {"loss": float(means[0])} if train or loss_name else {}
        logs.update({k: float(v) for k, v in zip(self.metrics_names, means[1:])})
        return logs

    def _loss_name(self, step_name):
        losses = self._names(LOSS)
        if not losses:
            return None
        if step_name and len(self.steps) > 1 and step_name in self.steps:
            return losses[self.steps.index(step_name)] if len(losses) == len(self.steps) else losses[0]
        return losses[0]

    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, seed=None, step=None):
        """Trains like Keras' fit and returns a History.  x and y are the
        inputs' arrays (x a dict by name, or arrays in declaration order);
        batches are taken in gradc_shuffle's order for (seed, epoch) - the
        model's seed unless given - so that fit trains exactly as
        `gradc train --seed SEED --batch N --val-split F` on the same data.
        validation_split holds out the last fraction (Keras and the CLI).
        Callbacks get Keras' on_train_begin/end, on_epoch_begin/end(epoch,
        logs) and on_train_batch_end(batch, logs); setting
        model.stop_training ends training after the epoch."""
        with self._lock:
            arrays, n = self._arrays(x, y)
            val = None
            if validation_data is not None:
                vx, vy = (validation_data + (None,))[:2] if isinstance(validation_data, tuple) else (validation_data, None)
                val = self._arrays(vx, vy)
            elif validation_split:
                if not 0 <= validation_split < 1:
                    raise ArgumentError("validation_split must be at least 0 and less than 1, got %g" % validation_split)
                # floor(n * frac) forgiving a decimal's rounding: runtime/data.c's data_split.
                nval = int(math.floor(n * validation_split * (1 + 2.0 ** -50)))
                keep = n - nval
                val = ({k: a[keep:] for k, a in arrays.items()}, nval) if nval else None
                arrays = {k: a[:keep] for k, a in arrays.items()}
                n = keep
            if n < 1:
                raise DataError("no training samples%s" % (" left after the validation split" if validation_split else ""))
            if batch_size < 1:
                raise ArgumentError("batch_size must be at least 1, got %d" % batch_size)
            seed = self._seed if seed is None else int(seed)
            callbacks = list(callbacks or [])
            for cb in callbacks:
                if hasattr(cb, "set_model"):
                    cb.set_model(self)
            per_batch = [cb.on_train_batch_end for cb in callbacks if hasattr(cb, "on_train_batch_end")]
            on_batch = (lambda b, at, bs, loss: [f(b, {"loss": loss}) for f in per_batch]) if per_batch else None
            history = History()
            self.stop_training = False
            _call(callbacks, "on_train_begin", {})
            order = np.empty(n, dtype=np.int64)
            runtime = _lib.load_library("gradc_runtime")
            for epoch in range(initial_epoch, epochs):
                _call(callbacks, "on_epoch_begin", epoch, {})
                if shuffle:
                    runtime.gradc_shuffle(order.ctypes.data_as(_lib.PI64), n, seed, epoch)
                else:
                    order[:] = np.arange(n)
                t0 = time.perf_counter()
                logs = self._run_batches(arrays, n, batch_size, order, True, step, on_batch)
                seconds = time.perf_counter() - t0
                if val is not None:
                    vlogs = self._run_batches(val[0], val[1], batch_size, None, False, step)
                    logs.update({"val_" + k: v for k, v in vlogs.items()})
                history.epoch.append(epoch)
                for k, v in logs.items():
                    history.history.setdefault(k, []).append(v)
                if verbose:
                    steps = (n + batch_size - 1) // batch_size
                    print("Epoch %d/%d\n%d/%d - %.0fs - %.0fms/step%s" % (
                        epoch + 1, epochs, steps, steps, seconds, 1e3 * seconds / steps,
                        "".join(" - %s: %.4f" % kv for kv in logs.items())))
                    sys.stdout.flush()
                _call(callbacks, "on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
            _call(callbacks, "on_train_end", {})
            self.history = history
            return history

    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, return_dict=False, step=None):
        """Loss and metrics over the data, forward only (Keras' evaluate):
        the loss alone for a model without metrics, else [loss, metric...],
        or a dict with return_dict."""
        with self._lock:
            arrays, n = self._arrays(x, y)
            logs = self._run_batches(arrays, n, batch_size, None, False, step)
        if verbose:
            print("".join("%s: %.4f - " % kv for kv in logs.items()).rstrip(" -"))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0):
        """The outputs for x (Keras' predict): one array for a model with
        one output, else a dict by output name.  Inputs that x does not
        give (the labels) are fed zeros."""
        with self._lock:
            arrays, n = self._arrays(x, None, need_all=False)
            results = {}

            def keep(batch, at, bs, loss):
                for name in self.outputs_names:
                    out = self._view(name)
                    if out.ndim == 0 or out.shape[0] != bs or not self._info[name].symbolic[0]:
                        raise ArgumentError("predict needs outputs with the batch as first dimension; "
                                            "'%s' is %s: use forward and m['%s']"
                                            % (name, self._info[name].declared(), name))
                    if name not in results:
                        results[name] = np.empty((n,) + out.shape[1:], out.dtype)
                    results[name][at:at + bs] = out
            self._run_batches(arrays, n, batch_size, None, False, None, keep)
        if len(results) == 1:
            return next(iter(results.values()))
        return results


def _call(callbacks, method, *args):
    for cb in callbacks:
        fn = getattr(cb, method, None)
        if fn:
            fn(*args)
