"""Shape ops: transpose, reshape, broadcast, expand/squeeze, concatenate/stack/split. Gathers
(``take``) and indexing (``x[...]``) live in ``indexing.py`` (several index arrays and ``x.at[...]``
in ``advanced_indexing.py``) and are re-exported here.

Unknown dimensions (``None``) flow through every rule: a dim that cannot be proven from the input
avals stays ``None``, and the run-time shape check is left to jax. Data-dependent shapes (boolean
masks) are refused with a suggestion, because a graph's shapes must be known from its input avals.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.advanced_indexing import gather_index
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.indexing import FULL_SLICE, SLICE, getitem, take
from tracejit.ops.infer import jax_dtype, normalize_axes, normalize_axis, shape_text
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.like import cast_ct, reshape_like, split_like, sum_like
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal


def _dims(op: str, shape: int | Sequence[int], what: str = "shape") -> tuple[int, ...]:
    """A shape argument as a tuple of Python ints (an int means a 1-D shape)."""
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        return tuple(operator.index(d) for d in shape)
    except TypeError:
        raise OpTypeError(
            op, f"{what} must be a sequence of Python ints, got {shape!r:.60}"
        ) from None


# transpose ---------------------------------------------------------------------------------------
def _infer_transpose(x: AVal, *, axes: tuple[int, ...]) -> AVal:
    if sorted(axes) != list(range(x.ndim)):
        raise OpError(
            "transpose",
            f"axes {axes} are not a permutation of the axes of shape {shape_text(x.shape)}",
        )
    return AVal(tuple(x.shape[a] for a in axes), x.dtype, x.weak)


def _transpose(x: Any, *, axes: tuple[int, ...]) -> Any:
    return jnp.transpose(x, axes)


def _transpose_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...]) -> tuple[Any]:
    inverse = tuple(int(a) for a in np.argsort(axes))
    return (cast_ct(bind(TRANSPOSE, ct, axes=inverse), x),)


# reshape -----------------------------------------------------------------------------------------
def _infer_reshape(x: AVal, *, shape: tuple[int, ...]) -> AVal:
    def fail(why: str) -> OpError:
        size = "" if x.size is None else f" ({x.size} elements)"
        return ShapeError(
            "reshape",
            f"cannot reshape a tensor of shape {shape_text(x.shape)}{size} "
            f"into {shape_text(shape)}: {why}",
        )

    if shape.count(-1) > 1:
        raise fail("only one dimension can be -1")
    if any(d < -1 for d in shape):
        raise fail("dimensions must be non-negative (or -1 for one inferred dimension)")
    others = math.prod(d for d in shape if d != -1)
    if -1 not in shape:
        if x.size is not None and others != x.size:
            raise fail(f"{others} elements are needed")
        return AVal(shape, x.dtype, x.weak)
    if x.size is None:  # the inferred dim depends on the unknown dims
        return AVal(tuple(None if d == -1 else d for d in shape), x.dtype, x.weak)
    if others == 0 or x.size % others:
        raise fail(f"{x.size} is not a multiple of {others}")
    return AVal(tuple(x.size // others if d == -1 else d for d in shape), x.dtype, x.weak)


def _reshape(x: Any, *, shape: tuple[int, ...]) -> Any:
    return jnp.reshape(x, shape)


def _reshape_vjp(ct: Any, x: Any, *, out: Any, shape: tuple[int, ...]) -> tuple[Any]:
    dims = arg_aval("reshape", x).shape
    if dims.count(None) > 1 or (None in dims and 0 in dims):
        # No static shape names x's shape (a -1 can stand for one unknown dim only).
        return (cast_ct(reshape_like(ct, x), x),)
    back = tuple(-1 if d is None else d for d in dims)
    return (cast_ct(bind(RESHAPE, ct, shape=back), x),)


# broadcast_to ------------------------------------------------------------------------------------
def _infer_broadcast_to(x: AVal, *, shape: tuple[int | None, ...]) -> AVal:
    offset = len(shape) - x.ndim
    if offset < 0:
        raise ShapeError(
            "broadcast_to",
            f"cannot broadcast a tensor of shape {shape_text(x.shape)} to the "
            f"lower-rank shape {shape_text(shape)}",
        )
    result = list(shape)
    for axis, target in enumerate(shape):
        dim = x.shape[axis - offset] if axis >= offset else 1
        if target is None:
            if axis < offset:
                raise ShapeError(
                    "broadcast_to",
                    f"unknown target dim {axis} in {shape_text(shape)} has no "
                    f"matching input dim in {shape_text(x.shape)} to take its size from",
                )
            result[axis] = dim
        elif dim is not None and dim not in (1, target):
            raise ShapeError(
                "broadcast_to",
                f"cannot broadcast a tensor of shape {shape_text(x.shape)} to "
                f"{shape_text(shape)}: dimension {dim} does not match {target}",
            )
    return AVal(tuple(result), x.dtype, x.weak)


def _broadcast_to(x: Any, *, shape: tuple[int | None, ...]) -> Any:
    x = jnp.asarray(x)
    offset = len(shape) - x.ndim  # a None target dim keeps the input's (run-time) size
    return jnp.broadcast_to(
        x, tuple(x.shape[i - offset] if d is None else d for i, d in enumerate(shape))
    )


def _broadcast_to_vjp(ct: Any, x: Any, *, out: Any, shape: tuple[int | None, ...]) -> tuple[Any]:
    from tracejit.autodiff.rules import unbroadcast

    dims = arg_aval("broadcast_to", x).shape
    offset = len(shape) - len(dims)
    # An unknown input dim broadcast to a known size n is n or 1 at run time: only the run-time
    # shapes can tell whether to sum over it.
    if any(d is None and shape[offset + i] is not None for i, d in enumerate(dims)):
        return (cast_ct(sum_like(ct, x), x),)
    return (unbroadcast(ct, x),)


# expand_dims / squeeze ---------------------------------------------------------------------------
def _infer_expand_dims(x: AVal, *, axes: tuple[int, ...]) -> AVal:
    normalize_axes("expand_dims", axes, x.ndim + len(axes))
    dims = iter(x.shape)
    shape = tuple(1 if a in axes else next(dims) for a in range(x.ndim + len(axes)))
    return AVal(shape, x.dtype, x.weak)


def _expand_dims(x: Any, *, axes: tuple[int, ...]) -> Any:
    return jnp.expand_dims(x, axes)


def _expand_dims_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...]) -> tuple[Any]:
    return (cast_ct(bind(SQUEEZE, ct, axes=axes), x),)


def _infer_squeeze(x: AVal, *, axes: tuple[int, ...]) -> AVal:
    normalize_axes("squeeze", axes, x.ndim)
    for axis in axes:
        if x.shape[axis] not in (1, None):
            raise ShapeError(
                "squeeze",
                f"cannot squeeze axis {axis} of a tensor of shape "
                f"{shape_text(x.shape)}: its size is {x.shape[axis]}, not 1",
            )
    return AVal(tuple(d for a, d in enumerate(x.shape) if a not in axes), x.dtype, x.weak)


def _squeeze(x: Any, *, axes: tuple[int, ...]) -> Any:
    return jnp.squeeze(x, axes)


def _squeeze_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...]) -> tuple[Any]:
    return (cast_ct(bind(EXPAND_DIMS, ct, axes=axes), x),)


# concatenate / stack / split ---------------------------------------------------------------------
def _merge_dims(op: str, avals: Sequence[AVal], skip: int | None) -> list[int | None]:
    """The common shape of ``avals`` (all of one rank), ignoring axis ``skip``; ``None`` dims
    take the known size of another input."""
    merged: list[int | None] = list(avals[0].shape)
    for aval in avals[1:]:
        for axis, dim in enumerate(aval.shape):
            if axis == skip or dim is None:
                continue
            if merged[axis] is not None and merged[axis] != dim:
                allowed = (
                    "" if skip is None else f" (only the concatenation axis {skip} may differ)"
                )
                raise ShapeError(
                    op,
                    f"shapes {shape_text(avals[0].shape)} and {shape_text(aval.shape)} "
                    f"differ in dimension {axis}{allowed}",
                )
            merged[axis] = dim
    return merged


def _check_ranks(op: str, avals: Sequence[AVal], minimum: int) -> int:
    if not avals:
        raise OpError(op, "needs at least one tensor")
    ndim = avals[0].ndim
    if ndim < minimum or any(a.ndim != ndim for a in avals):
        ranks = ", ".join(shape_text(a.shape) for a in avals)
        raise ShapeError(op, f"expected tensors of one rank >= {minimum}, got shapes {ranks}")
    return ndim


def _infer_concatenate(*xs: AVal, axis: int) -> AVal:
    normalize_axis("concatenate", axis, _check_ranks("concatenate", xs, 1))
    shape = _merge_dims("concatenate", xs, axis)
    sizes = [a.shape[axis] for a in xs]
    shape[axis] = None if None in sizes else sum(sizes)  # type: ignore[arg-type]
    dtype, weak = jax_dtype("concatenate", _concatenate, xs, {"axis": axis})
    return AVal(tuple(shape), dtype, weak)


def _concatenate(*xs: Any, axis: int) -> Any:
    return jnp.concatenate(xs, axis=axis)


def _concatenate_vjp(ct: Any, *xs: Any, out: Any, axis: int) -> tuple[Any, ...]:
    sizes = [arg_aval("concatenate", x).shape[axis] for x in xs]
    if len(xs) == 1:
        pieces: tuple[Any, ...] = (ct,)
    elif None in sizes:  # where the pieces start is only known at run time
        pieces = split_like(ct, xs, axis)
    else:
        bounds = tuple(int(b) for b in np.cumsum(sizes)[:-1])
        pieces = bind(SPLIT, ct, indices_or_sections=bounds, axis=axis)
    return tuple(cast_ct(piece, x) for piece, x in zip(pieces, xs, strict=True))


def _infer_stack(*xs: AVal, axis: int) -> AVal:
    normalize_axis("stack", axis, _check_ranks("stack", xs, 0) + 1)
    shape = _merge_dims("stack", xs, None)
    shape.insert(axis, len(xs))
    dtype, weak = jax_dtype("stack", _stack, xs, {"axis": axis})
    return AVal(tuple(shape), dtype, weak)


def _stack(*xs: Any, axis: int) -> Any:
    return jnp.stack(xs, axis=axis)


def _stack_vjp(ct: Any, *xs: Any, out: Any, axis: int) -> tuple[Any, ...]:
    lead = (FULL_SLICE,) * axis
    return tuple(cast_ct(bind(SLICE, ct, index=(*lead, ("int", i))), x) for i, x in enumerate(xs))


def _infer_split(
    x: AVal, *, indices_or_sections: int | tuple[int, ...], axis: int
) -> tuple[AVal, ...]:
    normalize_axis("split", axis, x.ndim)
    dim = x.shape[axis]
    if isinstance(indices_or_sections, int):
        count = indices_or_sections
        if count <= 0 or (dim is not None and dim % count):
            raise ShapeError(
                "split",
                f"axis {axis} of shape {shape_text(x.shape)} cannot be split into "
                f"{count} equal sections",
            )
        sizes: list[int | None] = [None if dim is None else dim // count] * count
    else:
        bounds = (0, *indices_or_sections, None)
        sizes = [
            None if dim is None else len(range(dim)[start:stop])
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
        ]
    return tuple(AVal(x.shape[:axis] + (s,) + x.shape[axis + 1 :], x.dtype, x.weak) for s in sizes)


def _split(x: Any, *, indices_or_sections: int | tuple[int, ...], axis: int) -> tuple[Any, ...]:
    return tuple(jnp.split(x, indices_or_sections, axis=axis))


def _split_vjp(
    ct: tuple[Any, ...], x: Any, *, out: Any, indices_or_sections: Any, axis: int
) -> tuple[Any]:
    return (cast_ct(bind(CONCATENATE, *ct, axis=axis), x),)


TRANSPOSE = defop(
    "transpose", _infer_transpose, _transpose, _transpose_vjp, jvp=linear_jvp("transpose")
)
RESHAPE = defop("reshape", _infer_reshape, _reshape, _reshape_vjp, jvp=linear_jvp("reshape"))
BROADCAST_TO = defop(
    "broadcast_to",
    _infer_broadcast_to,
    _broadcast_to,
    _broadcast_to_vjp,
    fusible=True,
    jvp=linear_jvp("broadcast_to"),
)
EXPAND_DIMS = defop(
    "expand_dims", _infer_expand_dims, _expand_dims, _expand_dims_vjp, jvp=linear_jvp("expand_dims")
)
SQUEEZE = defop("squeeze", _infer_squeeze, _squeeze, _squeeze_vjp, jvp=linear_jvp("squeeze"))
CONCATENATE = defop(
    "concatenate",
    _infer_concatenate,
    _concatenate,
    _concatenate_vjp,
    jvp=linear_jvp("concatenate", None),
)
STACK = defop("stack", _infer_stack, _stack, _stack_vjp, jvp=linear_jvp("stack", None))
SPLIT = defop(
    "split", _infer_split, _split, _split_vjp, jvp=linear_jvp("split"), multiple_results=True
)


@locates_errors
def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute the axes of ``x`` (reverse them when ``axes`` is None).

    >>> import tracejit as tj
    >>> tj.transpose(tj.ones((2, 3, 4)), (1, 0, 2)).shape
    (3, 2, 4)
    """
    ndim = arg_aval("transpose", x).ndim
    if axes is None:
        normalized = tuple(reversed(range(ndim)))
    else:
        normalized = tuple(
            normalize_axis("transpose", a, ndim) for a in _dims("transpose", axes, "axes")
        )
    return bind(TRANSPOSE, x, axes=normalized)


