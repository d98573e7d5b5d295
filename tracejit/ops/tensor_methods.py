"""Python operators and methods shared by eager tensors and symbolic tracers.

Both kinds route every operator through the public ops (and so through ``bind``), which is why
the same user code runs eagerly and under tracing.
"""

from __future__ import annotations

from typing import Any

import jax

from tracejit.ops import bitwise as bw
from tracejit.ops import elementwise as ew
from tracejit.runtime.placement import placement_device, resolve_device
from tracejit.types import AVal


def is_tensor_leaf(x: Any) -> bool:
    """``is_leaf`` for tracejit's own ``jax.tree_util`` walks: eager tensors and Variables are
    jax pytree nodes (so jax functions accept them), but to tracejit they are leaves."""
    return isinstance(x, TensorMethods)


class TensorMethods:
    """Mixin: subclasses provide ``aval``."""

    __slots__ = ()
    # numpy and jax see tensors through the protocols each subclass implements
    # (__array_ufunc__, __array_function__, __jax_array__: see tracejit/eager/interop.py); the
    # priority is for libraries that still read numpy's older deferral rule.
    __array_priority__ = 100

    @property
    def aval(self) -> AVal:
        raise NotImplementedError

    # Properties ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int | None, ...]:
        return self.aval.shape

    @property
    def dtype(self) -> Any:
        return self.aval.dtype

    @property
    def ndim(self) -> int:
        return len(self.aval.shape)

    @property
    def size(self) -> int | None:
        return self.aval.size

    @property
    def T(self) -> Any:  # noqa: N802 - numpy's name
        from tracejit.ops.shape import transpose

        return transpose(self)

    @property
    def mT(self) -> Any:  # noqa: N802 - the array API's name
        from tracejit.ops.manipulation import matrix_transpose

        return matrix_transpose(self)

    def __array_namespace__(self, *, api_version: str | None = None) -> Any:
        """The array API namespace of this tensor: the ``tracejit`` module itself, so code
        written as ``xp = x.__array_namespace__()`` runs on tracejit tensors (eager or traced)."""
        if api_version not in (None, "2024.12", "2023.12", "2022.12", "2021.12"):
            raise ValueError(f"tracejit implements the 2024.12 array API, not {api_version!r}")
        import tracejit

        return tracejit

    @property
    def device(self) -> Any:
        """The jax device the tensor's contents are on (for a symbolic tensor, or one spread
        over several devices: the device of the innermost ``tj.device`` block, else jax's
        default device)."""
        array = getattr(self, "_value", None)
        if isinstance(array, jax.Array):
            devices = array.devices()
            if len(devices) == 1:
                return next(iter(devices))
        return placement_device()

    def to_device(self, device: Any, /, *, stream: Any = None) -> Any:
        """The tensor on ``device`` (a ``jax.Device`` or a ``tj.device`` name): ``self`` when
        it is there already, else an eager copy there."""
        target = resolve_device(device)
        if target == self.device:
            return self
        array = getattr(self, "_value", None)
        if not isinstance(array, jax.Array):
            raise ValueError(f"to_device({device!r}) of a symbolic tensor: use tj.device")
        from tracejit.eager.tensor import wrap

        return wrap(jax.device_put(array, target))

    # Arithmetic ------------------------------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        return ew.add(self, other)

    def __radd__(self, other: Any) -> Any:
        return ew.add(other, self)

    def __sub__(self, other: Any) -> Any:
        return ew.subtract(self, other)

    def __rsub__(self, other: Any) -> Any:
        return ew.subtract(other, self)

    def __mul__(self, other: Any) -> Any:
        return ew.multiply(self, other)

    def __rmul__(self, other: Any) -> Any:
        return ew.multiply(other, self)

    def __truediv__(self, other: Any) -> Any:
        return ew.divide(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return ew.divide(other, self)

    def __floordiv__(self, other: Any) -> Any:
        return ew.floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> Any:
        return ew.floor_divide(other, self)

    def __mod__(self, other: Any) -> Any:
        return ew.mod(self, other)

    def __rmod__(self, other: Any) -> Any:
        return ew.mod(other, self)

    def __pow__(self, other: Any) -> Any:
        return ew.power(self, other)

    def __rpow__(self, other: Any) -> Any:
        return ew.power(other, self)

    def __matmul__(self, other: Any) -> Any:
        from tracejit.ops.linalg import matmul

        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        from tracejit.ops.linalg import matmul

        return matmul(other, self)

    def __neg__(self) -> Any:
        return ew.negative(self)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return ew.abs(self)

    # Comparisons (elementwise, so tensors are unhashable like numpy arrays) -------------------
    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return ew.equal(self, other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return ew.not_equal(self, other)

    def __lt__(self, other: Any) -> Any:
        return ew.less(self, other)

    def __le__(self, other: Any) -> Any:
        return ew.less_equal(self, other)

    def __gt__(self, other: Any) -> Any:
        return ew.greater(self, other)

    def __ge__(self, other: Any) -> Any:
        return ew.greater_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    # Bitwise on integer tensors, logical on bool tensors (as in numpy and jax) ---------------
    def __and__(self, other: Any) -> Any:
        return bw.bitwise_and(self, other)

    def __rand__(self, other: Any) -> Any:
        return bw.bitwise_and(other, self)

    def __or__(self, other: Any) -> Any:
        return bw.bitwise_or(self, other)

    def __ror__(self, other: Any) -> Any:
        return bw.bitwise_or(other, self)

    def __xor__(self, other: Any) -> Any:
        return bw.bitwise_xor(self, other)

    def __rxor__(self, other: Any) -> Any:
        return bw.bitwise_xor(other, self)

    def __lshift__(self, other: Any) -> Any:
        return bw.bitwise_left_shift(self, other)

    def __rlshift__(self, other: Any) -> Any:
        return bw.bitwise_left_shift(other, self)

    def __rshift__(self, other: Any) -> Any:
        return bw.bitwise_right_shift(self, other)

    def __rrshift__(self, other: Any) -> Any:
        return bw.bitwise_right_shift(other, self)

    def __invert__(self) -> Any:
        return bw.bitwise_invert(self)

    # Indexing --------------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Any:
        from tracejit.ops.shape import getitem

        return getitem(self, index)

    @property
    def at(self) -> Any:
        """The functional update, as in jax: ``x.at[index].set(v)`` (or ``.add``, ``.multiply``,
        ``.min``, ``.max``, ``.get()``) returns a new tensor; ``x`` is unchanged.

        >>> import tracejit as tj
        >>> x = tj.zeros(4)
        >>> x.at[1].set(5.0).numpy()
        array([0., 5., 0., 0.], dtype=float32)
        >>> x.at[tj.constant([0, 0, 3])].add(1.0).numpy()
        array([2., 0., 0., 1.], dtype=float32)
        """
        from tracejit.ops.advanced_indexing import IndexUpdateHelper

        return IndexUpdateHelper(self)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            f"{type(self).__name__} objects are immutable: x[{_index_text(index)}] = value "
            "cannot change x in place. Use x = x.at[index].set(value), which returns the "
            "updated tensor (a Variable: v.assign(v.at[index].set(value)))"
        )

    # Methods ---------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Any:
        from tracejit.ops.shape import reshape

        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def astype(self, dtype: Any) -> Any:
        return ew.cast(self, dtype)

    def tolist(self) -> Any:
        """The contents as (nested) Python lists of Python scalars, as numpy's ``tolist``.

        >>> import tracejit as tj
        >>> tj.constant([[1, 2], [3, 4]]).tolist()
        [[1, 2], [3, 4]]
        """
        return self.numpy().tolist()

    def transpose(self, *axes: Any) -> Any:
        from tracejit.ops.shape import transpose

        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0])
        return transpose(self, axes or None)

    def squeeze(self, axis: Any = None) -> Any:
        from tracejit.ops.shape import squeeze

        return squeeze(self, axis)

    # Reductions take numpy's keywords too (``dtype=``, ``out=None``), because numpy's own
    # functions call these methods: ``np.mean(t)`` is ``t.mean(axis=None, dtype=None, out=None)``.
    def sum(
        self,
        axis: Any = None,
        dtype: Any = None,
        out: None = None,
        keepdims: bool = False,
        **numpy_only: Any,
    ) -> Any:
        return _reduce(self, "sum", axis, keepdims, dtype, out, numpy_only)

    def mean(
        self,
        axis: Any = None,
        dtype: Any = None,
        out: None = None,
        keepdims: bool = False,
        **numpy_only: Any,
    ) -> Any:
        result = _reduce(self, "mean", axis, keepdims, dtype, out, numpy_only)
        return result if dtype is None else result.astype(dtype)

    def max(
        self, axis: Any = None, out: None = None, keepdims: bool = False, **numpy_only: Any
    ) -> Any:
        return _reduce(self, "max", axis, keepdims, None, out, numpy_only)

    def min(
        self, axis: Any = None, out: None = None, keepdims: bool = False, **numpy_only: Any
    ) -> Any:
        return _reduce(self, "min", axis, keepdims, None, out, numpy_only)

    def prod(
        self,
        axis: Any = None,
        dtype: Any = None,
        out: None = None,
        keepdims: bool = False,
        **numpy_only: Any,
    ) -> Any:
        return _reduce(self, "prod", axis, keepdims, dtype, out, numpy_only)

    def argmax(
        self, axis: Any = None, out: None = None, keepdims: bool = False, **numpy_only: Any
    ) -> Any:
        return _reduce(self, "argmax", axis, keepdims, None, out, numpy_only)

    def argmin(
        self, axis: Any = None, out: None = None, keepdims: bool = False, **numpy_only: Any
    ) -> Any:
        return _reduce(self, "argmin", axis, keepdims, None, out, numpy_only)

    def any(
        self, axis: Any = None, out: None = None, keepdims: bool = False, **numpy_only: Any
    ) -> Any:
        return _reduce(self, "any", axis, keepdims, None, out, numpy_only)

    def all(
        self, axis: Any = None, out: None = None, keepdims: bool = False, **numpy_only: Any
    ) -> Any:
        return _reduce(self, "all", axis, keepdims, None, out, numpy_only)


