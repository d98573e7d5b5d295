"""Ops that optimization passes create: ``fused`` regions, ``dense`` and the fused softmax
cross-entropy.

- ``fused[body]`` holds a group of elementwise ops as a nested graph; it is lowered as one jax
  function (the body's env loop) and differentiated by replaying the body under a tape.
- ``dense[activation]`` is ``activation(x @ w + b)``.
- ``softmax_cross_entropy`` is ``-sum(labels * log_softmax(logits), -1)``, with the cheap backward
  ``ct * (softmax(logits) - labels)`` (``tj.nn.softmax_cross_entropy`` binds it directly).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from tracejit.errors import ShapeError
from tracejit.ir.graph import Graph, evaluate
from tracejit.ops import nn as activations
from tracejit.ops.infer import broadcast_shapes, jax_dtype, shape_text
from tracejit.ops.jvp_rules import transpose_jvp
from tracejit.ops.linalg import MATMUL
from tracejit.ops.registry import apply_bind, apply_impl, bind, defop
from tracejit.types import AVal


def decomposition_vjp(
    compute: Callable[..., Any], n_inputs: int | None = None
) -> Callable[..., Any]:
    """A VJP rule that re-runs ``compute(*primals, **params)`` with tracejit ops under a tape and
    differentiates that (so it needs no rule of its own)."""

    def vjp(ct: Any, *primals: Any, out: Any, **params: Any) -> Sequence[Any]:
        from tracejit.autodiff.tape import GradientTape
        from tracejit.eager.tensor import constant

        # constants folded into the node arrive as raw arrays: as tensors the tape can watch
        primals = tuple(constant(p) if isinstance(p, jax.Array) else p for p in primals)
        with GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([p for p in primals if hasattr(p, "aval")])
            result = compute(*primals, **params)
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        cts = list(ct) if isinstance(ct, (tuple, list)) else [ct]
        grads = tape.gradient(results, list(primals), output_gradients=cts)
        # The same tensor passed twice (a loop's carry and a capture that read one variable)
        # has its whole gradient at each position; the caller adds the positions up, so only
        # the first keeps it (it was counted twice: a silently doubled gradient).
        seen: set[int] = set()
        for i, p in enumerate(primals):
            if id(p) in seen:
                grads[i] = None
            seen.add(id(p))
        return grads

    return vjp


# fused -------------------------------------------------------------------------------------
def _infer_fused(*avals: AVal, body: Graph) -> tuple[AVal, ...]:
    return tuple(v.aval for v in body.outputs)


def _fused(*arrays: Any, body: Graph) -> tuple[Any, ...]:
    return tuple(evaluate(body, arrays, apply_impl))


def _fused_decomposed(*primals: Any, body: Graph) -> list[Any]:
    return evaluate(body, primals, apply_bind)


FUSED = defop(
    "fused",
    _infer_fused,
    _fused,
    decomposition_vjp(_fused_decomposed),
    subgraphs=True,
    multiple_results=True,
    jvp=transpose_jvp("fused"),
)


# dense -------------------------------------------------------------------------------------
_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "none": lambda x: x,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
}


def _infer_dense(x: AVal, w: AVal, b: AVal, *, activation: str) -> AVal:
    product = MATMUL.infer(x, w)
    shape = broadcast_shapes("dense", product.shape, b.shape)
    if shape != product.shape:
        raise ShapeError(
            "dense", f"bias {shape_text(b.shape)} does not fit {shape_text(product.shape)}"
        )
    dtype, weak = jax_dtype("dense", _dense, [x, w, b], {"activation": activation})
    return AVal(shape, dtype, weak)


def _dense(x: Any, w: Any, b: Any, *, activation: str) -> Any:
    return _ACTIVATIONS[activation](jnp.matmul(x, w) + b)


def _dense_decomposed(x: Any, w: Any, b: Any, *, activation: str) -> Any:
    from tracejit.ops.elementwise import add, tanh

    pre = add(bind(MATMUL, x, w), b)
    table = {
        "none": lambda y: y,
        "relu": activations.relu,
        "sigmoid": activations.sigmoid,
        "tanh": tanh,
        "gelu": activations.gelu,
    }
    return table[activation](pre)


DENSE = defop(
    "dense", _infer_dense, _dense, decomposition_vjp(_dense_decomposed), jvp=transpose_jvp("dense")
)


# softmax cross-entropy ---------------------------------------------------------------------
def _infer_sce(logits: AVal, labels: AVal) -> AVal:
    if (
        logits.ndim == 0
        or labels.shape != logits.shape
        and not _compatible(labels.shape, logits.shape)
    ):
        raise ShapeError(
            "softmax_cross_entropy",
            f"labels {shape_text(labels.shape)} must have the shape of logits "
            f"{shape_text(logits.shape)}",
        )
    dtype, weak = jax_dtype("softmax_cross_entropy", _sce, [logits, labels], {})
    return AVal(logits.shape[:-1], dtype, weak)


def _compatible(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _sce(logits: Any, labels: Any) -> Any:
    return -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def _sce_vjp(ct: Any, logits: Any, labels: Any, *, out: Any) -> tuple[Any, Any]:
    from tracejit.ops.elementwise import multiply, negative, subtract
    from tracejit.ops.shape import expand_dims

    ct = expand_dims(ct, -1)
    d_logits = multiply(ct, subtract(activations.softmax(logits, axis=-1), labels))
    d_labels = negative(multiply(ct, activations.log_softmax(logits, axis=-1)))
    return d_logits, d_labels


SOFTMAX_CROSS_ENTROPY = defop(
    "softmax_cross_entropy", _infer_sce, _sce, _sce_vjp, jvp=transpose_jvp("softmax_cross_entropy")
)


def dense(x: Any, w: Any, b: Any, activation: str = "none") -> Any:
    """``activation(x @ w + b)`` as one op (what pattern fusion produces)."""
    return bind(DENSE, x, w, b, activation=activation)


def softmax_cross_entropy_op(logits: Any, labels: Any) -> Any:
    """Per-example softmax cross-entropy with one-hot/probability labels, as one op."""
    return bind(SOFTMAX_CROSS_ENTROPY, logits, labels)


# sparse softmax cross-entropy --------------------------------------------------------------
def _infer_sparse_sce(logits: AVal, labels: AVal) -> AVal:
    from tracejit.types import is_integer

    if not is_integer(labels.dtype):
        from tracejit.errors import OpTypeError

        raise OpTypeError(
            "sparse_softmax_cross_entropy", f"labels must be integer class ids, got {labels.dtype}"
        )
    if logits.ndim == 0 or not _compatible(labels.shape, logits.shape[:-1]):
        raise ShapeError(
            "sparse_softmax_cross_entropy",
            f"labels {shape_text(labels.shape)} must have the shape of logits "
            f"{shape_text(logits.shape)} without its class axis",
        )
    dtype, weak = jax_dtype("sparse_softmax_cross_entropy", _sparse_sce, [logits, labels], {})
    return AVal(logits.shape[:-1], dtype, weak)


def _sparse_sce(logits: Any, labels: Any) -> Any:
    picked = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return jax.nn.logsumexp(logits, axis=-1) - picked


def _sparse_sce_vjp(ct: Any, logits: Any, labels: Any, *, out: Any) -> tuple[Any, None]:
    from tracejit.ops.creation import one_hot
    from tracejit.ops.elementwise import multiply, subtract
    from tracejit.ops.shape import expand_dims

    probabilities = activations.softmax(logits, axis=-1)
    depth = logits.shape[-1]
    labels_hot = one_hot(labels, depth, dtype=probabilities.dtype)
    return multiply(expand_dims(ct, -1), subtract(probabilities, labels_hot)), None


SPARSE_SOFTMAX_CROSS_ENTROPY = defop(
    "sparse_softmax_cross_entropy",
    _infer_sparse_sce,
    _sparse_sce,
    _sparse_sce_vjp,
    jvp=transpose_jvp("sparse_softmax_cross_entropy"),
)


def sparse_softmax_cross_entropy_op(logits: Any, labels: Any) -> Any:
    """Per-example softmax cross-entropy with integer class ids, as one op whose backward is
    ``ct * (softmax(logits) - one_hot(labels))``."""
    return bind(SPARSE_SOFTMAX_CROSS_ENTROPY, logits, labels)
