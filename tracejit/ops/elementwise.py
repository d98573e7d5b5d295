"""Elementwise ops: arithmetic, math functions, comparisons, logic, casts.

Shapes broadcast as in numpy (with unknown dims); dtypes promote exactly as jax.numpy does,
because inference asks jax for the dtype of the op's own implementation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tracejit.ops.infer import elementwise_infer
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal, float32, requested_dtype


def _ew(name: str, impl: Any, vjp: Any = None, **flags: Any):  # noqa: ANN202 - an OpDef
    """Declare an elementwise op (inference derived from its own implementation)."""
    return defop(name, elementwise_infer(name, impl), impl, vjp, elementwise=True, **flags)


# VJP rules: ``vjp(ct, *primals, out, **params)`` -> one cotangent (or None) per primal, written
# with tracejit ops so they run eagerly and become IR when traced. Broadcast inputs get their
# cotangent summed back to their own shape by ``unbroadcast``.
def _unb(ct: Any, x: Any) -> Any:
    from tracejit.autodiff.rules import unbroadcast

    return unbroadcast(ct, x)


def _add_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return _unb(ct, x), _unb(ct, y)


def _subtract_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return _unb(ct, x), _unb(negative(ct), y)


def _multiply_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return _unb(multiply(ct, y), x), _unb(multiply(ct, x), y)


def _divide_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return _unb(divide(ct, y), x), _unb(negative(multiply(ct, divide(out, y))), y)


def _mod_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return _unb(ct, x), _unb(negative(multiply(ct, floor_divide(x, y))), y)


def _power_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    dx = multiply(ct, multiply(y, power(x, subtract(y, 1))))
    # d/dy x**y = x**y * log(x); taken as 0 where x == 0, as jax does.
    dy = multiply(ct, where(equal(x, 0), 0.0, multiply(out, log(where(equal(x, 0), 1.0, x)))))
    return _unb(dx, x), _unb(dy, y)


def _select_share(ct: Any, x: Any, y: Any, x_wins: Any) -> tuple[Any, ...]:
    """maximum/minimum: the winner takes the cotangent; ties split it in half, as in jax."""
    share = add(where(x_wins, 1.0, 0.0), where(equal(x, y), 0.5, 0.0))
    return _unb(multiply(ct, share), x), _unb(multiply(ct, subtract(1.0, share)), y)


def _maximum_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return _select_share(ct, x, y, greater(x, y))


def _minimum_vjp(ct: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return _select_share(ct, x, y, less(x, y))


def _clip_vjp(ct: Any, x: Any, lo: Any, hi: Any, *, out: Any) -> tuple[Any, ...]:
    # clip(x, lo, hi) = minimum(maximum(x, lo), hi): chain the two rules.
    raised = maximum(x, lo)
    d_raised, d_hi = _minimum_vjp(ct, raised, hi, out=out)
    d_x, d_lo = _maximum_vjp(d_raised, x, lo, out=raised)
    return d_x, d_lo, d_hi


def _where_vjp(ct: Any, c: Any, x: Any, y: Any, *, out: Any) -> tuple[Any, ...]:
    return None, _unb(where(c, ct, 0.0), x), _unb(where(c, 0.0, ct), y)


# JVP rules (forward mode, see tracejit.ops.jvp_rules): ``jvp(tangents, *primals, out)`` -> the
# result's tangent (None where zero); the caller broadcasts it to the result's shape. The other
# elementwise ops derive theirs from the VJP above (a diagonal Jacobian is its own transpose).
def _sum_of(*terms: Any) -> Any:
    from tracejit.ops.jvp_rules import add_tangents

    return add_tangents(terms)


def _add_jvp(tangents: Any, x: Any, y: Any, *, out: Any) -> Any:
    return _sum_of(*tangents)


def _subtract_jvp(tangents: Any, x: Any, y: Any, *, out: Any) -> Any:
    tx, ty = tangents
    return _sum_of(tx, None if ty is None else negative(ty))


def _multiply_jvp(tangents: Any, x: Any, y: Any, *, out: Any) -> Any:
    tx, ty = tangents
    return _sum_of(None if tx is None else multiply(tx, y), None if ty is None else multiply(x, ty))


def _divide_jvp(tangents: Any, x: Any, y: Any, *, out: Any) -> Any:
    tx, ty = tangents
    return _sum_of(
        None if tx is None else divide(tx, y),
        None if ty is None else negative(multiply(ty, divide(out, y))),
    )


def _power_jvp(tangents: Any, x: Any, y: Any, *, out: Any) -> Any:
    tx, ty = tangents
    dx = None if tx is None else multiply(tx, multiply(y, power(x, subtract(y, 1))))
    dy = None  # as the VJP: d/dy x**y = x**y * log(x), taken as 0 where x == 0
    if ty is not None:
        dy = multiply(ty, where(equal(x, 0), 0.0, multiply(out, log(where(equal(x, 0), 1.0, x)))))
    return _sum_of(dx, dy)


def _where_jvp(tangents: Any, c: Any, x: Any, y: Any, *, out: Any) -> Any:
    _, tx, ty = tangents
    if tx is None and ty is None:
        return None
    return where(c, 0.0 if tx is None else tx, 0.0 if ty is None else ty)


def _unary(rule: Any) -> Any:
    """A VJP for a unary op from ``rule(ct, x, out) -> ct_x``."""

    def vjp(ct: Any, x: Any, *, out: Any) -> tuple[Any]:
        return (_unb(rule(ct, x, out), x),)

    return vjp


def _cast_vjp(ct: Any, x: Any, *, out: Any, dtype: Any) -> tuple[Any]:
    if not jnp.issubdtype(dtype, jnp.inexact):
        return (None,)  # through an integer or bool result no gradient flows
    return (_unb(ct, x),)


def _rsqrt(x: Any) -> Any:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(float32)
    return jax.lax.rsqrt(x)


def _cast(x: Any, *, dtype: Any) -> Any:
    return jnp.asarray(x).astype(dtype)


def _infer_cast(x: AVal, *, dtype: Any) -> AVal:
    return AVal(x.shape, dtype, False)


# Binary arithmetic.
ADD = _ew("add", jnp.add, _add_vjp, jvp=_add_jvp, commutative=True)
SUBTRACT = _ew("subtract", jnp.subtract, _subtract_vjp, jvp=_subtract_jvp)
MULTIPLY = _ew("multiply", jnp.multiply, _multiply_vjp, jvp=_multiply_jvp, commutative=True)
DIVIDE = _ew("divide", jnp.true_divide, _divide_vjp, jvp=_divide_jvp)
FLOOR_DIVIDE = _ew("floor_divide", jnp.floor_divide, differentiable=False)
MOD = _ew("mod", jnp.mod, _mod_vjp)
POWER = _ew("power", jnp.power, _power_vjp, jvp=_power_jvp)
MAXIMUM = _ew("maximum", jnp.maximum, _maximum_vjp, commutative=True)
MINIMUM = _ew("minimum", jnp.minimum, _minimum_vjp, commutative=True)
# Unary math.
NEGATIVE = _ew("negative", jnp.negative, _unary(lambda ct, x, out: negative(ct)))
EXP = _ew("exp", jnp.exp, _unary(lambda ct, x, out: multiply(ct, out)))
LOG = _ew("log", jnp.log, _unary(lambda ct, x, out: divide(ct, x)))
LOG1P = _ew("log1p", jnp.log1p, _unary(lambda ct, x, out: divide(ct, add(x, 1.0))))
SQRT = _ew("sqrt", jnp.sqrt, _unary(lambda ct, x, out: divide(ct, multiply(out, 2.0))))
RSQRT = _ew(
    "rsqrt", _rsqrt, _unary(lambda ct, x, out: multiply(ct, multiply(-0.5, divide(out, x))))
)
SQUARE = _ew("square", jnp.square, _unary(lambda ct, x, out: multiply(ct, multiply(x, 2.0))))
def _abs_ct(ct: Any, x: Any, out: Any) -> Any:
    direction = sign(x)
    if direction.dtype.kind == "c":  # |z|'s cotangent is ct * conj(z) / |z| (jax's convention)
        from tracejit.ops.elementwise_math import conj

        direction = conj(direction)
    return multiply(ct, direction)


ABS = _ew("abs", jnp.abs, _unary(_abs_ct))
SIGN = _ew("sign", jnp.sign, differentiable=False)
TANH = _ew("tanh", jnp.tanh, _unary(lambda ct, x, out: multiply(ct, subtract(1.0, square(out)))))
SIN = _ew("sin", jnp.sin, _unary(lambda ct, x, out: multiply(ct, cos(x))))
COS = _ew("cos", jnp.cos, _unary(lambda ct, x, out: negative(multiply(ct, sin(x)))))
# Selection.
CLIP = _ew("clip", jnp.clip, _clip_vjp)
WHERE = _ew("where", jnp.where, _where_vjp, jvp=_where_jvp)
# Comparisons and logic: no gradient flows through them.
EQUAL = _ew("equal", jnp.equal, commutative=True, differentiable=False)
NOT_EQUAL = _ew("not_equal", jnp.not_equal, commutative=True, differentiable=False)
LESS = _ew("less", jnp.less, differentiable=False)
LESS_EQUAL = _ew("less_equal", jnp.less_equal, differentiable=False)
GREATER = _ew("greater", jnp.greater, differentiable=False)
GREATER_EQUAL = _ew("greater_equal", jnp.greater_equal, differentiable=False)
LOGICAL_AND = _ew("logical_and", jnp.logical_and, commutative=True, differentiable=False)
LOGICAL_OR = _ew("logical_or", jnp.logical_or, commutative=True, differentiable=False)
LOGICAL_NOT = _ew("logical_not", jnp.logical_not, differentiable=False)
# Cast.
CAST = defop("cast", _infer_cast, _cast, _cast_vjp, elementwise=True)
# Identity that blocks gradients.
STOP_GRADIENT = _ew("stop_gradient", jax.lax.stop_gradient, differentiable=False)


def add(x: Any, y: Any) -> Any:
    """Elementwise ``x + y`` with broadcasting.

    >>> import tracejit as tj
    >>> tj.add(tj.constant([1.0, 2.0]), 1.0).numpy()
    array([2., 3.], dtype=float32)
    """
    return bind(ADD, x, y)


def subtract(x: Any, y: Any) -> Any:
    """Elementwise ``x - y``."""
    return bind(SUBTRACT, x, y)


def multiply(x: Any, y: Any) -> Any:
    """Elementwise ``x * y``."""
    return bind(MULTIPLY, x, y)


def divide(x: Any, y: Any) -> Any:
    """Elementwise true division ``x / y`` (integers give floats, as in jax.numpy)."""
    return bind(DIVIDE, x, y)


def floor_divide(x: Any, y: Any) -> Any:
    """Elementwise ``x // y``."""
    return bind(FLOOR_DIVIDE, x, y)


