"""``GradientTape.jacobian`` and ``batch_jacobian`` against ``jax.jacrev``, TF's unconnected
handling, and the vectorization (one batched backward pass, not a loop of passes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.autodiff.tape import TapeUsedError

RNG = np.random.default_rng(7)
X = RNG.standard_normal(3).astype(np.float32)
W = RNG.standard_normal((3, 2)).astype(np.float32)
XB = RNG.standard_normal((4, 3)).astype(np.float32)


def _model(x, w, lib):  # noqa: ANN001, ANN202 - one model written for both libraries
    h = lib.tanh(x @ w)
    return h * lib.sum(x * x)


def _close(got: object, want: object) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_jacobian_matches_jax_jacrev_for_a_nest_of_sources() -> None:
    x, w = tj.constant(X), tj.Variable(W)
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = _model(x, w, tj)
    jac = tape.jacobian(y, {"x": x, "w": w})
    want_x, want_w = jax.jacrev(lambda a, b: _model(a, b, jnp), argnums=(0, 1))(X, W)
    assert jac["x"].shape == (2, 3) and jac["w"].shape == (2, 3, 2)
    _close(jac["x"].numpy(), want_x)
    _close(jac["w"].numpy(), want_w)


def test_jacobian_of_a_matrix_target_and_scalar_target() -> None:
    a = tj.constant(W)
    with tj.GradientTape(persistent=True) as tape:
        tape.watch(a)
        m = tj.sin(a) @ tj.transpose(a)  # (3, 3) target, (3, 2) source
        s = tj.sum(m)
    want = jax.jacrev(lambda t: jnp.sin(t) @ t.T)(W)
    _close(tape.jacobian(m, a).numpy(), want)
    assert tape.jacobian(m, a).shape == (3, 3, 3, 2)
    _close(tape.jacobian(s, a).numpy(), jax.grad(lambda t: jnp.sum(jnp.sin(t) @ t.T))(W))


def test_unconnected_sources_give_none_or_zeros_as_tf() -> None:
    x, other = tj.constant(X), tj.constant([1.0, 2.0])
    with tj.GradientTape(persistent=True) as tape:
        tape.watch([x, other])
        y = x * 2.0
    assert tape.jacobian(y, other) is None
    zero = tape.jacobian(y, other, unconnected_gradients="zero")
    assert zero.shape == (3, 2) and not zero.numpy().any()
    assert tape.jacobian(y, [x, other])[1] is None
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tape.jacobian(y, x, unconnected_gradients="maybe")


def test_a_non_persistent_tape_gives_one_jacobian() -> None:
    x = tj.constant(X)
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.jacobian(y, x)
    with pytest.raises(TapeUsedError):
        tape.jacobian(y, x)


def test_batch_jacobian_matches_vmap_of_jacrev() -> None:
    x, w = tj.constant(XB), tj.constant(W)
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.tanh(x @ w) * tj.sum(x * x, axis=1, keepdims=True)  # (4, 2)
    got = tape.batch_jacobian(y, x)
    want = jax.vmap(jax.jacrev(lambda r: jnp.tanh(r @ W) * jnp.sum(r * r)))(XB)
    assert got.shape == (4, 2, 3)
    _close(got.numpy(), want)


def test_batch_jacobian_checks_the_batch_dims_and_unconnected() -> None:
    x = tj.constant(XB)
    other = tj.constant(np.ones((4, 5), np.float32))
    with tj.GradientTape(persistent=True) as tape:
        tape.watch([x, other])
        y = x * 3.0
    with pytest.raises(ValueError, match="same first"):
        tape.batch_jacobian(y, tj.constant(np.ones((5, 3), np.float32)))
    assert tape.batch_jacobian(y, other) is None
    zero = tape.batch_jacobian(y, other, unconnected_gradients="zero")
    assert zero.shape == (4, 3, 5) and not zero.numpy().any()


def test_jacobian_inside_a_function_is_one_vectorized_backward_pass() -> None:
    @tj.function
    def jac(x: tj.Tensor, w: tj.Tensor) -> tj.Tensor:
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = _model(x, w, tj)
        return tape.jacobian(y, x)

    _close(jac(tj.constant(X), tj.constant(W)).numpy(), jax.jacrev(lambda a: _model(a, W, jnp))(X))
    big = RNG.standard_normal((64, 3)).astype(np.float32)

    @tj.function
    def jac_big(x: tj.Tensor) -> tj.Tensor:
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = tj.reshape(tj.tanh(x @ tj.constant(big.T)), (-1,))  # 64 outputs
        return tape.jacobian(y, x)

    _close(
        jac_big(tj.constant(X)).numpy(),
        jax.jacrev(lambda a: jnp.tanh(a @ big.T))(X),
    )
    graph = jac_big.get_concrete_function(tj.constant(X)).graph
    # A loop of 64 backward passes would hold 64 copies of the backward ops.
    assert graph.node_count() < 30, graph


def test_hessian_from_nested_tapes_is_the_jacobian_of_the_gradient() -> None:
    x = tj.constant(X)
    with tj.GradientTape() as outer:
        outer.watch(x)
        with tj.GradientTape() as inner:
            inner.watch(x)
            y = tj.sum(tj.sin(x) * x * x)
        g = inner.gradient(y, x)
    hessian = outer.jacobian(g, x)
    _close(hessian.numpy(), jax.hessian(lambda a: jnp.sum(jnp.sin(a) * a * a))(X))
