"""``tj.TensorArray``: TF's list of same-shaped tensors, written one element at a time in loops.

A TensorArray is a value, as in TF2: ``ta = ta.write(i, x)`` returns a new array and leaves the
old one as it was. It holds one buffer tensor of shape ``(size, *element_shape)``; ``write`` is a
functional update of one row (``buffer.at[i].set(x)``: a ``scatter_index`` node, which XLA turns
into a dynamic-update-slice), ``read`` one row, ``stack`` the buffer itself. So it costs no new
op, gradients flow through the ops it uses, and it can be loop state: it is a dataclass, which
the loop carries of ``tj.while_loop`` / ``tj.scan`` / ``tj.fori_loop`` (and ``tj.function``
arguments and results) flatten into its buffer tensor and its static fields.

Sizes are static, as XLA requires (TF's ``jit_compile=True`` asks the same): a
``dynamic_size=True`` array grows when written at a *known* index (a Python int or an eager
tensor) past its end, eagerly or while tracing, but a compiled loop carries a buffer of one
shape, so there a write at a tensor index must stay within the size the array had when the loop
began. Writing a ``dynamic_size`` array of size 0 at a tensor index raises, asking for
``size=``. At run time, a tensor index out of range clamps when read and drops the write (jax's
rules: the index is not known until the compiled code runs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import DtypeError, IndexOutOfRangeError, OpError, ShapeError
from tracejit.ir.source import user_location
from tracejit.types import as_dtype

_ElementShape = tuple[int | None, ...] | None


def _label(name: str | None) -> str:
    return f"TensorArray '{name}'" if name else "TensorArray"


@dataclasses.dataclass(init=False, eq=False, repr=False)
class TensorArray:
    """A list of tensors of one dtype and shape, for accumulating values in loops (TF's
    ``tf.TensorArray``). Every method that changes it returns a new TensorArray.

    Args:
        dtype: the dtype of the elements.
        size: the number of elements (a Python int, or an eager scalar tensor).
        dynamic_size: whether writes past the end grow the array (at indices known while
            tracing; see the module docstring for loops).
        clear_after_read: accepted for TF compatibility; reads never clear (values are
            immutable buffers, so a second read is as cheap as the first).
        element_shape: the shape of every element; None (or None dims) to take it from the
            first write.
        infer_shape: accepted; elements must always have one shape here.
        name: a name used in error messages.

    >>> import tracejit as tj
    >>> @tj.function
    ... def squares(n):
    ...     ta = tj.TensorArray(tj.float32, size=4)
    ...     ta = tj.fori_loop(0, 4, lambda i, ta: ta.write(i, tj.cast(i * i, "float32")), ta)
    ...     return ta.stack()
    >>> squares(4).numpy()
    array([0., 1., 4., 9.], dtype=float32)
    """

    _dtype: str  # a name, so the structure holds only what a tj.function may return
    dynamic_size: bool
    element_shape: _ElementShape
    name: str | None
    _length: int
    _buffer: Any

    def __init__(
        self,
        dtype: Any = None,
        size: Any = None,
        dynamic_size: bool | None = None,
        clear_after_read: bool | None = None,
        tensor_array_name: str | None = None,
        handle: Any = None,
        flow: Any = None,
        infer_shape: bool = True,
        element_shape: Sequence[int | None] | None = None,
        colocate_with_first_write_call: bool = True,
        name: str | None = None,
        *,
        _dtype: str | None = None,
        _length: int | None = None,
        _buffer: Any = None,
    ) -> None:
        del clear_after_read, handle, flow, infer_shape, colocate_with_first_write_call
        if dtype is None and _dtype is None:
            raise TypeError("TensorArray() needs a dtype, e.g. tj.TensorArray(tj.float32, size=3)")
        self._dtype = as_dtype(dtype if _dtype is None else _dtype).name
        self.name = name if name is not None else tensor_array_name
        if not isinstance(dynamic_size, (bool, type(None))):
            raise TypeError(
                f"{_label(self.name)}: dynamic_size must be a bool, got "
                f"{type(dynamic_size).__name__} {dynamic_size!r}"
            )
        self.dynamic_size = bool(dynamic_size)
        self.element_shape = _as_shape(self.name, element_shape)
        if _length is not None:  # rebuilt from a loop carry or by a method: already checked
            self._length, self._buffer = _length, _buffer
            return
        self._length = self._static_size(size)
        self._buffer = None
        if self._known_shape() is not None:
            self._buffer = self._zeros(self._length, self._known_shape())

    # TF's properties ----------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        """The dtype of the elements."""
        return np.dtype(self._dtype)

    def __repr__(self) -> str:
        shape = "unknown" if self.element_shape is None else self.element_shape
        return (
            f"<{_label(self.name)} dtype={self.dtype.name} size={self._length} "
            f"element_shape={shape} dynamic_size={self.dynamic_size}>"
        )

    def size(self, name: str | None = None) -> Any:
        """The number of elements, an int32 scalar tensor (TF's ``size()``)."""
        from tracejit.eager.tensor import constant

        return constant(self._length, dtype=np.int32)

    def identity(self) -> TensorArray:
        """The array itself (TF's ``identity``; values are immutable here)."""
        return self

    def close(self, name: str | None = None) -> None:
        """Accepted for TF compatibility: a TensorArray holds no resource to release."""

    # reading ------------------------------------------------------------------------------------
    def read(self, index: Any, name: str | None = None) -> Any:
        """The element at ``index`` (a Python int or an int scalar tensor)."""
        known = self._known_index(index, "read")
        if known is not None and not 0 <= known < self._length:
            raise self._range_error("read from", known)
        if self._buffer is None:
            raise self._no_shape("read")
        return self._buffer[known if known is not None else index]

    def stack(self, name: str | None = None) -> Any:
        """All elements stacked into one tensor of shape ``(size, *element_shape)``; elements
        never written are zeros (as TF's eager TensorArray gives)."""
        if self._buffer is None:
            raise self._no_shape("stack")
        return self._buffer

    def gather(self, indices: Any, element_shape: Any = None, name: str | None = None) -> Any:
        """The elements at ``indices`` (a 1-d list or int tensor), stacked."""
        indices = self._index_vector(indices, "gather")
        if self._buffer is None:
            raise self._no_shape("gather")
        from tracejit.ops.indexing import take

        return take(self._buffer, indices, axis=0)

    def concat(self, name: str | None = None) -> Any:
        """The elements joined along their first axis (each must have rank >= 1)."""
        if self._buffer is None:
            raise self._no_shape("concat")
        shape = self._buffer.shape
        if len(shape) < 2:
            raise ShapeError(
                "TensorArray.concat",
                f"{_label(self.name)} holds scalars; concat needs elements of rank >= 1 (use "
                "stack() for scalars)",
                user_location(),
            )
        from tracejit.ops.shape import reshape

        return reshape(self._buffer, (shape[0] * shape[1], *shape[2:]))

    # writing ------------------------------------------------------------------------------------
    def write(self, index: Any, value: Any, name: str | None = None) -> TensorArray:
        """A new TensorArray with ``value`` at ``index`` (``ta = ta.write(i, x)``)."""
        value = self._convert(value, "write")
        shape = self._merge_shape(tuple(value.shape), "write")
        known = self._known_index(index, "write")
        if known is not None and known < 0:
            raise self._range_error("write to", known)
        length = self._length
        if known is not None and known >= length:
            if not self.dynamic_size:
                raise self._range_error("write to", known)
            length = known + 1
        elif known is None and length == 0:
            raise OpError(
                "TensorArray.write",
                f"{_label(self.name)} has size 0 and is written at a tensor index: a compiled "
                "loop carries a buffer of one shape, so the array cannot grow there; give the "
                "number of elements the loop writes as size= (TF's jit_compile=True asks the "
                "same)",
                user_location(),
            )
        buffer = self._grown(length, shape)
        buffer = buffer.at[known if known is not None else index].set(value)
        return self._with(buffer, length, shape)

    def unstack(self, value: Any, name: str | None = None) -> TensorArray:
        """A new TensorArray whose elements are the rows of ``value``."""
        value = self._convert(value, "unstack")
        if value.ndim == 0:
            raise ShapeError(
                "TensorArray.unstack",
                f"{_label(self.name)}: unstack needs a value of rank >= 1, got a scalar",
                user_location(),
            )
        n = value.shape[0]
        if n == self._length or (self.dynamic_size and n >= self._length):
            shape = self._merge_shape(tuple(value.shape[1:]), "unstack")
            return self._with(value, n, shape)
        return self.scatter(list(range(n)), value)

    def scatter(self, indices: Any, value: Any, name: str | None = None) -> TensorArray:
        """A new TensorArray with the rows of ``value`` at ``indices``."""
        value = self._convert(value, "scatter")
        indices = self._index_vector(indices, "scatter", writing=True)
        if value.ndim == 0 or indices.shape[0] != value.shape[0]:
            raise ShapeError(
                "TensorArray.scatter",
                f"{_label(self.name)}: {indices.shape[0]} indices but a value of shape "
                f"{tuple(value.shape)}; the value needs one row per index",
                user_location(),
            )
        shape = self._merge_shape(tuple(value.shape[1:]), "scatter")
        from tracejit.ops.arguments import concrete_value

        length = self._length
        known = concrete_value(indices)
        if known is not None and known.size:
            length = max(length, int(known.max()) + 1)
        buffer = self._grown(length, shape).at[indices].set(value)
        return self._with(buffer, length, shape)

    # helpers ------------------------------------------------------------------------------------
    def _static_size(self, size: Any) -> int:
        from tracejit.ops.arguments import concrete_value

        if size is None:
            return 0
        value = size if isinstance(size, int) else concrete_value(size)
        if value is None:
            raise TypeError(
                f"{_label(self.name)}: size must be known while tracing (a Python int or an "
                "eager tensor), as XLA needs static shapes; got a tensor computed in the "
                "function"
            )
        value = int(np.asarray(value))
        if value < 0:
            raise ValueError(f"{_label(self.name)}: size must be >= 0, got {value}")
        return value

    def _known_shape(self) -> tuple[int, ...] | None:
        shape = self.element_shape
        if shape is None or any(d is None for d in shape):
            return None
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]

    def _zeros(self, length: int, shape: tuple[int, ...]) -> Any:
        from tracejit.ops.creation import zeros

        return zeros((length, *shape), dtype=self.dtype)

    def _grown(self, length: int, shape: tuple[int, ...]) -> Any:
        """The buffer with ``length`` rows of ``shape`` (zeros where nothing was written)."""
        if self._buffer is None:
            return self._zeros(length, shape)
        if length == self._length:
            return self._buffer
        from tracejit.ops.shape import concatenate

        return concatenate([self._buffer, self._zeros(length - self._length, shape)], axis=0)

    def _with(self, buffer: Any, length: int, shape: tuple[int, ...]) -> TensorArray:
        return TensorArray(
            _dtype=self._dtype,
            dynamic_size=self.dynamic_size,
            element_shape=shape,
            name=self.name,
            _length=length,
            _buffer=buffer,
        )

    def _convert(self, value: Any, what: str) -> Any:
        from tracejit.eager.tensor import Tensor, constant
        from tracejit.tracing.tracer import Tracer

        if not isinstance(value, (Tensor, Tracer)):
            kind = np.asarray(value).dtype.kind
            if (kind in "fc" and self.dtype.kind in "biu") or (
                kind == "c" and self.dtype.kind == "f"
            ):
                raise DtypeError(
                    f"{_label(self.name)} holds {self.dtype.name}; {what} got {value!r}, which "
                    f"would lose its {'fraction' if kind == 'f' else 'imaginary part'} "
                    "converted to it (cast it first)"
                )
            try:
                return constant(value, dtype=self.dtype)
            except (TypeError, ValueError, OverflowError) as error:
                raise DtypeError(
                    f"{_label(self.name)} holds {self.dtype.name}; {what} got a value that does "
                    f"not convert to it: {error}"
                ) from None
        if np.dtype(value.dtype) != self.dtype:
            promoted = np.dtype(jnp.result_type(self.dtype, value.aval.dtype))
            if value.aval.weak and promoted == self.dtype:  # a Python number made tensor
                from tracejit.ops.elementwise import cast

                return cast(value, self.dtype)
            loc = user_location()
            raise DtypeError(
                f"{_label(self.name)} holds {self.dtype.name} but {what} was given a tensor "
                f"of dtype {np.dtype(value.dtype).name} and shape {tuple(value.shape)}; cast it "
                "first (tj.cast)" + (f"\n  at {loc}" if loc is not None else "")
            )
        return value

    def _merge_shape(self, shape: tuple[int, ...], what: str) -> tuple[int, ...]:
        expected = self.element_shape
        if expected is not None and (
            len(expected) != len(shape)
            or any(e is not None and e != s for e, s in zip(expected, shape))
        ):
            raise ShapeError(
                f"TensorArray.{what}",
                f"{_label(self.name)} holds elements of shape {_show(expected)} but {what} was "
                f"given one of shape {_show(shape)}; all elements must have one shape",
                user_location(),
            )
        return shape

    def _known_index(self, index: Any, what: str) -> int | None:
        from tracejit.ops.arguments import concrete_value

        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            if not hasattr(index, "dtype"):
                raise TypeError(
                    f"{_label(self.name)}.{what}: the index must be an int or an int scalar "
                    f"tensor, got {type(index).__name__}"
                )
            if not np.issubdtype(np.dtype(index.dtype), np.integer) or tuple(index.shape) != ():
                raise TypeError(
                    f"{_label(self.name)}.{what}: the index must be an int scalar, got a "
                    f"{np.dtype(index.dtype).name} tensor of shape {tuple(index.shape)}"
                )
            value = concrete_value(index)
            return None if value is None else int(np.asarray(value))
        return int(index)

    def _index_vector(self, indices: Any, what: str, writing: bool = False) -> Any:
        from tracejit.eager.tensor import Tensor, constant
        from tracejit.ops.arguments import concrete_value
        from tracejit.tracing.tracer import Tracer

        if not isinstance(indices, (Tensor, Tracer)):
            indices = constant(np.asarray(indices, dtype=np.int32).reshape(-1))
        if (
            tuple(indices.shape)[:1] == ()
            or len(indices.shape) != 1
            or not np.issubdtype(np.dtype(indices.dtype), np.integer)
        ):
            raise TypeError(
                f"{_label(self.name)}.{what}: indices must be a 1-d int list or tensor, got a "
                f"{np.dtype(indices.dtype).name} tensor of shape {tuple(indices.shape)}"
            )
        known = concrete_value(indices)
        if known is not None and known.size:
            beyond = known >= self._length if not (writing and self.dynamic_size) else False
            bad = known[(known < 0) | beyond]
            if bad.size:
                raise self._range_error("write to" if writing else "read from", int(bad[0]))
        return indices

    def _range_error(self, verb: str, index: int) -> IndexOutOfRangeError:
        grow = "" if self.dynamic_size or "read" in verb else " and is not resizeable"
        return IndexOutOfRangeError(
            f"TensorArray.{verb.split()[0]}",
            f"tried to {verb} index {index} but {_label(self.name)} has size {self._length}{grow}",
            user_location(),
        )

    def _no_shape(self, what: str) -> ShapeError:
        return ShapeError(
            f"TensorArray.{what}",
            f"{_label(self.name)} has no element shape yet (nothing written and no "
            "element_shape= given); write an element or pass element_shape=",
            user_location(),
        )


