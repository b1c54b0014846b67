"""gradc's status codes as Python exceptions, each carrying gradc's message.

One class per gradc_status (include/gradc.h), all under gradc.Error, each
also a subclass of the built-in exception a Python programmer would catch
for it (a shape error is a ValueError, an I/O error an OSError), so that
`except ValueError` keeps working around gradc calls.
"""
import re


class Error(Exception):
    """A gradc call failed; str(e) is gradc's message, e.status its code."""
    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class ModelError(Error, ValueError):
    """The model file is wrong.  file, line and col locate the first
    diagnostic (`file:line:col: error: ...`), None where it has none."""
    status = 1

    def __init__(self, message, status=None):
        super().__init__(message, status)
        m = re.search(r"^(.*?):(\d+):(\d+): error: ", message, re.M)
        self.file, self.line, self.col = (m.group(1), int(m.group(2)), int(m.group(3))) if m else (None, None, None)


class FileError(Error, OSError):
    status = 2


class DataError(Error, ValueError):
    """Data that does not fit the model: a wrong dtype or shape, a bad file."""
    status = 3


class CheckpointError(Error, ValueError):
    status = 4


class ShapeError(Error, ValueError):
    status = 5


class OutOfMemoryError(Error, MemoryError):
    status = 6


class ArgumentError(Error, ValueError):
    """A bad argument: an unknown tensor, step or hyperparameter name."""
    status = 7


class JitError(Error, RuntimeError):
    status = 8


class NumericError(Error, ArithmeticError):
    status = 9


_BY_STATUS = {c.status: c for c in (ModelError, FileError, DataError, CheckpointError, ShapeError,
                                    OutOfMemoryError, ArgumentError, JitError, NumericError)}


def for_status(status, message):
    """The exception for a gradc_status and its message."""
    return _BY_STATUS.get(status, Error)(message or "gradc status %d" % status, status)
