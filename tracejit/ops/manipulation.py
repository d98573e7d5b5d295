"""The array API standard's manipulation functions (2024.12).

New registry entries: ``flip``, ``roll``, ``repeat``, ``tile``, ``tril``, ``triu`` and
``unstack`` (``stack`` is its gradient). The others are compositions of existing entries,
documented as such: ``concat`` is ``concatenate`` (flattening first when ``axis=None``),
``permute_dims``, ``moveaxis`` and ``matrix_transpose`` (``x.mT``) are ``transpose``, and
``broadcast_arrays`` is ``broadcast_to`` (``broadcast_like`` when dims are unknown).

Unknown dims (``None``) flow through every rule. The gradients of ``tile`` and ``repeat`` with an
int count split (or stride-slice) the cotangent and add the pieces, so they need no static size;
``repeat`` with per-element counts scatters the cotangent back with ``index_add``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, concrete_value, locates_errors
from tracejit.ops.elementwise import add
from tracejit.ops.indexing import FULL_SLICE, INDEX_ADD, SLICE
from tracejit.ops.infer import broadcast_shapes, normalize_axes, normalize_axis, shape_text
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.like import broadcast_like, cast_ct, takes_gradient
from tracejit.ops.registry import bind, defop
from tracejit.ops.shape import (
    CONCATENATE,
    RESHAPE,
    SPLIT,
    SQUEEZE,
    STACK,
    TRANSPOSE,
    broadcast_to,
)
from tracejit.types import AVal


def _ints(op: str, value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),)
    try:
        return tuple(operator.index(v) for v in value)
    except TypeError:
        raise OpTypeError(
            op, f"{what} must be an int or a tuple of ints, got {value!r:.60}"
        ) from None


# flip --------------------------------------------------------------------------------------------
def _infer_flip(x: AVal, *, axes: tuple[int, ...]) -> AVal:
    normalize_axes("flip", axes, x.ndim)
    return x


def _flip(x: Any, *, axes: tuple[int, ...]) -> Any:
    return jnp.flip(x, axes)


def _flip_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...]) -> tuple[Any]:
    return (cast_ct(bind(FLIP, ct, axes=axes), x),)


# roll --------------------------------------------------------------------------------------------
def _infer_roll(x: AVal, *, shift: tuple[int, ...], axes: tuple[int, ...] | None) -> AVal:
    if axes is not None:
        if len(axes) != len(shift):
            raise OpError("roll", f"shift {shift} and axis {axes} must have the same length")
        for axis in axes:
            normalize_axis("roll", axis, x.ndim)
    elif len(shift) != 1:
        raise OpError("roll", f"with axis=None, shift must be one int, got {shift}")
    return x


def _roll(x: Any, *, shift: tuple[int, ...], axes: tuple[int, ...] | None) -> Any:
    return jnp.roll(x, shift if axes is not None else shift[0], axes)


def _roll_vjp(ct: Any, x: Any, *, out: Any, shift: tuple[int, ...], axes: Any) -> tuple[Any]:
    back = tuple(-s for s in shift)
    return (cast_ct(bind(ROLL, ct, shift=back, axes=axes), x),)


# tril / triu -------------------------------------------------------------------------------------
def _triangle_infer(name: str) -> Any:
    def infer(x: AVal, *, k: int) -> AVal:
        if x.ndim < 2:
            raise ShapeError(
                name, f"needs a (batch of) matrices, got a tensor of shape {shape_text(x.shape)}"
            )
        return x

    return infer


def _tril(x: Any, *, k: int) -> Any:
    return jnp.tril(x, k)


def _triu(x: Any, *, k: int) -> Any:
    return jnp.triu(x, k)


def _tril_vjp(ct: Any, x: Any, *, out: Any, k: int) -> tuple[Any]:
    return (cast_ct(bind(TRIL, ct, k=k), x),)


def _triu_vjp(ct: Any, x: Any, *, out: Any, k: int) -> tuple[Any]:
    return (cast_ct(bind(TRIU, ct, k=k), x),)


# tile --------------------------------------------------------------------------------------------
def _infer_tile(x: AVal, *, reps: tuple[int, ...]) -> AVal:
    if any(r < 0 for r in reps):
        raise OpError("tile", f"repetitions must be non-negative, got {reps}")
    ndim = max(x.ndim, len(reps))
    dims = (1,) * (ndim - x.ndim) + x.shape
    counts = (1,) * (ndim - len(reps)) + reps
    shape = tuple(None if d is None else d * r for d, r in zip(dims, counts, strict=True))
    return AVal(shape, x.dtype, x.weak)


def _tile(x: Any, *, reps: tuple[int, ...]) -> Any:
    return jnp.tile(x, reps)


def _tile_vjp(ct: Any, x: Any, *, out: Any, reps: tuple[int, ...]) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    ndim = max(arg_aval("tile", x).ndim, len(reps))
    counts = (1,) * (ndim - len(reps)) + reps
    for axis, count in enumerate(counts):
        if count > 1:  # the copies lie one after the other: add them up
            pieces = bind(SPLIT, ct, indices_or_sections=count, axis=axis)
            total = pieces[0]
            for piece in pieces[1:]:
                total = add(total, piece)
            ct = total
    lead = ndim - arg_aval("tile", x).ndim
    if lead:  # the dims tile added in front are size 1 now
        ct = bind(SQUEEZE, ct, axes=tuple(range(lead)))
    return (cast_ct(ct, x),)


# repeat ------------------------------------------------------------------------------------------
def _infer_repeat(x: AVal, *, repeats: int | tuple[int, ...], axis: int) -> AVal:
    normalize_axis("repeat", axis, x.ndim)
    dim = x.shape[axis]
    if isinstance(repeats, int):
        if repeats < 0:
            raise OpError("repeat", f"repeats must be non-negative, got {repeats}")
        size = None if dim is None else dim * repeats
    else:
        if any(r < 0 for r in repeats):
            raise OpError("repeat", f"repeats must be non-negative, got {repeats}")
        if dim is not None and len(repeats) not in (1, dim):
            raise ShapeError(
                "repeat",
                f"{len(repeats)} repeats for axis {axis} of shape {shape_text(x.shape)}: "
                f"give one count, or one per element ({dim})",
            )
        if len(repeats) == 1:
            size = None if dim is None else dim * repeats[0]
        else:
            size = sum(repeats)
    return AVal(x.shape[:axis] + (size,) + x.shape[axis + 1 :], x.dtype, x.weak)


def _repeat(x: Any, *, repeats: int | tuple[int, ...], axis: int) -> Any:
    if isinstance(repeats, tuple) and len(repeats) == 1:
        repeats = repeats[0]
    if isinstance(repeats, int):
        return jnp.repeat(x, repeats, axis=axis)
    return jnp.repeat(x, np.asarray(repeats), axis=axis, total_repeat_length=sum(repeats))


def _repeat_vjp(
    ct: Any, x: Any, *, out: Any, repeats: int | tuple[int, ...], axis: int
) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    if isinstance(repeats, tuple) and len(repeats) == 1:
        repeats = repeats[0]
    if isinstance(repeats, int):
        # Copy j of element i sits at i * repeats + j: add the strided slices j::repeats.
        if repeats == 0:
            from tracejit.ops.creation import zeros_like

            return (zeros_like(x),)
        lead = (FULL_SLICE,) * axis
        total = None
        for j in range(repeats):
            piece = bind(SLICE, ct, index=(*lead, ("slice", j, None, repeats)))
            total = piece if total is None else add(total, piece)
        return (cast_ct(total, x),)
    from tracejit.ops.creation import zeros_like

    owners = np.repeat(np.arange(len(repeats), dtype=np.int32), repeats)
    return (cast_ct(bind(INDEX_ADD, zeros_like(x), owners, ct, axis=axis), x),)


# unstack -----------------------------------------------------------------------------------------
def _infer_unstack(x: AVal, *, axis: int) -> tuple[AVal, ...]:
    if x.ndim == 0:
        raise ShapeError("unstack", "cannot unstack a 0-d tensor")
    normalize_axis("unstack", axis, x.ndim)
    count = x.shape[axis]
    if count is None:
        raise ShapeError(
            "unstack",
            f"axis {axis} of shape {shape_text(x.shape)} is unknown while tracing, so the "
            "number of results is too; give it a known size in the input signature",
        )
    piece = AVal(x.shape[:axis] + x.shape[axis + 1 :], x.dtype, x.weak)
    return (piece,) * count


def _unstack(x: Any, *, axis: int) -> tuple[Any, ...]:
    return tuple(jnp.moveaxis(x, axis, 0))


def _unstack_vjp(ct: tuple[Any, ...], x: Any, *, out: Any, axis: int) -> tuple[Any]:
    return (cast_ct(bind(STACK, *ct, axis=axis), x),)


FLIP = defop("flip", _infer_flip, _flip, _flip_vjp, jvp=linear_jvp("flip"))
ROLL = defop("roll", _infer_roll, _roll, _roll_vjp, jvp=linear_jvp("roll"))
TRIL = defop("tril", _triangle_infer("tril"), _tril, _tril_vjp, jvp=linear_jvp("tril"))
TRIU = defop("triu", _triangle_infer("triu"), _triu, _triu_vjp, jvp=linear_jvp("triu"))
TILE = defop("tile", _infer_tile, _tile, _tile_vjp, jvp=linear_jvp("tile"))
REPEAT = defop("repeat", _infer_repeat, _repeat, _repeat_vjp, jvp=linear_jvp("repeat"))
UNSTACK = defop(
    "unstack",
    _infer_unstack,
    _unstack,
    _unstack_vjp,
    multiple_results=True,
    jvp=linear_jvp("unstack"),
)


# Public functions --------------------------------------------------------------------------------
@locates_errors
def flip(x: Any, /, *, axis: int | Sequence[int] | None = None) -> Any:
    """Reverse the order of elements along ``axis`` (all axes when None).

    >>> import tracejit as tj
    >>> tj.flip(tj.constant([[1, 2], [3, 4]]), axis=1).numpy()
    array([[2, 1],
           [4, 3]], dtype=int32)
    """
    return bind(FLIP, x, axes=normalize_axes("flip", axis, arg_aval("flip", x).ndim))


@locates_errors
def roll(x: Any, /, shift: int | Sequence[int], *, axis: int | Sequence[int] | None = None) -> Any:
    """Shift elements along ``axis`` with wrap-around (of the flattened ``x`` when None).

    >>> import tracejit as tj
    >>> tj.roll(tj.constant([1, 2, 3, 4]), 1).numpy()
    array([4, 1, 2, 3], dtype=int32)
    """
    shifts = _ints("roll", shift, "shift")
    ndim = arg_aval("roll", x).ndim
    axes = None
    if axis is not None:
        axes = tuple(normalize_axis("roll", a, ndim) for a in _ints("roll", axis, "axis"))
        if len(shifts) == 1 and len(axes) > 1:
            shifts = shifts * len(axes)
    return bind(ROLL, x, shift=shifts, axes=axes)


@locates_errors
def tril(x: Any, /, *, k: int = 0) -> Any:
    """The lower triangle of each matrix in ``x`` (elements above diagonal ``k`` zeroed).

    >>> import tracejit as tj
    >>> tj.tril(tj.ones((2, 2))).numpy()
    array([[1., 0.],
           [1., 1.]], dtype=float32)
    """
    return bind(TRIL, x, k=operator.index(k))


@locates_errors
def triu(x: Any, /, *, k: int = 0) -> Any:
    """The upper triangle of each matrix in ``x`` (elements below diagonal ``k`` zeroed)."""
    return bind(TRIU, x, k=operator.index(k))


@locates_errors
def tile(x: Any, repetitions: int | Sequence[int], /) -> Any:
    """Repeat ``x`` as a whole ``repetitions[i]`` times along each axis (numpy's ``tile``).

    >>> import tracejit as tj
    >>> tj.tile(tj.constant([1, 2]), (2,)).numpy()
    array([1, 2, 1, 2], dtype=int32)
    """
    return bind(TILE, x, reps=_ints("tile", repetitions, "repetitions"))


@locates_errors
def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
    """Repeat each element of ``x`` ``repeats`` times along ``axis`` (of the flattened ``x``
    when None). ``repeats`` is an int or one count per element; the counts must be known while
    tracing (Python ints or an eager tensor), because they decide the result's shape.

    >>> import tracejit as tj
    >>> tj.repeat(tj.constant([1, 2]), 2).numpy()
    array([1, 1, 2, 2], dtype=int32)
    """
    if axis is None:
        x, axis = bind(RESHAPE, x, shape=(-1,)), 0
    axis = normalize_axis("repeat", axis, arg_aval("repeat", x).ndim)
    if isinstance(repeats, (int, np.integer)):
        counts: int | tuple[int, ...] = int(repeats)
    else:
        value = concrete_value(repeats)
        if value is None:
            raise OpError(
                "repeat",
                "repeats must be known while tracing (the result's shape depends on them), "
                "got a symbolic tensor; pass Python ints",
            )
        if value.ndim > 1 or value.dtype.kind not in "iu":
            raise OpTypeError(
                "repeat", f"repeats must be an int or a 1-D array of ints, got {value.dtype}"
            )
        counts = int(value) if value.ndim == 0 else tuple(int(v) for v in value)
    return bind(REPEAT, x, repeats=counts, axis=axis)


@locates_errors
def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    """The standard's name for ``concatenate``; ``axis=None`` flattens the arrays first.

    >>> import tracejit as tj
    >>> tj.concat([tj.ones((2, 2)), tj.zeros((1, 2))], axis=None).shape
    (6,)
    """
    from tracejit.ops.shape import concatenate

    arrays = tuple(arrays)
    if axis is None:
        return bind(CONCATENATE, *(bind(RESHAPE, a, shape=(-1,)) for a in arrays), axis=0)
    return concatenate(arrays, axis)


@locates_errors
def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    """The standard's name for ``transpose`` with explicit ``axes``.

    >>> import tracejit as tj
    >>> tj.permute_dims(tj.ones((2, 3, 4)), (2, 0, 1)).shape
    (4, 2, 3)
    """
    ndim = arg_aval("permute_dims", x).ndim
    normalized = tuple(
        normalize_axis("permute_dims", a, ndim) for a in _ints("permute_dims", axes, "axes")
    )
    if sorted(normalized) != list(range(ndim)):
        raise OpError("permute_dims", f"axes {tuple(axes)} are not a permutation of {ndim} axes")
    return bind(TRANSPOSE, x, axes=normalized)


@locates_errors
def moveaxis(x: Any, source: int | Sequence[int], destination: int | Sequence[int], /) -> Any:
    """Move axes ``source`` to positions ``destination`` (a ``transpose``).

    >>> import tracejit as tj
    >>> tj.moveaxis(tj.ones((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    ndim = arg_aval("moveaxis", x).ndim
    src = tuple(normalize_axis("moveaxis", a, ndim) for a in _ints("moveaxis", source, "source"))
    dst = tuple(
        normalize_axis("moveaxis", a, ndim) for a in _ints("moveaxis", destination, "destination")
    )
    if len(src) != len(dst):
        raise OpError("moveaxis", f"source {src} and destination {dst} differ in length")
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise OpError("moveaxis", f"repeated axis in source {src} or destination {dst}")
    order = [a for a in range(ndim) if a not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return bind(TRANSPOSE, x, axes=tuple(order))


@locates_errors
def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes (transpose each matrix of a batch); also ``x.mT``.

    >>> import tracejit as tj
    >>> tj.matrix_transpose(tj.ones((5, 2, 3))).shape
    (5, 3, 2)
    """
    ndim = arg_aval("matrix_transpose", x).ndim
    if ndim < 2:
        raise ShapeError("matrix_transpose", f"needs at least 2 dims, got a tensor of rank {ndim}")
    return bind(TRANSPOSE, x, axes=(*range(ndim - 2), ndim - 1, ndim - 2))


@locates_errors
def broadcast_arrays(*arrays: Any) -> list[Any]:
    """Broadcast the arrays against each other (``broadcast_to`` of each to the common shape).

    >>> import tracejit as tj
    >>> [a.shape for a in tj.broadcast_arrays(tj.ones((2, 1)), tj.ones(3))]
    [(2, 3), (2, 3)]
    """
    avals = [arg_aval("broadcast_arrays", a) for a in arrays]
    shape = broadcast_shapes("broadcast_arrays", *(a.shape for a in avals))
    if None not in shape:
        return [broadcast_to(a, shape) for a in arrays]
    results = []
    for array in arrays:  # unknown dims: broadcast against each other tensor's run-time shape
        result = array
        for other in arrays:
            if other is not array:
                result = broadcast_like(result, other)
        results.append(result)
    return results


@locates_errors
def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    """Split ``x`` along ``axis`` into a tuple of its slices (the inverse of ``stack``).

    >>> import tracejit as tj
    >>> [t.numpy().tolist() for t in tj.unstack(tj.constant([[1, 2], [3, 4]]), axis=1)]
    [[1, 3], [2, 4]]
    """
    ndim = arg_aval("unstack", x).ndim
    if ndim == 0:
        raise ShapeError("unstack", "cannot unstack a 0-d tensor")
    return bind(UNSTACK, x, axis=normalize_axis("unstack", axis, ndim))


__all__ = [
    "broadcast_arrays",
    "concat",
    "flip",
    "matrix_transpose",
    "moveaxis",
    "permute_dims",
    "repeat",
    "roll",
    "tile",
    "tril",
    "triu",
    "unstack",
]