def _reduce(
    x: Any, name: str, axis: Any, keepdims: bool, dtype: Any, out: Any, numpy_only: dict
) -> Any:
    """The reduction ``tj.<name>`` of ``x``, after numpy's keywords are applied or refused."""
    from tracejit.ops import reduction  # (the reduction ops build on this module's methods)

    x = _numpy_compatible(x, name, dtype, out, numpy_only)
    return getattr(reduction, name)(x, axis=axis, keepdims=keepdims)


def _numpy_compatible(x: Any, method: str, dtype: Any, out: Any, numpy_only: dict) -> Any:
    """Apply numpy's ``dtype=`` (the dtype the reduction computes in, as jnp does) and refuse
    the numpy keywords that cannot work on immutable tensors, naming them."""
    if out is not None:
        raise TypeError(
            f"Tensor.{method}: out= is not supported (tensors are immutable); use the "
            f"returned tensor instead, e.g. result = np.{method}(t)"
        )
    if numpy_only:
        names = ", ".join(f"{name}=" for name in sorted(numpy_only))
        raise TypeError(f"Tensor.{method}: unsupported keyword(s) {names}")
    if dtype is None:
        return x
    from tracejit.ops.elementwise import cast

    return cast(x, dtype)


def _index_text(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    return ", ".join(
        "..." if p is Ellipsis else ":" if p == slice(None) else type(p).__name__
        if hasattr(p, "shape") else repr(p)
        for p in parts
    )
