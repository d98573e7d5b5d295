"""OpInfo rows of the ``shape`` and ``full_dims`` ops (tracejit/ops/shape_query.py, issue 14):
``tj.shape`` of floats, ints and bools of several ranks, checked against numpy's ``.shape``.
Traced with an unknown first dimension (the table's check), the op is a graph node read at run
time; with a known shape ``tj.shape`` is a constant and the node is never made. ``full_dims`` (a
``full`` whose dims follow other tensors' run-time shapes) is bound directly, so every mode runs
it.

Rows are built on first access (module ``__getattr__``), as opinfo_bitwise's are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tracejit as tj
from tracejit.ops.registry import bind
from tracejit.ops.shape_query import FULL_DIMS
from tracejit.types import as_dtype


def _samples(rng: np.random.Generator) -> list[Any]:
    return [
        ((rng.standard_normal((3, 4)).astype(np.float32),), {}),
        ((rng.integers(0, 9, (2, 5, 1), dtype=np.int32),), {}),
        ((rng.random((4,)) < 0.5,), {}),
        ((rng.standard_normal((6, 2)).astype(np.float32),), {"dtype": "int32"}),
    ]


def _shape_ref(x: Any, dtype: Any = "int32") -> np.ndarray:
    return np.asarray(np.shape(x), dtype=dtype)


def _shape_of(x: Any, dtype: Any = "int32") -> Any:
    return tj.shape(x, out_type=dtype)


def _ones_like_rows(x: Any, dtype: Any = "float32") -> Any:
    # What tj.ones((tj.shape(x)[0], 2)) emits when x's first dim is unknown: dim 0 from x.
    return bind(FULL_DIMS, x, dims=((0, 0), 2), fill_value=1, dtype=as_dtype(dtype))


def _ones_like_rows_ref(x: Any, dtype: Any = "float32") -> np.ndarray:
    return np.ones((np.shape(x)[0], 2), dtype=dtype)


def _rows() -> list[Any]:
    from opinfo import OpInfo

    return [
        OpInfo("shape", _shape_of, _samples, _shape_ref),
        OpInfo("full_dims", _ones_like_rows, _samples, _ones_like_rows_ref),
    ]


def __getattr__(name: str) -> Any:
    if name == "FUNCTION_OPS":
        return _rows()
    raise AttributeError(name)
