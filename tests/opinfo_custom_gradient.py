"""OpInfo row for the ``custom_gradient`` op: TF's example, ``log1pexp`` with a gradient written
from the forward value ``e = exp(x)`` (a residual), which is its true derivative, so the float64
finite differences hold too. The jax reference is the same rule as a ``jax.custom_vjp``. (That
the custom rule wins where it differs from the body's derivative: tests/test_custom_gradient.py.)

Rows are built on first access (module ``__getattr__``), so this module and ``opinfo`` can
import each other in either order.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import tracejit as tj


@tj.custom_gradient
def log1pexp(x: Any) -> Any:
    e = tj.exp(x)
    return tj.log(1.0 + e), lambda dy: dy * (1.0 - 1.0 / (1.0 + e))


@jax.custom_vjp
def log1pexp_ref(x: Any) -> Any:
    return jnp.log(1.0 + jnp.exp(x))


def _fwd(x: Any) -> Any:
    e = jnp.exp(x)
    return jnp.log(1.0 + e), e


log1pexp_ref.defvjp(_fwd, lambda e, dy: (dy * (1.0 - 1.0 / (1.0 + e)),))


def _samples(rng: np.random.Generator) -> list[Any]:
    return [
        ((rng.standard_normal((3, 4)).astype(np.float32),), {}),
        ((rng.standard_normal(5).astype(np.float32) * 3,), {}),
    ]


def __getattr__(name: str) -> Any:
    if name != "CUSTOM_GRADIENT_OPS":
        raise AttributeError(name)
    from opinfo import OpInfo

    return [
        OpInfo(
            "custom_gradient",
            log1pexp,
            _samples,
            lambda x: np.log1p(np.exp(np.asarray(x, np.float64))),
            jax_ref=log1pexp_ref,
            grad_ref=log1pexp_ref,
        )
    ]
