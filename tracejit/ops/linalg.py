"""Linear algebra: ``matmul`` (the ``@`` operator) and ``dot``, with numpy's semantics.

Output dtypes follow jax.numpy's promotion (asked of jax itself); contraction mismatches name
both shapes and the two dims that differ.

Gradients are matrix products again: for ``z = x @ y``, ``dx = dz @ y^T`` and ``dy = x^T @ dz``,
with 1-D operands treated as a row (left) or column (right) and the cotangents of broadcast batch
dims summed back to each operand's shape.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from tracejit.errors import ShapeError
from tracejit.ops.arguments import arg_aval
from tracejit.ops.elementwise import multiply
from tracejit.ops.infer import broadcast_shapes, jax_dtype, shape_text
from tracejit.ops.jvp_rules import bilinear_jvp
from tracejit.ops.like import takes_gradient
from tracejit.ops.reduction import sum as reduce_sum
from tracejit.ops.registry import bind, defop
from tracejit.ops.shape import EXPAND_DIMS, SQUEEZE, TRANSPOSE
from tracejit.types import AVal


def _check_contraction(op: str, x: AVal, y: AVal, left: int | None, right: int | None) -> None:
    if left is not None and right is not None and left != right:
        raise ShapeError(
            op,
            f"cannot multiply {shape_text(x.shape)} by {shape_text(y.shape)}: "
            f"contraction dims {left} and {right} differ",
        )


def _infer_matmul(x: AVal, y: AVal) -> AVal:
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(
            "matmul",
            f"operands must be at least 1-D, got shapes {shape_text(x.shape)} and "
            f"{shape_text(y.shape)}; use tj.multiply for scalars",
        )
    # numpy: a 1-D left operand is a row vector, a 1-D right operand a column vector, and the
    # added dim is removed from the result.
    left = (1, *x.shape) if x.ndim == 1 else x.shape
    right = (*y.shape, 1) if y.ndim == 1 else y.shape
    _check_contraction("matmul", x, y, left[-1], right[-2])
    try:
        batch = broadcast_shapes("matmul", left[:-2], right[:-2])
    except ShapeError:
        raise ShapeError(
            "matmul",
            f"batch dims of {shape_text(x.shape)} and {shape_text(y.shape)} "
            "cannot be broadcast together",
        ) from None
    rows = (left[-2],) if x.ndim > 1 else ()
    cols = (right[-1],) if y.ndim > 1 else ()
    dtype, weak = jax_dtype("matmul", jnp.matmul, [x, y], {})
    return AVal(batch + rows + cols, dtype, weak)


def _infer_dot(x: AVal, y: AVal) -> AVal:
    dtype, weak = jax_dtype("dot", jnp.dot, [x, y], {})
    if x.ndim == 0 or y.ndim == 0:  # a scalar operand scales the other one
        return AVal(x.shape + y.shape, dtype, weak)
    if y.ndim == 1:
        _check_contraction("dot", x, y, x.shape[-1], y.shape[0])
        return AVal(x.shape[:-1], dtype, weak)
    # N-D x M-D: contract x's last axis with y's second-to-last.
    _check_contraction("dot", x, y, x.shape[-1], y.shape[-2])
    return AVal(x.shape[:-1] + y.shape[:-2] + y.shape[-1:], dtype, weak)


def _unbroadcast(ct: Any, x: Any) -> Any:
    from tracejit.autodiff.rules import unbroadcast

    return unbroadcast(ct, x)


def _swap_last(t: Any) -> Any:
    """The matrix transpose of a (batch of) matrices."""
    axes = tuple(range(t.ndim - 2)) + (t.ndim - 1, t.ndim - 2)
    return bind(TRANSPOSE, t, axes=axes)


def _matrix(t: Any, ndim: int, axis: int) -> Any:
    """A 1-D operand as a matrix: a size-1 dim inserted at ``axis`` (-2 for a row, -1 for a
    column); N-D operands are left as they are."""
    return t if ndim > 1 else bind(EXPAND_DIMS, t, axes=(axis % 2,))


def _matmul_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    x_ndim, y_ndim = arg_aval("matmul", x).ndim, arg_aval("matmul", y).ndim
    # Restore the dims matmul removed for 1-D operands, so ct is a (batch of) matrices.
    added = (() if x_ndim > 1 else (-2,)) + (() if y_ndim > 1 else (-1,))
    if added:
        ct = bind(EXPAND_DIMS, ct, axes=tuple(a % (ct.ndim + len(added)) for a in added))
    dx = dy = None
    if takes_gradient(x):
        dx = matmul(ct, _swap_last(_matrix(y, y_ndim, -1)))
        dx = dx if x_ndim > 1 else bind(SQUEEZE, dx, axes=(dx.ndim - 2,))
        dx = _unbroadcast(dx, x)
    if takes_gradient(y):
        dy = matmul(_swap_last(_matrix(x, x_ndim, -2)), ct)
        dy = dy if y_ndim > 1 else bind(SQUEEZE, dy, axes=(dy.ndim - 1,))
        dy = _unbroadcast(dy, y)
    return dx, dy


def _dot_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    x_ndim, y_ndim = arg_aval("dot", x).ndim, arg_aval("dot", y).ndim
    if x_ndim == 0 or y_ndim == 0:  # a scalar operand: dot is multiply
        return _unbroadcast(multiply(ct, y), x), _unbroadcast(multiply(ct, x), y)
    if x_ndim == 1 or y_ndim <= 2:  # the cases where dot and matmul agree
        return _matmul_vjp(ct, x, y, out=out)
    # x: A + (k,), y: B + (k, m), ct: A + B + (m,). Contract by broadcasting products, which
    # works whatever dims are unknown (at the cost of an A + B + (k, m) intermediate).
    a, b = x_ndim - 1, y_ndim - 2
    ct_k = bind(EXPAND_DIMS, ct, axes=(a + b,))  # A + B + (1, m)
    dx = dy = None
    if takes_gradient(x):
        dx = reduce_sum(multiply(ct_k, y), axis=tuple(range(a, a + b)) + (a + b + 1,))
        dx = _unbroadcast(dx, x)
    if takes_gradient(y):
        x_k = bind(EXPAND_DIMS, x, axes=tuple(range(a, a + b)) + (a + b + 1,))
        dy = _unbroadcast(reduce_sum(multiply(ct_k, x_k), axis=tuple(range(a))), y)
    return dx, dy


MATMUL = defop("matmul", _infer_matmul, jnp.matmul, _matmul_vjp, jvp=bilinear_jvp("matmul"))
DOT = defop("dot", _infer_dot, jnp.dot, _dot_vjp, jvp=bilinear_jvp("dot"))


def matmul(x: Any, y: Any) -> Any:
    """Matrix product ``x @ y`` with numpy semantics: 1-D operands are vectors, and leading
    (batch) dims broadcast.

    >>> import tracejit as tj
    >>> a = tj.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> tj.matmul(a, tj.constant([1.0, 1.0])).numpy()
    array([3., 7.], dtype=float32)
    """
    return bind(MATMUL, x, y)


def dot(x: Any, y: Any) -> Any:
    """``numpy.dot``: inner product of vectors, matrix product of matrices; for N-D operands a
    sum over the last axis of ``x`` and the second-to-last of ``y``.

    >>> import tracejit as tj
    >>> tj.dot(tj.constant([1, 2, 3]), tj.constant([4, 5, 6])).numpy()
    array(32, dtype=int32)
    """
    return bind(DOT, x, y)
