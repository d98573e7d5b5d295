"""Variables: mutable state that keeps its value across eager code and compiled calls.

Eagerly a Variable holds a jax array and ``assign`` replaces it. Inside a ``tj.function`` its
reads and writes are *lifted*: the graph gets a state input (the value at call time) and, when
assigned, a state output that the runtime writes back after the compiled call succeeds.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.eager import interop
from tracejit.eager.tensor import Tensor, constant, wrap
from tracejit.errors import OpError, SymbolicNumpyError, TracejitError, TracerConversionError
from tracejit.host import describe_split, gather_array, holds_whole, host_array
from tracejit.ir.source import user_location
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.tracing import context
from tracejit.types import AVal, as_dtype, check_python_int, is_integer, shape_str

_names = itertools.count()
_scopes = threading.local()  # .stack: the open name scopes of this thread, outermost first


def current_name_scope() -> str:
    """The open name scopes joined by '/' ('' when none is open)."""
    return "/".join(getattr(_scopes, "stack", ()))


@contextlib.contextmanager
def name_scope(name: str) -> Iterator[str]:
    """Prefix the names of Variables created inside the block with ``name/``, as TF's
    ``tf.name_scope`` does (scopes nest).

    >>> import tracejit as tj
    >>> with tj.name_scope("dense"):
    ...     tj.Variable(1.0, name="kernel").name
    'dense/kernel'
    """
    if not isinstance(name, str) or not name or "/" in name.strip("/"):
        raise ValueError(f"name_scope expects a non-empty name without '/', got {name!r}")
    stack = getattr(_scopes, "stack", ())
    _scopes.stack = (*stack, name.strip("/"))
    try:
        yield current_name_scope()
    finally:
        _scopes.stack = stack


_serials = itertools.count()  # creation order: the order compiled calls take variable locks


class VariableCreationError(TracejitError, ValueError):
    """A variable was created where the rules do not allow it (a retrace of a tj.function).

    A ``ValueError``, the builtin TF raises for the same mistake."""


class Variable(TensorMethods):
    """Mutable state usable wherever a tensor is.

    >>> import tracejit as tj
    >>> v = tj.Variable([1.0, 2.0], name="v")
    >>> _ = v.assign_add([10.0, 10.0])
    >>> v.numpy()
    array([11., 12.], dtype=float32)
    """

    __slots__ = (
        "_value", "_aval", "name", "trainable", "exposed", "lock", "serial", "__weakref__"
    )

    def __init__(
        self,
        initial_value: Any,
        trainable: bool = True,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        builder = context.state.builder
        if isinstance(initial_value, Variable):  # tf.Variable(v): a new variable, v's value
            if builder is not None:  # (eagerly, _adopt below shares v's buffer and marks it)
                initial_value = initial_value.value()
        if callable(initial_value):
            with context.paused_tracing():
                initial_value = initial_value()
        if builder is not None:
            builder.note_variable_created(self)
            initial_value = builder.evaluate_constant(initial_value, "tj.Variable initial value")
        array, shared = _adopt(initial_value, dtype)
        self._value: jax.Array = array
        self._aval = AVal(tuple(self._value.shape), as_dtype(self._value.dtype), False)
        base = name if name is not None else f"Variable_{next(_names)}"
        scope = current_name_scope()
        self.name = f"{scope}/{base}" if scope else base
        self.trainable = bool(trainable)
        # True while someone else may hold this buffer (the tensor it came from, a read, an
        # eager op that returned it unchanged): a compiled call then does not donate it.
        self.exposed = shared
        # Held around each compiled call that uses this variable (and eager read-modify-writes),
        # taken in ``serial`` order, so concurrent calls never lose an update.
        self.lock = threading.RLock()
        self.serial = next(_serials)
        strategy = context.state.strategy
        if strategy is not None:  # created under `with strategy.scope()`: lay it out on its mesh
            self._value = strategy.place_variable(self)
        elif context.state.device is not None:  # under tj.device(...): pinned there, as in TF
            placed = context.state.device
            if self._value.devices() != {placed}:
                self.exposed = False  # a copy of its own
            self._value = jax.device_put(self._value, placed)  # committed: it stays there

    @property
    def aval(self) -> AVal:
        return self._aval

    # Reads -----------------------------------------------------------------------------------
    def value(self) -> Any:
        """The current value: a tensor (a symbolic one inside a tj.function)."""
        builder = context.state.builder
        if builder is not None:
            return builder.read_variable(self)
        with self.lock:
            self.exposed = True
            tensor = wrap(self._value)
        if context.state.tapes:
            from tracejit.autodiff.tape import notify_variable_read

            notify_variable_read(self, tensor)
        return tensor

    read_value = value

    def numpy(self) -> np.ndarray:
        if context.state.builder is not None:  # it would bake the trace-time value in, silently
            raise SymbolicNumpyError(
                f".numpy() of the variable '{self.name}' inside a tj.function",
                "Use the variable itself (v, v.value()) in ops, so each call reads its value "
                "then; or call .numpy() outside the function.",
                user_location(),
            )
        return host_array(self._value, f"the variable '{self.name}'")

    # jax and numpy (tracejit/eager/interop.py): eagerly a variable is its current value, as
    # a tf.Variable is to numpy; jax sees that value (a Tensor where jax rebuilds the variable's
    # pytree, e.g. jax.grad(f)(v)), since jax functions are pure and cannot assign it. Inside a
    # tj.function it is symbolic, like any tensor there.
    def exposed_array(self) -> jax.Array:
        """The current buffer, handed out: no compiled call donates it from now on."""
        with self.lock:
            self.exposed = True
            return self._value

    @property
    def __jax_array__(self) -> Any:
        if interop.called_by_jax_operator():
            return None  # ``jax_array + v``: Python then calls our reflected operator
        if context.state.builder is not None:
            raise interop.jax_error()
        array = self.exposed_array()
        return lambda: array

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if context.state.builder is not None:
            raise TracerConversionError(
                f"A numpy array of the variable '{self.name}' inside a tj.function",
                "Use tracejit ops on the variable (tj.sin(v), tj.mean(v), ...), so each call "
                "reads its value then.",
                user_location(),
            )
        return interop.host_array(self.exposed_array(), dtype, copy)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if context.state.builder is not None:
            return self.value().__array_ufunc__(ufunc, method, *inputs, **kwargs)
        return interop.eager_array_ufunc(ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if context.state.builder is not None:
            return self.value().__array_function__(func, types, args, kwargs)
        return interop.eager_array_function(func, types, args, kwargs)

    def __bool__(self) -> bool:
        return bool(self.value())

    def __float__(self) -> float:
        return float(self.value())

    def __int__(self) -> int:
        return int(self.value())

    def __len__(self) -> int:
        return len(self.value())

    # Writes ----------------------------------------------------------------------------------
    def assign(self, value: Any) -> Variable:
        """Replace the value; shape and dtype must match the variable's."""
        builder = context.state.builder
        if builder is not None:
            builder.assign_variable(self, value)
            return self
        if isinstance(value, (Tensor, Variable, jax.Array)):
            array, shared = _adopt(value, None)
        elif isinstance(value, (bool, int, float)):
            if type(value) is int and is_integer(self._aval.dtype):
                check_python_int(value, self._aval.dtype)
            array, shared = jnp.asarray(value, self._aval.dtype), False
        else:  # a list or numpy array converts to the variable's dtype, as in TF
            array, shared = converted_to(value, self._aval.dtype), False
        check_assignable(self, AVal(tuple(array.shape), as_dtype(array.dtype), False), "assign")
        layout = self._value.sharding
        if len(layout.device_set) > 1 and array.sharding != layout:
            array = laid_out(array, layout)  # a distributed variable keeps its layout
        with self.lock:
            self._value = array
            self.exposed = shared
        return self

    def assign_add(self, delta: Any) -> Variable:
        """``v += delta`` (atomic with respect to compiled calls using ``v``)."""
        if context.state.builder is not None:
            return self.assign(self.value() + delta)
        with self.lock:
            return self.assign(self.value() + delta)

    def assign_sub(self, delta: Any) -> Variable:
        """``v -= delta`` (atomic with respect to compiled calls using ``v``)."""
        if context.state.builder is not None:
            return self.assign(self.value() - delta)
        with self.lock:
            return self.assign(self.value() - delta)

    def __repr__(self) -> str:
        if not holds_whole(self._value):
            body = f"<{describe_split(self._value)}>"
        else:
            body = np.array2string(np.asarray(self._value), separator=", ")
        return (
            f"<tj.Variable '{self.name}' shape={tuple(self._aval.shape)} "
            f"dtype={self._aval.dtype}, numpy={body}>"
        )


