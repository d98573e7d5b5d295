"""``tj.range``: Python's ``range`` for Python bounds, a tensor loop's range for symbolic ones."""

from __future__ import annotations

import builtins
from typing import Any

from tracejit.errors import TracerConversionError
from tracejit.ir.source import user_location
from tracejit.tracing.tracer import Tracer


class TensorRange:
    """``range(start, stop, step)`` where a bound is a symbolic tensor: a ``for`` over it in a
    converted function becomes one loop node instead of being unrolled."""

    def __init__(self, start: Any, stop: Any, step: Any) -> None:
        self.start, self.stop, self.step = start, stop, step

    def __iter__(self) -> Any:
        raise TracerConversionError(
            "Iterating over tj.range with a symbolic bound",
            "A `for` loop over it needs AutoGraph conversion (tj.function(..., autograph=True), "
            "the default); otherwise use tj.fori_loop or tj.while_loop.",
            user_location(),
        )

    def __repr__(self) -> str:
        return f"tj.range({self.start!r}, {self.stop!r}, {self.step!r})"


def range(*args: Any) -> Any:  # noqa: A001 - tj.range mirrors the builtin on purpose
    """``range(stop)`` / ``range(start, stop[, step])``: Python's ``range`` when the bounds are
    Python ints or eager tensors; with a symbolic tensor bound, a range that a converted ``for``
    loop runs as a single loop node.

    >>> from tracejit import autograph
    >>> list(autograph.range(1, 7, 2))
    [1, 3, 5]
    """
    if not 1 <= len(args) <= 3:
        raise TypeError(f"range expected 1 to 3 arguments, got {len(args)}")
    if not any(isinstance(a, Tracer) for a in args):
        return builtins.range(*(a if isinstance(a, int) else int(a) for a in args))
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if isinstance(step, int) and step == 0:
        raise ValueError("range() arg 3 must not be zero")
    return TensorRange(start, stop, step)
