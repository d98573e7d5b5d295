"""Error classes. Every message says what happened, what was expected, what was given, and where
in the user's code (``iris.py:31 in forward: h = x @ w + b``)."""

from __future__ import annotations

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


class ShapeError(OpError):
    """Shapes of an op's inputs do not fit together."""


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
