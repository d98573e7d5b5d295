"""Dtypes, abstract values (avals), tensor specs and jax-compatible promotion.

An *aval* is what tracing knows about a value: its shape (``None`` for a dimension that is
unknown until run time), its dtype, and whether the dtype is *weak* (it came from a Python
scalar and yields to the other operand's dtype in promotion, as in jax.numpy).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import DtypeError, DtypeWarning, user_stacklevel

DType = np.dtype
Shape = tuple[int | None, ...]

bool_ = np.dtype("bool")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
uint16 = np.dtype("uint16")
uint32 = np.dtype("uint32")
uint64 = np.dtype("uint64")
float16 = np.dtype("float16")
bfloat16 = np.dtype(jnp.bfloat16)
float32 = np.dtype("float32")
float64 = np.dtype("float64")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")

_SHORT_NAMES = {
    bool_: "bool",
    int8: "i8",
    int16: "i16",
    int32: "i32",
    int64: "i64",
    uint8: "u8",
    uint16: "u16",
    uint32: "u32",
    uint64: "u64",
    float16: "f16",
    bfloat16: "bf16",
    float32: "f32",
    float64: "f64",
    complex64: "c64",
    complex128: "c128",
}


try:  # the concrete array class, for exact-type fast paths (without creating an array, which
    # would start jax's backend at import time, before users set flags or start multi-host)
    from jax._src.array import ArrayImpl as ARRAY_TYPE
except ImportError:  # pragma: no cover - a jax without that module: isinstance checks still work
    ARRAY_TYPE = jax.Array


def short_name(dtype: DType) -> str:
    """The compact name the IR printer uses (``f32``, ``i32``, ``bool``)."""
    return _SHORT_NAMES.get(dtype, str(dtype))


@functools.lru_cache(maxsize=256)
def _as_dtype_cached(spec: Any) -> DType:
    requested = np.dtype(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # result_type warns about float64 -> float32 itself
        try:
            jax.dtypes.result_type(requested)  # raises for dtypes no jax array can hold
        except TypeError:
            raise DtypeError(_unholdable(requested)) from None
    return np.dtype(jax.dtypes.canonicalize_dtype(requested))


def _unholdable(dtype: np.dtype) -> str:
    if dtype.kind in "fc":
        wider = "float64" if dtype.kind == "f" else "complex128"
        fix = f"convert it first, e.g. .astype(np.{wider})"
    elif dtype.kind in "OUSV":
        fix = "tensors hold numbers only: encode strings or objects as numbers first"
    else:
        fix = "convert it to a numeric dtype first"
    return (
        f"dtype {dtype} cannot be held by a tensor (jax arrays hold bool, integers, floats up to "
        f"float64 and complex up to complex128, plus bfloat16 and the float8 types); {fix}"
    )


def as_dtype(spec: Any) -> DType:
    """Turn a dtype-like (``"float32"``, ``np.float32``, ``jnp.int32``, a dtype) into the dtype
    tracejit uses, canonicalized as jax does (float64 becomes float32 unless x64 is on).

    >>> as_dtype("float32")
    dtype('float32')
    """
    try:
        return _as_dtype_cached(spec)
    except TypeError as err:  # unhashable or not a dtype at all
        if isinstance(err, DtypeError):
            raise
        raise TypeError(f"expected a dtype such as 'float32' or tj.int32, got {spec!r}") from err


def requested_dtype(spec: Any, where: str) -> DType:
    """``as_dtype`` for a dtype the *user* asked for (``dtype=`` of ``where``): when jax gives a
    narrower one (float64 while 64-bit mode is off), warn once per call site, as jax does."""
    dtype = as_dtype(spec)
    if _narrowed(spec):

        warnings.warn(
            f"{where}: dtype {np.dtype(spec)} was requested, but jax's 64-bit mode is off, so "
            f"the result is {dtype}. To get {np.dtype(spec)}, enable 64-bit mode at startup with "
            'jax.config.update("jax_enable_x64", True) (or JAX_ENABLE_X64=1); to silence this, '
            f"request {dtype}.",
            DtypeWarning,
            stacklevel=user_stacklevel(),
        )
    return dtype


@functools.lru_cache(maxsize=256)
def _narrowed(spec: Any) -> bool:
    if any(spec is kind for kind in (bool, int, float, complex)):  # "the default", as in jax
        return False
    return np.dtype(spec) != as_dtype(spec)


def is_floating(dtype: DType) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating))


def is_integer(dtype: DType) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.integer))


class AVal(NamedTuple):
    """Abstract value: shape (``None`` = unknown dimension), dtype and weak-type flag.

    A named tuple, so hashing it (trace-cache keys, CSE keys) runs at C speed.
    """

    shape: Shape
    dtype: DType
    weak: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int | None:
        total = 1
        for dim in self.shape:
            if dim is None:
                return None
            total *= dim
        return total

    def is_fully_known(self) -> bool:
        return None not in self.shape

    def shape_str(self) -> str:
        return "[" + ",".join("?" if d is None else str(d) for d in self.shape) + "]"

    def __str__(self) -> str:
        return short_name(self.dtype) + self.shape_str()

    def to_struct(self) -> jax.ShapeDtypeStruct:
        """A jax ShapeDtypeStruct (only for fully known shapes)."""
        return jax.ShapeDtypeStruct(self.shape, self.dtype, weak_type=self.weak)

    def strong(self) -> AVal:
        return AVal(self.shape, self.dtype, False) if self.weak else self


def shape_str(shape: Shape) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def aval_of_array(array: Any) -> AVal:
    """The aval of a concrete array (jax array, numpy array, numpy scalar)."""
    weak = bool(getattr(array, "weak_type", False))
    return AVal(tuple(array.shape), as_dtype(array.dtype), weak)


def aval_of_python_scalar(value: bool | int | float | complex) -> AVal:
    """Python scalars are weakly typed, as in jax.numpy: ``2.0`` is a weak float32.

    A Python int must fit the default integer dtype (int32, or int64 with x64 on), as in jax.
    """
    if isinstance(value, bool):
        return AVal((), bool_, True)
    if isinstance(value, int):
        dtype = as_dtype(np.int64)
        check_python_int(value, dtype)
        return AVal((), dtype, True)
    if isinstance(value, float):
        return AVal((), as_dtype(np.float64), True)
    return AVal((), as_dtype(np.complex128), True)


def check_python_int(value: int, dtype: DType) -> None:
    """Raise ``IntegerOverflowError`` (an ``OverflowError``) when ``value`` does not fit ``dtype``:
    the one check every Python int passes before it becomes part of a tensor."""
    info = _iinfo(dtype)
    if not info[0] <= value <= info[1]:
        raise _overflow(value, dtype)


@functools.lru_cache(maxsize=64)
def _iinfo(dtype: DType) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _overflow(value: int, dtype: DType) -> Exception:
    from tracejit.errors import IntegerOverflowError
    from tracejit.ir.source import user_location

    return IntegerOverflowError(value, dtype, user_location())


def _python_ints(value: Any) -> Any:
    """The Python ints in a nested list/tuple (numbers that are not ints are skipped)."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _python_ints(item)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value


