"""Array API elementwise math functions (2024.12 main namespace) beyond the core set, and the
standard's constants.

Each function is one registry entry declared like the core elementwise ops (inference derived
from the jax implementation, so dtypes promote as jax.numpy does), with a VJP written with
tracejit ops, or ``differentiable=False`` for predicates and piecewise-constant functions
(whose gradient is zero almost everywhere; the standard has no opinion, jax gives zeros).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from tracejit.ops.elementwise import (
    MOD,
    POWER,
    _ew,
    _unary,
    _unb,
    add,
    cast,
    divide,
    exp,
    multiply,
    negative,
    sign,
    sqrt,
    square,
    subtract,
)
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.registry import bind

# The standard's constants (plain Python floats, as numpy and jax.numpy give them).
e = math.e
inf = math.inf
nan = math.nan
pi = math.pi
newaxis = None

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)

TAN = _ew("tan", jnp.tan, _unary(lambda ct, x, out: multiply(ct, add(1.0, square(out)))))
ASIN = _ew(
    "asin", jnp.arcsin, _unary(lambda ct, x, out: divide(ct, sqrt(subtract(1.0, square(x)))))
)
ACOS = _ew(
    "acos",
    jnp.arccos,
    _unary(lambda ct, x, out: negative(divide(ct, sqrt(subtract(1.0, square(x)))))),
)
ATAN = _ew("atan", jnp.arctan, _unary(lambda ct, x, out: divide(ct, add(1.0, square(x)))))
SINH = _ew("sinh", jnp.sinh, _unary(lambda ct, x, out: multiply(ct, cosh(x))))
COSH = _ew("cosh", jnp.cosh, _unary(lambda ct, x, out: multiply(ct, sinh(x))))
ASINH = _ew("asinh", jnp.arcsinh, _unary(lambda ct, x, out: divide(ct, sqrt(add(square(x), 1.0)))))
ACOSH = _ew(
    "acosh", jnp.arccosh, _unary(lambda ct, x, out: divide(ct, sqrt(subtract(square(x), 1.0))))
)
ATANH = _ew("atanh", jnp.arctanh, _unary(lambda ct, x, out: divide(ct, subtract(1.0, square(x)))))
EXPM1 = _ew("expm1", jnp.expm1, _unary(lambda ct, x, out: multiply(ct, exp(x))))
LOG2 = _ew("log2", jnp.log2, _unary(lambda ct, x, out: divide(ct, multiply(x, _LN2))))
LOG10 = _ew("log10", jnp.log10, _unary(lambda ct, x, out: divide(ct, multiply(x, _LN10))))
# Piecewise constant: zero gradient almost everywhere, so no VJP is declared.
FLOOR = _ew("floor", jnp.floor, differentiable=False)
CEIL = _ew("ceil", jnp.ceil, differentiable=False)
TRUNC = _ew("trunc", jnp.trunc, differentiable=False)
ISNAN = _ew("isnan", jnp.isnan, differentiable=False)
ISINF = _ew("isinf", jnp.isinf, differentiable=False)
ISFINITE = _ew("isfinite", jnp.isfinite, differentiable=False)
SIGNBIT = _ew("signbit", jnp.signbit, differentiable=False)


def tan(x: Any) -> Any:
    """Elementwise tangent."""
    return bind(TAN, x)


def asin(x: Any) -> Any:
    """Elementwise inverse sine (numpy's ``arcsin``)."""
    return bind(ASIN, x)


def acos(x: Any) -> Any:
    """Elementwise inverse cosine (numpy's ``arccos``)."""
    return bind(ACOS, x)


def atan(x: Any) -> Any:
    """Elementwise inverse tangent (numpy's ``arctan``)."""
    return bind(ATAN, x)


def sinh(x: Any) -> Any:
    """Elementwise hyperbolic sine."""
    return bind(SINH, x)


def cosh(x: Any) -> Any:
    """Elementwise hyperbolic cosine."""
    return bind(COSH, x)


def asinh(x: Any) -> Any:
    """Elementwise inverse hyperbolic sine."""
    return bind(ASINH, x)


def acosh(x: Any) -> Any:
    """Elementwise inverse hyperbolic cosine (defined for ``x >= 1``)."""
    return bind(ACOSH, x)


def atanh(x: Any) -> Any:
    """Elementwise inverse hyperbolic tangent (defined for ``|x| < 1``)."""
    return bind(ATANH, x)


def expm1(x: Any) -> Any:
    """Elementwise ``exp(x) - 1``, accurate for small ``x``."""
    return bind(EXPM1, x)


def log2(x: Any) -> Any:
    """Elementwise base-2 logarithm."""
    return bind(LOG2, x)


def log10(x: Any) -> Any:
    """Elementwise base-10 logarithm."""
    return bind(LOG10, x)


def floor(x: Any) -> Any:
    """Elementwise floor (integers pass through unchanged, as the standard says)."""
    return bind(FLOOR, x)


def ceil(x: Any) -> Any:
    """Elementwise ceiling."""
    return bind(CEIL, x)


def trunc(x: Any) -> Any:
    """Elementwise rounding toward zero."""
    return bind(TRUNC, x)


def isnan(x: Any) -> Any:
    """Elementwise test for NaN (a bool tensor)."""
    return bind(ISNAN, x)


def isinf(x: Any) -> Any:
    """Elementwise test for positive or negative infinity (a bool tensor)."""
    return bind(ISINF, x)


def isfinite(x: Any) -> Any:
    """Elementwise test for a finite value (a bool tensor)."""
    return bind(ISFINITE, x)


def signbit(x: Any) -> Any:
    """Elementwise test of the sign bit (True for negative values and ``-0.0``)."""
    return bind(SIGNBIT, x)


# Binary functions, and the complex-number accessors ------------------------------------------
def _atan2_vjp(ct: Any, y: Any, x: Any, *, out: Any) -> tuple[Any, ...]:
    scale = divide(ct, add(square(x), square(y)))
    return _unb(multiply(scale, x), y), _unb(negative(multiply(scale, y)), x)


def _hypot_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    scale = divide(ct, out)
    return _unb(multiply(scale, x), x), _unb(multiply(scale, y), y)


def _logaddexp_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return (
        _unb(multiply(ct, exp(subtract(x, out))), x),
        _unb(multiply(ct, exp(subtract(y, out))), y),
    )


def _copysign_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    # |x| carrying y's sign: d/dx = sign(x) * (+1 or -1 by y's sign bit); nothing flows to y.
    return _unb(multiply(ct, multiply(sign(x), copysign(1.0, y))), x), None


def _real_vjp(ct: Any, x: Any, *, out: Any) -> tuple[Any]:
    return (cast(ct, x.dtype),)  # a complex input gets the cotangent as its real part


def _imag_vjp(ct: Any, x: Any, *, out: Any) -> tuple[Any]:
    if not jnp.issubdtype(x.dtype, jnp.complexfloating):
        return (multiply(ct, 0.0),)  # imag of a real number is 0 whatever it is
    return (multiply(cast(ct, x.dtype), -1j),)  # jax's convention for complex cotangents


ATAN2 = _ew("atan2", jnp.arctan2, _atan2_vjp)
HYPOT = _ew("hypot", jnp.hypot, _hypot_vjp, commutative=True)
LOGADDEXP = _ew("logaddexp", jnp.logaddexp, _logaddexp_vjp, commutative=True)
COPYSIGN = _ew("copysign", jnp.copysign, _copysign_vjp)
NEXTAFTER = _ew("nextafter", jnp.nextafter, differentiable=False)
LOGICAL_XOR = _ew("logical_xor", jnp.logical_xor, differentiable=False, commutative=True)
RECIPROCAL = _ew(
    "reciprocal", jnp.reciprocal, _unary(lambda ct, x, out: negative(multiply(ct, square(out))))
)
POSITIVE = _ew("positive", jnp.positive, _unary(lambda ct, x, out: ct))
ROUND = _ew("round", jnp.round, differentiable=False)  # half to even, as the standard says
# conj, real and imag are linear over the reals but not holomorphic, so their JVP is the op on
# the tangent (the elementwise "VJP of the tangent" shortcut would conjugate it wrongly).
CONJ = _ew("conj", jnp.conj, _unary(lambda ct, x, out: conj(ct)), jvp=linear_jvp("conj"))
REAL = _ew("real", jnp.real, _real_vjp, jvp=linear_jvp("real"))
IMAG = _ew("imag", jnp.imag, _imag_vjp, jvp=linear_jvp("imag"))


def atan2(x1: Any, x2: Any) -> Any:
    """Elementwise angle of the point ``(x2, x1)`` (numpy's ``arctan2``), in ``[-pi, pi]``."""
    return bind(ATAN2, x1, x2)


def hypot(x1: Any, x2: Any) -> Any:
    """Elementwise ``sqrt(x1**2 + x2**2)``, without overflow for large inputs."""
    return bind(HYPOT, x1, x2)


def logaddexp(x1: Any, x2: Any) -> Any:
    """Elementwise ``log(exp(x1) + exp(x2))``, computed stably."""
    return bind(LOGADDEXP, x1, x2)


def copysign(x1: Any, x2: Any) -> Any:
    """Elementwise ``|x1|`` with the sign of ``x2`` (its sign bit: ``-0.0`` counts as negative)."""
    return bind(COPYSIGN, x1, x2)


def nextafter(x1: Any, x2: Any) -> Any:
    """Elementwise next representable value after ``x1`` in the direction of ``x2``."""
    return bind(NEXTAFTER, x1, x2)


def logical_xor(x1: Any, x2: Any) -> Any:
    """Elementwise exclusive or of the truth values (a bool tensor)."""
    return bind(LOGICAL_XOR, x1, x2)


def reciprocal(x: Any) -> Any:
    """Elementwise ``1 / x``."""
    return bind(RECIPROCAL, x)


def positive(x: Any) -> Any:
    """Elementwise ``+x`` (the same values)."""
    return bind(POSITIVE, x)


def round(x: Any) -> Any:  # noqa: A001 - the standard's name
    """Elementwise rounding to the nearest integer value, halves to even (``round(2.5) == 2``)."""
    return bind(ROUND, x)


def conj(x: Any) -> Any:
    """Elementwise complex conjugate (real numbers are unchanged)."""
    return bind(CONJ, x)


def real(x: Any) -> Any:
    """Elementwise real part (a float tensor: complex64 gives float32)."""
    return bind(REAL, x)


def imag(x: Any) -> Any:
    """Elementwise imaginary part (a float tensor: complex64 gives float32)."""
    return bind(IMAG, x)


def pow(x1: Any, x2: Any) -> Any:  # noqa: A001 - the standard's name
    """Elementwise ``x1 ** x2``: the standard's name for ``tj.power`` (the same op)."""
    return bind(POWER, x1, x2)


def remainder(x1: Any, x2: Any) -> Any:
    """Elementwise remainder with the sign of the divisor: the standard's name for ``tj.mod``
    (the same op)."""
    return bind(MOD, x1, x2)
