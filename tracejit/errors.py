"""Error classes. Every message says what happened, what was expected, what was given, and where
in the user's code (``iris.py:31 in forward: h = x @ w + b``)."""

from __future__ import annotations

import os
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracejit.ir.source import SourceLoc


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


class EscapedTracerError(TracejitError):
    """A symbolic tensor was used outside the trace that created it."""


class SignatureError(TracejitError, TypeError):
    """Arguments do not match a function's ``input_signature`` or a concrete function's inputs."""


def with_location(message: str, loc: SourceLoc | None) -> str:
    """Append ``at file:line in fn: source`` to a message."""
    return _with_location(message, loc)


class RetracingError(TracejitError):
    """A ``tj.function`` retraced too often while ``tj.config.set_retrace_warning("error")``
    is in force (strict retracing)."""


class RetracingWarning(UserWarning):
    """A ``tj.function`` was traced 5 times within its last 10 calls."""


class ExecutionError(TracejitError, RuntimeError):
    """jax or XLA failed while running a compiled function (after it was traced and lowered)."""


class GraphvizNotFoundError(TracejitError, RuntimeError):
    """Rendering a graph needs the Graphviz ``dot`` program, which is not installed."""


# Tracebacks --------------------------------------------------------------------------------------
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_internal_frame(filename: str) -> bool:
    """Whether a traceback frame's file is part of the tracejit package."""
    return filename.startswith(_PACKAGE_DIR)


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
