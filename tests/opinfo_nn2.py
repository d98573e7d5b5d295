"""OpInfo rows for the neural-network ops of issue 13 (tracejit/ops/activations.py...).

Value references are float64 numpy from the definitions; dtype references and differentiable
programs for the gradient checks are jax.nn's functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np

import tracejit as tj
from tracejit.ops.activations import SELU_ALPHA, SELU_SCALE

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def _x(x: Any) -> Any:
    return np.asarray(x, np.float64)


def _np_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-_x(x)))


def _np_elu(x: Any, alpha: float = 1.0) -> Any:
    x = _x(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _np_selu(x: Any) -> Any:
    return SELU_SCALE * _np_elu(x, SELU_ALPHA)


def _np_leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    x = _x(x)
    return np.where(x >= 0, x, negative_slope * x)


def _np_hard_sigmoid(x: Any) -> Any:
    return np.clip(_x(x) + 3, 0, 6) / 6


def _np_softplus(x: Any) -> Any:
    return np.logaddexp(0, _x(x))


def _samples(f32: Any, f16: Any) -> Any:
    def samples(rng: np.random.Generator) -> list[Sample]:
        return [((f32(rng, 3, 4) * 3,), {}), ((f32(rng, 5),), {}), ((f16(rng, 4),), {})]

    return samples


def _param_samples(f32: Any, name: str, value: float) -> Any:
    def samples(rng: np.random.Generator) -> list[Sample]:
        return [((f32(rng, 3, 4) * 3,), {}), ((f32(rng, 5),), {name: value})]

    return samples


def rows(OpInfo: type[OpInfo], f32: Any, f16: Any) -> list[OpInfo]:  # noqa: N803 - a class
    """The rows; ``OpInfo`` and the sample helpers come from tests/opinfo.py (no import cycle)."""
    plain = _samples(f32, f16)
    return [
        OpInfo("elu", tj.nn.elu, _param_samples(f32, "alpha", 0.5), _np_elu, jax.nn.elu, rtol=1e-5),
        OpInfo("selu", tj.nn.selu, plain, _np_selu, jax.nn.selu, rtol=1e-5),
        OpInfo(
            "leaky_relu",
            tj.nn.leaky_relu,
            _param_samples(f32, "negative_slope", 0.2),
            _np_leaky_relu,
            jax.nn.leaky_relu,
        ),
        OpInfo("silu", tj.nn.silu, plain, lambda x: _x(x) * _np_sigmoid(x), jax.nn.silu),
        OpInfo(
            "silu",
            tj.nn.swish,
            plain,
            lambda x: _x(x) * _np_sigmoid(x),
            jax.nn.silu,
            variant="swish",
        ),
        OpInfo("hard_sigmoid", tj.nn.hard_sigmoid, plain, _np_hard_sigmoid, jax.nn.hard_sigmoid),
        OpInfo(
            "log_sigmoid",
            tj.nn.log_sigmoid,
            plain,
            lambda x: -_np_softplus(-_x(x)),
            jax.nn.log_sigmoid,
            rtol=1e-5,
        ),
        OpInfo(
            "softsign",
            tj.nn.softsign,
            plain,
            lambda x: _x(x) / (1 + np.abs(_x(x))),
            jax.nn.soft_sign,
        ),
        OpInfo(
            "mish",
            tj.nn.mish,
            plain,
            lambda x: _x(x) * np.tanh(_np_softplus(x)),
            jax.nn.mish,
            rtol=1e-5,
            atol=1e-6,
        ),
    ]
