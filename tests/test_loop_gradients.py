"""Gradients of loops that read one variable in two places (its value as the carry's start and
inside the body): compiled, the loop's VJP got the same tensor twice and counted its whole
gradient at each position (64 for d/dx x**4 at 2, not 32). References are jax.grad."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import tracejit as tj


def _jax_reference(n: int) -> float:
    def f(x):
        return jax.lax.fori_loop(0, n, lambda i, a: a * x, x)

    return float(jax.grad(f)(jnp.float32(2.0)))


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("start", ["variable", "value"])
def test_a_variable_in_the_carry_and_the_body_gets_its_gradient_once(n, compiled, start):
    x = tj.Variable(2.0)

    def loop():
        init = x if start == "variable" else x.value()
        body = lambda i, a: (i + 1, a * x)  # noqa: E731
        return tj.while_loop(lambda i, a: i < n, body, (0, init), maximum_iterations=5)[1]

    fn = tj.function(loop) if compiled else loop
    with tj.GradientTape() as tape:
        y = fn()
    assert float(y) == pytest.approx(2.0 ** (n + 1))
    assert float(tape.gradient(y, x)) == pytest.approx(_jax_reference(n), rel=1e-6)
