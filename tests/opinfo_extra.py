"""OpInfo rows for the ops that passes create (``fused``, ``dense``, ``softmax_cross_entropy``),
the control-flow ops (called through their public functions, with fixed bodies) and the random
ops (on explicit keys, against ``jax.random``).

Rows are built on first access (module ``__getattr__``), so this module and ``opinfo`` can
import each other in either order.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import tracejit as tj
from tracejit.ops import random as random_ops
from tracejit.ops.fused import FUSED, dense, softmax_cross_entropy_op
from tracejit.ops.registry import bind
from tracejit.passes.fuse import fuse_elementwise


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _key(seed: int) -> np.ndarray:
    return np.asarray(jax.random.key_data(jax.random.PRNGKey(seed)), np.uint32)


def _fused_body() -> Any:
    traced = tj.function(lambda x, y: tj.exp(x) * y + 1.0, optimize=False)
    graph = traced.get_concrete_function(tj.TensorSpec((3,)), tj.TensorSpec((3,))).ir
    return fuse_elementwise(graph).nodes[0].params["body"]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _numpy_while(x: np.ndarray) -> np.ndarray:
    while x.sum() < 100:
        x = x * 2
    return x


def _numpy_scan(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    carry, ys = np.zeros(xs.shape[1:], xs.dtype), []
    for x in xs:
        ys.append(carry * x)
        carry = carry + x
    return carry, np.stack(ys)


def _rows() -> list[Any]:
    from opinfo import OpInfo

    body = _fused_body()
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    return [
        OpInfo(
            "fused",
            lambda x, y: bind(FUSED, x, y, body=body)[0],
            lambda rng: [((np.abs(_f32(rng, 3)), _f32(rng, 3)), {})],
            lambda x, y: np.exp(x) * y + 1,
            jax_ref=lambda x, y: jnp.exp(x) * y + 1,
            skip_unknown=True,
        ),
        OpInfo(
            "dense",
            lambda x, w, b, activation="none": dense(x, w, b, activation),
            lambda rng: [
                ((_f32(rng, 4, 3), _f32(rng, 3, 2), _f32(rng, 2)), {}),
                ((_f32(rng, 5, 3), _f32(rng, 3, 2), _f32(rng, 2)), {"activation": "relu"}),
                ((_f32(rng, 5, 3), _f32(rng, 3, 2), _f32(rng, 2)), {"activation": "tanh"}),
            ],
            lambda x, w, b, activation="none": {"none": lambda v: v, "relu": relu, "tanh": np.tanh}[activation](x @ w + b),
            jax_ref=lambda x, w, b, activation="none": {"none": lambda v: v, "relu": jax.nn.relu, "tanh": jnp.tanh}[activation](x @ w + b),
        ),
        OpInfo(
            "softmax_cross_entropy",
            softmax_cross_entropy_op,
            lambda rng: [((_f32(rng, 4, 3), _softmax(_f32(rng, 4, 3))), {})],
            lambda logits, labels: -(labels * np.log(_softmax(logits))).sum(-1),
            jax_ref=lambda logits, labels: -(labels * jax.nn.log_softmax(logits)).sum(-1),
        ),
        OpInfo(
            "cond",
            lambda pred, x: tj.cond(pred, lambda v: v * 2.0, lambda v: -v, x),
            lambda rng: [((np.bool_(True), _f32(rng, 3)), {}), ((np.bool_(False), _f32(rng, 2, 2)), {})],
            lambda pred, x: x * 2 if pred else -x,
            jax_ref=lambda pred, x: jax.lax.cond(pred, lambda v: v * 2.0, lambda v: -v, x),
            skip_unknown=True,
        ),
        OpInfo(
            "switch",
            lambda i, x: tj.switch(i, [lambda v: v + 1.0, lambda v: v * 3.0], x),
            lambda rng: [((np.int32(0), _f32(rng, 3)), {}), ((np.int32(1), _f32(rng, 3)), {})],
            lambda i, x: x + 1 if i == 0 else x * 3,
            jax_ref=lambda i, x: jax.lax.switch(i, [lambda v: v + 1.0, lambda v: v * 3.0], x),
            skip_unknown=True,
        ),
        OpInfo(
            "while_loop",
            lambda x: tj.while_loop(lambda v: v.sum() < 100.0, lambda v: (v * 2.0,), (x,))[0],
            lambda rng: [((np.abs(_f32(rng, 3)) + 0.5,), {})],
            _numpy_while,
            jax_ref=lambda x: jax.lax.while_loop(lambda v: v.sum() < 100.0, lambda v: v * 2.0, x),
            skip_gradients="no maximum_iterations: not differentiable (tested in test_control_flow)",
        ),
        OpInfo(
            "scan",
            lambda xs: tj.scan(lambda c, x: (c + x, c * x), tj.zeros(xs.shape[1:]), xs),
            lambda rng: [((_f32(rng, 4, 2),), {}), ((_f32(rng, 3),), {})],
            _numpy_scan,
            jax_ref=lambda xs: jax.lax.scan(lambda c, x: (c + x, c * x), jnp.zeros(xs.shape[1:]), xs),
            skip_unknown=True,
        ),
        OpInfo(
            "random_split",
            random_ops.split_key,
            lambda rng: [((_key(1),), {})],
            lambda key: tuple(np.asarray(k) for k in jax.random.split(key)),
            skip_unknown=True,
        ),
        OpInfo(
            "random_normal",
            lambda key: random_ops.normal(key, (3, 2), np.dtype("float32")),
            lambda rng: [((_key(2),), {})],
            lambda key: np.asarray(jax.random.normal(key, (3, 2), jnp.float32)),
            skip_unknown=True,
        ),
        OpInfo(
            "random_uniform",
            lambda key: random_ops.uniform(key, (4,), np.dtype("float32"), -1.0, 1.0),
            lambda rng: [((_key(3),), {})],
            lambda key: np.asarray(jax.random.uniform(key, (4,), jnp.float32, -1.0, 1.0)),
            skip_unknown=True,
        ),
        OpInfo(
            "random_truncated_normal",
            lambda key: random_ops.truncated_normal(key, (4,), np.dtype("float32"), -2.0, 2.0),
            lambda rng: [((_key(4),), {})],
            lambda key: np.asarray(jax.random.truncated_normal(key, -2.0, 2.0, (4,), jnp.float32)),
            skip_unknown=True,
        ),
        OpInfo(
            "random_bernoulli",
            lambda key: random_ops.bernoulli(key, (5,), 0.3),
            lambda rng: [((_key(5),), {})],
            lambda key: np.asarray(jax.random.bernoulli(key, 0.3, (5,))),
            skip_unknown=True,
        ),
        OpInfo(
            "random_bernoulli_like",
            lambda key, like: random_ops.bernoulli_like(key, like, 0.5),
            lambda rng: [((_key(6), _f32(rng, 2, 3)), {})],
            lambda key, like: np.asarray(jax.random.bernoulli(key, 0.5, like.shape)),
            skip_unknown=True,
        ),
        OpInfo(
            "random_permutation",
            lambda key: random_ops.permutation(key, 6),
            lambda rng: [((_key(7),), {})],
            lambda key: np.asarray(jax.random.permutation(key, 6)).astype(np.int32),
            skip_unknown=True,
        ),
    ]


_cache: list[Any] = []


def __getattr__(name: str) -> Any:
    if name == "EXTRA_OPS":
        if not _cache:
            _cache.extend(_rows())
        return _cache
    raise AttributeError(name)
