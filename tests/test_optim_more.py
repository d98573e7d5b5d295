"""Optimizers, gradient clipping and learning-rate schedules, checked against optax.

Each optimizer trains the same small network for 20 steps eagerly and inside a ``tj.function``
train step; the parameters must match those of optax's same optimizer (configured to Keras'
definitions where their defaults differ) run under ``jax.jit``. Where optax cannot express
Keras' rule (Adamax's epsilon placement, Nadam's momentum schedule), the oracle is that rule
written out as an optax transformation here, and optax's own optimizer is checked at the setting
where the two coincide.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracejit as tj

STEPS = 20
RNG = np.random.default_rng(13)
X = RNG.normal(size=(16, 3)).astype(np.float32)
Y = RNG.normal(size=(16, 4)).astype(np.float32)
W0 = (RNG.normal(size=(3, 4)) * 0.5).astype(np.float32)
B0 = (RNG.normal(size=(4,)) * 0.1).astype(np.float32)
RTOL, ATOL = 2e-5, 2e-6  # float32, 20 steps of two independently computed update chains


def jax_loss(params: tuple[Any, Any]) -> Any:
    w, b = params
    return jnp.mean(jnp.square(jnp.tanh(X @ w + b) - Y))


def run_optax(tx: optax.GradientTransformation, steps: int = STEPS) -> list[np.ndarray]:
    params = (jnp.asarray(W0), jnp.asarray(B0))
    state = tx.init(params)

    @jax.jit
    def step(params: Any, state: Any) -> Any:
        grads = jax.grad(jax_loss)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return [np.asarray(p) for p in params]


def run_tracejit(opt: tj.optim.Optimizer, mode: str, steps: int = STEPS) -> list[np.ndarray]:
    w, b = tj.Variable(W0, name="w"), tj.Variable(B0, name="b")
    x, y = tj.constant(X), tj.constant(Y)

    def step() -> Any:
        with tj.GradientTape() as tape:
            loss = tj.mean(tj.square(tj.tanh(x @ w + b) - y))
        grads = tape.gradient(loss, [w, b])
        opt.apply_gradients(zip(grads, [w, b]))
        return loss

    run = tj.function(step) if mode == "compiled" else step
    for _ in range(steps):
        run()
    if mode == "compiled":
        assert run.trace_count == 1  # the step counter is state, not a constant of the trace
    assert int(opt.iterations) == steps
    return [w.numpy(), b.numpy()]


def assert_params_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)


# Oracle pieces optax does not ship --------------------------------------------------------
class CountState(NamedTuple):
    count: Any


def decoupled_weight_decay(weight_decay: float, lr: Callable[[Any], Any] | float):
    """Keras' weight decay as an optax step: add ``-lr(t) * weight_decay * w`` to the update."""
    schedule = lr if callable(lr) else (lambda _: lr)

    def update(updates: Any, state: CountState, params: Any = None) -> Any:
        rate = schedule(state.count)
        out = jax.tree.map(lambda u, p: u - rate * weight_decay * p, updates, params)
        return out, CountState(state.count + 1)

    return optax.GradientTransformation(lambda _: CountState(jnp.zeros([], jnp.int32)), update)


def per_variable_clip_by_norm(clip_norm: float) -> optax.GradientTransformation:
    """Keras' ``clipnorm``: optax's global-norm clip applied to each gradient on its own."""
    inner = optax.clip_by_global_norm(clip_norm)

    def update(updates: Any, state: Any, params: Any = None) -> Any:
        clip = lambda g: inner.update(g, optax.EmptyState())[0]  # noqa: E731
        return jax.tree.map(clip, updates), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


class MomentsState(NamedTuple):
    count: Any
    m: Any
    v: Any
    u_product: Any


def keras_adamax(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7):
    """Keras' Adamax (eps added to the infinity norm, outside the max)."""

    def init(params: Any) -> MomentsState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return MomentsState(jnp.zeros([], jnp.int32), zeros, zeros, jnp.ones([]))

    def update(g: Any, s: MomentsState, params: Any = None) -> Any:
        t = (s.count + 1).astype(jnp.float32)
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, s.m, g)
        u = jax.tree.map(lambda u, g: jnp.maximum(b2 * u, jnp.abs(g)), s.v, g)
        out = jax.tree.map(lambda m, u: -lr * m / ((1 - b1**t) * (u + eps)), m, u)
        return out, MomentsState(s.count + 1, m, u, s.u_product)

    return optax.GradientTransformation(init, update)


