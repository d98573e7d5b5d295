"""OpInfo rows for the array API standard's elementwise math functions
(tracejit/ops/elementwise_math.py).

Values are checked against numpy (the standard's names map onto numpy's ``arc*`` spellings) and
dtypes against jax.numpy. Samples stay inside each function's domain, away from the points where
the derivative blows up, so the finite-difference gradient checks are meaningful.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

import tracejit as tj

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def _uniform(low: float, high: float) -> Any:
    def samples(rng: np.random.Generator) -> list[Sample]:
        def draw(*shape: int) -> np.ndarray:
            return rng.uniform(low, high, shape).astype(np.float32)

        return [((draw(3, 4),), {}), ((draw(2, 3, 2),), {}), ((draw(),), {})]

    return samples


def _specials(rng: np.random.Generator) -> list[Sample]:
    values = np.array([0.0, -0.0, 1.5, -2.5, np.inf, -np.inf, np.nan], np.float32)
    return [((values,), {}), ((rng.standard_normal((3, 4)).astype(np.float32),), {})]


def _numeric(rng: np.random.Generator) -> list[Sample]:
    return [
        (((rng.standard_normal((3, 4)) * 3).astype(np.float32),), {}),
        ((rng.integers(-5, 6, (5,)).astype(np.int32),), {}),
    ]


def _rows() -> list[OpInfo]:
    from opinfo import OpInfo

    def row(name: str, np_fn: Any, jnp_fn: Any, samples: Any, domain: str = "") -> OpInfo:
        return OpInfo(name, getattr(tj, name), samples, np_fn, jnp_fn, domain=domain, rtol=1e-5)

    inside = _uniform(-0.8, 0.8)
    return [
        row("tan", np.tan, jnp.tan, _uniform(-1.2, 1.2), "|x| < 1.2"),
        row("asin", np.arcsin, jnp.arcsin, inside, "|x| < 0.8"),
        row("acos", np.arccos, jnp.arccos, inside, "|x| < 0.8"),
        row("atan", np.arctan, jnp.arctan, _uniform(-3.0, 3.0)),
        row("sinh", np.sinh, jnp.sinh, _uniform(-3.0, 3.0)),
        row("cosh", np.cosh, jnp.cosh, _uniform(-3.0, 3.0)),
        row("asinh", np.arcsinh, jnp.arcsinh, _uniform(-3.0, 3.0)),
        row("acosh", np.arccosh, jnp.arccosh, _uniform(1.2, 4.0), "x > 1.2"),
        row("atanh", np.arctanh, jnp.arctanh, inside, "|x| < 0.8"),
        row("expm1", np.expm1, jnp.expm1, _uniform(-2.0, 2.0)),
        row("log2", np.log2, jnp.log2, _uniform(0.5, 4.0), "positive inputs"),
        row("log10", np.log10, jnp.log10, _uniform(0.5, 4.0), "positive inputs"),
        row("floor", np.floor, jnp.floor, _numeric),
        row("ceil", np.ceil, jnp.ceil, _numeric),
        row("trunc", np.trunc, jnp.trunc, _numeric),
        row("isnan", np.isnan, jnp.isnan, _specials),
        row("isinf", np.isinf, jnp.isinf, _specials),
        row("isfinite", np.isfinite, jnp.isfinite, _specials),
        row("signbit", np.signbit, jnp.signbit, _specials),
    ]


_cache: list[Any] = []


def __getattr__(name: str) -> Any:
    # Built lazily: the rows need opinfo.OpInfo, and opinfo imports this module.
    if name == "ARRAY_API_OPS":
        if not _cache:
            _cache.extend(_rows())
        return _cache
    raise AttributeError(name)
