"""Ops that take their output shape from another tensor at run time, and the cotangent helper
every gradient rule uses.

Gradient rules need these ops when dims are unknown while tracing: the cotangent of
``reshape(x, (-1,))`` must be reshaped back to ``x``'s shape, and with two unknown dims in ``x``
no static ``reshape`` can say which shape that is. Each op takes a template tensor ``like`` as an
input whose only use is its (run-time) shape, so XLA drops the dependency on its contents. Each
has its own VJP, so gradients of gradients work. Rules use the static ops (``reshape``,
``broadcast_to``, ``split``) whenever the dims are known, which keeps the IR readable.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, ShapeError
from tracejit.ops.arguments import arg_aval
from tracejit.ops.elementwise import cast
from tracejit.ops.infer import broadcast_shapes, normalize_axis, shape_text
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal


def cast_ct(ct: Any, x: Any) -> Any:
    """``ct`` as the cotangent of primal ``x`` (whose shape it already has): None when ``x``
    takes no gradient (Python numbers, integer and bool tensors), else cast to ``x``'s dtype."""
    if ct is None or isinstance(x, (bool, int, float, complex)):
        return None
    dtype = arg_aval("gradient", x).dtype
    if not jnp.issubdtype(dtype, jnp.inexact):
        return None
    if ct.dtype.kind == "c" and dtype.kind != "c":  # a real primal of a complex op (jax's rule)
        from tracejit.ops.elementwise_math import real

        ct = real(ct)
    return ct if ct.dtype == dtype else cast(ct, dtype)


def takes_gradient(x: Any) -> bool:
    """Whether a primal gets a cotangent at all (float or complex tensors and arrays)."""
    if isinstance(x, (bool, int, float, complex)):
        return False
    return bool(jnp.issubdtype(arg_aval("gradient", x).dtype, jnp.inexact))


def _known(*dims: int | None) -> bool:
    return None not in dims


# reshape_like ------------------------------------------------------------------------------------
def _infer_reshape_like(x: AVal, like: AVal) -> AVal:
    if _known(x.size, like.size) and x.size != like.size:
        raise ShapeError(
            "reshape_like",
            f"cannot reshape a tensor of shape {shape_text(x.shape)} into the shape "
            f"{shape_text(like.shape)}: the element counts differ",
        )
    return AVal(like.shape, x.dtype, x.weak)


def _reshape_like(x: Any, like: Any) -> Any:
    return jnp.reshape(x, jnp.shape(like))


def _reshape_like_vjp(ct: Any, x: Any, like: Any, *, out: Any) -> tuple[Any, ...]:
    return cast_ct(reshape_like(ct, x), x), None


# broadcast_like / sum_like -----------------------------------------------------------------------
def _infer_broadcast_like(x: AVal, like: AVal) -> AVal:
    return AVal(broadcast_shapes("broadcast_like", x.shape, like.shape), x.dtype, x.weak)


def _broadcast_like(x: Any, like: Any) -> Any:
    return jnp.broadcast_to(x, jnp.broadcast_shapes(jnp.shape(x), jnp.shape(like)))


def _broadcast_like_vjp(ct: Any, x: Any, like: Any, *, out: Any) -> tuple[Any, ...]:
    return (cast_ct(sum_like(ct, x), x) if takes_gradient(x) else None), None


def _infer_sum_like(x: AVal, like: AVal) -> AVal:
    lead = x.ndim - like.ndim
    mismatch = lead < 0 or any(
        _known(d, e) and d not in (1, e) for d, e in zip(like.shape, x.shape[lead:], strict=True)
    )
    if mismatch:
        raise ShapeError(
            "sum_like",
            f"cannot sum a tensor of shape {shape_text(x.shape)} down to the shape "
            f"{shape_text(like.shape)}: it is not a broadcast of that shape",
        )
    # An unknown dim of ``like`` against a known one of ``x`` is that size or 1 at run time.
    return AVal(like.shape, x.dtype, x.weak)


def _sum_like(x: Any, like: Any) -> Any:
    shape, target = jnp.shape(x), jnp.shape(like)
    lead = len(shape) - len(target)
    ones = tuple(lead + i for i, d in enumerate(target) if d == 1 and shape[lead + i] != 1)
    return jnp.sum(x, axis=tuple(range(lead)) + ones).reshape(target)


def _sum_like_vjp(ct: Any, x: Any, like: Any, *, out: Any) -> tuple[Any, ...]:
    return (cast_ct(broadcast_like(ct, x), x) if takes_gradient(x) else None), None


