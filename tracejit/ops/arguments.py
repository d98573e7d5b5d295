"""What public op functions need to know about their arguments before calling ``bind``.

Public functions normalize params (axes, shapes, index tuples) from the rank and shape of their
inputs; an argument may be an eager tensor, a symbolic tensor, an array, a nested list or a Python
number, and ``arg_aval`` answers for all of them without running anything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from tracejit.eager.tensor import Tensor
from tracejit.errors import OpError, OpTypeError
from tracejit.ir.source import user_location
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.types import AVal, as_dtype, aval_of_python_scalar

F = TypeVar("F", bound=Callable[..., Any])


def arg_aval(op: str, x: Any) -> AVal:
    """The aval of any op argument (tensor, symbolic tensor, array, nested list, number)."""
    if isinstance(x, TensorMethods):
        return x.aval
    if isinstance(x, (bool, int, float, complex)):
        return aval_of_python_scalar(x)
    array = x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)
    if array.dtype == object:
        raise OpTypeError(op, f"expected a tensor, array or number, got {type(x).__name__}")
    return AVal(tuple(array.shape), as_dtype(array.dtype), bool(getattr(array, "weak_type", False)))


def concrete_value(x: Any) -> np.ndarray | None:
    """The contents of ``x`` as a numpy array, or None when ``x`` is symbolic (being traced)."""
    if isinstance(x, Tensor):
        return x.numpy()
    if isinstance(x, TensorMethods):
        return None
    return np.asarray(x)


def locates_errors(function: F) -> F:
    """Give the user's line to errors a public op function raises while normalizing its params
    (before ``bind``, which locates the errors of inference itself)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except OpError as err:
            if err.loc is not None:
                raise
            raise type(err)(err.op, err.detail, user_location()) from None

    return wrapper  # type: ignore[return-value]