def _as_shape(name: str | None, shape: Any) -> _ElementShape:
    if shape is None:
        return None
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(
            f"{_label(name)}: element_shape must be a sequence of ints or None, got {shape!r}"
        ) from None


def _show(shape: _ElementShape) -> str:
    if shape is None:
        return "unknown"
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def refine_carry(values: Any, out_structure: Any) -> Any | None:
    """Loop variables with a buffer given to each TensorArray that entered the loop without one
    (no element shape yet) and that the body wrote: the element shape is the one the body's
    writes gave (as TF infers it from the first write), the buffer zeros. None when nothing
    changes. The loop functions trace the body again with the refined variables, so the carry
    keeps one structure (the shape of a loop carry cannot change in XLA)."""
    from tracejit.tracing import signature as sig
    from tracejit.types import AVal

    changed = False

    def walk(value: Any, structure: Any) -> Any:
        nonlocal changed
        if not isinstance(structure, tuple) or not structure:
            return value
        if isinstance(value, TensorArray):
            if value._buffer is not None or structure[0] is not TensorArray:
                return value
            out = dict(zip(structure[1], structure[2]))
            buffer, length = out["_buffer"], out["_length"]
            if not isinstance(buffer, AVal) or length != (sig.STATIC, int, value._length):
                return value  # it grew in the body: the loop reports the changed carry
            changed = True
            shape = tuple(int(d) for d in buffer.shape[1:])  # type: ignore[arg-type]
            return value._with(value._zeros(value._length, shape), value._length, shape)
        kind = type(value)
        if kind in (tuple, list) and structure[0] in (sig.TUPLE, sig.LIST):
            if len(structure[1]) == len(value):
                return kind(walk(v, s) for v, s in zip(value, structure[1]))
        if kind is dict and structure[0] == sig.DICT:
            refined = dict(value)
            for key, child in zip(structure[2], structure[3]):
                if key in refined:
                    refined[key] = walk(refined[key], child)
            return refined
        return value

    result = walk(values, out_structure)
    return result if changed else None


