"""Neural-network activations and normalizers: relu, sigmoid, softplus, gelu, softmax,
log_softmax, logsumexp — each one op implemented by jax.nn / jax.scipy.special, so it is as
numerically careful as jax (stable softmax, no overflow in softplus or logsumexp). ``erf`` is
here because the exact gelu's gradient needs it.

Gradients reuse the primal output where that is cheaper and as accurate (sigmoid, softmax,
log_softmax, logsumexp); relu's gradient at 0 is 0, as in jax.
"""

from __future__ import annotations

import math
from typing import Any

import jax

from tracejit.errors import OpError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.elementwise import (
    add,
    exp,
    greater,
    multiply,
    square,
    subtract,
    tanh,
    where,
)
from tracejit.ops.infer import elementwise_infer, jax_dtype, normalize_axis
from tracejit.ops.jvp_rules import reduction_jvp, symmetric_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.reduction import (
    Axis,
    keep_reduced_dims,
    reduction_infer,
    reduction_params,
)
from tracejit.ops.reduction import sum as reduce_sum
from tracejit.ops.registry import OpDef, bind, defop
from tracejit.types import AVal


def _activation(name: str, impl: Any, vjp: Any) -> OpDef:
    """Declare an elementwise activation (inference derived from its own implementation)."""
    return defop(name, elementwise_infer(name, impl), impl, vjp, elementwise=True)


def _unary(rule: Any) -> Any:
    """A VJP for an elementwise op from ``rule(ct, x, out, **params) -> ct_x``."""

    def vjp(ct: Any, x: Any, *, out: Any, **params: Any) -> tuple[Any]:
        return (cast_ct(rule(ct, x, out, **params), x) if takes_gradient(x) else None,)

    return vjp


# VJP rules ---------------------------------------------------------------------------------------
_SQRT_2 = math.sqrt(2.0)
_GELU_C = math.sqrt(2.0 / math.pi)  # jax's tanh approximation: 0.5x(1 + tanh(c(x + 0.044715x^3)))


def _relu_grad(ct: Any, x: Any, out: Any) -> Any:
    return where(greater(x, 0), ct, 0.0)


def _sigmoid_grad(ct: Any, x: Any, out: Any) -> Any:
    return multiply(ct, multiply(out, subtract(1.0, out)))


def _softplus_grad(ct: Any, x: Any, out: Any) -> Any:
    return multiply(ct, sigmoid(x))


def _erf_grad(ct: Any, x: Any, out: Any) -> Any:
    return multiply(ct, multiply(2.0 / math.sqrt(math.pi), exp(multiply(square(x), -1.0))))


def _gelu_grad(ct: Any, x: Any, out: Any, *, approximate: bool) -> Any:
    if approximate:
        x2 = square(x)
        t = tanh(multiply(_GELU_C, multiply(x, add(1.0, multiply(0.044715, x2)))))
        inner = multiply(_GELU_C, add(1.0, multiply(3 * 0.044715, x2)))
        slope = multiply(
            0.5, add(add(1.0, t), multiply(x, multiply(subtract(1.0, square(t)), inner)))
        )
    else:  # d/dx x * Phi(x) = Phi(x) + x * phi(x)
        cdf = multiply(0.5, add(1.0, erf(multiply(x, 1.0 / _SQRT_2))))
        pdf = multiply(1.0 / math.sqrt(2.0 * math.pi), exp(multiply(square(x), -0.5)))
        slope = add(cdf, multiply(x, pdf))
    return multiply(ct, slope)


def _softmax_grad(ct: Any, x: Any, out: Any, *, axis: int) -> Any:
    return multiply(out, subtract(ct, reduce_sum(multiply(ct, out), axis=axis, keepdims=True)))


def _log_softmax_grad(ct: Any, x: Any, out: Any, *, axis: int) -> Any:
    return subtract(ct, multiply(exp(out), reduce_sum(ct, axis=axis, keepdims=True)))


def _logsumexp_grad(ct: Any, x: Any, out: Any, *, axes: tuple[int, ...], keepdims: bool) -> Any:
    weights = exp(subtract(x, keep_reduced_dims(out, axes, keepdims)))
    return multiply(keep_reduced_dims(ct, axes, keepdims), weights)


def _log_softmax_jvp(tangents: Any, x: Any, *, out: Any, axis: int) -> Any:
    """``t - sum(softmax(x) * t)``: the Jacobian ``I - 1 softmax^T`` is not symmetric."""
    (t,) = tangents
    if t is None:
        return None
    return subtract(t, reduce_sum(multiply(exp(out), t), axis=axis, keepdims=True))


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


RELU = _activation("relu", jax.nn.relu, _unary(_relu_grad))
SIGMOID = _activation("sigmoid", jax.nn.sigmoid, _unary(_sigmoid_grad))
SOFTPLUS = _activation("softplus", jax.nn.softplus, _unary(_softplus_grad))
GELU = _activation("gelu", _gelu, _unary(_gelu_grad))
ERF = _activation("erf", jax.lax.erf, _unary(_erf_grad))
SOFTMAX = defop(
    "softmax",
    _normalizer_infer("softmax", _softmax),
    _softmax,
    _unary(_softmax_grad),
    jvp=symmetric_jvp(_unary(_softmax_grad)),
)
LOG_SOFTMAX = defop(
    "log_softmax",
    _normalizer_infer("log_softmax", _log_softmax),
    _log_softmax,
    _unary(_log_softmax_grad),
    jvp=_log_softmax_jvp,
)
LOGSUMEXP = defop(
    "logsumexp",
    reduction_infer("logsumexp", _logsumexp),
    _logsumexp,
    _unary(_logsumexp_grad),
    jvp=reduction_jvp(_unary(_logsumexp_grad)),
)


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


def erf(x: Any) -> Any:
    """The error function ``2/sqrt(pi) * integral of exp(-t**2) from 0 to x``, elementwise.

    >>> import tracejit as tj
    >>> from tracejit.ops.nn import erf
    >>> round(float(erf(tj.constant(1.0))), 4)
    0.8427
    """
    return bind(ERF, x)


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
