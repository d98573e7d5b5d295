"""The array API standard's sorting and searching functions that tracejit lacked (2024.12):
``sort``, ``argsort``, ``take_along_axis``, ``searchsorted`` and ``nonzero``, one registry entry
each, plus ``along_axis_add`` (the scatter-add that is ``take_along_axis``'s transpose).

Gradients: ``sort`` scatters the cotangent back to where each value came from (the permutation is
``argsort`` with the same ``descending``/``stable`` params), ``take_along_axis`` and
``along_axis_add`` are each other's transposes. ``argsort``, ``searchsorted`` and ``nonzero`` give
integer indices and are not differentiable.

``nonzero``'s result size depends on the values of ``x``. Eagerly that is fine; inside a trace
the graph's shapes must be known from its input avals, so, as in jax, a ``size=`` argument fixes
the number of results (padded with ``fill_value``, 0 by default) and tracing without it is
refused with that suggestion.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.indexing import take
from tracejit.ops.infer import broadcast_shapes, jax_dtype, normalize_axis, shape_text
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal, is_integer


# take_along_axis / along_axis_add ----------------------------------------------------------------
def _along_shape(op: str, x: AVal, indices: AVal, axis: int) -> tuple[int | None, ...]:
    if not is_integer(indices.dtype):
        raise OpTypeError(op, f"indices must be integers, got {indices.dtype}")
    if x.ndim != indices.ndim:
        raise ShapeError(
            op,
            f"indices of shape {shape_text(indices.shape)} must have the rank of x "
            f"{shape_text(x.shape)}",
        )
    normalize_axis(op, axis, x.ndim)
    drop = lambda s: s[:axis] + (1,) + s[axis + 1 :]  # noqa: E731
    try:
        shape = broadcast_shapes(op, drop(x.shape), drop(indices.shape))
    except ShapeError:
        raise ShapeError(
            op,
            f"x of shape {shape_text(x.shape)} and indices of shape "
            f"{shape_text(indices.shape)} must agree (or broadcast) on the axes other than "
            f"{axis}",
        ) from None
    return shape[:axis] + (indices.shape[axis],) + shape[axis + 1 :]


def _infer_take_along_axis(x: AVal, indices: AVal, *, axis: int) -> AVal:
    return AVal(_along_shape("take_along_axis", x, indices, axis), x.dtype, x.weak)


def _take_along_axis(x: Any, indices: Any, *, axis: int) -> Any:
    return jnp.take_along_axis(x, indices, axis=axis)


def _take_along_axis_vjp(ct: Any, x: Any, indices: Any, *, out: Any, axis: int) -> tuple[Any, ...]:
    if not takes_gradient(x):
        return None, None
    from tracejit.ops.creation import zeros_like

    return cast_ct(bind(ALONG_AXIS_ADD, zeros_like(x), indices, ct, axis=axis), x), None


def _infer_along_axis_add(x: AVal, indices: AVal, updates: AVal, *, axis: int) -> AVal:
    region = _along_shape("along_axis_add", x, indices, axis)
    if updates.ndim != len(region) or any(
        u is not None and r is not None and u != r
        for u, r in zip(updates.shape, region, strict=True)
    ):
        raise ShapeError(
            "along_axis_add",
            f"updates of shape {shape_text(updates.shape)} must have the shape "
            f"{shape_text(region)} of the gathered region",
        )
    return x


def _along_axis_add(x: Any, indices: Any, updates: Any, *, axis: int) -> Any:
    shape = jnp.shape(updates)
    indices = jnp.where(indices < 0, indices + x.shape[axis], indices)
    grid = []
    for dim in range(x.ndim):
        if dim == axis:
            grid.append(jnp.broadcast_to(indices, shape))
        elif x.shape[dim] == 1:  # x was broadcast along this dim: every copy lands on 0
            grid.append(jnp.zeros(shape, jnp.int32))
        else:
            grid.append(jax.lax.broadcasted_iota(jnp.int32, shape, dim))
    return x.at[tuple(grid)].add(jnp.asarray(updates, x.dtype))


def _along_axis_add_vjp(
    ct: Any, x: Any, indices: Any, updates: Any, *, out: Any, axis: int
) -> tuple[Any, ...]:
    gathered = None
    if takes_gradient(updates):
        gathered = cast_ct(bind(TAKE_ALONG_AXIS, ct, indices, axis=axis), updates)
    return cast_ct(ct, x), None, gathered


# sort / argsort ----------------------------------------------------------------------------------
def _sort_infer(name: str, impl: Any) -> Any:
    def infer(x: AVal, *, axis: int, descending: bool, stable: bool) -> AVal:
        if x.ndim == 0:
            raise ShapeError(name, "cannot sort a 0-d tensor")
        normalize_axis(name, axis, x.ndim)
        params = {"axis": axis, "descending": descending, "stable": stable}
        dtype, weak = jax_dtype(name, impl, [x], params)
        return AVal(x.shape, dtype, weak)

    return infer


def _sort(x: Any, *, axis: int, descending: bool, stable: bool) -> Any:
    return jnp.sort(x, axis=axis, descending=descending, stable=stable)


def _argsort(x: Any, *, axis: int, descending: bool, stable: bool) -> Any:
    return jnp.argsort(x, axis=axis, descending=descending, stable=stable)


def _sort_vjp(
    ct: Any, x: Any, *, out: Any, axis: int, descending: bool, stable: bool
) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    from tracejit.ops.creation import zeros_like

    origin = bind(ARGSORT, x, axis=axis, descending=descending, stable=stable)
    return (cast_ct(bind(ALONG_AXIS_ADD, zeros_like(x), origin, ct, axis=axis), x),)


def _sort_jvp(tangents: Any, x: Any, *, out: Any, axis: int, descending: bool, stable: bool) -> Any:
    """The tangent moves with its element: gathered in sorted order."""
    (t,) = tangents
    if t is None:
        return None
    origin = bind(ARGSORT, x, axis=axis, descending=descending, stable=stable)
    return bind(TAKE_ALONG_AXIS, t, origin, axis=axis)


# searchsorted ------------------------------------------------------------------------------------
def _infer_searchsorted(x1: AVal, x2: AVal, *, side: str) -> AVal:
    if x1.ndim != 1:
        raise ShapeError(
            "searchsorted", f"x1 must be 1-D (sorted), got shape {shape_text(x1.shape)}"
        )
    if side not in ("left", "right"):
        raise OpError("searchsorted", f"side must be 'left' or 'right', got {side!r}")
    dtype, weak = jax_dtype("searchsorted", _searchsorted, [x1, x2], {"side": side})
    return AVal(x2.shape, dtype, weak)


def _searchsorted(x1: Any, x2: Any, *, side: str) -> Any:
    return jnp.searchsorted(x1, x2, side=side)


# nonzero -----------------------------------------------------------------------------------------
def _infer_nonzero(x: AVal, *, size: int | None, fill_value: Any) -> tuple[AVal, ...]:
    if x.ndim == 0:
        raise ShapeError("nonzero", "needs a tensor of at least one dimension, got a 0-d tensor")
    if size is None:
        raise ShapeError(
            "nonzero",
            "the number of nonzero elements depends on the values of x, which are not known "
            "while tracing; pass size=N (the results are cut or padded to N, as in jax), or "
            "call it eagerly",
        )
    dtype, weak = jax_dtype("nonzero", _nonzero_first, [x], {"size": size})
    return tuple(AVal((size,), dtype, weak) for _ in range(x.ndim))


def _nonzero_first(x: Any, *, size: int) -> Any:
    return jnp.nonzero(x, size=size)[0]


def _nonzero(x: Any, *, size: int | None, fill_value: Any) -> tuple[Any, ...]:
    return jnp.nonzero(x, size=size, fill_value=fill_value)


TAKE_ALONG_AXIS = defop(
    "take_along_axis",
    _infer_take_along_axis,
    _take_along_axis,
    _take_along_axis_vjp,
    jvp=linear_jvp("take_along_axis"),
)
ALONG_AXIS_ADD = defop(
    "along_axis_add",
    _infer_along_axis_add,
    _along_axis_add,
    _along_axis_add_vjp,
    jvp=linear_jvp("along_axis_add", (0, 2)),
)
SORT = defop("sort", _sort_infer("sort", _sort), _sort, _sort_vjp, jvp=_sort_jvp)
ARGSORT = defop("argsort", _sort_infer("argsort", _argsort), _argsort, differentiable=False)
SEARCHSORTED = defop("searchsorted", _infer_searchsorted, _searchsorted, differentiable=False)
NONZERO = defop("nonzero", _infer_nonzero, _nonzero, differentiable=False, multiple_results=True)


# Public functions --------------------------------------------------------------------------------
def _sort_params(op: str, x: Any, axis: int, descending: bool, stable: bool) -> dict[str, Any]:
    ndim = arg_aval(op, x).ndim
    if ndim == 0:
        raise ShapeError(op, "cannot sort a 0-d tensor")
    return {
        "axis": normalize_axis(op, axis, ndim),
        "descending": bool(descending),
        "stable": bool(stable),
    }


@locates_errors
def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """The values of ``x`` sorted along ``axis`` (NaNs last, as in jax.numpy).

    >>> import tracejit as tj
    >>> tj.sort(tj.constant([3, 1, 2]), descending=True).numpy()
    array([3, 2, 1], dtype=int32)
    """
    return bind(SORT, x, **_sort_params("sort", x, axis, descending, stable))


@locates_errors
def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """The indices that sort ``x`` along ``axis`` (ties keep their order when ``stable``).

    >>> import tracejit as tj
    >>> tj.argsort(tj.constant([3.0, 1.0, 2.0])).numpy()
    array([1, 2, 0], dtype=int32)
    """
    return bind(ARGSORT, x, **_sort_params("argsort", x, axis, descending, stable))


@locates_errors
def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    """Pick values of ``x`` along ``axis`` at ``indices`` (of the same rank; the other axes
    broadcast), e.g. to apply the result of ``argsort``.

    >>> import tracejit as tj
    >>> x = tj.constant([[3.0, 1.0], [2.0, 4.0]])
    >>> tj.take_along_axis(x, tj.argsort(x), axis=1).numpy()
    array([[1., 3.],
           [2., 4.]], dtype=float32)
    """
    ndim = arg_aval("take_along_axis", x).ndim
    return bind(TAKE_ALONG_AXIS, x, indices, axis=normalize_axis("take_along_axis", axis, ndim))


@locates_errors
def searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> Any:
    """Where to insert each of ``x2`` into the sorted 1-D ``x1`` to keep it sorted (``sorter``:
    the indices that sort ``x1``, when it is not sorted itself).

    >>> import tracejit as tj
    >>> tj.searchsorted(tj.constant([1.0, 2.0, 3.0]), tj.constant([2.0, 0.5]), side="right").numpy()
    array([2, 0], dtype=int32)
    """
    if sorter is not None:
        x1 = take(x1, sorter)
    return bind(SEARCHSORTED, x1, x2, side=side)


@locates_errors
def nonzero(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> tuple[Any, ...]:
    """The indices of the nonzero elements of ``x``, one int tensor per dimension. While tracing
    pass ``size=`` (the count must be static): the results are cut or padded to that length
    with ``fill_value`` (0 by default), as in jax.

    >>> import tracejit as tj
    >>> tj.nonzero(tj.constant([0, 3, 0, 5]))[0].numpy()
    array([1, 3], dtype=int32)
    """
    if size is not None:
        size = int(size)
        if size < 0:
            raise OpError("nonzero", f"size must be non-negative, got {size}")
    return bind(NONZERO, x, size=size, fill_value=fill_value)


__all__ = ["argsort", "nonzero", "searchsorted", "sort", "take_along_axis"]
