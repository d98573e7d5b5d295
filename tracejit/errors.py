"""Error classes. Every message says what happened, what was expected, what was given, and where
in the user's code (``iris.py:31 in forward: h = x @ w + b``)."""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tracejit.ir.source import SourceLoc

F = TypeVar("F", bound=Callable[..., Any])


def _with_location(message: str, loc: SourceLoc | None) -> str:
    if loc is None:
        return message
    return f"{message}\n  at {loc.describe()}"


class TracejitError(Exception):
    """Base class of tracejit's own errors."""


class OpError(TracejitError, ValueError):
    """An op got inputs or params it cannot take (shapes that do not broadcast, a bad axis...).

    ``op`` names the op, ``loc`` is the user's line that called it.
    """

    def __init__(self, op: str, message: str, loc: SourceLoc | None = None) -> None:
        self.op = op
        self.detail = message
        self.loc = loc
        super().__init__(_with_location(f"{op}: {message}", loc))


class BatchingError(OpError):
    """``tj.vmap`` cannot batch something: an op without a batching rule, a variable assigned
    inside the mapped function, or arguments that do not fit ``in_axes``/``out_axes``."""


class IntegerOverflowError(TracejitError, OverflowError):
    """A Python int does not fit the integer dtype it would become (it would wrap silently).

    A subclass of ``OverflowError``, like the error jax raises, so ``except OverflowError`` works.
    """

    def __init__(self, value: int, dtype: object, loc: SourceLoc | None = None) -> None:
        import numpy as np

        self.value = value
        self.dtype = dtype
        info = np.iinfo(dtype)  # type: ignore[call-overload]
        hint = (
            'to get int64, enable 64-bit types with jax.config.update("jax_enable_x64", True)'
            if str(dtype) == "int32"
            else "pass a wider dtype"
        )
        message = (
            f"Python int {value} is out of range for {dtype} ({info.min} to {info.max}); "
            f"it would wrap. Use a value in range, a float, or {hint}"
        )
        super().__init__(_with_location(message, loc))


class DtypeError(TracejitError, TypeError):
    """A value has a dtype no jax array can hold (float128, object, strings, datetimes...)."""


class DtypeWarning(UserWarning):
    """A dtype was requested that the backend does not give now (float64 while jax's 64-bit mode
    is off): the result has the 32-bit dtype instead."""


class ShapeError(OpError):
    """Shapes of an op's inputs do not fit together."""


class IndexOutOfRangeError(OpError, IndexError):
    """An index is out of range for its axis (or there are more indices than axes); an
    ``IndexError``, as numpy raises, so ``except IndexError`` works."""


class OpTypeError(OpError, TypeError):
    """An op got an input of a type or dtype it cannot take."""


class TracerConversionError(TracejitError, TypeError):
    """A symbolic tensor was asked for a concrete Python value while tracing."""

    def __init__(self, what: str, suggestion: str, loc: SourceLoc | None = None) -> None:
        self.loc = loc
        message = (
            f"{what} is not available while tracing: the tensor is symbolic and has no value "
            f"until the compiled function runs. {suggestion}"
        )
        super().__init__(_with_location(message, loc))


class SymbolicNumpyError(TracerConversionError, AttributeError):
    """``.numpy()`` of a symbolic tensor. Also an ``AttributeError``: TF's graph tensors have no
    ``.numpy`` at all, so TF code guards it with ``except AttributeError``."""


class ForeignFunctionError(TracejitError, NotImplementedError):
    """A numpy or jax function got a symbolic tensor inside a ``tj.function``.

    A ``NotImplementedError``, as TF raises when a numpy call gets a symbolic ``tf.Tensor``
    (and not a ``TypeError``, which jax would catch and replace with its own message).
    ``function`` is the call as written (``np.sin``), ``suggestion`` the fix."""

    def __init__(self, function: str, suggestion: str, loc: SourceLoc | None = None) -> None:
        self.function = function
        self.suggestion = suggestion
        self.loc = loc
        message = (
            f"{function}() got a symbolic tensor: inside a tj.function a tensor has no value "
            f"until the compiled function runs, so numpy and jax functions cannot compute "
            f"with it; {suggestion}"
        )
        super().__init__(_with_location(message, loc))


class EscapedTracerError(TracejitError, TypeError):
    """A symbolic tensor was used outside the trace that created it (a ``TypeError``, as TF
    raises for a graph tensor leaking out of its function)."""


class SignatureError(TracejitError, TypeError, ValueError):
    """Arguments do not match a function's ``input_signature`` or a concrete function's inputs.

    Both a ``TypeError`` (what TF 2.13+ raises: "Binding inputs to tf.function failed") and a
    ``ValueError`` (what earlier TF 2 releases raised for an ``input_signature`` mismatch), so
    either ``except`` keeps working."""


def with_location(message: str, loc: SourceLoc | None) -> str:
    """Append ``at file:line in fn: source`` to a message."""
    return _with_location(message, loc)


class RetracingError(TracejitError):
    """A ``tj.function`` retraced too often while ``tj.config.set_retrace_warning("error")``
    is in force (strict retracing)."""


