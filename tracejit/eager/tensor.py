"""Eager tensors (define-by-run): a ``Tensor`` wraps a jax array and every op runs at once."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.eager import interop
from tracejit.errors import DtypeError
from tracejit.host import describe_split, holds_whole, host_array
from tracejit.ops import registry
from tracejit.ops.elementwise import cast
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.runtime.placement import device_mismatch
from tracejit.types import AVal, array_of_python, as_dtype, aval_of_array, requested_dtype


class Tensor(TensorMethods):
    """A concrete tensor holding a jax array. Create one with ``tj.constant``.

    >>> import tracejit as tj
    >>> t = tj.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> (t @ t.T).numpy()
    array([[ 5., 11.],
           [11., 25.]], dtype=float32)
    """

    __slots__ = ("_value", "_aval", "__weakref__")

    def __init__(self, value: jax.Array) -> None:
        self._value = value
        self._aval: AVal | None = None

    @property
    def aval(self) -> AVal:
        aval = self._aval
        if aval is None:
            aval = self._aval = aval_of_array(self._value)
        return aval

    @property
    def value(self) -> jax.Array:
        """The underlying jax array."""
        return self._value

    def numpy(self) -> np.ndarray:
        """The tensor's contents as a numpy array (``NotAddressableError`` for a global array
        of a multi-process run that this process holds only part of: ``tj.distribute.gather``
        reads those)."""
        return host_array(self._value, "the tensor")

    # jax and numpy accept tensors: the route and its reasons are in tracejit/eager/interop.py.
    @property
    def __jax_array__(self) -> Any:
        if interop.called_by_jax_operator():
            return None  # ``jax_array + t``: Python then calls our reflected operator
        value = self._value
        return lambda: value  # zero-copy: the array itself

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return interop.host_array(self._value, dtype, copy)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return interop.eager_array_ufunc(ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return interop.eager_array_function(func, types, args, kwargs)

    def __len__(self) -> int:
        if not self._value.shape:
            raise TypeError("len() of a 0-d tensor")
        return int(self._value.shape[0])

    def __iter__(self) -> Any:
        if not self._value.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._value.shape[0]))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __float__(self) -> float:
        _refuse_complex(self, "float")
        return float(self._value)

    def __complex__(self) -> complex:
        return complex(self._value)

    def __dlpack__(
        self,
        /,
        *,
        stream: Any = None,
        max_version: tuple[int, int] | None = None,
        dl_device: Any = None,
        copy: bool | None = None,
    ) -> Any:
        """DLPack export (zero-copy where the consumer allows), from the underlying jax array;
        the keywords are the array API's, passed on to jax."""
        return self._value.__dlpack__(
            stream=stream, max_version=max_version, dl_device=dl_device, copy=copy
        )

    def __dlpack_device__(self) -> Any:
        return self._value.__dlpack_device__()

    def __int__(self) -> int:
        _refuse_complex(self, "int")
        return int(self._value)

    def __index__(self) -> int:
        return self._value.__index__()

    def item(self) -> Any:
        """The single element as a Python scalar."""
        return self._value.item()

    def __repr__(self) -> str:
        if not holds_whole(self._value):
            return f"tj.Tensor(<{describe_split(self._value)}>)"
        body = np.array2string(np.asarray(self._value), separator=", ", prefix="tj.Tensor(")
        return f"tj.Tensor({body}, shape={tuple(self._value.shape)}, dtype={self.aval.dtype})"

    def __str__(self) -> str:
        if not holds_whole(self._value):
            return f"<{describe_split(self._value)}>"
        return str(np.asarray(self._value))

    def __format__(self, spec: str) -> str:
        if not self._value.shape:
            return format(self._value.item(), spec)
        return format(str(self), spec)


def _refuse_complex(t: Tensor, kind: str) -> None:
    """The array API standard: ``float()`` / ``int()`` of a complex tensor raise TypeError."""
    if t._value.dtype.kind == "c":
        raise TypeError(
            f"{kind}() of a {t._value.dtype} tensor: take tj.real(x) or tj.imag(x) first, or "
            "use complex(x)"
        )


def wrap(array: jax.Array) -> Tensor:
    """Make a Tensor from a jax array without checks (the fast path for op results)."""
    t = Tensor.__new__(Tensor)
    t._value = array
    t._aval = None
    return t