@locates_errors
def reshape(x: Any, shape: int | Sequence[int], *, copy: bool | None = None) -> Any:
    """Give ``x`` a new shape with the same elements; one dimension may be -1 (inferred).
    ``copy`` is the array API's: tensors are immutable, so a copy cannot be told apart from
    the original and every value is accepted.

    >>> import tracejit as tj
    >>> tj.reshape(tj.arange(6), (2, -1)).numpy()
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int32)
    """
    return bind(RESHAPE, x, shape=_dims("reshape", shape))


@locates_errors
def broadcast_to(x: Any, shape: Sequence[int | None]) -> Any:
    """Broadcast ``x`` to ``shape`` as numpy does. A ``None`` target dim keeps the size of the
    matching input dim (useful when that size is unknown while tracing).

    >>> import tracejit as tj
    >>> tj.broadcast_to(tj.constant([1, 2]), (2, 2)).numpy()
    array([[1, 2],
           [1, 2]], dtype=int32)
    """
    dims = shape if isinstance(shape, Sequence) else (shape,)
    target = tuple(None if d is None else operator.index(d) for d in dims)
    return bind(BROADCAST_TO, x, shape=target)


@locates_errors
def expand_dims(x: Any, axis: int | Sequence[int]) -> Any:
    """Insert size-1 dimensions at ``axis`` (an int or a tuple of positions in the result).

    >>> import tracejit as tj
    >>> tj.expand_dims(tj.ones((2, 3)), (0, -1)).shape
    (1, 2, 3, 1)
    """
    count = 1 if isinstance(axis, int) else len(axis)
    axes = normalize_axes("expand_dims", axis, arg_aval("expand_dims", x).ndim + count)
    return bind(EXPAND_DIMS, x, axes=axes)


