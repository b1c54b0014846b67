"""The C libraries through ctypes: where they are, and each function's types.

Two ways to reach a model's code, with one Python class over both:

  - libgradc.so (the compiler, the JIT, include/gradc.h): gradc_bind(m, ...)
    and friends, for models compiled from a file or a string;
  - a shared object made by `gradc compile`, whose entry points are the same
    functions named <prefix>_bind(m, ...) (runtime/aot.c), for load_so.  It
    carries its own copy of the runtime, so its handles are only ever given
    to its own functions; no LLVM is loaded for it.

`Api` hides that difference: the same methods, the same arguments, whichever
library answers.  libgradc_runtime.so (no LLVM) adds gradc_shuffle, the
order of `gradc train`'s batches, which fit uses for both kinds.

ctypes releases the GIL for the length of every foreign call, so a step in
C lets other Python threads run.

Where the libraries are found, first match wins:
  1. $GRADC_LIB: the path of libgradc.so (libgradc_runtime.so is looked for
     next to it, or at $GRADC_RUNTIME_LIB);
  2. the library directory of the prefix the package was installed into
     with `cmake --install` (_install.py, written at install time, holds it
     relative to the package);
  3. the dynamic loader's search path (ldconfig, LD_LIBRARY_PATH), as
     libgradc.so.0.
"""
import ctypes
import os
import threading

SOVERSION = "0"


