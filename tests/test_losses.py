"""The issue-13 losses against numpy formulas and optax, eagerly and compiled, with gradients
checked against jax.grad of the optax/numpy-formula reference."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracejit as tj

RNG = np.random.default_rng(13)
LOGITS = RNG.standard_normal((6, 4)).astype(np.float32) * 2
PROBS = jax.nn.sigmoid(LOGITS).__array__()
BINARY = (RNG.random((6, 4)) < 0.5).astype(np.float32)
TARGETS = RNG.standard_normal((6, 4)).astype(np.float32) * 2
DIST_P = np.asarray(jax.nn.softmax(LOGITS), np.float32)
DIST_T = np.asarray(jax.nn.softmax(TARGETS), np.float32)
IDS = RNG.integers(0, 4, (6,)).astype(np.int32)


def _bce(p: Any, y: Any, smoothing: float = 0.0) -> Any:
    y = y * (1 - smoothing) + 0.5 * smoothing
    p = jnp.clip(p, 1e-7, 1 - 1e-7)
    return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))


def _smooth(y: Any, s: float) -> Any:
    return y * (1 - s) + 0.5 * s


# name, tracejit loss, reference (jax, differentiable in its first argument), arguments, kwargs
CASES = [
    (
        "sparse_sce",
        tj.nn.sparse_softmax_cross_entropy,
        optax.softmax_cross_entropy_with_integer_labels,
        (LOGITS, IDS),
        {},
    ),
    ("bce_probs", tj.nn.binary_cross_entropy, _bce, (PROBS, BINARY), {}),
    (
        "bce_probs_smooth",
        tj.nn.binary_cross_entropy,
        lambda p, y: _bce(p, y, 0.2),
        (PROBS, BINARY),
        {"label_smoothing": 0.2},
    ),
    (
        "bce_logits",
        tj.nn.binary_cross_entropy,
        optax.sigmoid_binary_cross_entropy,
        (LOGITS, BINARY),
        {"from_logits": True},
    ),
    (
        "bce_logits_smooth",
        tj.nn.binary_cross_entropy,
        lambda x, y: optax.sigmoid_binary_cross_entropy(x, _smooth(y, 0.1)),
        (LOGITS, BINARY),
        {"from_logits": True, "label_smoothing": 0.1},
    ),
    ("huber", tj.nn.huber, lambda p, t: optax.huber_loss(p, t, delta=1.0), (LOGITS, TARGETS), {}),
    (
        "huber_delta",
        tj.nn.huber,
        lambda p, t: optax.huber_loss(p, t, delta=0.5),
        (LOGITS, TARGETS),
        {"delta": 0.5},
    ),
    ("mae", tj.nn.mean_absolute_error, lambda p, t: jnp.abs(p - t), (LOGITS, TARGETS), {}),
    (
        "hinge_pm1",
        tj.nn.hinge,
        lambda p, y: jnp.maximum(1 - y * p, 0),
        (LOGITS, 2 * BINARY - 1),
        {},
    ),
    (
        "hinge_01",
        tj.nn.hinge,
        lambda p, y: jnp.maximum(1 - (2 * y - 1) * p, 0),
        (LOGITS, BINARY),
        {},
    ),
    (
        "kl",
        tj.nn.kl_divergence,
        lambda p, t: jnp.sum(t * jnp.log(t / jnp.clip(p, 1e-7, 1)), -1),
        (DIST_P, DIST_T),
        {},
    ),
    (
        "cosine",
        tj.nn.cosine_similarity,
        lambda p, t: -optax.cosine_similarity(p, t, epsilon=1e-6),
        (LOGITS, TARGETS),
        {},
    ),
]


def _reduce(x: Any, reduction: str) -> Any:
    return {"mean": jnp.mean, "sum": jnp.sum, "none": lambda v: v}[reduction](x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    ("name", "loss", "ref", "args", "kwargs"), CASES, ids=[c[0] for c in CASES]
)
def test_loss_values_eager_and_compiled(name, loss, ref, args, kwargs, reduction) -> None:
    expected = np.asarray(_reduce(ref(*args), reduction))
    eager = loss(*[tj.constant(a) for a in args], reduction=reduction, **kwargs)
    compiled = tj.function(lambda *a: loss(*a, reduction=reduction, **kwargs))(*args)
    for got in (eager, compiled):
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected, rtol=2e-5, atol=2e-6, err_msg=name)


@pytest.mark.parametrize(
    ("name", "loss", "ref", "args", "kwargs"), CASES, ids=[c[0] for c in CASES]
)
def test_loss_gradients_match_jax(name, loss, ref, args, kwargs) -> None:
    x = tj.constant(args[0])
    with tj.GradientTape() as tape:
        tape.watch(x)
        value = loss(x, *args[1:], **kwargs)
    got = tape.gradient(value, x)
    expected = jax.grad(lambda p: jnp.mean(ref(p, *args[1:])))(jnp.asarray(args[0]))
    np.testing.assert_allclose(got.numpy(), np.asarray(expected), rtol=1e-4, atol=1e-6)


def test_sparse_cross_entropy_is_one_op_with_a_short_backward() -> None:
    def step(logits, labels):
        with tj.GradientTape() as tape:
            tape.watch(logits)
            value = tj.nn.sparse_softmax_cross_entropy(logits, labels)
        return tape.gradient(value, logits)

    ir = tj.function(step).get_concrete_function(LOGITS, IDS).ir
    names = [n.op.name for n in ir.nodes]
    assert names.count("sparse_softmax_cross_entropy") == 1
    assert "softmax" in names and "one_hot" in names or "fused" in names


def test_sparse_cross_entropy_rejects_float_labels_and_bad_shapes() -> None:
    with pytest.raises(tj.errors.OpTypeError, match="integer class ids"):
        tj.nn.sparse_softmax_cross_entropy(tj.constant(LOGITS), tj.constant(BINARY[:, 0]))
    with pytest.raises(tj.errors.ShapeError, match=r"labels \(4,\) must have the shape"):
        tj.nn.sparse_softmax_cross_entropy(tj.constant(LOGITS), tj.constant(IDS[:4]))


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("integer_labels", [True, False])
def test_softmax_cross_entropy_label_smoothing(smoothing, integer_labels) -> None:
    """Keras' CategoricalCrossentropy smoothing: labels * (1 - s) + s / classes."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4)).astype(np.float32) * 3
    ids = rng.integers(0, 4, 6)
    labels = ids.astype(np.int32) if integer_labels else np.eye(4, dtype=np.float32)[ids]
    smoothed = np.eye(4)[ids] * (1 - smoothing) + smoothing / 4
    z = logits.astype(np.float64)
    log_probs = z - z.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    expected = -(smoothed * log_probs).sum(-1)
    for reduction, want in (("none", expected), ("mean", expected.mean())):
        loss = tj.function(
            lambda x, y, r=reduction: tj.nn.softmax_cross_entropy(
                x, y, reduction=r, label_smoothing=smoothing
            )
        )
        np.testing.assert_allclose(loss(logits, labels).numpy(), want, rtol=1e-5, atol=1e-6)
    x = tj.Variable(logits)
    with tj.GradientTape() as tape:
        value = tj.nn.softmax_cross_entropy(x, labels, reduction="sum", label_smoothing=smoothing)
    probs = np.exp(log_probs)
    np.testing.assert_allclose(tape.gradient(value, x).numpy(), probs - smoothed, atol=1e-5)


def test_label_smoothing_must_be_in_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\]"):
        tj.nn.softmax_cross_entropy(tj.ones((2, 3)), tj.constant([0, 1]), label_smoothing=1.5)