# split_like --------------------------------------------------------------------------------------
def _infer_split_like(x: AVal, *likes: AVal, axis: int) -> tuple[AVal, ...]:
    if not likes or any(like.ndim != x.ndim for like in likes):
        ranks = ", ".join(shape_text(like.shape) for like in likes)
        raise ShapeError(
            "split_like",
            f"needs templates of the rank of {shape_text(x.shape)}, got shapes {ranks or 'none'}",
        )
    normalize_axis("split_like", axis, x.ndim)
    sizes = [like.shape[axis] for like in likes]
    if _known(x.shape[axis], *sizes) and sum(sizes) != x.shape[axis]:  # type: ignore[arg-type]
        raise ShapeError(
            "split_like",
            f"axis {axis} of shape {shape_text(x.shape)} cannot be split into sizes {sizes}",
        )
    return tuple(AVal(x.shape[:axis] + (s,) + x.shape[axis + 1 :], x.dtype, x.weak) for s in sizes)


def _split_like(x: Any, *likes: Any, axis: int) -> tuple[Any, ...]:
    bounds = np.cumsum([jnp.shape(like)[axis] for like in likes])
    if bounds[-1] != jnp.shape(x)[axis]:  # jnp.split would make the last piece longer
        raise ValueError("the templates' sizes do not add up to the size of x")
    return tuple(jnp.split(x, [int(b) for b in bounds[:-1]], axis=axis))


def _split_like_vjp(ct: tuple[Any, ...], x: Any, *likes: Any, out: Any, axis: int) -> tuple:
    from tracejit.ops.shape import CONCATENATE

    return (cast_ct(bind(CONCATENATE, *ct, axis=axis), x), *(None for _ in likes))


RESHAPE_LIKE = defop(
    "reshape_like",
    _infer_reshape_like,
    _reshape_like,
    _reshape_like_vjp,
    jvp=linear_jvp("reshape_like"),
)
BROADCAST_LIKE = defop(
    "broadcast_like",
    _infer_broadcast_like,
    _broadcast_like,
    _broadcast_like_vjp,
    jvp=linear_jvp("broadcast_like"),
)
SUM_LIKE = defop("sum_like", _infer_sum_like, _sum_like, _sum_like_vjp, jvp=linear_jvp("sum_like"))
SPLIT_LIKE = defop(
    "split_like",
    _infer_split_like,
    _split_like,
    _split_like_vjp,
    multiple_results=True,
    jvp=linear_jvp("split_like"),
)


def reshape_like(x: Any, like: Any) -> Any:
    """``x`` reshaped to the (run-time) shape of ``like``.

    >>> import tracejit as tj
    >>> from tracejit.ops.like import reshape_like
    >>> reshape_like(tj.arange(6), tj.zeros((2, 3))).shape
    (2, 3)
    """
    return bind(RESHAPE_LIKE, x, like)


def broadcast_like(x: Any, like: Any) -> Any:
    """``x`` broadcast against the (run-time) shape of ``like``, as numpy broadcasts.

    >>> import tracejit as tj
    >>> from tracejit.ops.like import broadcast_like
    >>> broadcast_like(tj.constant([[1.0], [2.0]]), tj.zeros((2, 3))).numpy()
    array([[1., 1., 1.],
           [2., 2., 2.]], dtype=float32)
    """
    return bind(BROADCAST_LIKE, x, like)


def sum_like(x: Any, like: Any) -> Any:
    """Sum ``x`` down to the (run-time) shape of ``like``, of which ``x`` is a broadcast: the
    transpose of broadcasting.

    >>> import tracejit as tj
    >>> from tracejit.ops.like import sum_like
    >>> sum_like(tj.ones((2, 3)), tj.zeros((2, 1))).numpy()
    array([[3.],
           [3.]], dtype=float32)
    """
    return bind(SUM_LIKE, x, like)


def split_like(x: Any, likes: Any, axis: int = 0) -> tuple[Any, ...]:
    """Split ``x`` along ``axis`` into pieces as long as the tensors ``likes`` are on that axis
    (the transpose of ``concatenate``).

    >>> import tracejit as tj
    >>> from tracejit.ops.like import split_like
    >>> [t.shape for t in split_like(tj.ones((5, 2)), [tj.ones((2, 2)), tj.ones((3, 2))])]
    [(2, 2), (3, 2)]
    """
    likes = tuple(likes)
    if not likes:
        raise OpError("split_like", "needs at least one template tensor")
    ndim = arg_aval("split_like", x).ndim
    return bind(SPLIT_LIKE, x, *likes, axis=normalize_axis("split_like", axis, max(ndim, 1)))
