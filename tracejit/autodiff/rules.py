"""Helpers shared by VJP rules (the rules themselves live in each op's registry entry)."""

from __future__ import annotations

from typing import Any

from tracejit.ops.arguments import arg_aval
from tracejit.ops.elementwise import cast
from tracejit.ops.like import sum_like
from tracejit.ops.reduction import sum as reduce_sum
from tracejit.types import AVal, is_floating


def unbroadcast(ct: Any, x: Any) -> Any:
    """Sum the cotangent ``ct`` of a broadcast result back to the shape of input ``x`` (and to
    its dtype): numpy broadcasting's transpose. Returns None for inputs that take no gradient
    (Python numbers, integer tensors)."""
    if isinstance(x, (bool, int, float, complex)):
        return None
    aval = arg_aval("gradient", x)
    if not _takes_gradient(aval):
        return None
    if not aval.is_fully_known() or not ct.aval.is_fully_known():
        # An unknown dim may be 1 at run time and so broadcast: reduce to x's run-time shape.
        return _in_dtype(sum_like(ct, x), aval)
    lead = ct.ndim - aval.ndim
    if lead:
        ct = reduce_sum(ct, axis=tuple(range(lead)))
    ones = tuple(i for i, d in enumerate(aval.shape) if d == 1 and ct.shape[i] != 1)
    if ones:
        ct = reduce_sum(ct, axis=ones, keepdims=True)
    return _in_dtype(ct, aval)


def _in_dtype(ct: Any, aval: AVal) -> Any:
    """``ct`` in the primal's dtype; a real primal of a complex op gets the real part (jax's
    convention for gradients of complex functions)."""
    if ct.dtype.kind == "c" and aval.dtype.kind != "c":
        from tracejit.ops.elementwise_math import real

        ct = real(ct)
    return cast(ct, aval.dtype) if ct.dtype != aval.dtype else ct


def _takes_gradient(aval: AVal) -> bool:
    import jax.numpy as jnp

    return is_floating(aval.dtype) or bool(jnp.issubdtype(aval.dtype, jnp.complexfloating))
