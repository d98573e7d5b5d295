"""``MultiHeadAttention``, with Keras' signature, weight layout and equations.

Projections as Keras' ``EinsumDense`` lays them out: ``query/kernel [query_dim, heads,
key_dim]``, ``key/kernel [key_input_dim, heads, key_dim]``, ``value/kernel [value_input_dim,
heads, value_dim]`` (biases ``[heads, dim]``) and ``attention_output/kernel [heads, value_dim,
output_dim]`` (bias ``[output_dim]``). Per head: ``softmax(q k^T / sqrt(key_dim) [masked]) v``,
then the output projection, summing over the heads.

When the attention weights are not needed (no dropout while training, no
``return_attention_scores``) and ``value_dim == key_dim``, the heads run as one
``dot_product_attention`` op (so XLA/cuDNN pick the fused kernel).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tracejit.errors import ShapeError
from tracejit.module import Module
from tracejit.nn import _weights
from tracejit.nn.layers import unique_name
from tracejit.nn.recurrent import record_output_shape
from tracejit.ops.arguments import arg_aval
from tracejit.ops.attention import LARGE_NEGATIVE, dot_product_attention
from tracejit.ops.elementwise import cast, divide, logical_and, multiply, where
from tracejit.ops.linalg import matmul
from tracejit.ops.nn import softmax
from tracejit.ops.shape import expand_dims, reshape, transpose
from tracejit.random import Generator, get_global_generator
from tracejit.types import bool_


def _merge_last(x: Any, sizes: tuple[int, ...]) -> Any:
    """``x [..., a]`` as ``[..., *sizes]`` (one unknown leading dim allowed)."""
    return reshape(x, (*_known(x.shape[:-1]), *sizes))


def _known(dims: tuple[int | None, ...]) -> tuple[int, ...]:
    if sum(d is None for d in dims) > 1:
        raise ShapeError("MultiHeadAttention", f"needs at most one unknown dim, got {dims}")
    return tuple(-1 if d is None else d for d in dims)


class _Projection(Module):
    """``x [..., *in] -> [..., *out]`` with kernel ``[*in, *out]`` and bias ``out`` (``in``: the
    kernel's first ``contract`` dims)."""

    def __init__(
        self,
        generator: Generator,
        name: str,
        dims: tuple[int, ...],
        use_bias: bool,
        contract: int = 1,
    ) -> None:
        self._name = name
        self.contract = contract
        inner, out = dims[:contract], dims[contract:]
        # Keras' EinsumDense fans: the contracted size in, the product of the rest out.
        self.kernel = _weights.glorot_uniform(
            generator, dims, math.prod(inner), math.prod(out), f"{name}/kernel"
        )
        self.bias = _weights.constant(np.zeros(out), f"{name}/bias") if use_bias else None

    def __call__(self, x: Any) -> Any:
        contract, dims = self.contract, tuple(int(d or 0) for d in self.kernel.shape)  # known
        inner, out = math.prod(dims[:contract]), dims[contract:]
        flat = reshape(x, (*_known(x.shape[: x.ndim - contract]), inner))
        y = _merge_last(matmul(flat, reshape(self.kernel, (inner, math.prod(out)))), out)
        return y + self.bias if self.bias is not None else y


class MultiHeadAttention(Module):
    """Multi-head attention as in "Attention Is All You Need" and Keras' layer of that name.

    ``MultiHeadAttention(num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
    output_shape=None)``; the projections are built on the first call from the inputs' last
    dims (or at once when ``query_dim`` is given). Call it as ``layer(query, value, key=None,
    attention_mask=None, use_causal_mask=False, return_attention_scores=False,
    training=False)``: ``query [batch, T, query_dim]``, ``value`` (and ``key``, default
    ``value``) ``[batch, S, dim]``; ``attention_mask [batch, T, S]`` (True/1 = attend). Returns
    ``[batch, T, output_shape or query_dim]`` (and the ``[batch, heads, T, S]`` weights).

    >>> import tracejit as tj
    >>> mha = tj.nn.MultiHeadAttention(num_heads=2, key_dim=4, generator=tj.random.Generator(0))
    >>> mha(tj.ones((3, 5, 8)), tj.ones((3, 6, 8))).shape
    (3, 5, 8)
    """

    takes_training = True

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | None = None,
        *,
        query_dim: int | None = None,
        key_input_dim: int | None = None,
        value_input_dim: int | None = None,
        generator: Generator | None = None,
        name: str | None = None,
    ) -> None:
        for what, size in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"MultiHeadAttention: {what} must be a positive int, got {size!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        self._name = name or unique_name("multi_head_attention")
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout, self.use_bias, self.output_dim = dropout, use_bias, output_shape
        self.__generator__ = generator or get_global_generator()  # dunder: not a child
        self.query: _Projection | None = None
        self.key: _Projection | None = None
        self.value: _Projection | None = None
        self.attention_output: _Projection | None = None
        if query_dim is not None:
            value_input_dim = value_input_dim or query_dim
            self._build(query_dim, key_input_dim or value_input_dim, value_input_dim)

    def _build(self, query_dim: int, key_dim: int, value_dim: int) -> None:
        generator, n, name = self.__generator__, self.num_heads, self._name
        self.query_dim = query_dim
        self.query = _Projection(
            generator, f"{name}/query", (query_dim, n, self.key_dim), self.use_bias
        )
        self.key = _Projection(generator, f"{name}/key", (key_dim, n, self.key_dim), self.use_bias)
        self.value = _Projection(
            generator, f"{name}/value", (value_dim, n, self.value_dim), self.use_bias
        )
        out = self.output_dim or query_dim
        self.attention_output = _Projection(
            generator, f"{name}/attention_output", (n, self.value_dim, out), self.use_bias, 2
        )

    def __call__(
        self,
        query: Any,
        value: Any,
        key: Any = None,
        attention_mask: Any = None,
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
        training: bool = False,
    ) -> Any:
        key = value if key is None else key
        shapes = [arg_aval(self.name, x).shape for x in (query, key, value)]
        for what, shape in zip(("query", "key", "value"), shapes, strict=True):
            if len(shape) != 3 or shape[-1] is None:
                raise ShapeError(
                    self.name, f"{what} must be [batch, seq, dim] with a known dim, got {shape}"
                )
        if self.query is None:
            self._build(*(int(s[-1]) for s in shapes))  # type: ignore[arg-type]  # known: above
        query_part, key_part, value_part, output_part = self._parts()
        built = (query_part.kernel.shape[0], key_part.kernel.shape[0], value_part.kernel.shape[0])
        for what, shape, size in zip(("query", "key", "value"), shapes, built, strict=True):
            if shape[-1] != size:
                raise ShapeError(
                    self.name, f"was built for {what} dim {size}, got {what} of shape {shape}"
                )
        q, k, v = query_part(query), key_part(key), value_part(value)  # [B, seq, heads, dim]
        mask = None
        if attention_mask is not None:
            mask = expand_dims(cast(attention_mask, bool_), 1)  # [B, 1, T, S]
        dropping = training and self.dropout > 0.0
        if not (dropping or return_attention_scores) and self.value_dim == self.key_dim:
            heads = dot_product_attention(q, k, v, mask=mask, is_causal=use_causal_mask)
            output = output_part(heads)
            record_output_shape(self, output)
            return output
        weights = self._weights(q, k, mask, use_causal_mask)
        used = self._dropout(weights) if dropping else weights
        heads = transpose(matmul(used, transpose(v, (0, 2, 1, 3))), (0, 2, 1, 3))
        output = output_part(heads)
        record_output_shape(self, output)
        return (output, weights) if return_attention_scores else output

    def _parts(self) -> tuple[_Projection, _Projection, _Projection, _Projection]:
        q, k, v, o = self.query, self.key, self.value, self.attention_output
        if q is None or k is None or v is None or o is None:  # not after _build
            raise RuntimeError(f"{self.name} is not built")
        return q, k, v, o

    def _weights(self, q: Any, k: Any, mask: Any, causal: bool) -> Any:
        """``softmax(q k^T / sqrt(key_dim))`` per head, ``[B, heads, T, S]``; masked logits
        become the large negative number ``dot_product_attention`` uses (so a query with no
        key to attend to gets uniform weights on both paths)."""
        scores = matmul(transpose(q, (0, 2, 1, 3)), transpose(k, (0, 2, 3, 1)))
        scores = multiply(scores, 1.0 / math.sqrt(self.key_dim))
        if causal:
            t, s = scores.shape[-2:]
            lower = np.tril(np.ones((t, s), bool))
            mask = lower if mask is None else logical_and(mask, lower)
        if mask is not None:
            scores = where(mask, scores, LARGE_NEGATIVE)
        return softmax(scores, axis=-1)

    def _dropout(self, weights: Any) -> Any:
        keep = self.__generator__.bernoulli_like(weights, 1.0 - self.dropout)
        return divide(multiply(weights, cast(keep, weights.dtype)), 1.0 - self.dropout)
