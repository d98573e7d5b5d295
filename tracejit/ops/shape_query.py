"""``tj.shape``, ``tj.size``, ``tj.rank``: a tensor's shape as a tensor, as TF's ops give it.

Where the static shape is fully known (always, eagerly) the answer is a constant; where a
dimension is unknown while tracing (``None`` in an ``input_signature``), ``tj.shape`` emits a
``shape`` node whose value is read when the compiled function runs (jax compiles each concrete
shape, so the lowered node is a constant of that executable). The rank is always known: XLA
needs it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.eager.tensor import constant
from tracejit.errors import OpTypeError
from tracejit.ops.arguments import arg_aval
from tracejit.ops.reduction import prod
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal, as_dtype, is_integer


def _infer_shape(x: AVal, *, out_type: Any) -> AVal:
    return AVal((len(x.shape),), out_type, False)


def _shape(x: Any, *, out_type: Any) -> Any:
    return jnp.asarray(x.shape, dtype=out_type)


SHAPE = defop("shape", _infer_shape, _shape, differentiable=False)


def _out_type(op: str, out_type: Any) -> Any:
    dtype = as_dtype(out_type)
    if not is_integer(dtype):
        raise OpTypeError(op, f"out_type must be an integer dtype, got {dtype}")
    return dtype


def shape(x: Any, out_type: Any = "int32") -> Any:
    """The shape of ``x`` as a 1-D integer tensor (TF's ``tf.shape``): a constant where the
    shape is known, the run-time shape where a dimension is unknown while tracing.

    >>> import tracejit as tj
    >>> tj.shape(tj.ones((2, 3))).numpy()
    array([2, 3], dtype=int32)
    """
    dtype = _out_type("shape", out_type)
    aval = arg_aval("shape", x)
    if all(d is not None for d in aval.shape):
        return constant(np.asarray(aval.shape, dtype=dtype))
    return bind(SHAPE, x, out_type=dtype)


def size(x: Any, out_type: Any = "int32") -> Any:
    """The number of elements of ``x`` as a 0-d integer tensor (TF's ``tf.size``).

    >>> import tracejit as tj
    >>> int(tj.size(tj.ones((2, 3))))
    6
    """
    dtype = _out_type("size", out_type)
    aval = arg_aval("size", x)
    if all(d is not None for d in aval.shape):
        return constant(np.asarray(int(np.prod(aval.shape, dtype=np.int64)), dtype=dtype))
    return prod(shape(x, dtype))


def rank(x: Any) -> Any:
    """The number of dimensions of ``x`` as a 0-d int32 tensor (TF's ``tf.rank``; always known
    while tracing, so a constant).

    >>> import tracejit as tj
    >>> int(tj.rank(tj.ones((2, 3))))
    2
    """
    return constant(np.asarray(len(arg_aval("rank", x).shape), dtype=np.int32))