def mod(x: Any, y: Any) -> Any:
    """Elementwise ``x % y`` (sign of the divisor, as in numpy)."""
    return bind(MOD, x, y)


def power(x: Any, y: Any) -> Any:
    """Elementwise ``x ** y``."""
    return bind(POWER, x, y)


def maximum(x: Any, y: Any) -> Any:
    """Elementwise maximum."""
    return bind(MAXIMUM, x, y)


def minimum(x: Any, y: Any) -> Any:
    """Elementwise minimum."""
    return bind(MINIMUM, x, y)


def negative(x: Any) -> Any:
    """Elementwise ``-x``."""
    return bind(NEGATIVE, x)


def exp(x: Any) -> Any:
    """Elementwise ``e ** x``."""
    return bind(EXP, x)


def log(x: Any) -> Any:
    """Elementwise natural logarithm."""
    return bind(LOG, x)


def log1p(x: Any) -> Any:
    """Elementwise ``log(1 + x)``, accurate for small ``x``."""
    return bind(LOG1P, x)


def sqrt(x: Any) -> Any:
    """Elementwise square root."""
    return bind(SQRT, x)


def rsqrt(x: Any) -> Any:
    """Elementwise ``1 / sqrt(x)``."""
    return bind(RSQRT, x)


def square(x: Any) -> Any:
    """Elementwise ``x * x``."""
    return bind(SQUARE, x)


