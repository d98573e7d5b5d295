"""OpInfo row of the ``shape`` op (tracejit/ops/shape_query.py, issue 14): ``tj.shape`` of
floats, ints and bools of several ranks, checked against numpy's ``.shape``. Traced with an
unknown first dimension (the table's check), the op is a graph node read at run time; with a
known shape ``tj.shape`` is a constant and the node is never made.

Rows are built on first access (module ``__getattr__``), as opinfo_bitwise's are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tracejit as tj


def _samples(rng: np.random.Generator) -> list[Any]:
    return [
        ((rng.standard_normal((3, 4)).astype(np.float32),), {}),
        ((rng.integers(0, 9, (2, 5, 1), dtype=np.int32),), {}),
        ((rng.random((4,)) < 0.5,), {}),
        ((rng.standard_normal((6, 2)).astype(np.float32),), {"out_type": "int32"}),
    ]


def _shape_ref(x: Any, out_type: Any = "int32") -> np.ndarray:
    return np.asarray(np.shape(x), dtype=out_type)


def _rows() -> list[Any]:
    from opinfo import OpInfo

    return [OpInfo("shape", tj.shape, _samples, _shape_ref)]


def __getattr__(name: str) -> Any:
    if name == "FUNCTION_OPS":
        return _rows()
    raise AttributeError(name)