class RetracingWarning(UserWarning):
    """A ``tj.function`` was traced 5 times within its last 10 calls."""


class ExecutionError(TracejitError, RuntimeError):
    """jax or XLA failed while running a compiled function (after it was traced and lowered).

    The base of the run-time error family below, which mirrors TF's ``tf.errors`` names (TF's
    ``tf.errors.OpError`` base is this class: tracejit's ``OpError`` is the trace-time op error).
    ``error_code`` is the status code, as in TF (2 = UNKNOWN when none is known).
    """

    error_code = 2

    @property
    def message(self) -> str:
        """The error's text (TF's ``OpError.message``)."""
        return str(self)


class CancelledError(ExecutionError):
    """The computation was cancelled (status CANCELLED)."""

    error_code = 1


class UnknownError(ExecutionError):
    """Python code the compiled function called back into raised an exception with no closer
    match, or XLA gave status UNKNOWN."""

    error_code = 2


class InvalidArgumentError(ExecutionError):
    """An op got an argument it cannot take at run time (status INVALID_ARGUMENT), or a callback
    raised ``ValueError``/``TypeError``, as TF maps them."""

    error_code = 3


class DeadlineExceededError(ExecutionError):
    """A deadline expired before the computation finished (status DEADLINE_EXCEEDED)."""

    error_code = 4


class NotFoundError(ExecutionError):
    """Something the computation needs was not found (status NOT_FOUND)."""

    error_code = 5


class AlreadyExistsError(ExecutionError):
    """Something the computation creates already exists (status ALREADY_EXISTS)."""

    error_code = 6


class PermissionDeniedError(ExecutionError):
    """The computation was not allowed to run (status PERMISSION_DENIED)."""

    error_code = 7


class UnauthenticatedError(ExecutionError):
    """The request had no valid credentials (status UNAUTHENTICATED)."""

    error_code = 16


class ResourceExhaustedError(ExecutionError):
    """Device memory (or another resource) ran out (status RESOURCE_EXHAUSTED), or a callback
    raised ``MemoryError``."""

    error_code = 8


class FailedPreconditionError(ExecutionError):
    """The system was not in a state the computation needs (status FAILED_PRECONDITION)."""

    error_code = 9


class AbortedError(ExecutionError):
    """The computation was aborted (status ABORTED)."""

    error_code = 10


class OutOfRangeError(ExecutionError):
    """A value was past the valid range (status OUT_OF_RANGE), or a callback raised
    ``IndexError``/``StopIteration``."""

    error_code = 11


class UnimplementedError(ExecutionError):
    """The backend does not implement an operation (status UNIMPLEMENTED), or a callback raised
    ``NotImplementedError``."""

    error_code = 12


class InternalError(ExecutionError):
    """XLA or the runtime hit an internal error (status INTERNAL)."""

    error_code = 13


class UnavailableError(ExecutionError):
    """The device or service is unavailable (status UNAVAILABLE)."""

    error_code = 14


class DataLossError(ExecutionError):
    """Unrecoverable data loss or corruption (status DATA_LOSS)."""

    error_code = 15


_BY_STATUS: dict[str, type[ExecutionError]] = {
    "CANCELLED": CancelledError, "UNKNOWN": UnknownError,
    "INVALID_ARGUMENT": InvalidArgumentError, "DEADLINE_EXCEEDED": DeadlineExceededError,
    "NOT_FOUND": NotFoundError, "ALREADY_EXISTS": AlreadyExistsError,
    "PERMISSION_DENIED": PermissionDeniedError, "UNAUTHENTICATED": UnauthenticatedError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError, "FAILED_PRECONDITION": FailedPreconditionError,
    "ABORTED": AbortedError, "OUT_OF_RANGE": OutOfRangeError,
    "UNIMPLEMENTED": UnimplementedError, "INTERNAL": InternalError,
    "UNAVAILABLE": UnavailableError, "DATA_LOSS": DataLossError,
}  # fmt: skip
# A Python exception raised inside a callback, as TF's py_func maps it to a status.
_BY_PYTHON: dict[str, type[ExecutionError]] = {
    "ValueError": InvalidArgumentError, "TypeError": InvalidArgumentError,
    "IndexError": OutOfRangeError, "StopIteration": OutOfRangeError,
    "MemoryError": ResourceExhaustedError, "NotImplementedError": UnimplementedError,
}  # fmt: skip


def execution_error_type(err: BaseException) -> type[ExecutionError]:
    """The class of the family above for an error jax or XLA raised at run time: from the
    Python exception a callback raised (the last line of the callback's traceback), else
    from the XLA status code that starts the message (``INVALID_ARGUMENT: ...``)."""
    text = str(err).strip()
    if "callback" in text.lower():
        last = text.rsplit("\n", 1)[-1]
        name = last.split(":", 1)[0].strip().rsplit(".", 1)[-1]
        if name.isidentifier() and (name.endswith(("Error", "Exception")) or name in _BY_PYTHON):
            return _BY_PYTHON.get(name, UnknownError)
    return _BY_STATUS.get(text.split(":", 1)[0].strip(), ExecutionError)