def with_first_write(before: Any, after: Any) -> TensorArray | None:
    """``before`` (a TensorArray a loop starts with, with no element shape yet) given a zeros
    buffer of the element shape ``after`` (its value at the end of the body) has; None when that
    does not apply. AutoGraph's loops trace again from it, as ``refine_carry`` lets the loop
    functions do."""
    if not (isinstance(before, TensorArray) and isinstance(after, TensorArray)):
        return None
    if before._buffer is not None or after._buffer is None or after._length != before._length:
        return None
    shape = tuple(int(d) for d in after._buffer.shape[1:])
    from tracejit.tracing.context import init_scope

    with init_scope():  # called inside the body's trace: the buffer must come from outside it
        buffer = before._zeros(before._length, shape)
    return before._with(buffer, before._length, shape)


def _flatten_pytree(ta: TensorArray) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    children = () if ta._buffer is None else (ta._buffer,)
    return children, (ta._dtype, ta.dynamic_size, ta.element_shape, ta.name, ta._length)


def _unflatten_pytree(aux: tuple[Any, ...], children: Sequence[Any]) -> TensorArray:
    dtype, dynamic_size, element_shape, name, length = aux
    return TensorArray(
        _dtype=dtype,
        dynamic_size=dynamic_size,
        element_shape=element_shape,
        name=name,
        _length=length,
        _buffer=children[0] if children else None,
    )


# A jax pytree too, so code that walks values with jax.tree_util (AutoGraph's loop state) sees
# the buffer tensor inside.
jax.tree_util.register_pytree_node(TensorArray, _flatten_pytree, _unflatten_pytree)
