"""Creation ops: full (zeros, ones), arange, eye, full_like (zeros_like, ones_like), one_hot.

Ops that make a tensor from nothing have zero inputs: shape, dtype and value are params, so under
tracing they are ordinary nodes with no operands. The ``*_like`` ops take the template tensor as an
input, which lets them follow its unknown dims. None of them is differentiable, and none is
constant-folded: they are cheap to compute on the device and can be large to embed as constants.

Default dtypes never give float64: Python floats make float32, Python ints int32, bools bool.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, OpTypeError
from tracejit.ops.arguments import arg_aval, concrete_value, locates_errors
from tracejit.ops.elementwise import cast
from tracejit.ops.infer import normalize_axis, shape_text
from tracejit.ops.registry import bind, defop
from tracejit.ops.shape import broadcast_to, reshape
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.runtime.placement import device_mismatch
from tracejit.types import (
    AVal,
    DType,
    as_dtype,
    bool_,
    complex64,
    float32,
    int32,
    is_integer,
    requested_dtype,
)

Scalar = bool | int | float | complex
_CREATION = {"differentiable": False, "foldable": False}


def _infer_full(*, shape: tuple[int, ...], fill_value: Scalar, dtype: DType) -> AVal:
    if any(d < 0 for d in shape):
        raise OpError("full", f"shape {shape_text(shape)} has a negative dimension")
    return AVal(shape, dtype, False)


def _full(*, shape: tuple[int, ...], fill_value: Scalar, dtype: DType) -> Any:
    return jnp.full(shape, fill_value, dtype)


def _infer_arange(*, start: Scalar, stop: Scalar, step: Scalar, dtype: DType) -> AVal:
    if step == 0:
        raise OpError("arange", "step cannot be zero")
    if all(isinstance(v, int) for v in (start, stop, step)):
        length = -((start - stop) // step)  # exact ceil((stop - start) / step) for ints
    else:
        length = math.ceil((stop - start) / step)
    return AVal((max(length, 0),), dtype, False)


def _arange(*, start: Scalar, stop: Scalar, step: Scalar, dtype: DType) -> Any:
    return jnp.arange(start, stop, step, dtype=dtype)


def _infer_eye(*, n: int, m: int, k: int, dtype: DType) -> AVal:
    if n < 0 or m < 0:
        raise OpError("eye", f"sizes must be non-negative, got N={n}, M={m}")
    return AVal((n, m), dtype, False)


def _eye(*, n: int, m: int, k: int, dtype: DType) -> Any:
    return jnp.eye(n, m, k, dtype=dtype)


def _infer_full_like(x: AVal, *, fill_value: Scalar, dtype: DType) -> AVal:
    return AVal(x.shape, dtype, False)


def _full_like(x: Any, *, fill_value: Scalar, dtype: DType) -> Any:
    return jnp.full_like(x, fill_value, dtype=dtype)


def _infer_one_hot(indices: AVal, *, depth: int, dtype: DType, axis: int) -> AVal:
    if not is_integer(indices.dtype):
        raise OpTypeError("one_hot", f"indices must be integers, got {indices.dtype}")
    normalize_axis("one_hot", axis, indices.ndim + 1)
    shape = indices.shape[:axis] + (depth,) + indices.shape[axis:]
    return AVal(shape, dtype, False)


def _one_hot(indices: Any, *, depth: int, dtype: DType, axis: int) -> Any:
    return jax.nn.one_hot(indices, depth, dtype=dtype, axis=axis)


def _infer_linspace(
    *, start: Scalar, stop: Scalar, num: int, endpoint: bool, dtype: DType
) -> AVal:
    if num < 0:
        raise OpError("linspace", f"num must be non-negative, got {num}")
    return AVal((num,), dtype, False)


def _linspace(*, start: Scalar, stop: Scalar, num: int, endpoint: bool, dtype: DType) -> Any:
    return jnp.linspace(start, stop, num, endpoint=endpoint, dtype=dtype)


FULL = defop("full", _infer_full, _full, **_CREATION)
LINSPACE = defop("linspace", _infer_linspace, _linspace, **_CREATION)
ARANGE = defop("arange", _infer_arange, _arange, **_CREATION)
EYE = defop("eye", _infer_eye, _eye, **_CREATION)
FULL_LIKE = defop("full_like", _infer_full_like, _full_like, **_CREATION)
ONE_HOT = defop("one_hot", _infer_one_hot, _one_hot, **_CREATION)


def _shape(op: str, shape: int | Sequence[int]) -> tuple[int, ...]:
    try:
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return tuple(operator.index(d) for d in dims)
    except TypeError:
        unknown = isinstance(shape, (tuple, list)) and any(d is None for d in shape)
        hint = (
            "; a dimension unknown while tracing (None in x.shape) is known at run time as "
            "tj.shape(x)[i]: pass that, or use tj.ones_like(x) / tj.zeros_like(x)"
            if unknown
            else ""
        )
        raise OpTypeError(
            op, f"shape must be an int or a sequence of ints, got {shape!r:.60}{hint}"
        ) from None


def _with_symbolic_dims(op: str, shape: Any, fill_value: Any, dtype: DType) -> Any:
    """The tensor for a shape holding ``tj.shape(x)[i]`` entries, or None for a plain shape."""
    if not isinstance(shape, (tuple, list)) or all(type(d) is int for d in shape):
        return None  # the common case, without an import
    from tracejit.ops.shape_query import full_dims, has_symbolic_dim

    return full_dims(op, shape, fill_value, dtype) if has_symbolic_dim(shape) else None


def _number(op: str, value: Any) -> Scalar:
    """A Python number from a number-like argument that is known now (not symbolic)."""
    if isinstance(value, (bool, int, float, complex)):
        return value
    array = concrete_value(value) if isinstance(value, (TensorMethods, np.generic)) else None
    if array is None or array.ndim != 0:
        raise OpTypeError(
            op,
            f"expected a Python number known while tracing, got {type(value).__name__}; "
            "the result's shape or value must not depend on a tensor",
        )
    return array.item()


def _default_dtype(value: Any) -> DType:
    """float32 for Python floats, int32 for ints, bool for bools; numpy scalars keep theirs."""
    if isinstance(value, np.generic):
        return as_dtype(value.dtype)
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int32
    if isinstance(value, float):
        return float32
    return complex64


@locates_errors
def full(
    shape: int | Sequence[int], fill_value: Any, dtype: Any = None, *, device: Any = None
) -> Any:
    """A tensor of ``shape`` filled with ``fill_value``. With ``dtype`` None a Python float
    gives float32, an int int32, a bool bool; a tensor ``fill_value`` is broadcast to ``shape``.

    >>> import tracejit as tj
    >>> tj.full((2, 2), 7).numpy()
    array([[7, 7],
           [7, 7]], dtype=int32)
    """
    _no_device("full", device)
    if not isinstance(fill_value, (bool, int, float, complex, np.generic)):
        value = fill_value if dtype is None else cast(fill_value, dtype)
        return broadcast_to(value, _shape("full", shape))
    resolved = _default_dtype(fill_value) if dtype is None else requested_dtype(dtype, "tj.full")
    dynamic = _with_symbolic_dims("full", shape, _number("full", fill_value), resolved)
    if dynamic is not None:
        return dynamic
    return bind(
        FULL, shape=_shape("full", shape), fill_value=_number("full", fill_value), dtype=resolved
    )


@locates_errors
def zeros(shape: int | Sequence[int], dtype: Any = "float32", *, device: Any = None) -> Any:
    """A tensor of zeros.

    >>> import tracejit as tj
    >>> tj.zeros((2, 3)).shape
    (2, 3)
    """
    _no_device("zeros", device)
    resolved = requested_dtype(dtype, "tj.zeros")
    dynamic = _with_symbolic_dims("zeros", shape, 0, resolved)
    if dynamic is not None:
        return dynamic
    return bind(FULL, shape=_shape("zeros", shape), fill_value=0, dtype=resolved)


@locates_errors
def ones(shape: int | Sequence[int], dtype: Any = "float32", *, device: Any = None) -> Any:
    """A tensor of ones.

    >>> import tracejit as tj
    >>> tj.ones(3, dtype="int32").numpy()
    array([1, 1, 1], dtype=int32)
    """
    _no_device("ones", device)
    resolved = requested_dtype(dtype, "tj.ones")
    dynamic = _with_symbolic_dims("ones", shape, 1, resolved)
    if dynamic is not None:
        return dynamic
    return bind(FULL, shape=_shape("ones", shape), fill_value=1, dtype=resolved)


@locates_errors
def arange(
    start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, *, device: Any = None
) -> Any:
    """Evenly spaced values in ``[start, stop)``; ``arange(n)`` is ``0 .. n-1``. Ints give int32,
    floats float32 (unless ``dtype`` is given).

    >>> import tracejit as tj
    >>> tj.arange(1, 7, 2).numpy()
    array([1, 3, 5], dtype=int32)
    """
    _no_device("arange", device)
    if stop is None:
        start, stop = 0, start
    bounds = tuple(_number("arange", v) for v in (start, stop, step))
    if dtype is None:
        dtype = float32 if any(isinstance(v, float) for v in bounds) else int32
    return bind(
        ARANGE,
        start=bounds[0],
        stop=bounds[1],
        step=bounds[2],
        dtype=requested_dtype(dtype, "tj.arange"),
    )


@locates_errors
def eye(  # noqa: N803
    N: int, M: int | None = None, k: int = 0, dtype: Any = "float32", *, device: Any = None
) -> Any:
    """A 2-D tensor with ones on diagonal ``k`` (0: the main one) and zeros elsewhere.

    >>> import tracejit as tj
    >>> tj.eye(2, 3, k=1).numpy()
    array([[0., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    _no_device("eye", device)
    n = operator.index(N)
    m = n if M is None else operator.index(M)
    return bind(EYE, n=n, m=m, k=operator.index(k), dtype=requested_dtype(dtype, "tj.eye"))


@locates_errors
def full_like(x: Any, fill_value: Any, dtype: Any = None, *, device: Any = None) -> Any:
    """A tensor shaped like ``x`` (unknown dims included) filled with ``fill_value``, of
    ``x``'s dtype unless ``dtype`` is given.

    >>> import tracejit as tj
    >>> tj.full_like(tj.constant([1.0, 2.0]), 5).numpy()
    array([5., 5.], dtype=float32)
    """
    _no_device("full_like", device)
    resolved = (
        arg_aval("full_like", x).dtype if dtype is None else requested_dtype(dtype, "tj.full_like")
    )
    return bind(FULL_LIKE, x, fill_value=_number("full_like", fill_value), dtype=resolved)


def zeros_like(x: Any, dtype: Any = None, *, device: Any = None) -> Any:
    """Zeros shaped like ``x``, of ``x``'s dtype unless ``dtype`` is given."""
    return full_like(x, 0, dtype, device=device)


def ones_like(x: Any, dtype: Any = None, *, device: Any = None) -> Any:
    """Ones shaped like ``x``, of ``x``'s dtype unless ``dtype`` is given."""
    return full_like(x, 1, dtype, device=device)


@locates_errors
def one_hot(indices: Any, depth: int, dtype: Any = "float32", axis: int = -1) -> Any:
    """One-hot encode integer ``indices`` into a new axis of size ``depth`` (out-of-range
    indices give all zeros).

    >>> import tracejit as tj
    >>> tj.one_hot(tj.constant([0, 2]), 3).numpy()
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    aval = arg_aval("one_hot", indices)
    if not is_integer(aval.dtype):  # checked here too: jax only warns, eagerly
        raise OpTypeError("one_hot", f"indices must be integers, got {aval.dtype}")
    ndim = aval.ndim
    depth = operator.index(depth)
    if depth < 0:
        raise OpError("one_hot", f"depth must be non-negative, got {depth}")
    axis = normalize_axis("one_hot", axis, ndim + 1)
    return bind(
        ONE_HOT, indices, depth=depth, dtype=requested_dtype(dtype, "tj.one_hot"), axis=axis
    )


@locates_errors
def linspace(
    start: Any,
    stop: Any,
    /,
    num: int,
    *,
    dtype: Any = None,
    device: Any = None,
    endpoint: bool = True,
) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included unless
    ``endpoint=False``); float32 unless ``dtype`` says otherwise (complex bounds give complex64).

    >>> import tracejit as tj
    >>> tj.linspace(0.0, 1.0, 5).numpy()
    array([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)
    """
    _no_device("linspace", device)
    bounds = (_number("linspace", start), _number("linspace", stop))
    if dtype is None:
        dtype = complex64 if any(isinstance(b, complex) for b in bounds) else float32
    return bind(
        LINSPACE,
        start=bounds[0],
        stop=bounds[1],
        num=operator.index(num),
        endpoint=bool(endpoint),
        dtype=requested_dtype(dtype, "tj.linspace"),
    )


def empty(shape: int | Sequence[int], *, dtype: Any = "float32", device: Any = None) -> Any:
    """A tensor of ``shape`` whose contents the standard leaves unspecified: here zeros (XLA
    arrays are immutable, so there is nothing to gain from leaving them uninitialized)."""
    _no_device("empty", device)
    return zeros(shape, dtype)


def empty_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    """Like ``empty``, shaped like ``x`` (zeros, of ``x``'s dtype unless ``dtype`` is given)."""
    _no_device("empty_like", device)
    return zeros_like(x, dtype)


def meshgrid(*arrays: Any, indexing: str = "xy") -> list[Any]:
    """Coordinate tensors from 1-D tensors: each result has one axis per input. ``"xy"``
    (Cartesian, the default) swaps the first two axes of the result; ``"ij"`` (matrix) does not.

    >>> import tracejit as tj
    >>> xs, ys = tj.meshgrid(tj.arange(3), tj.arange(2))
    >>> xs.shape, ys.numpy().tolist()
    ((2, 3), [[0, 0, 0], [1, 1, 1]])
    """
    if indexing not in ("xy", "ij"):
        raise OpError("meshgrid", f"indexing must be 'xy' or 'ij', got {indexing!r}")
    sizes = []
    for i, a in enumerate(arrays):
        aval = arg_aval("meshgrid", a)
        if aval.ndim != 1:
            raise OpError("meshgrid", f"argument {i} must be 1-D, got shape {aval.shape}")
        sizes.append(aval.shape[0])
    if indexing == "xy" and len(arrays) > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    grids = []
    for i, a in enumerate(arrays):
        axis = (1 - i if i < 2 else i) if indexing == "xy" and len(arrays) > 1 else i
        shape = [1] * len(arrays)
        shape[axis] = -1
        grids.append(broadcast_to(reshape(a, tuple(shape)), tuple(sizes)))
    return grids


def _no_device(op: str, device: Any) -> None:
    """tracejit makes tensors on the current placement device (``tj.device``'s, else jax's
    default); the standard's ``device=`` may only name that (or be None)."""
    problem = device_mismatch(device)
    if problem is not None:
        raise OpError(op, problem)