@locates_errors
def squeeze(x: Any, axis: int | Sequence[int] | None = None) -> Any:
    """Remove size-1 dimensions (all of them when ``axis`` is None).

    >>> import tracejit as tj
    >>> tj.squeeze(tj.ones((1, 3, 1))).shape
    (3,)
    """
    aval = arg_aval("squeeze", x)
    if axis is None:
        if None in aval.shape:
            raise OpError(
                "squeeze",
                f"axis=None is ambiguous for shape {shape_text(aval.shape)}: unknown "
                "dims may or may not be 1 at run time; pass the axes to remove explicitly",
            )
        axes = tuple(a for a, d in enumerate(aval.shape) if d == 1)
    else:
        axes = normalize_axes("squeeze", axis, aval.ndim)
    return bind(SQUEEZE, x, axes=axes)


@locates_errors
def concatenate(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join tensors along an existing axis (one node with one input per tensor).

    >>> import tracejit as tj
    >>> tj.concatenate([tj.zeros((1, 2)), tj.ones((2, 2))]).shape
    (3, 2)
    """
    tensors = tuple(tensors)
    if not tensors:
        raise OpError("concatenate", "needs at least one tensor")
    ndim = arg_aval("concatenate", tensors[0]).ndim
    return bind(CONCATENATE, *tensors, axis=normalize_axis("concatenate", axis, max(ndim, 1)))


@locates_errors
def stack(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join same-shaped tensors along a new axis.

    >>> import tracejit as tj
    >>> tj.stack([tj.zeros(3), tj.ones(3)], axis=1).shape
    (3, 2)
    """
    tensors = tuple(tensors)
    if not tensors:
        raise OpError("stack", "needs at least one tensor")
    ndim = arg_aval("stack", tensors[0]).ndim
    return bind(STACK, *tensors, axis=normalize_axis("stack", axis, ndim + 1))


@locates_errors
def split(x: Any, indices_or_sections: int | Sequence[int], axis: int = 0) -> tuple[Any, ...]:
    """Split ``x`` along ``axis`` into equal sections (an int) or at the given indices.

    >>> import tracejit as tj
    >>> [t.shape for t in tj.split(tj.ones((5, 2)), [2, 3])]
    [(2, 2), (1, 2), (2, 2)]
    """
    ndim = arg_aval("split", x).ndim
    if isinstance(indices_or_sections, (int, np.integer)):
        how: int | tuple[int, ...] = int(indices_or_sections)
    else:
        how = _dims("split", indices_or_sections, "indices")
    return bind(SPLIT, x, indices_or_sections=how, axis=normalize_axis("split", axis, ndim))


__all__ = [
    "broadcast_to",
    "concatenate",
    "expand_dims",
    "gather_index",
    "getitem",
    "reshape",
    "split",
    "squeeze",
    "stack",
    "take",
    "transpose",
]
