"""Neural-network activations and normalizers: relu, sigmoid, softplus, gelu, softmax,
log_softmax, logsumexp — each one op implemented by jax.nn / jax.scipy.special, so it is as
numerically careful as jax (stable softmax, no overflow in softplus or logsumexp).
"""

from __future__ import annotations

from typing import Any

import jax

from tracejit.errors import OpError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.infer import elementwise_infer, jax_dtype, normalize_axis
from tracejit.ops.reduction import Axis, reduction_infer, reduction_params
from tracejit.ops.registry import OpDef, bind, defop
from tracejit.types import AVal


def _activation(name: str, impl: Any) -> OpDef:
    """Declare an elementwise activation (inference derived from its own implementation)."""
    return defop(name, elementwise_infer(name, impl), impl, elementwise=True)


def _gelu(x: Any, *, approximate: bool) -> Any:
    return jax.nn.gelu(x, approximate=approximate)


def _softmax(x: Any, *, axis: int) -> Any:
    return jax.nn.softmax(x, axis=axis)


def _log_softmax(x: Any, *, axis: int) -> Any:
    return jax.nn.log_softmax(x, axis=axis)


def _normalizer_infer(name: str, impl: Any) -> Any:
    """Inference for softmax-like ops: same shape, dtype from jax, a valid axis."""

    def infer(x: AVal, *, axis: int) -> AVal:
        if x.ndim == 0 or normalize_axis(name, axis, x.ndim) != axis:
            raise OpError(name, f"needs a non-negative axis of an input of rank >= 1, got {axis}")
        dtype, weak = jax_dtype(name, impl, [x], {"axis": axis})
        return AVal(x.shape, dtype, weak)

    return infer


def _logsumexp(x: Any, *, axes: tuple[int, ...], keepdims: bool) -> Any:
    return jax.scipy.special.logsumexp(x, axis=axes, keepdims=keepdims)


RELU = _activation("relu", jax.nn.relu)
SIGMOID = _activation("sigmoid", jax.nn.sigmoid)
SOFTPLUS = _activation("softplus", jax.nn.softplus)
GELU = _activation("gelu", _gelu)
SOFTMAX = defop("softmax", _normalizer_infer("softmax", _softmax), _softmax)
LOG_SOFTMAX = defop("log_softmax", _normalizer_infer("log_softmax", _log_softmax), _log_softmax)
LOGSUMEXP = defop("logsumexp", reduction_infer("logsumexp", _logsumexp), _logsumexp)


def relu(x: Any) -> Any:
    """Rectified linear unit, ``max(x, 0)`` elementwise.

    >>> import tracejit as tj
    >>> tj.nn.relu(tj.constant([-1.0, 2.0])).numpy()
    array([0., 2.], dtype=float32)
    """
    return bind(RELU, x)


def sigmoid(x: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-x))`` elementwise."""
    return bind(SIGMOID, x)


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` elementwise, without overflow for large ``x``."""
    return bind(SOFTPLUS, x)


def gelu(x: Any, approximate: bool = True) -> Any:
    """Gaussian error linear unit; ``approximate`` uses the tanh formula, otherwise erf."""
    return bind(GELU, x, approximate=bool(approximate))


@locates_errors
def softmax(x: Any, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably.

    >>> import tracejit as tj
    >>> tj.nn.softmax(tj.constant([0.0, 0.0])).numpy()
    array([0.5, 0.5], dtype=float32)
    """
    return bind(SOFTMAX, x, axis=normalize_axis("softmax", axis, arg_aval("softmax", x).ndim))


@locates_errors
def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - logsumexp(x)`` along ``axis``, computed stably."""
    axis = normalize_axis("log_softmax", axis, arg_aval("log_softmax", x).ndim)
    return bind(LOG_SOFTMAX, x, axis=axis)


@locates_errors
def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x)))`` over ``axis`` (an int, a tuple, or None for all axes), stably.

    >>> import tracejit as tj
    >>> round(float(tj.nn.logsumexp(tj.constant([0.0, 0.0]))), 4)
    0.6931
    """
    return bind(LOGSUMEXP, x, **reduction_params("logsumexp", x, axis, keepdims))