def array_of_python(value: Any, dtype: Any = None) -> np.ndarray | None:
    """A Python number or nested list as a numpy array, with the dtype a tensor of it gets:
    floats are float32 (never float64 silently), ints the default integer dtype. Every Python
    int must fit the integer dtype it becomes (``dtype`` when given), else
    ``IntegerOverflowError``. None when ``value`` holds something other than numbers.
    """
    host = np.asarray(value)
    target = as_dtype(dtype) if dtype is not None else None
    if host.dtype == object or (host.dtype.kind == "f" and isinstance(value, (list, tuple))):
        # numpy turns ints beyond int64 into objects, and a list mixing them with small ints
        # into float64: check each Python int against the dtype it was meant to become.
        int_target = target if target is not None and is_integer(target) else None
        for item in _python_ints(value):
            check_python_int(item, int_target or as_dtype(np.int64))
        if host.dtype == object:
            return None
    if host.dtype.kind in "iu" and host.size:
        int_target = target if target is not None and is_integer(target) else None
        if int_target is None and target is None:
            int_target = as_dtype(host.dtype) if host.dtype.kind == "u" else as_dtype(np.int64)
        if int_target is not None:
            low, high = _iinfo(int_target)
            smallest, largest = int(host.min()), int(host.max())
            if smallest < low:
                raise _overflow(smallest, int_target)
            if largest > high:
                raise _overflow(largest, int_target)
    if target is None and host.dtype == np.float64:
        return host.astype(float32)
    return host


