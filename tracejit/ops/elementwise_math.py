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
    _ew,
    _unary,
    add,
    divide,
    exp,
    multiply,
    negative,
    sqrt,
    square,
    subtract,
)
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
