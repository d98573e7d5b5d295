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


def _pairs(low: float, high: float, away_from_zero: bool = False) -> Any:
    """Two same-or-broadcast-shaped float32 operands; ``away_from_zero`` keeps every value at
    least 0.5 from 0 (where atan2, hypot, copysign and remainder have kinks)."""

    def samples(rng: np.random.Generator) -> list[Sample]:
        def draw(*shape: int) -> np.ndarray:
            x = rng.uniform(low, high, shape)
            if away_from_zero:
                x = np.where(np.abs(x) < 0.5, np.sign(x + 1e-9) * 0.5 + x, x)
            return x.astype(np.float32)

        return [((draw(3, 4), draw(3, 4)), {}), ((draw(2, 3), draw(3)), {}), ((draw(), draw(4)), {})]

    return samples


def _bools(rng: np.random.Generator) -> list[Sample]:
    return [((rng.random((3, 4)) < 0.5, rng.random((3, 4)) < 0.5), {}),
            ((rng.random((4,)) < 0.5, np.array(True)), {})]  # fmt: skip


def _away_from_zero(rng: np.random.Generator) -> list[Sample]:
    x = rng.uniform(0.5, 3.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    return [((x.astype(np.float32),), {})]


def _halves(rng: np.random.Generator) -> list[Sample]:
    return [((np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.2, -3.7], np.float32),), {}),
            ((rng.standard_normal((3, 4)).astype(np.float32) * 4,), {})]  # fmt: skip


def _complex_or_real(rng: np.random.Generator) -> list[Sample]:
    real = rng.standard_normal((3, 4)).astype(np.float32)
    z = (rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))).astype(np.complex64)
    return [((real,), {}), ((z,), {})]


def _linspace_call(start: float, stop: float, num: int, **kwargs: Any) -> Any:
    return tj.linspace(start, stop, num, **kwargs)


def _linspace_samples(rng: np.random.Generator) -> list[Sample]:
    return [((0.0, 1.0, 5), {}), ((-2.0, 3.0, 7), {"endpoint": False}), ((1, 4, 4), {}),
            ((0.0, 1.0, 0), {})]  # fmt: skip


def _np_linspace(start: float, stop: float, num: int, **kwargs: Any) -> Any:
    return np.linspace(start, stop, num, dtype=np.float32, **kwargs)


def _jnp_linspace(start: float, stop: float, num: int, **kwargs: Any) -> Any:
    return jnp.linspace(start, stop, num, dtype=jnp.float32, **kwargs)


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
        row("atan2", np.arctan2, jnp.arctan2, _pairs(-3.0, 3.0, away_from_zero=True)),
        row("hypot", np.hypot, jnp.hypot, _pairs(-3.0, 3.0, away_from_zero=True)),
        row("logaddexp", np.logaddexp, jnp.logaddexp, _pairs(-5.0, 5.0)),
        row("copysign", np.copysign, jnp.copysign, _pairs(-3.0, 3.0, away_from_zero=True)),
        row("nextafter", np.nextafter, jnp.nextafter, _pairs(-3.0, 3.0)),
        row("logical_xor", np.logical_xor, jnp.logical_xor, _bools),
        row("reciprocal", np.reciprocal, jnp.reciprocal, _away_from_zero, "|x| > 0.5"),
        row("positive", np.positive, jnp.positive, _numeric),
        row("round", np.round, jnp.round, _halves),
        row("conj", np.conj, jnp.conj, _complex_or_real),
        row("real", np.real, jnp.real, _complex_or_real),
        row("imag", np.imag, jnp.imag, _complex_or_real),
        OpInfo("power", tj.pow, _pairs(0.5, 2.0), np.power, jnp.power, variant="pow alias",
               domain="positive bases"),  # fmt: skip
        OpInfo("mod", tj.remainder, _pairs(-3.0, 3.0, away_from_zero=True), np.remainder,
               jnp.remainder, variant="remainder alias", domain="|divisor| > 0.5"),  # fmt: skip
        OpInfo("linspace", _linspace_call, _linspace_samples, _np_linspace, _jnp_linspace),
    ]


_cache: list[Any] = []


def __getattr__(name: str) -> Any:
    # Built lazily: the rows need opinfo.OpInfo, and opinfo imports this module.
    if name == "ARRAY_API_OPS":
        if not _cache:
            _cache.extend(_rows())
        return _cache
    raise AttributeError(name)