class GraphvizNotFoundError(TracejitError, RuntimeError):
    """Rendering a graph needs the Graphviz ``dot`` program, which is not installed."""


# Tracebacks --------------------------------------------------------------------------------------
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_internal_frame(filename: str) -> bool:
    """Whether a traceback frame's file is part of the tracejit package."""
    return filename.startswith(_PACKAGE_DIR)


_JAX_MARKERS = (os.sep + "jax" + os.sep, os.sep + "jaxlib" + os.sep)


def is_library_frame(filename: str) -> bool:
    """Whether a frame's file is tracejit's or jax's: never "the user's line"."""
    return filename.startswith(_PACKAGE_DIR) or any(m in filename for m in _JAX_MARKERS)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` issued by the caller point at the user's
    line (the innermost frame outside tracejit and jax), so Python shows it once per call site."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and is_library_frame(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    return level


def trim_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` without the frames of tracejit's own files (the user's frames, in order)."""
    kept = []
    while tb is not None:
        if not is_internal_frame(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    trimmed = None
    for entry in reversed(kept):
        trimmed = types.TracebackType(trimmed, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return trimmed


def trimmed(err: BaseException) -> BaseException:
    """``err`` (and the errors it chains to) with tracejit's frames trimmed from its traceback,
    unless ``tj.config.set_full_traceback(True)`` or ``TRACEJIT_FULL_TRACEBACK=1``. Re-raise it
    with ``raise trimmed(err)``: the raising frame is then the only tracejit frame left."""
    from tracejit import config

    if config.full_traceback():
        return err
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = trim_traceback(current.__traceback__)
        current = current.__cause__ or current.__context__
    return err


def trims_tracebacks(function: F) -> F:
    """Decorate a public entry point (``Checkpoint.restore``, ``apply_gradients``...): an error
    tracejit raises inside it — a ``TracejitError``, or a ``TypeError``/``ValueError`` raised by
    tracejit's own argument checks — leaves with tracejit's frames trimmed, so the traceback
    ends at the user's call (unless ``tj.config.set_full_traceback(True)``)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (TracejitError, TypeError, ValueError) as err:
            if isinstance(err, TracejitError) or _raised_by_tracejit(err):
                trimmed(err)
            raise

    return wrapper  # type: ignore[return-value]


def _raised_by_tracejit(err: BaseException) -> bool:
    """Whether the innermost frame of ``err``'s traceback is tracejit's (not jax's, not user
    code called back)."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return is_internal_frame(tb.tb_frame.f_code.co_filename)


# Errors raised in Python code a compiled function calls back into (tj.py_function) -------------
# jax hands such an error on wrapped in its own runtime error, traceback text and all; the
# callback notes it here so the caller gets tracejit's error as it was raised.
_callback_errors: list[BaseException] = []


def raised_in_callback(err: BaseException) -> BaseException:
    """Note ``err`` (about to be raised inside a host callback); returns it."""
    _callback_errors[:] = [err]
    return err


def python_error_type(err: BaseException) -> type[ExecutionError]:
    """The class of the family above for a Python exception raised in a callback, as TF maps
    them (``ValueError`` -> ``InvalidArgumentError``, others ``UnknownError``)."""
    return _BY_PYTHON.get(type(err).__name__, UnknownError)


def take_callback_error(wrapper: BaseException) -> BaseException | None:
    """The error a callback noted, if jax's ``wrapper`` error carries its text (else None)."""
    if not _callback_errors:
        return None
    err = _callback_errors.pop()
    return err if str(err) in str(wrapper) else None


# Error classes defined beside the stage that raises them, reachable here too -------------------
# (imported on first use: this module is the bottom layer and imports nothing above it)
_ELSEWHERE = {
    "ShardingError": "tracejit.runtime.sharding",
    "GradientError": "tracejit.autodiff.tape",
    "TapeUsedError": "tracejit.autodiff.tape",
    "TangentError": "tracejit.autodiff.forward",
    "IRVerificationError": "tracejit.ir.verify",
    "ConversionError": "tracejit.autograph.exceptions",
    "AutoGraphWarning": "tracejit.autograph.exceptions",
    "LoopUnrollWarning": "tracejit.autograph.exceptions",
    "CheckpointError": "tracejit.train.checkpoint_files",
    "VariableCreationError": "tracejit.eager.variable",
    "FormatError": "tracejit.saved.errors",
    "NotAddressableError": "tracejit.host",
    "DistributedError": "tracejit.distribute.process",
}


def __getattr__(name: str) -> type:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tracejit.errors' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ELSEWHERE))


# The public names: every error and warning class, here or re-exported from its stage. (The
# helpers above are for tracejit's own modules.)
__all__ = sorted(
    [
        name
        for name, value in list(globals().items())
        if isinstance(value, type) and issubclass(value, BaseException) and not name.startswith("_")
    ]
    + list(_ELSEWHERE)
)
