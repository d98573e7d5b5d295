"""``tj.optim.from_optax``: optax transformations as tracejit optimizers.

Oracles: tracejit's own AdamW (same algorithm; eps made negligible, since TF-style AdamW adds eps
to sqrt(v) before bias correction and optax after), and a plain optax loop in jax.
"""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj

optax = pytest.importorskip("optax")

RNG = np.random.default_rng(5)
W0 = RNG.standard_normal((4, 3)).astype(np.float32)
B0 = RNG.standard_normal((3,)).astype(np.float32)
X = RNG.standard_normal((16, 4)).astype(np.float32)
Y = RNG.standard_normal((16, 3)).astype(np.float32)


def make_step(opt, w, b, compiled):
    def step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.mean((x @ w + b - y) ** 2)
        grads = tape.gradient(loss, [w, b])
        opt.apply_gradients(zip(grads, [w, b]))
        return loss

    return tj.function(step) if compiled else step


def train(opt, steps=20, compiled=True, w0=W0, b0=B0):
    w, b = tj.Variable(w0), tj.Variable(b0)
    step = make_step(opt, w, b, compiled)
    for _ in range(steps):
        step(X, Y)
    return w, b, step


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_twenty_adamw_steps_equal_tracejits_adamw(compiled):
    native = train(tj.optim.AdamW(0.05, weight_decay=0.01, eps=1e-12), compiled=compiled)
    adapted_opt = tj.optim.from_optax(optax.adamw(0.05, eps=1e-12, weight_decay=0.01))
    adapted = train(adapted_opt, compiled=compiled)
    for ours, theirs in zip(adapted[:2], native[:2]):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert int(adapted_opt.iterations.numpy()) == 20
    assert float(np.abs(adapted[0].numpy() - W0).max()) > 0.1  # it did train


def test_the_compiled_update_is_one_jax_call_with_lifted_state():
    opt = tj.optim.from_optax(optax.adam(0.01))
    _, _, step = train(opt, steps=2)
    concrete = step.get_concrete_function(X, Y)
    calls = [str(n.params["fn"]) for n in concrete.ir.nodes if n.op.name == "jax_call"]
    assert calls == ["optax_update"]
    assert len(concrete.ir.state) == 2 + len(opt.state) + 1  # params, optax state, iterations
    assert len(step.concrete_functions()) == 1  # the state created on the first call: no retrace


def test_a_chain_matches_a_plain_optax_loop():
    import jax
    import jax.numpy as jnp

    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(0.1, momentum=0.9))
    w, b, _ = train(tj.optim.from_optax(tx), steps=5)

    params = [jnp.asarray(W0), jnp.asarray(B0)]
    state = tx.init(params)
    loss = lambda p: jnp.mean((X @ p[0] + p[1] - Y) ** 2)  # noqa: E731
    for _ in range(5):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(w.numpy(), params[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), params[1], rtol=1e-5, atol=1e-6)


def test_checkpoint_round_trip_of_the_optax_state(tmp_path):
    tx = optax.adamw(0.05, weight_decay=0.01)
    opt = tj.optim.from_optax(tx)
    w, b, step = train(opt, steps=5)
    path = tj.train.Checkpoint(w=w, b=b, optimizer=opt).save(str(tmp_path))
    assert {"optimizer/iterations", "optimizer/state/1"} <= set(
        tj.train.Checkpoint(w=w, b=b, optimizer=opt).variables()
    )
    for _ in range(5):
        step(X, Y)
    expected = [w.numpy(), b.numpy(), *[s.numpy() for s in opt.state]]

    fresh_w, fresh_b = tj.Variable(np.zeros_like(W0)), tj.Variable(np.zeros_like(B0))
    fresh = tj.optim.from_optax(tx)
    fresh.build([fresh_w, fresh_b])  # the state exists before restoring into it
    status = tj.train.Checkpoint(w=fresh_w, b=fresh_b, optimizer=fresh).restore(path)
    assert status.missing == [] and status.unused == []
    assert int(fresh.iterations.numpy()) == 5
    fresh_step = make_step(fresh, fresh_w, fresh_b, compiled=True)
    for _ in range(5):
        fresh_step(X, Y)
    got = [fresh_w.numpy(), fresh_b.numpy(), *[s.numpy() for s in fresh.state]]
    for a, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)


def test_clear_errors():
    with pytest.raises(TypeError, match="needs an optax GradientTransformation"):
        tj.optim.from_optax(tj.optim.Adam())
    opt = tj.optim.from_optax(optax.sgd(0.1))
    w, v = tj.Variable([1.0]), tj.Variable([2.0])
    opt.apply_gradients([(tj.constant([1.0]), w)])
    with pytest.raises(ValueError, match="state was built for the variables"):
        opt.apply_gradients([(tj.constant([1.0]), v)])
    with pytest.raises(ValueError, match="no gradients"):
        opt.apply_gradients([(None, w)])
