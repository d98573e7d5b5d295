"""Reductions: sum, mean, max, min, prod, argmax, argmin, any, all.

Every reduction takes params ``axes`` (a sorted tuple of non-negative axes, normalized by the
public function from the input's rank) and ``keepdims``. Output dtypes come from jax itself
(``sum`` of bool or int32 is int32, ``mean`` of ints is float32, ``argmax`` is int32, ``any`` is
bool), so they always match jax.numpy.

Gradients: ``sum`` and ``mean`` broadcast the cotangent back over the reduced axes; ``max`` and
``min`` split it equally between all the elements equal to the result (ties share, as in jax);
``prod`` gives each element the product of the others, exactly even when inputs hold zeros (the
second derivative at inputs with zeros may differ from jax's where two or more are zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp

from tracejit.errors import OpError, OpTypeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.elementwise import cast, divide, equal, multiply, where
from tracejit.ops.infer import jax_dtype, normalize_axes, shape_text
from tracejit.ops.jvp_rules import linear_jvp, reduction_jvp
from tracejit.ops.like import broadcast_like, cast_ct, takes_gradient
from tracejit.ops.registry import OpDef, bind, defop
from tracejit.ops.shape import EXPAND_DIMS, broadcast_to
from tracejit.types import AVal, as_dtype, float32, int32

Axis = int | Sequence[int] | None


def reduced_shape(
    op: str, x: AVal, axes: tuple[int, ...], keepdims: bool
) -> tuple[int | None, ...]:
    """The shape left after reducing ``axes`` of ``x`` (kept as size 1 with ``keepdims``)."""
    if normalize_axes(op, axes, x.ndim) != axes:
        raise OpError(op, f"axes must be sorted, distinct and non-negative, got {axes}")
    if keepdims:
        return tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    return tuple(d for a, d in enumerate(x.shape) if a not in axes)


def reduction_infer(
    name: str, impl: Callable[..., Any], *, needs_elements: bool = False
) -> Callable[..., AVal]:
    """Inference for a reduction: drop (or keep as 1) the reduced axes, dtype from jax.

    ``needs_elements``: reducing an empty axis has no identity (max, argmax) and is an error."""

    def infer(x: AVal, *, axes: tuple[int, ...], keepdims: bool) -> AVal:
        shape = reduced_shape(name, x, axes, keepdims)
        empty = [a for a in axes if x.shape[a] == 0]
        if needs_elements and empty:
            raise OpError(
                name,
                f"cannot reduce over the empty axis {empty[0]} of a tensor of shape "
                f"{shape_text(x.shape)}: there is no identity element",
            )
        dtype, weak = jax_dtype(name, impl, [x], {"axes": axes, "keepdims": keepdims})
        return AVal(shape, dtype, weak)

    return infer


def _reducer(function: Callable[..., Any]) -> Callable[..., Any]:
    """The impl of a reduction: ``function(x, axis=axes, keepdims=keepdims)``."""

    def impl(x: Any, *, axes: tuple[int, ...], keepdims: bool) -> Any:
        return function(x, axis=axes, keepdims=keepdims)

    impl.__name__ = impl.__qualname__ = f"reduce_{function.__name__}"
    return impl


def _arg_reducer(function: Callable[..., Any]) -> Callable[..., Any]:
    """argmax/argmin reduce one axis or all of them (of the flattened input, as numpy)."""

    def impl(x: Any, *, axes: tuple[int, ...], keepdims: bool) -> Any:
        return function(x, axis=axes[0] if len(axes) == 1 else None, keepdims=keepdims)

    impl.__name__ = impl.__qualname__ = f"reduce_{function.__name__}"
    return impl


def _arg_infer(name: str, impl: Callable[..., Any]) -> Callable[..., AVal]:
    base = reduction_infer(name, impl, needs_elements=True)

    def infer(x: AVal, *, axes: tuple[int, ...], keepdims: bool) -> AVal:
        if len(axes) not in (1, x.ndim):
            raise OpError(name, f"reduces one axis or all of them, got axes {axes}")
        return base(x, axes=axes, keepdims=keepdims)

    return infer


def _defreduction(
    name: str, function: Callable[..., Any], vjp: Callable[..., Any] | None = None, **flags: Any
) -> OpDef:
    impl = _reducer(function)
    needs_elements = flags.pop("needs_elements", False)
    infer = reduction_infer(name, impl, needs_elements=needs_elements)
    return defop(name, infer, impl, vjp, **flags)


def _defarg(name: str, function: Callable[..., Any]) -> OpDef:
    impl = _arg_reducer(function)
    return defop(name, _arg_infer(name, impl), impl, differentiable=False)


# VJP rules ---------------------------------------------------------------------------------------
def keep_reduced_dims(t: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """A reduction's result (or cotangent) with the reduced axes as size-1 dims, so that it
    broadcasts against the input."""
    return t if keepdims or not axes else bind(EXPAND_DIMS, t, axes=axes)


def broadcast_back(t: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """``t`` (reduced axes kept as size 1) broadcast to the shape of the reduction's input."""
    dims = arg_aval("gradient", x).shape
    if None in (dims[a] for a in axes):  # the reduced size is only known at run time
        return broadcast_like(t, x)
    return broadcast_to(t, dims)  # an unknown dim left in ``dims`` keeps t's (matching) size


