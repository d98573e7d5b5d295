"""The array API standard's statistical functions that tracejit lacked (2024.12).

New registry entries: ``cumulative_sum`` and ``cumulative_prod`` (params ``axis``, ``dtype``,
``include_initial``; the impl is jax.numpy's function of the same name, so dtypes match it, except
that ``cumulative_prod`` of small integers accumulates in the default integer dtype as the
standard says and ``jnp.prod`` does).
Compositions of existing entries, documented as such: ``var`` and ``std`` (``mean``, ``subtract``,
``square``, ``sum``, ``divide`` and ``sqrt``), ``count_nonzero`` (``not_equal`` then ``sum``) and
``diff`` (slices, ``subtract`` and, for ``prepend``/``append``, ``concatenate``); they inherit the
gradients and unknown-dim handling of those entries.

Gradients: ``cumulative_sum``'s is the reversed cumulative sum of the cotangent. The gradient of
``cumulative_prod`` is exact even where inputs are zero (dividing ``out`` by ``x`` is not): for
each position ``i`` it takes the cumulative product of the row with ``x_i`` replaced by 1, so
``d out_j / d x_i`` is a product of the others; this costs n x n memory per reduced row.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from tracejit.errors import OpError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.elementwise import (
    abs,
    cast,
    divide,
    equal,
    greater_equal,
    multiply,
    not_equal,
    sqrt,
    square,
    subtract,
    where,
)
from tracejit.ops.indexing import FULL_SLICE, SLICE
from tracejit.ops.infer import jax_dtype, normalize_axes, normalize_axis, shape_text
from tracejit.ops.jvp_rules import linear_jvp, transpose_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.manipulation import FLIP, moveaxis
from tracejit.ops.reduction import Axis, mean, sum
from tracejit.ops.registry import bind, defop
from tracejit.ops.shape import CONCATENATE, EXPAND_DIMS
from tracejit.types import AVal, as_dtype, float32, int32


# cumulative_sum / cumulative_prod ----------------------------------------------------------------
def _cumulative_infer(name: str, impl: Any) -> Any:
    def infer(x: AVal, *, axis: int, dtype: Any, include_initial: bool) -> AVal:
        if x.ndim == 0:
            raise OpError(name, "needs a tensor of at least one dimension, got a 0-d tensor")
        normalize_axis(name, axis, x.ndim)
        params = {"axis": axis, "dtype": dtype, "include_initial": include_initial}
        out_dtype, weak = jax_dtype(name, impl, [x], params)
        dim = x.shape[axis]
        grown = None if dim is None else dim + int(include_initial)
        return AVal(x.shape[:axis] + (grown,) + x.shape[axis + 1 :], out_dtype, weak)

    return infer


def _cumulative_sum(x: Any, *, axis: int, dtype: Any, include_initial: bool) -> Any:
    return jnp.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _cumulative_prod(x: Any, *, axis: int, dtype: Any, include_initial: bool) -> Any:
    return jnp.cumulative_prod(x, axis=axis, dtype=dtype, include_initial=include_initial)


def _drop_initial(ct: Any, axis: int, include_initial: bool) -> Any:
    """The cotangent of the cumulative part (without the leading 0 or 1 of include_initial)."""
    if not include_initial:
        return ct
    return bind(SLICE, ct, index=(*(FULL_SLICE,) * axis, ("slice", 1, None, None)))


def _cumulative_sum_vjp(
    ct: Any, x: Any, *, out: Any, axis: int, dtype: Any, include_initial: bool
) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    ct = bind(FLIP, _drop_initial(ct, axis, include_initial), axes=(axis,))
    summed = bind(CUMULATIVE_SUM, ct, axis=axis, dtype=None, include_initial=False)
    return (cast_ct(bind(FLIP, summed, axes=(axis,)), x),)


def _cumulative_prod_vjp(
    ct: Any, x: Any, *, out: Any, axis: int, dtype: Any, include_initial: bool
) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    ct = _drop_initial(ct, axis, include_initial)
    row = moveaxis(x if dtype is None else cast(x, dtype), axis, -1)  # (..., n)
    ct_row = moveaxis(ct, axis, -1)
    from tracejit.ops.creation import ones_like

    # A run-time iota along the row (so unknown sizes work): positions 1..n.
    position = bind(
        CUMULATIVE_SUM,
        ones_like(row, int32),
        axis=row.ndim - 1,
        dtype=None,
        include_initial=False,
    )
    last = row.ndim
    i = bind(EXPAND_DIMS, position, axes=(last,))  # (..., n, 1): the input differentiated
    j = bind(EXPAND_DIMS, position, axes=(last - 1,))  # (..., 1, n): the output position
    others = where(equal(i, j), 1, bind(EXPAND_DIMS, row, axes=(last - 1,)))  # x_i -> 1
    partial = bind(CUMULATIVE_PROD, others, axis=last, dtype=None, include_initial=False)
    ct_j = bind(EXPAND_DIMS, ct_row, axes=(last - 1,))
    terms = where(greater_equal(j, i), multiply(partial, ct_j), 0)  # out_j depends on x_i, i <= j
    grad = sum(terms, axis=-1)
    return (cast_ct(moveaxis(grad, -1, axis), x),)


CUMULATIVE_SUM = defop(
    "cumulative_sum",
    _cumulative_infer("cumulative_sum", _cumulative_sum),
    _cumulative_sum,
    _cumulative_sum_vjp,
    jvp=linear_jvp("cumulative_sum"),
)
CUMULATIVE_PROD = defop(
    "cumulative_prod",
    _cumulative_infer("cumulative_prod", _cumulative_prod),
    _cumulative_prod,
    _cumulative_prod_vjp,
    jvp=transpose_jvp("cumulative_prod"),
)


def _cumulative_params(op: str, x: Any, axis: int | None, dtype: Any, initial: bool) -> dict:
    aval = arg_aval(op, x)
    if axis is None:
        if aval.ndim != 1:
            raise OpError(
                op,
                f"axis=None is only allowed for a 1-D tensor, got shape {shape_text(aval.shape)}; "
                "pass the axis to accumulate along",
            )
        axis = 0
    if aval.ndim == 0:
        raise OpError(op, "needs a tensor of at least one dimension, got a 0-d tensor")
    return {
        "axis": normalize_axis(op, axis, aval.ndim),
        "dtype": None if dtype is None else as_dtype(dtype),
        "include_initial": bool(initial),
    }


@locates_errors
def cumulative_sum(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
) -> Any:
    """Running sums along ``axis`` (which may be None only for 1-D ``x``); ``include_initial``
    puts a 0 first.

    >>> import tracejit as tj
    >>> tj.cumulative_sum(tj.constant([1, 2, 3]), include_initial=True).numpy()
    array([0, 1, 3, 6], dtype=int32)
    """
    params = _cumulative_params("cumulative_sum", x, axis, dtype, include_initial)
    return bind(CUMULATIVE_SUM, x, **params)


@locates_errors
def cumulative_prod(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
) -> Any:
    """Running products along ``axis`` (None only for 1-D ``x``); ``include_initial`` puts a 1
    first.

    >>> import tracejit as tj
    >>> tj.cumulative_prod(tj.constant([1.0, 2.0, 3.0])).numpy()
    array([1., 2., 6.], dtype=float32)
    """
    params = _cumulative_params("cumulative_prod", x, axis, dtype, include_initial)
    if dtype is None:
        # The standard (and jnp.prod, and jnp.cumulative_sum) accumulate small integers in the
        # default integer dtype; jnp.cumulative_prod alone keeps uint8 as uint8.
        aval = arg_aval("cumulative_prod", x)
        wide, _ = jax_dtype("cumulative_prod", jnp.prod, [aval], {})
        if wide != aval.dtype:
            params["dtype"] = as_dtype(wide)
    return bind(CUMULATIVE_PROD, x, **params)


# var / std ---------------------------------------------------------------------------------------
@locates_errors
def var(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Variance over ``axis``: the mean squared deviation, divided by ``n - correction`` instead
    of ``n`` (``correction=1`` is the unbiased sample variance). A composition of ``mean``,
    ``subtract``, ``square``, ``sum`` and ``divide``.

    >>> import tracejit as tj
    >>> tj.var(tj.constant([1.0, 2.0, 3.0, 4.0]), correction=1).numpy()
    array(1.6666666, dtype=float32)
    """
    aval = arg_aval("var", x)
    axes = normalize_axes("var", axis, aval.ndim)
    deviation = subtract(x, mean(x, axis=axes, keepdims=True))
    squared = square(abs(deviation)) if aval.dtype.kind == "c" else square(deviation)
    total = sum(squared, axis=axes, keepdims=keepdims)
    dims = [aval.shape[a] for a in axes]
    if None in dims:  # the count is only known at run time
        from tracejit.ops.creation import ones_like

        count = sum(ones_like(x, float32), axis=axes, keepdims=keepdims)
        return divide(total, subtract(count, float(correction)))
    count = 1
    for d in dims:
        count *= d  # type: ignore[operator]
    return divide(total, float(count - correction))


