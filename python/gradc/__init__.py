"""gradc from Python: compile a model file, feed NumPy arrays, train.

    import gradc
    m = gradc.compile("models/mnist_mlp.nn", opt_level=3, threads=2)
    m.summary()
    history = m.fit(x, y, epochs=5, batch_size=128, validation_split=0.1)
    m.save("mlp.ckpt")

A thin layer over the C API of include/gradc.h (libgradc.so) and over the
shared objects `gradc compile` makes (load_so): the numbers, checkpoints
and batch order are the library's, so a run from Python equals the same
run of `gradc train`, bit for bit.  See model.py for the Model class and
_lib.py for how the libraries are found (GRADC_LIB).
"""
import ctypes
import os

from . import _lib
from .callbacks import Callback, LambdaCallback, LearningRateScheduler
from .errors import (ArgumentError, CheckpointError, DataError, Error, FileError, JitError, ModelError,
                     NumericError, OutOfMemoryError, ShapeError, for_status)
from .model import History, Model, TensorInfo

__all__ = ["compile", "load_so", "Model", "History", "TensorInfo", "Callback", "LambdaCallback",
           "LearningRateScheduler", "Error", "ModelError", "FileError", "DataError", "CheckpointError",
           "ShapeError", "OutOfMemoryError", "ArgumentError", "JitError", "NumericError"]
__version__ = "0.2.0"


def compile(model, opt_level=3, threads=0, seed=1, lr=None, check_numerics=False, name=None):
    """Compiles a model to native code (LLVM JIT) and initialises its
    parameters from seed.  model is a path to a .nn file, or the model's
    source text (anything with a newline); name is then the file name its
    diagnostics show.  threads: the model's threads, 0 for all cores.  lr
    overrides the model file's learning rate.  A wrong model raises
    ModelError with gradc's diagnostics (file:line:col: error: ...)."""
    api = _lib.JitApi()
    lib = api.lib
    opt = _lib.Options()
    lib.gradc_options_default(ctypes.byref(opt))
    opt.opt_level, opt.seed, opt.threads = int(opt_level), int(seed), int(threads)
    opt.lr = float(lr) if lr else 0.0
    opt.check_numerics = 1 if check_numerics else 0
    handle = ctypes.c_void_p()
    if isinstance(model, (str, os.PathLike)) and "\n" not in str(model):
        path = os.fspath(model)
        status = lib.gradc_compile_file(path.encode(), ctypes.byref(opt), ctypes.byref(handle))
        label = os.path.splitext(os.path.basename(path))[0]
    else:
        source = model.decode() if isinstance(model, bytes) else str(model)
        label = name or "<string>"
        status = lib.gradc_compile_string(label.encode(), source.encode(), ctypes.byref(opt), ctypes.byref(handle))
    if status:
        raise for_status(status, lib.gradc_last_error(None).decode(errors="replace"))
    return Model(api, handle.value, int(seed), label)


def load_so(path, prefix=None):
    """Opens a shared object made by `gradc compile` and returns its model,
    initialised from seed 1 like `gradc train`'s: the same Model methods,
    run by the .so's own entry points <prefix>_*, without LLVM.  prefix is
    found in the .so's symbols unless given (gradc compile --name)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileError("cannot open '%s': no such file" % path)
    if prefix is None:
        found = _lib.so_prefix(path)
        if len(found) != 1:
            raise ArgumentError("cannot tell the entry points' prefix of '%s' (%s): pass prefix=" %
                                (path, "candidates: " + ", ".join(found) if found else "no <prefix>_checkpoint_size"))
        prefix = found[0]
    api = _lib.SoApi(os.path.abspath(path), prefix)
    handle = api.new()
    if not handle:
        raise OutOfMemoryError(api.last_error(None).decode(errors="replace") or "%s_new failed" % prefix)
    return Model(api, handle, 1, prefix)
