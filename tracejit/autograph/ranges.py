"""``tj.range``: Python's ``range`` for Python bounds, a tensor loop's range for symbolic ones."""

from __future__ import annotations

import builtins
from typing import Any

from tracejit.errors import TracerConversionError
from tracejit.ir.source import user_location
from tracejit.tracing import context
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


class StaticRange(TensorRange):
    """``tj.range`` with Python bounds inside a trace: a converted ``for`` over it is one loop
    node with a known trip count (as ``tf.range(n)`` in TF's AutoGraph); anything else (an
    unconverted loop, ``list``, ``len``, ``enumerate``) sees Python's ``range``."""

    def __init__(self, start: int, stop: int, step: int) -> None:
        super().__init__(start, stop, step)
        self.python = builtins.range(start, stop, step)

    def __iter__(self) -> Any:
        return iter(self.python)

    def __len__(self) -> int:
        return len(self.python)

    def __getitem__(self, index: Any) -> Any:
        return self.python[index]

    def __contains__(self, value: Any) -> bool:
        return value in self.python

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StaticRange):
            return self.python == other.python
        return self.python == other

    def __hash__(self) -> int:
        return hash(self.python)


def range(*args: Any) -> Any:  # noqa: A001 - tj.range mirrors the builtin on purpose
    """``range(stop)`` / ``range(start, stop[, step])``: eagerly, Python's ``range``. Inside a
    ``tj.function`` a converted ``for`` loop over it is a single loop node — with Python int
    bounds too (a ``scan`` of known length; a ``while_loop`` with a symbolic bound), as
    ``tf.range`` is in TF; the loop index is then a symbolic int32 tensor.

    >>> from tracejit import autograph
    >>> list(autograph.range(1, 7, 2))
    [1, 3, 5]
    """
    if not 1 <= len(args) <= 3:
        raise TypeError(f"range expected 1 to 3 arguments, got {len(args)}")
    if not any(isinstance(a, Tracer) for a in args):
        python = builtins.range(*(a if isinstance(a, int) else int(a) for a in args))
        if context.state.builder is None:
            return python
        return StaticRange(python.start, python.stop, python.step)
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if isinstance(step, int) and step == 0:
        raise ValueError("range() arg 3 must not be zero")
    return TensorRange(start, stop, step)


def builtin_range(*args: Any) -> Any:
    """Python's ``range`` in converted code: a tensor range only for a symbolic bound (a Python
    bound unrolls, as in TF's AutoGraph)."""
    result = range(*args)
    return result.python if isinstance(result, StaticRange) else result
