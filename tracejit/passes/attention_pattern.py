"""The attention pattern of ``fuse_patterns``: hand-written scaled dot-product attention becomes
one ``dot_product_attention`` node (lowered to ``jax.nn.dot_product_attention``).

The chain it matches, in the heads-first layout hand-written code uses (``[..., T, dim]`` queries
and ``[..., S, dim]`` keys and values, with ``...`` = ``[batch, heads]``, ``[batch]`` or nothing)::

    softmax(matmul(q, transpose(k)) [* scale | / scale] [+ bias], axis=-1) @ v

where ``transpose`` swaps the last two axes, ``scale`` is a scalar constant and ``bias`` (an
additive mask) broadcasts to the scores. Every intermediate must have no other user (a model
that also returns the attention weights keeps its chain), all of q, k, v and bias float32 (the
op's softmax runs in float32, as the hand-written one does), q, k and v of one rank with equal
leading dims, and v's last dim that of q and k (as the op requires).

The op wants ``[batch, seq, heads, dim]``: the rewrite transposes (rank 4) or expands (ranks 2,
3) its inputs and output, and a transpose of an input that undoes one the program already did
(the usual ``[B, T, N, H] -> [B, N, T, H]`` of a multi-head layer) reads the original instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from tracejit.errors import OpError
from tracejit.ir.graph import Node, Params, Value
from tracejit.ops.attention import DOT_PRODUCT_ATTENTION
from tracejit.ops.shape import EXPAND_DIMS, SQUEEZE, TRANSPOSE
from tracejit.passes.rewrite import RewriteContext
from tracejit.types import float32

Single = Callable[[Value, str], "Node | None"]


@dataclasses.dataclass(frozen=True)
class Keys:
    """The keys of the chain, as ``transpose(base, perm)`` (no node of that exists yet)."""

    base: Value
    perm: tuple[int, ...]

    @property
    def shape(self) -> tuple[int | None, ...]:
        return tuple(self.base.aval.shape[p] for p in self.perm)


_HEADS_FIRST = (0, 2, 1, 3)


def fuse_attention(ctx: RewriteContext, node: Node, single: Single) -> tuple[Value, ...]:
    """The replacement of ``node`` (a ``matmul``) when it ends an attention chain, else ()."""
    probs, v = node.inputs
    softmax = single(probs, "softmax")
    if softmax is None or softmax.params["axis"] != probs.aval.ndim - 1:
        return ()
    found = _scores(ctx, softmax.inputs[0], single)
    if found is None:
        return ()
    q, k, scale, bias = found
    if not _fits(q, k, v, bias):
        return ()
    try:
        out = _rewrite(ctx, node, q, k, v, scale, bias)
    except OpError:  # cannot happen for the shapes _fits lets through; never break a program
        return ()
    return (out,) if out.aval == node.outputs[0].aval else ()


def _rewrite(
    ctx: RewriteContext, node: Node, q: Value, k: Keys, v: Value, scale: float, bias: Value | None
) -> Value:
    rank = q.aval.ndim
    inputs = [_to_op_layout(ctx, x, node) for x in (q, k, v)]
    if bias is not None:
        if rank == 3 and bias.aval.ndim == 3:  # [batch, T, S] -> [batch, 1, T, S]
            bias = _add(ctx, EXPAND_DIMS, bias, node, axes=(1,))
        inputs.append(bias)
    params = {"scale": scale, "is_causal": False, "mask": False, "bias": bias is not None}
    out = ctx.add_node(DOT_PRODUCT_ATTENTION, tuple(inputs), Params(params), node.loc)[0]
    if rank == 4:
        out = _add(ctx, TRANSPOSE, out, node, axes=_HEADS_FIRST)
    else:
        out = _add(ctx, SQUEEZE, out, node, axes=(2,) if rank == 3 else (0, 2))
    return out


def _scores(
    ctx: RewriteContext, scores: Value, single: Single
) -> tuple[Value, Keys, float, Value | None] | None:
    """``(q, k, scale, bias)`` when ``scores`` is ``q @ k^T [* scale] [+ bias]``."""
    total = single(scores, "add")
    if total is None:
        found = _scaled(ctx, scores, single)
        return None if found is None else (*found, None)
    for product, bias in (total.inputs, total.inputs[::-1]):
        found = _scaled(ctx, product, single)
        fits = total.outputs[0].aval.shape == product.aval.shape and bias.aval.shape != ()
        if found is not None and fits:
            return (*found, bias)
    return None


def _scaled(ctx: RewriteContext, value: Value, single: Single) -> tuple[Value, Keys, float] | None:
    """``(q, k, scale)`` when ``value`` is ``q @ k^T``, times or divided by a scalar constant."""
    scale = 1.0
    for name in ("multiply", "divide"):
        node = single(value, name)
        if node is None:
            continue
        pairs = [node.inputs] if name == "divide" else [node.inputs, node.inputs[::-1]]
        for product, factor in pairs:
            number = _scalar(ctx, factor)
            if number is not None and number != 0.0:
                scale = number if name == "multiply" else 1.0 / number
                value = product
                break
        else:
            return None
        break
    matmul = single(value, "matmul")
    if matmul is None:
        return None
    q, kt = matmul.inputs
    transpose = single(kt, "transpose")
    if transpose is None or kt.aval.ndim < 2:
        return None
    # kt = transpose(y, axes), so the keys k = swap_last_two(kt) are y permuted by ``perm``.
    ndim = kt.aval.ndim
    swap = (*range(ndim - 2), ndim - 1, ndim - 2)
    axes = transpose.params["axes"]
    return q, Keys(transpose.inputs[0], tuple(axes[i] for i in swap)), scale


def _scalar(ctx: RewriteContext, value: Value) -> float | None:
    array = ctx.const_value(value)
    if array is None or np.size(array) != 1:
        return None
    return float(np.asarray(array).reshape(()))


def _fits(q: Value, k: Keys, v: Value, bias: Value | None) -> bool:
    rank = q.aval.ndim
    if rank not in (2, 3, 4) or k.base.aval.ndim != rank or v.aval.ndim != rank:
        return False
    if any(x.aval.dtype != float32 for x in (q, k.base, v)) or (
        bias is not None and bias.aval.dtype != float32
    ):
        return False
    q_shape, k_shape, v_shape = q.aval.shape, k.shape, v.aval.shape
    lead = q_shape[:-2]
    return (
        None not in q_shape + k_shape + v_shape
        and k_shape[:-2] == lead
        and v_shape[:-2] == lead
        and k_shape[-1] == q_shape[-1] == v_shape[-1]
        and k_shape[-2] == v_shape[-2]
        and (bias is None or bias.aval.ndim <= rank)
    )


def _to_op_layout(ctx: RewriteContext, x: Value | Keys, node: Node) -> Value:
    """``x`` (heads first) as ``[batch, seq, heads, dim]``, reading through transposes."""
    base, perm = (x.base, x.perm) if isinstance(x, Keys) else (x, tuple(range(x.aval.ndim)))
    earlier = ctx.producers.get(base)
    if earlier is not None and earlier.op is TRANSPOSE:  # x = transpose(y, axes[perm])
        base, perm = earlier.inputs[0], tuple(earlier.params["axes"][i] for i in perm)
    rank = len(perm)
    if rank == 4:
        perm = tuple(perm[i] for i in _HEADS_FIRST)
    if perm != tuple(range(rank)):
        base = _add(ctx, TRANSPOSE, base, node, axes=perm)
    if rank == 3:
        return _add(ctx, EXPAND_DIMS, base, node, axes=(2,))
    if rank == 2:
        return _add(ctx, EXPAND_DIMS, base, node, axes=(0, 2))
    return base


def _add(ctx: RewriteContext, op: Any, x: Value, node: Node, **params: Any) -> Value:
    return ctx.add_node(op, (x,), Params(params), node.loc)[0]
