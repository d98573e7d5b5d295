"""Scaled dot-product attention as one op: ``softmax(q k^T * scale + bias, masked) v``.

Layout as ``jax.nn.dot_product_attention``: ``q`` is ``[batch, T, heads, dim]``, ``k`` and ``v``
are ``[batch, S, heads, dim]`` (T: query length, S: key length); ``mask`` (bool, True = attend)
and ``bias`` (added to the logits) broadcast to ``[batch, heads, T, S]``. The implementation *is*
``jax.nn.dot_product_attention``, so XLA (or cuDNN, where jax picks it) runs its fused kernel.

The VJP is written out with tracejit ops (the probabilities are recomputed, as flash attention's
backward does): with ``p = softmax(s)``, ``s = q k^T * scale + bias`` (masked entries set to a
large negative number),

``dv = p^T ct``, ``dp = ct v^T``, ``ds = p * (dp - sum(dp * p, -1))`` (0 where masked),
``dq = ds k * scale``, ``dk = ds^T q * scale``, ``dbias = ds`` summed to bias's shape.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.elementwise import cast, logical_and, multiply, subtract, where
from tracejit.ops.infer import shape_text
from tracejit.ops.jvp_rules import transpose_jvp
from tracejit.ops.like import cast_ct, sum_like
from tracejit.ops.linalg import matmul
from tracejit.ops.nn import softmax
from tracejit.ops.reduction import sum as reduce_sum
from tracejit.ops.registry import bind, defop
from tracejit.ops.shape import expand_dims, squeeze, transpose
from tracejit.types import AVal, bool_, float32, is_floating

_NAME = "dot_product_attention"
_HEADS_FIRST = (0, 2, 1, 3)  # [B, T, N, H] <-> [B, N, T, H]
# What masked logits become (jax uses -0.7 * the largest float of the logits' dtype; float32's
# is small enough that exp(it - max) is 0 in every float dtype we compute in).
LARGE_NEGATIVE = -0.7 * float(np.finfo(np.float32).max)


def _dot_product_attention(
    q: Any, k: Any, v: Any, *extra: Any, scale: float, is_causal: bool, mask: bool, bias: bool
) -> Any:
    rest = list(extra)
    mask_array = rest.pop(0) if mask else None
    bias_array = rest.pop(0) if bias else None
    if q.dtype == jnp.float64:  # jax's takes the softmax in float32 even for float64 inputs
        return _attention_float64(q, k, v, mask_array, bias_array, scale, is_causal)
    return jax.nn.dot_product_attention(
        q, k, v, bias=bias_array, mask=mask_array, scale=scale, is_causal=is_causal
    )


def _attention_float64(
    q: Any, k: Any, v: Any, mask: Any, bias: Any, scale: float, is_causal: bool
) -> Any:
    """jax's XLA formula (the same masking constant) with every step in float64."""
    logits = jnp.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + bias
    keep = jnp.ones(logits.shape, bool) if mask is None else jnp.broadcast_to(mask, logits.shape)
    if is_causal:
        keep = keep & jnp.tril(jnp.ones(logits.shape[-2:], bool))
    if mask is not None or is_causal:
        logits = jnp.where(keep, logits, LARGE_NEGATIVE)
    return jnp.einsum("bnts,bsnh->btnh", jax.nn.softmax(logits, axis=-1), v).astype(q.dtype)


def _fits(given: int | None, wanted: int | None) -> bool:
    return given is None or wanted is None or given == wanted


def _check_broadcast(what: str, x: AVal, logits: tuple[int | None, ...]) -> None:
    """``x`` must broadcast to the logits' ``[batch, heads, T, S]``."""
    fits = x.ndim <= 4 and all(
        d == 1 or _fits(d, w) for d, w in zip(x.shape[::-1], logits[::-1], strict=False)
    )
    if not fits:
        raise ShapeError(
            _NAME,
            f"{what} must broadcast to the logits' shape [batch, heads, T, S] = "
            f"{shape_text(logits)}, got {shape_text(x.shape)}",
        )


def _infer(
    q: AVal, k: AVal, v: AVal, *extra: AVal, scale: float, is_causal: bool, mask: bool, bias: bool
) -> AVal:
    for what, x in (("q", q), ("k", k), ("v", v)):
        if x.ndim != 4:
            raise ShapeError(
                _NAME,
                f"{what} must have rank 4 [batch, seq, heads, dim], got {shape_text(x.shape)}",
            )
        if not is_floating(x.dtype):
            raise OpTypeError(_NAME, f"{what} must be floating-point, got {x.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise OpTypeError(
            _NAME, f"q, k and v must have one dtype, got {q.dtype}, {k.dtype} and {v.dtype}"
        )
    if not all(_fits(a, b) for a, b in zip(k.shape, v.shape, strict=True)):
        raise ShapeError(
            _NAME,
            f"k and v must have the same shape [batch, S, heads, dim], got "
            f"{shape_text(k.shape)} and {shape_text(v.shape)}",
        )
    for axis, what in ((0, "batch"), (2, "heads"), (3, "dim")):
        if not _fits(q.shape[axis], k.shape[axis]):
            raise ShapeError(
                _NAME,
                f"q {shape_text(q.shape)} and k {shape_text(k.shape)} differ in their {what} "
                f"size (axis {axis}): {q.shape[axis]} vs {k.shape[axis]} (grouped-query "
                "attention, fewer key heads than query heads, is not supported)",
            )
    logits = (q.shape[0], q.shape[2], q.shape[1], k.shape[1])
    rest = list(extra)
    if mask:
        m = rest.pop(0)
        if m.dtype != bool_:
            raise OpTypeError(_NAME, f"mask must be bool (True = attend), got {m.dtype}")
        _check_broadcast("mask", m, logits)
    if bias:
        b = rest.pop(0)
        if not is_floating(b.dtype):
            raise OpTypeError(_NAME, f"bias must be floating-point, got {b.dtype}")
        _check_broadcast("bias", b, logits)
    if is_causal and None in (q.shape[1], k.shape[1]):
        raise ShapeError(
            _NAME,
            f"is_causal needs known query and key lengths, got q {shape_text(q.shape)} and "
            f"k {shape_text(k.shape)}",
        )
    return AVal(q.shape, q.dtype, q.weak and k.weak and v.weak)