@functools.lru_cache(maxsize=4096)
def promote(*avals: AVal) -> tuple[DType, bool]:
    """Result dtype and weakness of combining ``avals`` elementwise, with jax.numpy's rules."""
    structs = [jax.ShapeDtypeStruct((), a.dtype, weak_type=a.weak) for a in avals]
    out = jax.eval_shape(lambda *xs: functools.reduce(jnp.add, xs), *structs)
    return np.dtype(out.dtype), bool(out.weak_type)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Describes the tensors a function accepts: shape (``None`` for any size) and dtype.

    ``shape=None`` means any rank, as in TF. XLA compiles one rank at a time, so a
    ``tj.function`` whose ``input_signature`` holds such a spec traces once per rank it is
    called with (each trace has every dimension unknown).

    >>> TensorSpec(shape=(None, 4), dtype="float32")
    TensorSpec(shape=(None, 4), dtype=float32)
    >>> TensorSpec(shape=None, dtype="int32")
    TensorSpec(shape=None, dtype=int32)
    """

    shape: Shape | None
    dtype: DType = float32
    name: str | None = None

    def __init__(self, shape: Any, dtype: Any = "float32", name: str | None = None) -> None:
        if shape is not None:
            shape = tuple(None if d is None else int(d) for d in shape)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", as_dtype(dtype))
        object.__setattr__(self, "name", name)

    @classmethod
    def from_aval(cls, aval: AVal, name: str | None = None) -> TensorSpec:
        return cls(aval.shape, aval.dtype, name)

    @property
    def rank_known(self) -> bool:
        """False for ``TensorSpec(shape=None)`` (any rank)."""
        return self.shape is not None

    def aval(self) -> AVal:
        if self.shape is None:
            raise ValueError(
                f"{self!r} has an unknown rank, so it has no aval: tracejit traces each rank "
                "separately; give a shape such as (None, None) for one rank"
            )
        return AVal(self.shape, self.dtype, False)

    def is_compatible_with(self, aval: AVal) -> bool:
        if aval.dtype != self.dtype:
            return False
        if self.shape is None:
            return True
        if len(aval.shape) != len(self.shape):
            return False
        return all(s is None or s == d for s, d in zip(self.shape, aval.shape))

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name else ""
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype}{name})"


# The array API's data type functions -------------------------------------------------------------
def _dtype_of(x: Any) -> Any:
    """A dtype, or the dtype of a tensor/array (what the standard's dtype functions accept)."""
    dtype = getattr(x, "dtype", None)
    return as_dtype(x if dtype is None else dtype)


def can_cast(from_: Any, to: Any, /) -> bool:
    """Whether the standard's promotion rules allow casting ``from_`` (a dtype or tensor) to
    ``to`` implicitly, as ``jax.numpy.can_cast``.

    >>> can_cast(int32, float32), can_cast(float32, int32)
    (False, False)
    """
    return bool(jnp.can_cast(_dtype_of(from_), as_dtype(to)))


def finfo(type: Any, /) -> Any:  # noqa: A002 - the standard's parameter name
    """Machine limits of a floating dtype (``bits``, ``eps``, ``max``, ``min``,
    ``smallest_normal``, ``dtype``), as ``jax.numpy.finfo``.

    >>> finfo(float32).eps
    1.1920928955078125e-07
    """
    info = jnp.finfo(_dtype_of(type))
    # The standard wants Python floats (jax gives numpy scalars of the dtype itself).
    return FInfo(
        bits=int(info.bits),
        eps=float(info.eps),
        max=float(info.max),
        min=float(info.min),
        smallest_normal=float(info.smallest_normal),
        dtype=np.dtype(info.dtype),
    )


@dataclass(frozen=True)
class FInfo:
    """What ``finfo`` returns: the array API's fields, as Python numbers."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: np.dtype


def iinfo(type: Any, /) -> Any:  # noqa: A002 - the standard's parameter name
    """Limits of an integer dtype (``bits``, ``max``, ``min``, ``dtype``).

    >>> iinfo(int32).max
    2147483647
    """
    return jnp.iinfo(_dtype_of(type))


def isdtype(dtype: Any, kind: Any) -> bool:
    """Whether ``dtype`` is of ``kind``: a dtype, a kind name (``"bool"``, ``"signed integer"``,
    ``"unsigned integer"``, ``"integral"``, ``"real floating"``, ``"complex floating"``,
    ``"numeric"``) or a tuple of them.

    >>> isdtype(float32, "real floating"), isdtype(int32, ("bool", "integral"))
    (True, True)
    """
    return bool(jnp.isdtype(as_dtype(dtype), kind))


def result_type(*arrays_and_dtypes: Any) -> Any:
    """The dtype the standard's (and jax.numpy's) promotion gives for these tensors, dtypes and
    Python scalars (weakly typed, as in jax).

    >>> result_type(int32, float32), result_type(float32, 2.0)
    (dtype('float32'), dtype('float32'))
    """
    if not arrays_and_dtypes:
        raise TypeError("result_type needs at least one array or dtype")
    items = [x if isinstance(x, (bool, int, float, complex)) else _dtype_of(x)
             for x in arrays_and_dtypes]  # fmt: skip
    return np.dtype(jnp.result_type(*items))