def _sum_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...], keepdims: bool) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    return (cast_ct(broadcast_back(keep_reduced_dims(ct, axes, keepdims), x, axes), x),)


def _mean_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...], keepdims: bool) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    from tracejit.ops.creation import ones_like

    ct = keep_reduced_dims(ct, axes, keepdims)
    dims = arg_aval("mean", x).shape
    if None in (dims[a] for a in axes):
        count = sum(ones_like(x, float32), axis=axes, keepdims=True)
        ct = divide(ct, count)  # in float32 at least: a float16 count overflows at 65504
    else:
        count = math.prod(dims[a] for a in axes)  # type: ignore[misc]
        ct = multiply(ct, 1.0 / count if count else 0.0)
    return (cast_ct(broadcast_back(ct, x, axes), x),)


def _chooser_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...], keepdims: bool) -> tuple[Any]:
    """max/min: the cotangent is shared equally by the elements equal to the result."""
    if not takes_gradient(x):
        return (None,)
    hits = cast(equal(x, keep_reduced_dims(out, axes, keepdims)), ct.dtype)
    share = divide(keep_reduced_dims(ct, axes, keepdims), sum(hits, axis=axes, keepdims=True))
    return (cast_ct(multiply(hits, share), x),)


def _prod_vjp(ct: Any, x: Any, *, out: Any, axes: tuple[int, ...], keepdims: bool) -> tuple[Any]:
    """Each element's gradient is the product of the others: ``out / x`` where x is not zero; at
    a zero, the product of the nonzero elements if it is the only zero, else 0."""
    if not takes_gradient(x):
        return (None,)
    zero = equal(x, 0)
    zeros = sum(cast(zero, int32), axis=axes, keepdims=True)
    safe = where(zero, 1, x)
    others = prod(safe, axis=axes, keepdims=True)
    at_zero = where(equal(zeros, 1), others, 0)
    grad = where(zero, at_zero, divide(keep_reduced_dims(out, axes, keepdims), safe))
    return (cast_ct(multiply(keep_reduced_dims(ct, axes, keepdims), grad), x),)


# JVPs: sum and mean are linear; max, min and prod weigh the tangent by their gradient.
SUM = _defreduction("sum", jnp.sum, _sum_vjp, jvp=linear_jvp("sum"))
MEAN = _defreduction("mean", jnp.mean, _mean_vjp, jvp=linear_jvp("mean"))
MAX = _defreduction(
    "max", jnp.max, _chooser_vjp, jvp=reduction_jvp(_chooser_vjp), needs_elements=True
)
MIN = _defreduction(
    "min", jnp.min, _chooser_vjp, jvp=reduction_jvp(_chooser_vjp), needs_elements=True
)
PROD = _defreduction("prod", jnp.prod, _prod_vjp, jvp=reduction_jvp(_prod_vjp))
ANY = _defreduction("any", jnp.any, differentiable=False)
ALL = _defreduction("all", jnp.all, differentiable=False)
ARGMAX = _defarg("argmax", jnp.argmax)
ARGMIN = _defarg("argmin", jnp.argmin)


