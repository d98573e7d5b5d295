"""Bitwise ops (array API 2024.12 names): and, or, xor, invert and the two shifts.

On integer tensors they work bit by bit; on bool tensors and/or/xor/invert are the logical ops,
as in numpy and jax.numpy. Dtypes promote as jax.numpy does (inference asks jax for the dtype of
the op's own implementation); floats are refused with the op's name. None is differentiable.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from tracejit.ops.infer import elementwise_infer
from tracejit.ops.registry import bind, defop


def _bitwise(name: str, impl: Any, **flags: Any):  # noqa: ANN202 - an OpDef
    return defop(
        name,
        elementwise_infer(name, impl),
        impl,
        None,
        elementwise=True,
        differentiable=False,
        **flags,
    )


BITWISE_AND = _bitwise("bitwise_and", jnp.bitwise_and, commutative=True)
BITWISE_OR = _bitwise("bitwise_or", jnp.bitwise_or, commutative=True)
BITWISE_XOR = _bitwise("bitwise_xor", jnp.bitwise_xor, commutative=True)
BITWISE_INVERT = _bitwise("bitwise_invert", jnp.bitwise_invert)
BITWISE_LEFT_SHIFT = _bitwise("bitwise_left_shift", jnp.left_shift)
BITWISE_RIGHT_SHIFT = _bitwise("bitwise_right_shift", jnp.right_shift)


def bitwise_and(x: Any, y: Any) -> Any:
    """Elementwise ``x & y``: bitwise on integers, logical on bools.

    >>> import tracejit as tj
    >>> tj.bitwise_and(tj.constant([6, 5]), 3).numpy()
    array([2, 1], dtype=int32)
    """
    return bind(BITWISE_AND, x, y)


def bitwise_or(x: Any, y: Any) -> Any:
    """Elementwise ``x | y``: bitwise on integers, logical on bools.

    >>> import tracejit as tj
    >>> tj.bitwise_or(tj.constant([6, 5]), 3).numpy()
    array([7, 7], dtype=int32)
    """
    return bind(BITWISE_OR, x, y)


def bitwise_xor(x: Any, y: Any) -> Any:
    """Elementwise ``x ^ y``: bitwise on integers, logical (not equal) on bools.

    >>> import tracejit as tj
    >>> tj.bitwise_xor(tj.constant([6, 5]), 3).numpy()
    array([5, 6], dtype=int32)
    """
    return bind(BITWISE_XOR, x, y)


def bitwise_invert(x: Any) -> Any:
    """Elementwise ``~x``: flips every bit of an integer (``~5 == -6``), negates a bool.

    >>> import tracejit as tj
    >>> tj.bitwise_invert(tj.constant([5, 0])).numpy()
    array([-6, -1], dtype=int32)
    """
    return bind(BITWISE_INVERT, x)


def bitwise_left_shift(x: Any, y: Any) -> Any:
    """Elementwise ``x << y`` on integers (shifts of the width or more give 0, as in jax).

    >>> import tracejit as tj
    >>> tj.bitwise_left_shift(tj.constant([1, 3]), 2).numpy()
    array([ 4, 12], dtype=int32)
    """
    return bind(BITWISE_LEFT_SHIFT, x, y)


def bitwise_right_shift(x: Any, y: Any) -> Any:
    """Elementwise ``x >> y`` on integers (arithmetic for signed dtypes, as in jax).

    >>> import tracejit as tj
    >>> tj.bitwise_right_shift(tj.constant([8, -8]), 2).numpy()
    array([ 2, -2], dtype=int32)
    """
    return bind(BITWISE_RIGHT_SHIFT, x, y)


# numpy's names for the same ops.
invert = bitwise_invert
left_shift = bitwise_left_shift
right_shift = bitwise_right_shift