@locates_errors
def std(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Standard deviation over ``axis``: ``sqrt(var(x, axis=..., correction=...))``.

    >>> import tracejit as tj
    >>> tj.std(tj.constant([1.0, 3.0])).numpy()
    array(1., dtype=float32)
    """
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


# count_nonzero / diff ----------------------------------------------------------------------------
@locates_errors
def count_nonzero(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """The number of nonzero elements over ``axis`` (default int dtype), as ``sum(x != 0)``.

    >>> import tracejit as tj
    >>> tj.count_nonzero(tj.constant([[0, 1], [2, 3]]), axis=1).numpy()
    array([1, 2], dtype=int32)
    """
    return sum(not_equal(x, 0), axis=axis, keepdims=keepdims)


@locates_errors
def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    """The ``n``-th forward difference along ``axis`` (``x[1:] - x[:-1]``, ``n`` times), after
    joining ``prepend`` and ``append`` to ``x`` along that axis.

    >>> import tracejit as tj
    >>> tj.diff(tj.constant([1, 4, 9, 16])).numpy()
    array([3, 5, 7], dtype=int32)
    """
    ndim = arg_aval("diff", x).ndim
    if ndim == 0:
        raise OpError("diff", "needs a tensor of at least one dimension, got a 0-d tensor")
    if n < 0:
        raise OpError("diff", f"n must be non-negative, got {n}")
    axis = normalize_axis("diff", axis, ndim)
    pieces = [p for p in (prepend, x, append) if p is not None]
    if len(pieces) > 1:
        x = bind(CONCATENATE, *pieces, axis=axis)
    lead = (FULL_SLICE,) * axis
    boolean = arg_aval("diff", x).dtype == jnp.bool_
    for _ in range(n):
        later = bind(SLICE, x, index=(*lead, ("slice", 1, None, None)))
        earlier = bind(SLICE, x, index=(*lead, ("slice", None, -1, None)))
        x = not_equal(later, earlier) if boolean else subtract(later, earlier)
    return x


__all__ = ["count_nonzero", "cumulative_prod", "cumulative_sum", "diff", "std", "var"]