def laid_out(array: jax.Array, layout: Any) -> jax.Array:
    """``array`` in ``layout``; a layout over other processes' devices too is filled by each
    process from the whole value (which every process must then assign alike)."""
    if layout.is_fully_addressable:
        return jax.device_put(array, layout)
    host = gather_array(array)
    return jax.make_array_from_callback(host.shape, layout, lambda index: host[index])


def _pytree_leaf(variable: Variable) -> Any:
    """What jax's pytree walks see in a variable: its buffer (handed out), or the symbolic read
    inside a tj.function, so a ``tree_map`` over variables there stays symbolic."""
    if context.state.builder is not None:
        return variable.value()
    return variable.exposed_array()


interop.register_pytree(Variable, _pytree_leaf)


def converted_to(value: Any, dtype: Any) -> jax.Array:
    """``value`` (a nest of Python numbers or a numpy array) as an array of ``dtype``: the
    conversion TF's ``assign`` does. Lossy conversions (a float list into an int variable)
    keep their own dtype, so the check below names them."""
    array = np.asarray(value)
    if array.dtype == object:
        return constant(value)._value
    if np.can_cast(array.dtype, dtype, casting="same_kind") or array.dtype.kind in "biu":
        if not (array.dtype.kind == "f" and np.dtype(dtype).kind in "biu"):
            return jnp.asarray(array, dtype)
    return constant(value)._value


