"""The OpInfo row of ``print`` (tracejit/ops/debug.py), for tests/opinfo.py's table.

``print`` has no outputs, so the row's function prints its input (to a buffer, keeping test
output clean) and returns a tuple holding a bool tensor computed from it: the table's eager,
traced and inference checks then run the print op in each mode, and the gradient checks see a
non-differentiable op's result. To use it, tests/opinfo.py adds ``opinfo_debug.DEBUG_OPS`` to
``OPINFOS``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

import tracejit as tj

SINK = io.StringIO()


def _print_then_check(x: Any) -> Any:
    tj.print("x =", x, file=SINK)
    return (tj.equal(x, x),)  # a tuple, as from an op with multiple_results


def _samples(rng: np.random.Generator) -> list[Any]:
    return [((rng.standard_normal((3, 4)).astype(np.float32),), {})]


def _rows() -> list[Any]:
    from opinfo import OpInfo

    return [OpInfo("print", _print_then_check, _samples, lambda x: (np.equal(x, x),))]


def __getattr__(name: str) -> Any:
    if name == "DEBUG_OPS":  # built on first access, as opinfo_extra's rows are
        return _rows()
    raise AttributeError(name)
