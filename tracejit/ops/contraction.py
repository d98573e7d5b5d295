"""The array API standard's main-namespace linear algebra that tracejit lacked (2024.12):
``tensordot`` (a registry entry) and ``vecdot`` (a composition of ``multiply`` and ``sum``, with
``conj`` of ``x1`` for complex inputs).

``tensordot``'s gradient is two more ``tensordot``s: the cotangent contracted with the other
operand over that operand's free axes, then transposed back into the operand's axis order.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.elementwise import cast, multiply
from tracejit.ops.infer import broadcast_shapes, jax_dtype, normalize_axis, shape_text
from tracejit.ops.jvp_rules import bilinear_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.reduction import sum
from tracejit.ops.registry import bind, defop
from tracejit.ops.shape import TRANSPOSE
from tracejit.types import AVal

Axes = tuple[tuple[int, ...], tuple[int, ...]]


# tensordot ---------------------------------------------------------------------------------------
def _infer_tensordot(x1: AVal, x2: AVal, *, axes: Axes) -> AVal:
    left, right = axes
    if len(left) != len(right):
        raise OpError("tensordot", f"axes {left} and {right} must have the same length")
    for a, b in zip(left, right, strict=True):
        normalize_axis("tensordot", a, x1.ndim)
        normalize_axis("tensordot", b, x2.ndim)
        d1, d2 = x1.shape[a], x2.shape[b]
        if d1 is not None and d2 is not None and d1 != d2:
            raise ShapeError(
                "tensordot",
                f"cannot contract axis {a} of {shape_text(x1.shape)} with axis {b} of "
                f"{shape_text(x2.shape)}: sizes {d1} and {d2} differ",
            )
    if len(set(left)) != len(left) or len(set(right)) != len(right):
        raise OpError("tensordot", f"repeated axis in {left} or {right}")
    shape = tuple(d for a, d in enumerate(x1.shape) if a not in left) + tuple(
        d for b, d in enumerate(x2.shape) if b not in right
    )
    dtype, weak = jax_dtype("tensordot", _tensordot, [x1, x2], {"axes": axes})
    return AVal(shape, dtype, weak)


def _tensordot(x1: Any, x2: Any, *, axes: Axes) -> Any:
    return jnp.tensordot(x1, x2, axes=(list(axes[0]), list(axes[1])))


def _back_to(ct: Any, order: list[int]) -> Any:
    """``ct``, whose axes are the operand's axes ``order``, transposed into the operand's order."""
    inverse = tuple(int(a) for a in np.argsort(order))
    return ct if inverse == tuple(range(len(order))) else bind(TRANSPOSE, ct, axes=inverse)


def _tensordot_vjp(ct: Any, x1: Any, x2: Any, *, out: Any, axes: Axes) -> tuple[Any, ...]:
    left, right = axes
    n1, n2 = arg_aval("tensordot", x1).ndim, arg_aval("tensordot", x2).ndim
    free1 = [a for a in range(n1) if a not in left]
    free2 = [b for b in range(n2) if b not in right]
    d1 = d2 = None
    if takes_gradient(x1):
        ct_free2 = tuple(range(len(free1), len(free1) + len(free2)))
        g = bind(TENSORDOT, ct, x2, axes=(ct_free2, tuple(free2)))
        # g's axes: free1, then x2's contracted axes in x2's order (each matches an x1 axis).
        order = free1 + [left[right.index(b)] for b in sorted(right)]
        d1 = cast_ct(_back_to(g, order), x1)
    if takes_gradient(x2):
        g = bind(TENSORDOT, x1, ct, axes=(tuple(free1), tuple(range(len(free1)))))
        order = [right[left.index(a)] for a in sorted(left)] + free2
        d2 = cast_ct(_back_to(g, order), x2)
    return d1, d2


TENSORDOT = defop(
    "tensordot", _infer_tensordot, _tensordot, _tensordot_vjp, jvp=bilinear_jvp("tensordot")
)


def _axis_list(value: Any, ndim: int) -> tuple[int, ...]:
    items = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    try:
        return tuple(normalize_axis("tensordot", operator.index(a), ndim) for a in items)
    except TypeError:
        raise OpTypeError("tensordot", f"axes must be ints, got {value!r:.60}") from None


@locates_errors
def tensordot(x1: Any, x2: Any, /, *, axes: int | Sequence[Sequence[int]] = 2) -> Any:
    """Sum products over the given axes: the last ``axes`` of ``x1`` with the first ``axes`` of
    ``x2`` (an int), or ``axes=(axes_of_x1, axes_of_x2)``.

    >>> import tracejit as tj
    >>> tj.tensordot(tj.ones((2, 3, 4)), tj.ones((3, 4, 5))).shape
    (2, 5)
    """
    n1, n2 = arg_aval("tensordot", x1).ndim, arg_aval("tensordot", x2).ndim
    if isinstance(axes, (int, np.integer)):
        count = int(axes)
        if count < 0 or count > min(n1, n2):
            raise OpError(
                "tensordot",
                f"axes={count} needs operands of rank >= {count}, got ranks {n1} and {n2}",
            )
        normalized: Axes = (tuple(range(n1 - count, n1)), tuple(range(count)))
    else:
        if len(axes) != 2:
            raise OpError("tensordot", f"axes must be an int or two sequences, got {axes!r:.60}")
        normalized = (_axis_list(axes[0], n1), _axis_list(axes[1], n2))
    return bind(TENSORDOT, x1, x2, axes=normalized)


# vecdot ------------------------------------------------------------------------------------------
@locates_errors
def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Dot products of the vectors along ``axis`` (the other axes broadcast), conjugating
    ``x1`` when complex: ``sum(conj(x1) * x2, axis=axis)``.

    >>> import tracejit as tj
    >>> tj.vecdot(tj.constant([[1.0, 2.0], [3.0, 4.0]]), tj.constant([1.0, 1.0])).numpy()
    array([3., 7.], dtype=float32)
    """
    a1, a2 = arg_aval("vecdot", x1), arg_aval("vecdot", x2)
    ndim = max(a1.ndim, a2.ndim)
    offset = normalize_axis("vecdot", axis, ndim) - ndim  # from the end
    if -offset > min(a1.ndim, a2.ndim):
        raise ShapeError(
            "vecdot",
            f"axis {axis} must be an axis of both {shape_text(a1.shape)} and "
            f"{shape_text(a2.shape)}",
        )
    d1, d2 = a1.shape[offset], a2.shape[offset]
    if d1 is not None and d2 is not None and d1 != d2:
        raise ShapeError(
            "vecdot",
            f"the vectors along axis {axis} of {shape_text(a1.shape)} and "
            f"{shape_text(a2.shape)} differ in length ({d1} and {d2})",
        )
    broadcast_shapes("vecdot", a1.shape, a2.shape)  # the other axes must broadcast
    if a1.dtype.kind == "c":
        from tracejit.ops import elementwise_math

        conj = getattr(elementwise_math, "conj", None)
        if conj is None:
            raise OpTypeError("vecdot", "complex inputs need tj.conj, which is not available")
        x1 = conj(x1)
    result = sum(multiply(x1, x2), axis=offset)
    dtype, _ = jax_dtype("vecdot", jnp.vecdot, [a1, a2], {})
    return result if result.dtype == dtype else cast(result, dtype)


__all__ = ["tensordot", "vecdot"]
