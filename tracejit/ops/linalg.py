"""Linear algebra: ``matmul`` (the ``@`` operator) and ``dot``, with numpy's semantics.

Output dtypes follow jax.numpy's promotion (asked of jax itself); contraction mismatches name
both shapes and the two dims that differ.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from tracejit.errors import ShapeError
from tracejit.ops.infer import broadcast_shapes, jax_dtype, shape_text
from tracejit.ops.registry import bind, defop
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


MATMUL = defop("matmul", _infer_matmul, jnp.matmul)
DOT = defop("dot", _infer_dot, jnp.dot)


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
