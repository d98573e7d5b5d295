"""Shared pieces of shape/dtype inference rules: broadcasting with unknown dims, axis
normalization, and dtype rules taken from jax itself so promotion matches jax.numpy exactly."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.types import AVal, Shape


def broadcast_shapes(op: str, *shapes: Shape) -> Shape:
    """numpy broadcasting where ``None`` is an unknown dimension.

    An unknown dim against 1 stays unknown; against a known n > 1 it becomes n (at run time it
    must be n or 1, and jax checks that).
    """
    ndim = max((len(s) for s in shapes), default=0)
    result: list[int | None] = []
    for axis in range(ndim):
        dims = [s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            pretty = ", ".join(_shape_text(s) for s in shapes)
            raise ShapeError(op, f"shapes {pretty} cannot be broadcast together")
        if known:
            result.append(known.pop())
        elif any(d is None for d in dims):
            result.append(None)
        else:
            result.append(1)
    return tuple(result)


def _shape_text(shape: Shape) -> str:
    return (
        "("
        + ", ".join("?" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def shape_text(shape: Shape) -> str:
    """``(3, 4)`` with ``?`` for unknown dims, for error messages."""
    return _shape_text(shape)


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise OpError(op, f"axis {axis} is out of range for a tensor of rank {ndim}")
    return axis % ndim if ndim else 0


def normalize_axes(op: str, axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """A sorted tuple of non-negative axes (all axes when ``axis`` is None)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    normalized = tuple(sorted(normalize_axis(op, a, ndim) for a in axes))
    if len(set(normalized)) != len(normalized):
        raise OpError(op, f"repeated axis in {axis}")
    return normalized


@functools.lru_cache(maxsize=8192)
def _jax_dtype(
    impl: Callable[..., Any], avals: tuple[AVal, ...], params: tuple[tuple[str, Any], ...]
) -> tuple[np.dtype, bool]:
    structs = [jax.ShapeDtypeStruct((1,) * a.ndim, a.dtype, weak_type=a.weak) for a in avals]
    out = jax.eval_shape(functools.partial(impl, **dict(params)), *structs)
    return np.dtype(out.dtype), bool(out.weak_type)


def jax_dtype(
    op: str, impl: Callable[..., Any], avals: Sequence[AVal], params: dict[str, Any]
) -> tuple[np.dtype, bool]:
    """Output dtype and weakness of ``impl`` as jax computes them, evaluated abstractly on
    all-ones shapes of the same ranks (so it works with unknown dims, and is cached)."""
    try:
        return _jax_dtype(impl, tuple(avals), tuple(sorted(params.items())))
    except TypeError as err:
        dtypes = ", ".join(str(a.dtype) for a in avals)
        raise OpTypeError(op, f"does not accept inputs of dtype {dtypes} ({err})") from None


def elementwise_infer(name: str, impl: Callable[..., Any]) -> Callable[..., AVal]:
    """Inference for an elementwise op: broadcast the shapes, take the dtype from jax."""

    def infer(*avals: AVal, **params: Any) -> AVal:
        shape = broadcast_shapes(name, *(a.shape for a in avals))
        dtype, weak = jax_dtype(name, impl, [AVal((), a.dtype, a.weak) for a in avals], params)
        return AVal(shape, dtype, weak)

    return infer