class Tensor(ctypes.Structure):
    """gradc_tensor of include/gradc.h."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("kind", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("rank", ctypes.c_int),
        ("dims", ctypes.c_int64 * 8),
        ("symbolic", ctypes.c_int * 8),
        ("count", ctypes.c_int64),
    ]


class AotTensor(ctypes.Structure):
    """<prefix>_tensor of a compiled .so (runtime/runtime.h's gradc_aot_tensor)."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("kind", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("rank", ctypes.c_int),
        ("dims", ctypes.c_int64 * 8),
        ("symbolic", ctypes.c_int * 8),
        ("count", ctypes.c_int64),
        ("bytes", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
    ]


class Options(ctypes.Structure):
    """gradc_options."""
    _fields_ = [
        ("opt_level", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("threads", ctypes.c_int),
        ("lr", ctypes.c_double),
        ("check_numerics", ctypes.c_int),
        ("data_parallel", ctypes.c_int),
    ]


P = ctypes.c_void_p
S = ctypes.c_char_p
I64 = ctypes.c_int64
I = ctypes.c_int
D = ctypes.c_double
PD = ctypes.POINTER(ctypes.c_double)
PI64 = ctypes.POINTER(ctypes.c_int64)

# name: (restype, argtypes) of gradc.h's functions that Api uses, with the
# model handle first where there is one.
_MODEL_FUNCTIONS = {
    "free": (None, [P]),
    "last_error": (S, [P]),
    "bind": (I, [P, I64]),
    "bind_dim": (I, [P, S, I64]),
    "set_hyper": (I, [P, S, S, D]),
    "get_hyper": (I, [P, S, S, PD]),
    "tensor_info": (I, [P, I, P]),
    "data": (P, [P, S, PI64]),
    "forward": (I, [P]),
    "train_step": (I, [P, PD]),
    "step": (I, [P, S, PD]),
    "step_name": (S, [P, I]),
    "set_row_offset": (I, [P, I64]),
    "init": (I, [P, ctypes.c_uint64]),
    "save": (I, [P, S]),
    "load": (I, [P, S]),
}

_lock = threading.Lock()
_libs = {}


def _declare(fn, restype, argtypes):
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def _installed_libdir():
    try:
        from . import _install
    except ImportError:
        return None
    return os.path.normpath(os.path.join(os.path.dirname(__file__), _install.LIBDIR))


def _candidates(name):
    """Paths or sonames to try for libNAME.so, in the order above."""
    env = os.environ.get("GRADC_LIB")
    if name == "gradc" and env:
        return [env]
    if name == "gradc_runtime" and os.environ.get("GRADC_RUNTIME_LIB"):
        return [os.environ["GRADC_RUNTIME_LIB"]]
    found = []
    if env:
        here = os.path.dirname(os.path.abspath(env))
        found += [os.path.join(here, "lib%s.so.%s" % (name, SOVERSION)), os.path.join(here, "lib%s.so" % name)]
    libdir = _installed_libdir()
    if libdir:
        found.append(os.path.join(libdir, "lib%s.so.%s" % (name, SOVERSION)))
    found.append("lib%s.so.%s" % (name, SOVERSION))
    return found


def load_library(name):
    """libgradc ("gradc") or libgradc_runtime ("gradc_runtime"), once."""
    with _lock:
        if name in _libs:
            return _libs[name]
        tried = []
        for path in _candidates(name):
            if os.sep in path and not os.path.exists(path):
                tried.append("%s (no such file)" % path)
                continue
            try:
                lib = ctypes.CDLL(path)
                break
            except OSError as e:
                tried.append(str(e))
        else:
            raise OSError("cannot load lib%s.so: tried %s; set GRADC_LIB to the path of libgradc.so"
                          % (name, "; ".join(tried)))
        _declare(lib.gradc_status_str, S, [I])
        _declare(lib.gradc_last_error, S, [P])
        _declare(lib.gradc_shuffle, None, [PI64, I64, ctypes.c_uint64, I64])
        if name == "gradc":
            _declare(lib.gradc_options_default, None, [P])
            _declare(lib.gradc_compile_file, I, [S, P, ctypes.POINTER(P)])
            _declare(lib.gradc_compile_string, I, [S, S, P, ctypes.POINTER(P)])
            _declare(lib.gradc_warnings, S, [P])
            _declare(lib.gradc_compile_ms, D, [P])
            _declare(lib.gradc_tensor_count, I, [P])
            _declare(lib.gradc_step_count, I, [P])
            for fn, (res, args) in _MODEL_FUNCTIONS.items():
                _declare(getattr(lib, "gradc_" + fn), res, args)
        _libs[name] = lib
        return lib


class Api:
    """The functions of one model's library, with gradc.h's signatures."""

    def __init__(self, lib, prefix, tensor_type):
        self.lib = lib
        self.prefix = prefix
        self.tensor_type = tensor_type
        for fn in _MODEL_FUNCTIONS:
            setattr(self, fn, getattr(lib, prefix + fn))

    def status_str(self, s):
        return load_library("gradc_runtime").gradc_status_str(s).decode()


class JitApi(Api):
    def __init__(self):
        lib = load_library("gradc")
        super().__init__(lib, "gradc_", Tensor)
        self.tensor_count = lib.gradc_tensor_count
        self.step_count = lib.gradc_step_count
        self.warnings = lib.gradc_warnings
        self.compile_ms = lib.gradc_compile_ms

    def status_str(self, s):
        return self.lib.gradc_status_str(s).decode()


class SoApi(Api):
    """A compiled .so's <prefix>_* entry points (abi.h's GRADC_ABI_ENTRIES)."""

    def __init__(self, path, prefix):
        lib = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        p = prefix + "_"
        if not hasattr(lib, p + "new"):
            raise OSError("%s has no entry point %snew: is '%s' its prefix (gradc compile --name)?" % (path, p, prefix))
        _declare(getattr(lib, p + "new"), P, [])
        for fn, (res, args) in _MODEL_FUNCTIONS.items():
            if fn == "bind":
                args = [P, I64, P]        # the workspace: NULL, the .so's own
            if fn == "step_name":
                args = [I]
            _declare(getattr(lib, p + fn), res, args)
        _declare(getattr(lib, p + "tensor_count"), I, [])
        _declare(getattr(lib, p + "step_count"), I, [])
        super().__init__(lib, p, AotTensor)
        raw_bind, raw_name = self.bind, self.step_name
        count, steps = getattr(lib, p + "tensor_count"), getattr(lib, p + "step_count")
        self.new = getattr(lib, p + "new")
        self.bind = lambda m, batch: raw_bind(m, batch, None)
        self.step_name = lambda m, i: raw_name(i)
        self.tensor_count = lambda m: count()
        self.step_count = lambda m: steps()
        self.warnings = lambda m: b""
        self.compile_ms = lambda m: 0.0


def dynamic_symbols(path):
    """The names a shared object exports: the defined global symbols of its
    ELF64 .dynsym (what `nm -D --defined-only` lists)."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise OSError("%s is not a 64-bit little-endian ELF shared object" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = []
    for sh in sections:
        if sh[1] != 11:                         # SHT_DYNSYM
            continue
        strtab = sections[sh[6]]                # sh_link: its string table
        for at in range(sh[4], sh[4] + sh[5], sh[9] or 24):
            name, info, _, shndx = struct.unpack_from("<IBBH", data, at)
            if shndx and info >> 4 in (1, 2):    # defined, STB_GLOBAL or STB_WEAK
                start = strtab[4] + name
                names.append(data[start:data.index(b"\0", start)].decode())
    return names


def so_prefix(path):
    """The prefixes X of a .so's entry points: X_checkpoint_size is one of
    every .so made by gradc compile, and it exports nothing but X_*."""
    suffix = "_checkpoint_size"
    return sorted(n[:-len(suffix)] for n in dynamic_symbols(path) if n.endswith(suffix))