def keras_nadam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7, psi=1.0):
    """Keras' Nadam, momentum schedule mu_t = b1 * (1 - 0.5 * 0.96 ** (t * psi))."""

    def init(params: Any) -> MomentsState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return MomentsState(jnp.zeros([], jnp.int32), zeros, zeros, jnp.ones([]))

    def update(g: Any, s: MomentsState, params: Any = None) -> Any:
        t = (s.count + 1).astype(jnp.float32)
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        product = s.u_product * mu_t
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, s.m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, s.v, g)

        def step(m: Any, v: Any, g: Any) -> Any:
            m_hat = mu_next * m / (1 - product * mu_next) + (1 - mu_t) * g / (1 - product)
            return -lr * m_hat / (jnp.sqrt(v / (1 - b2**t)) + eps)

        return jax.tree.map(step, m, v, g), MomentsState(s.count + 1, m, v, product)

    return optax.GradientTransformation(init, update)


# Optimizers vs optax ------------------------------------------------------------------------
OPTIMIZERS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "sgd": (lambda: tj.optim.SGD(0.1), lambda: optax.sgd(0.1)),
    "sgd_momentum": (
        lambda: tj.optim.SGD(0.1, momentum=0.9),
        lambda: optax.sgd(0.1, momentum=0.9),
    ),
    "sgd_nesterov": (
        lambda: tj.optim.SGD(0.1, momentum=0.9, nesterov=True),
        lambda: optax.sgd(0.1, momentum=0.9, nesterov=True),
    ),
    "sgd_weight_decay": (
        lambda: tj.optim.SGD(0.1, momentum=0.9, weight_decay=0.05),
        lambda: optax.chain(optax.sgd(0.1, momentum=0.9), decoupled_weight_decay(0.05, 0.1)),
    ),
    "adam_eps0": (lambda: tj.optim.Adam(0.05, eps=0), lambda: optax.adam(0.05, eps=0.0)),
    "adamw_eps0": (
        lambda: tj.optim.AdamW(0.05, weight_decay=0.1, eps=0),
        lambda: optax.adamw(0.05, weight_decay=0.1, eps=0.0),
    ),
    "rmsprop": (
        lambda: tj.optim.RMSprop(0.01),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-7),
    ),
    "rmsprop_centered_momentum": (
        lambda: tj.optim.RMSprop(0.01, momentum=0.5, centered=True),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-7, centered=True, momentum=0.5),
    ),
    "adagrad": (
        lambda: tj.optim.Adagrad(0.1),
        lambda: optax.adagrad(0.1, initial_accumulator_value=0.1, eps=1e-7),
    ),
    "adagrad_weight_decay": (
        lambda: tj.optim.Adagrad(0.1, weight_decay=0.2),
        lambda: optax.chain(
            optax.adagrad(0.1, initial_accumulator_value=0.1, eps=1e-7),
            decoupled_weight_decay(0.2, 0.1),
        ),
    ),
    "adadelta": (
        lambda: tj.optim.Adadelta(1.0),
        lambda: optax.adadelta(1.0, rho=0.95, eps=1e-7),
    ),
    "adamax_eps0": (lambda: tj.optim.Adamax(0.05, eps=0), lambda: optax.adamax(0.05, eps=0.0)),
    "adamax_keras": (lambda: tj.optim.Adamax(0.05), lambda: keras_adamax(0.05)),
    "nadam_constant_momentum": (
        lambda: tj.optim.Nadam(0.05, momentum_decay=math.inf),
        lambda: optax.nadam(0.05, eps=1e-7),
    ),
    "nadam_keras": (lambda: tj.optim.Nadam(0.01), lambda: keras_nadam(0.01)),
    "nadam_pytorch_decay": (
        lambda: tj.optim.Nadam(0.01, momentum_decay=0.004),
        lambda: keras_nadam(0.01, psi=0.004),
    ),
    "lion": (lambda: tj.optim.Lion(0.01), lambda: optax.lion(0.01, weight_decay=0.0)),
    "lion_weight_decay": (
        lambda: tj.optim.Lion(0.01, weight_decay=0.5),
        lambda: optax.lion(0.01, weight_decay=0.5),
    ),
}


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_matches_optax(name: str, mode: str) -> None:
    make_tj, make_optax = OPTIMIZERS[name]
    got = run_tracejit(make_tj(), mode)
    want = run_optax(make_optax())
    assert not np.allclose(want[0], W0, atol=1e-3)  # it trained
    assert_params_close(got, want)