def _adopt(value: Any, dtype: Any) -> tuple[jax.Array, bool]:
    """The array a variable takes for ``value``, and whether that buffer is shared.

    This is the one place where a variable decides whether it owns its buffer: an array that
    is (or may be) still visible elsewhere -- a Tensor's, a jax array the caller holds, another
    Variable's -- is taken without a copy but marked shared, so the next compiled call does not
    donate it (and writes back a buffer of its own). A buffer made here from Python or numpy
    data is owned.
    """
    if isinstance(value, Variable):
        with value.lock:
            value.exposed = True  # both variables now hold this buffer
            source: Any = value._value
        value = source
    elif isinstance(value, Tensor):
        source = value._value
    elif isinstance(value, jax.Array):
        source = value
    else:
        source = None
    array = constant(value, dtype)._value
    return array, array is source


def check_assignable(variable: Variable, aval: AVal, method: str) -> None:
    """Raise the clear error when a value of ``aval`` cannot be assigned to ``variable``."""
    target = variable.aval
    shape_ok = len(aval.shape) == len(target.shape) and all(
        a is None or a == t for a, t in zip(aval.shape, target.shape)
    )
    dtype_ok = aval.dtype == target.dtype or (aval.weak and aval.shape == ())
    if not (shape_ok and dtype_ok):
        raise OpError(
            f"Variable.{method}",
            f"variable '{variable.name}' is {target}: it needs a value of shape "
            f"{shape_str(target.shape)} and dtype {target.dtype}, got {aval}",
            user_location(),
        )
