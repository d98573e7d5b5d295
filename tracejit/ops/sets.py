"""The array API standard's set functions (2024.12): ``unique_values``, ``unique_counts``,
``unique_inverse`` and ``unique_all``, all one registry entry, ``unique``, whose ``kind`` param
says which results it gives (values, first indices, inverse indices, counts; jax.numpy's
functions of the same names are the impl).

How many unique values there are depends on the values of ``x``. Eagerly that is fine; inside a
trace the graph's shapes must be known from its input avals, so, as in jax, ``size=`` fixes the
number of results (padded with ``fill_value``, by default the smallest value, with counts of 0)
and tracing without it is refused with that suggestion. NaNs are all distinct, as the standard
says. The results are indices and counts, or values picked by them: the op is not
differentiable.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from tracejit.errors import OpError, ShapeError
from tracejit.ops.arguments import locates_errors
from tracejit.ops.infer import jax_dtype
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal

_RESULTS = {
    "values": ("values",),
    "counts": ("values", "counts"),
    "inverse": ("values", "inverse_indices"),
    "all": ("values", "indices", "inverse_indices", "counts"),
}


class UniqueAllResult(NamedTuple):
    values: Any
    indices: Any
    inverse_indices: Any
    counts: Any


class UniqueCountsResult(NamedTuple):
    values: Any
    counts: Any


class UniqueInverseResult(NamedTuple):
    values: Any
    inverse_indices: Any


def _unique(x: Any, *, kind: str, size: int | None, fill_value: Any) -> tuple[Any, ...]:
    result = jnp.unique_all(x, size=size, fill_value=fill_value)
    return tuple(getattr(result, name) for name in _RESULTS[kind])


def _infer_unique(x: AVal, *, kind: str, size: int | None, fill_value: Any) -> tuple[AVal, ...]:
    if kind not in _RESULTS:
        raise OpError("unique", f"kind must be one of {', '.join(_RESULTS)}, got {kind!r}")
    if size is None:
        raise ShapeError(
            f"unique_{kind}",
            "the number of unique values depends on the values of x, which are not known "
            "while tracing; pass size=N (the results are padded or cut to N, as in jax), or "
            "call it eagerly",
        )
    index_dtype, _ = jax_dtype("unique", lambda a: jnp.argmax(a), [x], {})
    avals = {
        "values": AVal((size,), x.dtype, False),
        "indices": AVal((size,), index_dtype, False),
        "inverse_indices": AVal(x.shape, index_dtype, False),
        "counts": AVal((size,), index_dtype, False),
    }
    return tuple(avals[name] for name in _RESULTS[kind])


UNIQUE = defop("unique", _infer_unique, _unique, differentiable=False, multiple_results=True)


def _bind(kind: str, x: Any, size: int | None, fill_value: Any) -> tuple[Any, ...]:
    if size is not None:
        size = int(size)
        if size < 0:
            raise OpError(f"unique_{kind}", f"size must be non-negative, got {size}")
    return bind(UNIQUE, x, kind=kind, size=size, fill_value=fill_value)


@locates_errors
def unique_values(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> Any:
    """The sorted unique values of ``x`` (flattened). While tracing pass ``size=``.

    >>> import tracejit as tj
    >>> tj.unique_values(tj.constant([3, 1, 3, 2])).numpy()
    array([1, 2, 3], dtype=int32)
    """
    return _bind("values", x, size, fill_value)[0]


@locates_errors
def unique_counts(
    x: Any, /, *, size: int | None = None, fill_value: Any = None
) -> UniqueCountsResult:
    """The sorted unique values of ``x`` and how often each occurs.

    >>> import tracejit as tj
    >>> tj.unique_counts(tj.constant([3, 1, 3])).counts.numpy()
    array([1, 2], dtype=int32)
    """
    return UniqueCountsResult(*_bind("counts", x, size, fill_value))


@locates_errors
def unique_inverse(
    x: Any, /, *, size: int | None = None, fill_value: Any = None
) -> UniqueInverseResult:
    """The sorted unique values of ``x`` and, for each element of ``x``, the index of its value
    (``values[inverse_indices]`` rebuilds ``x``)."""
    return UniqueInverseResult(*_bind("inverse", x, size, fill_value))


@locates_errors
def unique_all(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> UniqueAllResult:
    """Unique values, the index of each one's first occurrence, the inverse indices and the
    counts.

    >>> import tracejit as tj
    >>> tj.unique_all(tj.constant([2, 2, 5])).indices.numpy()
    array([0, 2], dtype=int32)
    """
    return UniqueAllResult(*_bind("all", x, size, fill_value))


__all__ = ["unique_all", "unique_counts", "unique_inverse", "unique_values"]