def test_keras_nadam_differs_from_constant_momentum_nadam() -> None:
    """The oracles are not interchangeable: the momentum schedule matters."""
    keras = run_optax(keras_nadam(0.05))
    constant = run_optax(optax.nadam(0.05, eps=1e-7))
    assert not np.allclose(keras[0], constant[0], rtol=1e-3)


def test_adamax_epsilon_placement_is_keras() -> None:
    """With a gradient that is tiny in one coordinate, where eps sits changes the step."""
    w = tj.Variable([1.0, 1.0])
    opt = tj.optim.Adamax(0.1, eps=1e-3)
    opt.apply_gradients([(tj.constant([1.0, 1e-3]), w)])
    # Keras: lr / (1 - b1) * m / (u + eps), m = 0.1 g, u = |g|
    expected = 1.0 - 0.1 / 0.1 * (0.1 * np.array([1.0, 1e-3])) / (np.array([1.0, 1e-3]) + 1e-3)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)


def test_nadam_u_product_is_optimizer_state() -> None:
    opt = tj.optim.Nadam(0.01)
    w = tj.Variable([1.0])
    for _ in range(3):
        opt.apply_gradients([(tj.constant([0.5]), w)])
    mu = [0.9 * (1 - 0.5 * 0.96**t) for t in (1, 2, 3)]
    np.testing.assert_allclose(float(opt.u_product), np.prod(mu), rtol=1e-6)
    assert opt.u_product in opt.variables


# Gradient clipping --------------------------------------------------------------------------
CLIPS: dict[str, tuple[dict[str, float], Callable[[], Any]]] = {
    "clipnorm": ({"clipnorm": 0.05}, lambda: per_variable_clip_by_norm(0.05)),
    "global_clipnorm": ({"global_clipnorm": 0.05}, lambda: optax.clip_by_global_norm(0.05)),
    "clipvalue": ({"clipvalue": 0.02}, lambda: optax.clip(0.02)),
}
CLIPPED: dict[str, tuple[Callable[..., Any], Callable[[], Any]]] = {
    "sgd_momentum": (
        lambda **kw: tj.optim.SGD(0.1, momentum=0.9, **kw),
        lambda: optax.sgd(0.1, momentum=0.9),
    ),
    "adam_eps0": (lambda **kw: tj.optim.Adam(0.05, eps=0, **kw), lambda: optax.adam(0.05, eps=0.0)),
    "rmsprop": (
        lambda **kw: tj.optim.RMSprop(0.01, **kw),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-7),
    ),
    "nadam": (lambda **kw: tj.optim.Nadam(0.01, **kw), lambda: keras_nadam(0.01)),
}


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("opt_name", list(CLIPPED))
@pytest.mark.parametrize("clip", list(CLIPS))
def test_clipping_matches_optax(clip: str, opt_name: str, mode: str) -> None:
    options, make_clip = CLIPS[clip]
    make_tj, make_optax = CLIPPED[opt_name]
    got = run_tracejit(make_tj(**options), mode)
    want = run_optax(optax.chain(make_clip(), make_optax()))
    assert_params_close(got, want)
    unclipped = run_optax(make_optax())
    assert not np.allclose(unclipped[0], want[0], rtol=1e-3)  # the clipping did bind