def _keep(q: Any, k: Any, mask_tensor: Any, is_causal: bool) -> Any:
    """The combined bool mask (True = attend) broadcastable to [B, N, T, S], or None."""
    keep = mask_tensor
    if is_causal:
        t, s = arg_aval(_NAME, q).shape[1], arg_aval(_NAME, k).shape[1]
        # T and S are known (inference checks it); the triangle is aligned top left, as jax's.
        causal = np.tril(np.ones((int(t or 0), int(s or 0)), bool))
        keep = causal if keep is None else logical_and(keep, causal)
    return keep


def _vjp(
    ct: Any,
    q: Any,
    k: Any,
    v: Any,
    *extra: Any,
    out: Any,
    scale: float,
    is_causal: bool,
    mask: bool,
    bias: bool,
) -> list[Any]:
    rest = list(extra)
    mask_tensor = rest.pop(0) if mask else None
    bias_tensor = rest.pop(0) if bias else None
    wide = arg_aval(_NAME, q).dtype.itemsize >= 4
    up = (lambda x: x) if wide else (lambda x: cast(x, float32))  # noqa: E731
    qh = transpose(up(q), _HEADS_FIRST)  # [B, N, T, H]
    kh = transpose(up(k), _HEADS_FIRST)  # [B, N, S, H]
    vh = transpose(up(v), _HEADS_FIRST)  # [B, N, S, H]
    cth = transpose(up(ct), _HEADS_FIRST)  # [B, N, T, H]
    logits = multiply(matmul(qh, transpose(kh, (0, 1, 3, 2))), scale)
    if bias_tensor is not None:
        logits = logits + up(bias_tensor)
    keep = _keep(q, k, mask_tensor, is_causal)
    if keep is not None:
        logits = where(keep, logits, LARGE_NEGATIVE)
    p = softmax(logits, axis=-1)  # [B, N, T, S]
    dp = matmul(cth, transpose(vh, (0, 1, 3, 2)))
    ds = multiply(p, subtract(dp, reduce_sum(multiply(dp, p), axis=-1, keepdims=True)))
    if keep is not None:
        ds = where(keep, ds, 0.0)
    dq = transpose(multiply(matmul(ds, kh), scale), _HEADS_FIRST)
    dk = transpose(multiply(matmul(transpose(ds, (0, 1, 3, 2)), qh), scale), _HEADS_FIRST)
    dv = transpose(matmul(transpose(p, (0, 1, 3, 2)), cth), _HEADS_FIRST)
    cts: list[Any] = [cast_ct(dq, q), cast_ct(dk, k), cast_ct(dv, v)]
    if mask:
        cts.append(None)
    if bias:
        cts.append(cast_ct(sum_like(ds, bias_tensor), bias_tensor))
    return cts


DOT_PRODUCT_ATTENTION = defop(_NAME, _infer, _dot_product_attention, _vjp, jvp=transpose_jvp(_NAME))


@locates_errors
def dot_product_attention(
    q: Any,
    k: Any,
    v: Any,
    mask: Any = None,
    bias: Any = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> Any:
    """Scaled dot-product attention, ``softmax(q k^T * scale + bias) v`` per head, as
    ``jax.nn.dot_product_attention`` computes it (and lowered to it).

    ``q``: ``[batch, T, heads, dim]``; ``k``, ``v``: ``[batch, S, heads, dim]`` (rank 3
    ``[seq, heads, dim]`` inputs are taken as a batch of one). ``mask`` (bool, True = attend) and
    ``bias`` broadcast to ``[batch, heads, T, S]``; ``is_causal`` lets query ``i`` attend to keys
    ``<= i``; ``scale`` defaults to ``1 / sqrt(dim)``. Returns ``q``'s shape.

    >>> import tracejit as tj
    >>> q = tj.ones((1, 2, 1, 4))
    >>> v = tj.constant([[[[1.0] * 4]], [[[3.0] * 4]]]).reshape((1, 2, 1, 4))
    >>> tj.nn.dot_product_attention(q, q, v, is_causal=True)[0, :, 0, 0].numpy()
    array([1., 2.], dtype=float32)
    """
    ranks = [arg_aval(_NAME, x).ndim for x in (q, k, v)]
    unbatched = ranks == [3, 3, 3]
    if unbatched:
        q, k, v = (expand_dims(x, 0) for x in (q, k, v))
    # Checked here too: eagerly, jax's function would run grouped-query attention (fewer key
    # heads), which inference (and so tracing) and the VJP do not take.
    _infer(*(arg_aval(_NAME, x) for x in (q, k, v)), scale=1.0, is_causal=False, mask=False,
           bias=False)  # fmt: skip
    dim = arg_aval(_NAME, q).shape[-1]
    if scale is None:
        if dim is None:
            raise ShapeError(_NAME, "scale=None needs a known head dim (q's last axis)")
        scale = 1.0 / math.sqrt(dim)
    extra = [x for x in (mask, bias) if x is not None]
    out = bind(
        DOT_PRODUCT_ATTENTION,
        q,
        k,
        v,
        *extra,
        scale=float(scale),
        is_causal=bool(is_causal),
        mask=mask is not None,
        bias=bias is not None,
    )
    return squeeze(out, 0) if unbatched else out
