"""OpInfo rows for ``dot_product_attention`` (tracejit/ops/attention.py).

The value oracle is the attention formula written out in float64 numpy (softmax over the keys
of ``q k^T * scale + bias``, masked entries excluded); ``jax.nn.dot_product_attention`` is the
dtype oracle and the ``jax.grad`` reference for the VJP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np

import tracejit as tj

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def attention_ref(
    q: Any, k: Any, v: Any, mask: Any = None, bias: Any = None, is_causal: bool = False,
    scale: float | None = None,
) -> np.ndarray:  # fmt: skip
    dtype = np.asarray(q).dtype
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    batched = q.ndim == 4
    if not batched:
        q, k, v = q[None], k[None], v[None]
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + np.asarray(bias, np.float64)
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep = keep & np.asarray(mask)
    if is_causal:
        keep = keep & np.tril(np.ones(logits.shape[-2:], bool))
    logits = np.where(keep, logits, -np.inf)
    top = np.max(logits, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    weights = np.where(keep, np.exp(logits - top), 0.0)
    total = np.sum(weights, axis=-1, keepdims=True)
    # A row with every key masked: jax's large-negative logits give uniform weights.
    weights = np.where(total > 0, weights / np.where(total > 0, total, 1.0), 1.0 / k.shape[1])
    out = np.einsum("bnts,bsnh->btnh", weights, v)
    return (out if batched else out[0]).astype(dtype)


def attention_jax(
    q: Any, k: Any, v: Any, mask: Any = None, bias: Any = None, is_causal: bool = False,
    scale: float | None = None,
) -> Any:  # fmt: skip
    return jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, is_causal=is_causal,
                                        scale=scale)  # fmt: skip


def rows(OpInfo: type[OpInfo], f32: Any, f16: Any) -> list[OpInfo]:  # noqa: N803 - a class
    """The rows; ``OpInfo`` and the sample helpers come from tests/opinfo.py."""

    def samples(rng: np.random.Generator) -> list[Sample]:
        def qkv(*shape: int, s: int) -> tuple[np.ndarray, ...]:
            b, t, n, h = shape
            return f32(rng, b, t, n, h), f32(rng, b, s, n, h), f32(rng, b, s, n, h)

        mask = rng.random((2, 1, 4, 5)) > 0.3
        mask[0, 0, 1] = False  # a query that may attend to no key at all
        return [
            ((*qkv(2, 4, 3, 8, s=5), mask, f32(rng, 3, 4, 5)), {}),  # mask and per-head bias
            (qkv(2, 4, 2, 8, s=4), {"is_causal": True}),
            (qkv(1, 3, 2, 4, s=6), {"scale": 0.7}),
            ((*qkv(2, 5, 1, 4, s=5), None, f32(rng, 5, 5)), {"is_causal": True}),
            ((f32(rng, 4, 2, 8), f32(rng, 6, 2, 8), f32(rng, 6, 2, 8)), {}),  # unbatched
            ((f16(rng, 2, 3, 2, 8), f16(rng, 2, 4, 2, 8), f16(rng, 2, 4, 2, 8)), {}),
        ]

    return [
        OpInfo(
            "dot_product_attention",
            tj.nn.dot_product_attention,
            samples,
            attention_ref,
            attention_jax,
            rtol=1e-5,
            atol=1e-5,
        ),
    ]