def reduction_params(op: str, x: Any, axis: Axis, keepdims: bool) -> dict[str, Any]:
    """``axes`` and ``keepdims`` params for reducing ``x`` over ``axis`` (None: all axes)."""
    return {"axes": normalize_axes(op, axis, arg_aval(op, x).ndim), "keepdims": bool(keepdims)}


@locates_errors
def sum(  # noqa: A001 - numpy's name
    x: Any, axis: Axis = None, keepdims: bool = False, *, dtype: Any = None
) -> Any:
    """Sum of elements over ``axis`` (an int, a tuple, or None for all axes); with ``dtype``,
    ``x`` is cast to it first (the array API standard's rule).

    >>> import tracejit as tj
    >>> tj.sum(tj.constant([[1, 2], [3, 4]]), axis=0).numpy()
    array([4, 6], dtype=int32)
    """
    out = bind(SUM, _cast_for("sum", x, dtype), **reduction_params("sum", x, axis, keepdims))
    return _as_requested(out, dtype)


@locates_errors
def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis`` (integers give float32, as in jax.numpy).

    >>> import tracejit as tj
    >>> tj.mean(tj.constant([[1, 2], [3, 4]]), axis=1, keepdims=True).numpy()
    array([[1.5],
           [3.5]], dtype=float32)
    """
    return bind(MEAN, x, **reduction_params("mean", x, axis, keepdims))


@locates_errors
def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Largest element over ``axis``.

    >>> import tracejit as tj
    >>> tj.max(tj.constant([[1.0, 5.0], [3.0, 2.0]]), axis=1).numpy()
    array([5., 3.], dtype=float32)
    """
    return bind(MAX, x, **reduction_params("max", x, axis, keepdims))


@locates_errors
def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Smallest element over ``axis``."""
    return bind(MIN, x, **reduction_params("min", x, axis, keepdims))


@locates_errors
def prod(x: Any, axis: Axis = None, keepdims: bool = False, *, dtype: Any = None) -> Any:
    """Product of elements over ``axis``; with ``dtype``, ``x`` is cast to it first."""
    out = bind(PROD, _cast_for("prod", x, dtype), **reduction_params("prod", x, axis, keepdims))
    return _as_requested(out, dtype)


def _as_requested(out: Any, dtype: Any) -> Any:
    """jax sums small integers in a wider type (uint8 -> uint32); a requested ``dtype`` is the
    result's dtype, as the array API says."""
    if dtype is None or out.dtype == as_dtype(dtype):
        return out
    return cast(out, dtype)


def _cast_for(op: str, x: Any, dtype: Any) -> Any:
    """``x`` in the requested accumulation ``dtype`` (unchanged when None or already so)."""
    if dtype is None:
        return x
    if arg_aval(op, x).dtype == as_dtype(dtype):
        return x
    return cast(x, dtype)


def _arg_params(op: str, x: Any, axis: int | None, keepdims: bool) -> dict[str, Any]:
    if axis is not None and not isinstance(axis, int):
        raise OpTypeError(op, f"axis must be an int or None, got {axis!r}")
    return reduction_params(op, x, axis, keepdims)


@locates_errors
def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index (int32) of the largest element along ``axis``, or in the flattened ``x`` when
    ``axis`` is None.

    >>> import tracejit as tj
    >>> tj.argmax(tj.constant([[1.0, 5.0], [3.0, 2.0]]), axis=1).numpy()
    array([1, 0], dtype=int32)
    """
    return bind(ARGMAX, x, **_arg_params("argmax", x, axis, keepdims))


@locates_errors
def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index (int32) of the smallest element along ``axis`` (flattened when None)."""
    return bind(ARGMIN, x, **_arg_params("argmin", x, axis, keepdims))


@locates_errors
def any(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Whether any element over ``axis`` is true (bool).

    >>> import tracejit as tj
    >>> tj.any(tj.constant([[True, False], [False, False]]), axis=1).numpy()
    array([ True, False])
    """
    return bind(ANY, x, **reduction_params("any", x, axis, keepdims))


@locates_errors
def all(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Whether every element over ``axis`` is true (bool)."""
    return bind(ALL, x, **reduction_params("all", x, axis, keepdims))
