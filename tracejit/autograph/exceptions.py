"""The errors and warnings of AutoGraph conversion."""

from __future__ import annotations

from tracejit.errors import TracejitError, with_location
from tracejit.ir.source import SourceLoc


class ConversionError(TracejitError, ValueError):
    """Converted control flow on symbolic tensors cannot be built as written: a variable
    defined in one branch only, a loop variable that is not a tensor, ..."""

    def __init__(self, message: str, loc: SourceLoc | None = None) -> None:
        self.loc = loc
        super().__init__(with_location(message, loc))


class AutoGraphWarning(UserWarning):
    """A function could not be converted and runs as plain Python while tracing."""


class LoopUnrollWarning(AutoGraphWarning):
    """A Python loop (over ``range``, a list, a Python condition) unrolled into more nodes than
    ``tj.config.unroll_warning_threshold()`` while tracing; warned once per loop line."""