def constant(value: Any, dtype: Any = None) -> Tensor:
    """A tensor holding ``value`` (a Python scalar or nested list, numpy or jax array, Tensor).

    Python floats become float32 (never float64 silently); Python ints become int32.

    >>> import tracejit as tj
    >>> tj.constant(3.0).dtype
    dtype('float32')
    >>> tj.constant([1, 2], dtype="float32").numpy()
    array([1., 2.], dtype=float32)
    """
    wanted = None if dtype is None else requested_dtype(dtype, "tj.constant")
    if isinstance(value, Tensor):
        array = value._value
    elif isinstance(value, jax.Array):
        array = value
    else:
        if hasattr(value, "aval") and not isinstance(value, np.ndarray):
            raise TypeError(
                "tj.constant needs a concrete value, got a symbolic tensor; inside a "
                "tj.function use the tensor directly or tj.cast to change its dtype"
            )
        if isinstance(value, (np.ndarray, np.generic)):
            host = np.asarray(value)
        else:  # Python data: floats become float32, ints must fit (as in TF and jax)
            host = array_of_python(value, dtype)
        if host is None or (host.dtype == object and not isinstance(value, np.ndarray)):
            raise TypeError(
                f"tj.constant cannot make a tensor from {type(value).__name__}: {value!r:.80}"
            )
        try:  # a numpy float128, object, string... array: no jax array holds it
            held = as_dtype(host.dtype)
        except DtypeError as err:
            raise DtypeError(f"tj.constant: the value {value!r:.60}: {err}") from None
        # Straight to the requested dtype: through the default int first, 2**31 would wrap.
        array = jnp.asarray(host, dtype=held if wanted is None else wanted)
    if wanted is not None:
        array = array.astype(wanted)
    elif getattr(array, "weak_type", False):
        array = jnp.asarray(array, dtype=array.dtype)  # a constant has a definite dtype
    return wrap(array)


def convert_to_tensor(value: Any, dtype: Any = None) -> Any:
    """Return ``value`` unchanged if it is already a tensor (eager or symbolic) of ``dtype``,
    otherwise make a constant of it."""
    if isinstance(value, TensorMethods) and (dtype is None or value.dtype == as_dtype(dtype)):
        return value
    if isinstance(value, TensorMethods):
        return cast(value, dtype)
    return constant(value, dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    """The array API's ``asarray``: a tensor of ``obj`` (a tensor, Variable, jax or numpy array,
    Python scalar or nested sequence, or an object with ``__dlpack__``), converted to ``dtype``
    when given. Tensors are immutable, so one that already has the dtype is returned as it is
    (``copy=True`` changes nothing observable); a Variable gives a snapshot of its value.
    ``copy=False`` raises ``ValueError`` when a conversion would be needed, as the standard says.

    >>> import tracejit as tj
    >>> tj.asarray([1, 2], dtype=tj.float32).numpy()
    array([1., 2.], dtype=float32)
    """
    from tracejit.eager.variable import Variable  # (variables are built on tensors)

    if (problem := device_mismatch(device)) is not None:
        raise ValueError(f"asarray: {problem}")
    if isinstance(obj, Variable):
        obj = obj.value()
    if isinstance(obj, TensorMethods):  # a tensor, eager or symbolic
        if dtype is None or obj.dtype == requested_dtype(dtype, "tj.asarray"):
            return obj
        if copy is False:
            raise ValueError(f"asarray: copy=False, but {obj.dtype} -> {dtype} needs a copy")
        return cast(obj, dtype)
    if copy is False and not isinstance(obj, jax.Array):
        raise ValueError(
            f"asarray: copy=False, but a {type(obj).__name__} must be copied into a tensor"
        )
    if hasattr(obj, "__dlpack__") and not isinstance(obj, (np.ndarray, jax.Array)):
        obj = jax.dlpack.from_dlpack(obj)
    return constant(obj, dtype)


def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """A tensor sharing the memory of ``x``, any object with ``__dlpack__`` (a numpy array, a
    torch tensor, another tracejit tensor), through jax's DLPack support.

    >>> import numpy as np, tracejit as tj
    >>> tj.from_dlpack(np.arange(3.0, dtype=np.float32)).numpy()
    array([0., 1., 2.], dtype=float32)
    """
    if (problem := device_mismatch(device)) is not None:
        raise ValueError(f"from_dlpack: {problem}")
    if isinstance(x, Tensor):
        return x
    return wrap(jax.dlpack.from_dlpack(x, copy=copy))


interop.register_pytree(Tensor, lambda t: t._value)
registry.to_tensor = constant  # bind converts plain-data operands with it before tapes record