def test_clipping_composes_with_weight_decay() -> None:
    """Keras' order: clip the gradients, decay the weights, then the update."""
    got = run_tracejit(tj.optim.SGD(0.1, weight_decay=0.3, global_clipnorm=0.05), "compiled")
    want = run_optax(
        optax.chain(
            optax.clip_by_global_norm(0.05), optax.sgd(0.1), decoupled_weight_decay(0.3, 0.1)
        )
    )
    assert_params_close(got, want)


def test_exclude_from_weight_decay() -> None:
    opt = tj.optim.SGD(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    kernel, bias = tj.Variable([2.0], name="kernel"), tj.Variable([2.0], name="bias")
    zero = tj.constant([0.0])
    opt.apply_gradients([(zero, kernel), (zero, bias)])
    assert float(kernel.numpy()[0]) == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)
    assert float(bias.numpy()[0]) == 2.0
    opt.exclude_from_weight_decay(var_list=[kernel], var_names=[])
    opt.apply_gradients([(zero, kernel), (zero, bias)])
    assert float(kernel.numpy()[0]) == pytest.approx(1.9)
    assert float(bias.numpy()[0]) == pytest.approx(1.9)


# Clipping functions -------------------------------------------------------------------------
@pytest.mark.parametrize("axes", [None, 0, 1, (0, 1)])
def test_clip_by_norm_matches_numpy(axes: Any) -> None:
    t = RNG.normal(size=(3, 5)).astype(np.float32)
    axis = axes if axes is None or isinstance(axes, tuple) else (axes,)
    norm = np.sqrt((t.astype(np.float64) ** 2).sum(axis=axis, keepdims=True))
    want = t * 1.5 / np.maximum(norm, 1.5)
    eager = tj.optim.clip_by_norm(tj.constant(t), 1.5, axes)
    compiled = tj.function(lambda v: tj.optim.clip_by_norm(v, 1.5, axes))(tj.constant(t))
    np.testing.assert_allclose(eager.numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(compiled.numpy(), want, rtol=1e-6)
    assert float(np.linalg.norm(tj.optim.clip_by_norm(tj.constant(t), 0.5).numpy())) <= 0.5 + 1e-6


def test_clip_by_norm_at_zero_has_a_finite_gradient() -> None:
    g = tj.grad(lambda v: tj.sum(tj.optim.clip_by_norm(v, 1.0)))(tj.zeros((3,)))
    np.testing.assert_array_equal(g.numpy(), np.ones(3, np.float32))
    want = jax.grad(lambda v: jnp.sum(v * 1.0 / jnp.maximum(jnp.linalg.norm(v), 1.0)))(
        jnp.asarray([3.0, 4.0])
    )
    got = tj.grad(lambda v: tj.sum(tj.optim.clip_by_norm(v, 1.0)))(tj.constant([3.0, 4.0]))
    np.testing.assert_allclose(got.numpy(), np.asarray(want), rtol=1e-6)


@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_clip_by_global_norm_matches_optax(mode: str) -> None:
    a = RNG.normal(size=(4, 3)).astype(np.float32)
    b = RNG.normal(size=(5,)).astype(np.float32)
    want, _ = optax.clip_by_global_norm(1.0).update((jnp.asarray(a), jnp.asarray(b)), None)

    def clip(x: Any, y: Any) -> Any:
        clipped, norm = tj.optim.clip_by_global_norm([x, None, y], 1.0)
        return clipped[0], clipped[2], norm, clipped[1] is None

    fn = tj.function(clip) if mode == "compiled" else clip
    got_a, got_b, norm, none_kept = fn(tj.constant(a), tj.constant(b))
    assert none_kept
    np.testing.assert_allclose(got_a.numpy(), np.asarray(want[0]), rtol=1e-6)
    np.testing.assert_allclose(got_b.numpy(), np.asarray(want[1]), rtol=1e-6)
    total = np.sqrt((a.astype(np.float64) ** 2).sum() + (b.astype(np.float64) ** 2).sum())
    np.testing.assert_allclose(float(norm), total, rtol=1e-6)


def test_clip_by_global_norm_within_bound_and_non_finite() -> None:
    small = [tj.constant([0.3]), tj.constant([0.4])]
    clipped, norm = tj.optim.clip_by_global_norm(small, 1.0)
    assert [float(c.numpy()[0]) for c in clipped] == pytest.approx([0.3, 0.4])
    assert float(norm) == pytest.approx(0.5)
    clipped, norm = tj.optim.clip_by_global_norm([tj.constant([np.inf, 1.0])], 1.0)
    assert np.isinf(float(norm)) and np.isnan(clipped[0].numpy()).all()


def test_clipping_function_errors() -> None:
    with pytest.raises(TypeError, match="t_list must be a list"):
        tj.optim.clip_by_global_norm(tj.constant([1.0]), 1.0)
    with pytest.raises(ValueError, match="clip_norm.*positive"):
        tj.optim.clip_by_norm(tj.constant([1.0]), -1.0)
    with pytest.raises(ValueError, match="all entries are None"):
        tj.optim.global_norm([None])
    with pytest.raises(TypeError, match="floating-point"):
        tj.optim.clip_by_norm(tj.constant([1, 2]), 1.0)
    assert tj.clip_by_norm is tj.optim.clip_by_norm
    assert tj.clip_by_global_norm is tj.optim.clip_by_global_norm


# Schedules ----------------------------------------------------------------------------------
SCHEDULES: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "exponential": (
        lambda: tj.optim.exponential_decay(0.1, 7, 0.5),
        lambda: optax.exponential_decay(0.1, 7, 0.5),
    ),
    "exponential_staircase": (
        lambda: tj.optim.exponential_decay(0.1, 7, 0.5, staircase=True),
        lambda: optax.exponential_decay(0.1, 7, 0.5, staircase=True),
    ),
    "cosine": (
        lambda: tj.optim.cosine_decay(0.1, 15, alpha=0.1),
        lambda: optax.cosine_decay_schedule(0.1, 15, alpha=0.1),
    ),
    "cosine_warmup": (
        lambda: tj.optim.cosine_decay(0.01, 12, alpha=0.1, warmup_target=0.2, warmup_steps=5),
        # optax counts the warmup in decay_steps and gives the end rate absolutely.
        lambda: optax.warmup_cosine_decay_schedule(0.01, 0.2, 5, 17, end_value=0.02),
    ),
    "piecewise": (
        lambda: tj.optim.piecewise_constant([4, 12], [0.1, 0.05, 0.01]),
        # optax switches at step >= boundary and multiplies; Keras switches at step > boundary.
        lambda: optax.piecewise_constant_schedule(0.1, {5: 0.5, 13: 0.2}),
    ),
    "polynomial": (
        lambda: tj.optim.polynomial_decay(0.1, 15, 0.01, power=2.0),
        lambda: optax.polynomial_schedule(0.1, 0.01, 2.0, 15),
    ),
    "linear_warmup_constant": (
        lambda: tj.optim.linear_warmup(6, 0.1),
        lambda: optax.linear_schedule(0.0, 0.1, 6),
    ),
    "linear_warmup_then_cosine": (
        lambda: tj.optim.linear_warmup(6, tj.optim.cosine_decay(0.1, 10), 0.01),
        lambda: optax.join_schedules(
            [optax.linear_schedule(0.01, 0.1, 6), optax.cosine_decay_schedule(0.1, 10)], [6]
        ),
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_values_match_optax(name: str) -> None:
    make_tj, make_optax = SCHEDULES[name]
    schedule, reference = make_tj(), make_optax()
    steps = np.arange(40)
    want = np.array([float(reference(s)) for s in steps])
    eager = np.array([float(schedule(int(s))) for s in steps])
    traced = tj.function(lambda s: schedule(s))
    compiled = np.array([float(traced(tj.constant(s, dtype="int32"))) for s in steps])
    assert traced.trace_count == 1
    np.testing.assert_allclose(eager, want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(compiled, want, rtol=1e-6, atol=1e-8)
    assert isinstance(schedule, tj.optim.Schedule) and name.split("_")[0] in repr(schedule).lower()


def test_polynomial_decay_cycle() -> None:
    schedule = tj.optim.polynomial_decay(0.1, 10, 0.01, power=0.5, cycle=True)
    for step in (0, 1, 5, 10, 11, 25, 30):
        decay_steps = 10 * (1 if step == 0 else math.ceil(step / 10))
        want = (0.1 - 0.01) * (1 - step / decay_steps) ** 0.5 + 0.01
        assert float(schedule(step)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_drives_training(name: str, mode: str) -> None:
    """SGD with momentum, whose velocity accumulates ``lr_t * g`` (Keras) — optax's
    scale-by-schedule followed by trace — and Adam, against optax with the same schedule."""
    make_tj, make_optax = SCHEDULES[name]
    got = run_tracejit(tj.optim.SGD(make_tj(), momentum=0.9), mode)
    want = run_optax(optax.chain(optax.scale_by_learning_rate(make_optax()), optax.trace(0.9)))
    assert_params_close(got, want)
    got = run_tracejit(tj.optim.Adam(make_tj(), eps=0), mode)
    assert_params_close(got, run_optax(optax.adam(make_optax(), eps=0.0)))


def test_compiled_schedule_reads_the_step_counter_state() -> None:
    opt = tj.optim.SGD(tj.optim.exponential_decay(0.1, 5, 0.5))
    w = tj.Variable([1.0, 2.0])

    @tj.function
    def step() -> Any:
        with tj.GradientTape() as tape:
            loss = tj.sum(w * w)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    for _ in range(6):
        step()
    ir = str(step.get_concrete_function().ir)
    assert step.trace_count == 1 and "variable optimizer/iterations" in ir
    expected = np.array([1.0, 2.0])
    for t in range(6):
        expected = expected - 0.1 * 0.5 ** (t / 5) * 2 * expected
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)


# Dtypes and errors --------------------------------------------------------------------------
LOW_PRECISION = {
    "adam": lambda: tj.optim.Adam(tj.optim.cosine_decay(0.05, 20)),
    "nadam_clipped": lambda: tj.optim.Nadam(tj.optim.cosine_decay(0.05, 20), global_clipnorm=1.0),
    "rmsprop_decayed": lambda: tj.optim.RMSprop(0.05, weight_decay=0.1),
}


def _train_low_precision(make: Callable[[], Any], dtype: str) -> np.ndarray:
    w = tj.Variable(np.array([1.0, -2.0]), dtype=dtype)
    opt = make()

    @tj.function
    def step() -> None:
        with tj.GradientTape() as tape:
            loss = tj.sum(w * w)
        opt.apply_gradients([(tape.gradient(loss, w), w)])

    for _ in range(3):
        step()
    assert str(w.dtype) == dtype  # the f32 rate and step scalars were cast, not promoted
    return w.numpy().astype(np.float32)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(LOW_PRECISION))
def test_low_precision_variables_keep_their_dtype(name: str, dtype: str) -> None:
    make = LOW_PRECISION[name]
    reference = _train_low_precision(make, "float32")
    tolerance = {"float16": 5e-3, "bfloat16": 3e-2}[dtype]
    np.testing.assert_allclose(_train_low_precision(make, dtype), reference, rtol=tolerance)


def test_option_errors() -> None:
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        tj.optim.Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="`clipnorm` must be a positive finite number"):
        tj.optim.SGD(clipnorm=0.0)
    with pytest.raises(TypeError, match="RMSprop: unknown argument.*clip_norm"):
        tj.optim.RMSprop(clip_norm=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        tj.optim.SGD(weight_decay=-0.1)
    with pytest.raises(TypeError, match="learning_rate"):
        tj.optim.Adam("0.1")
    with pytest.raises(ValueError, match="beta1"):
        tj.optim.Adamax(beta1=1.0)
    with pytest.raises(ValueError, match="rho"):
        tj.optim.Adadelta(rho=1.5)
    with pytest.raises(ValueError, match="signSGD"):
        tj.optim.Lion(beta1=0.0)
    with pytest.raises(ValueError, match="momentum_decay"):
        tj.optim.Nadam(momentum_decay=0.0)
    with pytest.raises(ValueError, match="momentum"):
        tj.optim.SGD(momentum=1.5)


def test_apply_gradients_errors() -> None:
    w = tj.Variable([1.0, 2.0], name="w")
    with pytest.raises(ValueError, match="gradient of 'w'.*shape \\[3\\]"):
        tj.optim.Adam().apply_gradients([(tj.constant([1.0, 2.0, 3.0]), w)])
    with pytest.raises(TypeError, match="floating-point variables; 'count'"):
        tj.optim.SGD().apply_gradients([(tj.constant(1), tj.Variable(1, name="count"))])
    with pytest.raises(TypeError, match="pairs"):
        tj.optim.SGD().apply_gradients([tj.constant([1.0, 2.0])])
    with pytest.raises(ValueError, match="must return a scalar"):
        tj.optim.SGD(lambda step: tj.ones((2,))).apply_gradients([(tj.constant([1.0, 1.0]), w)])


def test_schedule_errors() -> None:
    with pytest.raises(ValueError, match="one more entry than `boundaries`"):
        tj.optim.piecewise_constant([10, 20], [0.1, 0.01])
    with pytest.raises(ValueError, match="increase strictly"):
        tj.optim.piecewise_constant([20, 10], [0.1, 0.01, 0.001])
    with pytest.raises(ValueError, match="decay_steps"):
        tj.optim.exponential_decay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="decay_steps"):
        tj.optim.polynomial_decay(0.1, -3)
    with pytest.raises(ValueError, match="warmup_target"):
        tj.optim.cosine_decay(0.1, 10, warmup_steps=5)
    with pytest.raises(ValueError, match="warmup_steps"):
        tj.optim.linear_warmup(0, 0.1)
    with pytest.raises(TypeError, match="initial_learning_rate"):
        tj.optim.cosine_decay("0.1", 10)


def test_checkpoint_restores_new_optimizer_state(tmp_path: Any) -> None:
    w = tj.Variable([1.0, 2.0])
    opt = tj.optim.Nadam(0.01)
    for _ in range(2):
        opt.apply_gradients([(tj.constant([0.1, 0.2]), w)])
    path = tj.train.Checkpoint(w=w, optimizer=opt).save(str(tmp_path))
    w2, opt2 = tj.Variable([0.0, 0.0]), tj.optim.Nadam(0.01)
    status = tj.train.Checkpoint(w=w2, optimizer=opt2).restore(path)
    assert status.missing == [] and status.unused == []
    assert float(opt2.u_product) == pytest.approx(float(opt.u_product))
    np.testing.assert_array_equal(opt2.slots(w2)["v"].numpy(), opt.slots(w)["v"].numpy())


def test_number_learning_rate_is_a_variable_compiled_steps_follow() -> None:
    w = tj.Variable([1.0])
    opt = tj.optim.SGD(0.1)

    @tj.function
    def step() -> None:
        opt.apply_gradients([(tj.constant([1.0]), w)])

    step()
    opt.learning_rate = 0.5  # assigned to the rate variable: no retrace, the new rate applies
    step()
    assert float(w.numpy()[0]) == pytest.approx(1.0 - 0.1 - 0.5)
    assert step.trace_count == 1 and float(opt.learning_rate) == 0.5
    assert opt.learning_rate in opt.variables
    with pytest.raises(TypeError, match="traced this optimizer's update.*new optimizer"):
        opt.learning_rate = tj.optim.exponential_decay(0.1, 10, 0.5)
    fresh = tj.optim.SGD(0.1)
    fresh.learning_rate = tj.optim.exponential_decay(0.1, 10, 0.5)  # before any trace: fine
    assert isinstance(fresh.learning_rate, tj.optim.Schedule)
    fresh.learning_rate = 0.2
    assert float(fresh.learning_rate) == pytest.approx(0.2)


def test_checkpoint_restores_the_learning_rate(tmp_path: Any) -> None:
    opt = tj.optim.Adam(0.01)
    opt.learning_rate = 0.003
    path = tj.train.Checkpoint(optimizer=opt).save(str(tmp_path))
    fresh = tj.optim.Adam(0.01)
    tj.train.Checkpoint(optimizer=fresh).restore(path)
    assert float(fresh.learning_rate) == pytest.approx(0.003)
