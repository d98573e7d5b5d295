"""More elementwise activations: elu, selu, leaky_relu, silu (swish), hard_sigmoid,
log_sigmoid, softsign, mish.

One table, ``ACTIVATIONS``, maps each name to its jax implementation (the values, as careful as
jax.nn) and its derivative written with tracejit ops (so the backward stays short IR, not a
replay). Every entry is declared ``elementwise=True``, which is what the fusion pass reads. Other
modules (layers' activation names, dense fusion) can read the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

from tracejit.ops.elementwise import abs as absolute
from tracejit.ops.elementwise import (
    add,
    divide,
    greater,
    greater_equal,
    less,
    logical_and,
    multiply,
    square,
    subtract,
    tanh,
    where,
)
from tracejit.ops.infer import elementwise_infer
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.nn import sigmoid, softplus
from tracejit.ops.registry import OpDef, bind, defop

# jax.nn.selu's constants (Klambauer et al. 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _elu(x: Any, *, alpha: float) -> Any:
    return jax.nn.elu(x, alpha=alpha)


def _leaky_relu(x: Any, *, negative_slope: float) -> Any:
    return jax.nn.leaky_relu(x, negative_slope=negative_slope)


# Derivatives d out / d x, from (x, out, **params), in tracejit ops.
def _elu_slope(x: Any, out: Any, *, alpha: float) -> Any:
    return where(greater(x, 0), 1.0, add(out, alpha))  # alpha * exp(x) = out + alpha for x <= 0


def _selu_slope(x: Any, out: Any) -> Any:
    return where(greater(x, 0), SELU_SCALE, add(out, SELU_SCALE * SELU_ALPHA))


def _leaky_relu_slope(x: Any, out: Any, *, negative_slope: float) -> Any:
    return where(greater_equal(x, 0), 1.0, negative_slope)  # jax: x >= 0 takes the identity


def _silu_slope(x: Any, out: Any) -> Any:
    s = sigmoid(x)
    return multiply(s, add(1.0, multiply(x, subtract(1.0, s))))


def _hard_sigmoid_slope(x: Any, out: Any) -> Any:
    return where(logical_and(greater(x, -3.0), less(x, 3.0)), 1.0 / 6.0, 0.0)


def _log_sigmoid_slope(x: Any, out: Any) -> Any:
    return subtract(1.0, sigmoid(x))


def _softsign_slope(x: Any, out: Any) -> Any:
    return divide(1.0, square(add(1.0, absolute(x))))


def _mish_slope(x: Any, out: Any) -> Any:
    t = tanh(softplus(x))
    return add(t, multiply(multiply(x, subtract(1.0, square(t))), sigmoid(x)))


@dataclass(frozen=True)
class Activation:
    """An activation's implementation (jax) and derivative (tracejit ops)."""

    impl: Callable[..., Any]
    slope: Callable[..., Any]


ACTIVATIONS: dict[str, Activation] = {
    "elu": Activation(_elu, _elu_slope),
    "selu": Activation(jax.nn.selu, _selu_slope),
    "leaky_relu": Activation(_leaky_relu, _leaky_relu_slope),
    "silu": Activation(jax.nn.silu, _silu_slope),
    "hard_sigmoid": Activation(jax.nn.hard_sigmoid, _hard_sigmoid_slope),
    "log_sigmoid": Activation(jax.nn.log_sigmoid, _log_sigmoid_slope),
    "softsign": Activation(jax.nn.soft_sign, _softsign_slope),
    "mish": Activation(jax.nn.mish, _mish_slope),
}


def _vjp(slope: Callable[..., Any]) -> Callable[..., Any]:
    def vjp(ct: Any, x: Any, *, out: Any, **params: Any) -> tuple[Any]:
        if not takes_gradient(x):
            return (None,)
        return (cast_ct(multiply(ct, slope(x, out, **params)), x),)

    return vjp


OPS: dict[str, OpDef] = {
    name: defop(name, elementwise_infer(name, a.impl), a.impl, _vjp(a.slope), elementwise=True)
    for name, a in ACTIVATIONS.items()
}


def elu(x: Any, alpha: float = 1.0) -> Any:
    """Exponential linear unit: ``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    >>> import tracejit as tj
    >>> tj.nn.elu(tj.constant([-1.0, 2.0])).numpy().round(4)
    array([-0.6321,  2.    ], dtype=float32)
    """
    return bind(OPS["elu"], x, alpha=float(alpha))


def selu(x: Any) -> Any:
    """Scaled exponential linear unit, ``scale * elu(x, alpha)`` with jax's constants."""
    return bind(OPS["selu"], x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` for ``x >= 0``, else ``negative_slope * x``.

    >>> import tracejit as tj
    >>> tj.nn.leaky_relu(tj.constant([-1.0, 2.0]), 0.1).numpy()
    array([-0.1,  2. ], dtype=float32)
    """
    return bind(OPS["leaky_relu"], x, negative_slope=float(negative_slope))


def silu(x: Any) -> Any:
    """Sigmoid linear unit (swish), ``x * sigmoid(x)``."""
    return bind(OPS["silu"], x)


swish = silu


def hard_sigmoid(x: Any) -> Any:
    """Piecewise-linear sigmoid, ``relu6(x + 3) / 6`` (jax's definition)."""
    return bind(OPS["hard_sigmoid"], x)


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x))``, computed stably (``-softplus(-x)``)."""
    return bind(OPS["log_sigmoid"], x)


def softsign(x: Any) -> Any:
    """``x / (1 + |x|)``."""
    return bind(OPS["softsign"], x)


def mish(x: Any) -> Any:
    """``x * tanh(softplus(x))``.

    >>> import tracejit as tj
    >>> round(float(tj.nn.mish(tj.constant(1.0))), 4)
    0.8651
    """
    return bind(OPS["mish"], x)