def abs(x: Any) -> Any:  # noqa: A001 - numpy's name
    """Elementwise absolute value."""
    return bind(ABS, x)


def sign(x: Any) -> Any:
    """Elementwise sign: -1, 0 or 1."""
    return bind(SIGN, x)


def tanh(x: Any) -> Any:
    """Elementwise hyperbolic tangent."""
    return bind(TANH, x)


def sin(x: Any) -> Any:
    """Elementwise sine."""
    return bind(SIN, x)


def cos(x: Any) -> Any:
    """Elementwise cosine."""
    return bind(COS, x)


def clip(x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002 - numpy's names
    """Limit ``x`` to ``[min, max]``; either bound may be None (both None: ``x`` unchanged, as
    the array API says).

    >>> import tracejit as tj
    >>> tj.clip(tj.constant([-2.0, 0.5, 3.0]), 0.0, 1.0).numpy()
    array([0. , 0.5, 1. ], dtype=float32)
    """
    if min is None and max is None:
        return bind(WHERE, True, x, x)  # x's values, as a new tensor (a Variable's snapshot)
    if max is None:
        return maximum(x, min)
    if min is None:
        return minimum(x, max)
    return bind(CLIP, x, min, max)


def where(condition: Any, x: Any, y: Any) -> Any:
    """Elementwise ``x if condition else y`` with broadcasting."""
    return bind(WHERE, condition, x, y)


def equal(x: Any, y: Any) -> Any:
    """Elementwise ``x == y`` (bool)."""
    return bind(EQUAL, x, y)


def not_equal(x: Any, y: Any) -> Any:
    """Elementwise ``x != y`` (bool)."""
    return bind(NOT_EQUAL, x, y)


def less(x: Any, y: Any) -> Any:
    """Elementwise ``x < y`` (bool)."""
    return bind(LESS, x, y)


def less_equal(x: Any, y: Any) -> Any:
    """Elementwise ``x <= y`` (bool)."""
    return bind(LESS_EQUAL, x, y)


def greater(x: Any, y: Any) -> Any:
    """Elementwise ``x > y`` (bool)."""
    return bind(GREATER, x, y)


def greater_equal(x: Any, y: Any) -> Any:
    """Elementwise ``x >= y`` (bool)."""
    return bind(GREATER_EQUAL, x, y)


def logical_and(x: Any, y: Any) -> Any:
    """Elementwise logical and (bool)."""
    return bind(LOGICAL_AND, x, y)


def logical_or(x: Any, y: Any) -> Any:
    """Elementwise logical or (bool)."""
    return bind(LOGICAL_OR, x, y)


def logical_not(x: Any) -> Any:
    """Elementwise logical not (bool)."""
    return bind(LOGICAL_NOT, x)


def cast(x: Any, dtype: Any) -> Any:
    """Convert ``x`` to ``dtype``.

    >>> import tracejit as tj
    >>> tj.cast(tj.constant([1.7, -1.7]), "int32").numpy()
    array([ 1, -1], dtype=int32)
    """
    return bind(CAST, x, dtype=requested_dtype(dtype, "tj.cast"))


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    """The array API's ``astype``: ``cast`` with the standard's keywords. Tensors are immutable,
    so ``copy`` changes nothing observable (an ``x`` already of ``dtype`` comes back as it is);
    ``device`` may only name the device ``x`` is on.

    >>> import tracejit as tj
    >>> tj.astype(tj.constant([1, 2]), tj.float32).numpy()
    array([1., 2.], dtype=float32)
    """
    if device is not None:
        x = x.to_device(device)
    return cast(x, dtype)


def stop_gradient(x: Any) -> Any:
    """``x`` itself, but gradients do not flow through it.

    >>> import tracejit as tj
    >>> x = tj.constant(2.0)
    >>> with tj.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x * tj.stop_gradient(x)
    >>> float(tape.gradient(y, x))
    2.0
    """
    return bind(STOP_GRADIENT, x)
