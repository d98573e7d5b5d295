"""Tensors as jax and numpy see them: the protocols ``Tensor``, ``Variable`` and the symbolic
``Tracer`` implement, and the error a numpy or jax function gets for a symbolic tensor.

**jax.** An eager tensor *is* a jax array underneath, so jax gets that array, zero-copy, two ways:

- ``__jax_array__`` — what ``jnp.asarray``, ``jnp.concatenate`` and the other jax.numpy
  functions that check their arguments in Python call (``jax._src.numpy.util.ensure_arraylike``);
- a **pytree node with one leaf**, the array — what ``jax.jit``, ``jax.grad``, ``jax.vmap`` and
  every jit-wrapped ``jnp`` function (``jnp.sin``) see. Since jax 0.7, ``__jax_array__`` alone no
  longer works there: abstractification (``jax._src.core.shaped_abstractify``) refuses it with
  "Triggering __jax_array__() during abstractification is no longer supported ... register your
  object as a pytree", and the pytree route is the one jax points to. (The alternative,
  ``pytype_aval_mappings``, is jax-internal.) A consequence: ``jax.tree_util`` now looks *into* a
  tensor, so tracejit's own tree walks pass ``is_leaf=is_tensor_leaf`` (see tensor_methods.py),
  and a jax transformation gives results shaped like its arguments — ``jax.grad(f)(t)`` is a
  Tensor, as jax gives a gradient the structure of its argument.

One exception keeps tapes working: jax's array operators (``jax_array + t``) also ask for
``__jax_array__`` and would then compute a jax array the tape never sees. For them the property
answers ``None`` (as if the protocol were absent), so the operator returns ``NotImplemented`` and
Python calls the tensor's reflected operator — a tracejit op, recorded like any other.

**numpy.** ``__array__(dtype, copy)`` follows numpy 2 (``copy=False`` raises when a copy is
needed: a dtype change or a device-to-host transfer); numpy functions and ufuncs on eager
tensors return numpy results, as on TF2's eager tensors (``__array_function__`` and
``__array_ufunc__`` convert the tensors and call numpy). The ufuncs behind Python's operators
(``np.add`` for ``array + t``...) are the exception: they run the tracejit op, so ``array + t``
stays a tracejit tensor, recorded by tapes and symbolic while tracing.

**Symbolic tensors.** Inside a ``tj.function`` a tensor has no value, so numpy and jax.numpy
functions get ``ForeignFunctionError`` at the user's line, naming the tracejit op to use
(``np.sin(x)`` -> ``tj.sin(x)``), or ``tj.jax_function`` where tracejit has no op of that name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from tracejit.errors import ForeignFunctionError, is_library_frame
from tracejit.host import holds_whole
from tracejit.host import host_array as whole_host_array
from tracejit.ir.source import SourceLoc
from tracejit.tracing.context import Symbolic

# The file of jax's array operators (``_operator_add``...), found from an operator on first use
# (making an array at import would start jax's backends).
_jax_operators_file: list[str] = []
_NUMPY_MARKER = os.sep + "numpy" + os.sep


def called_by_jax_operator(depth: int = 2) -> bool:
    """Whether the frame ``depth`` levels up is one of jax's array operators (``a + t`` with
    ``a`` a jax array), which must get ``NotImplemented`` so the tensor's own operator runs."""
    code = sys._getframe(depth).f_code
    if not code.co_name.startswith("_operator_"):
        return False
    if not _jax_operators_file:
        _jax_operators_file.append(type(jax.numpy.zeros(())).__add__.__code__.co_filename)
    return code.co_filename == _jax_operators_file[0]


def register_pytree(kind: type, leaf_of: Callable[[Any], Any]) -> None:
    """Register ``kind`` with jax's pytrees as a node holding one leaf, ``leaf_of(obj)``.

    Rebuilding gives a Tensor around whatever leaf jax passes (jax rebuilds trees with its own
    tracers, results and placeholders), or the leaf itself when it already is a tracejit tensor
    (a ``tree_map`` whose function returns one)."""
    from tracejit.eager.tensor import wrap
    from tracejit.ops.tensor_methods import TensorMethods

    def rebuild(_: None, children: Any) -> Any:
        (leaf,) = children
        return leaf if isinstance(leaf, TensorMethods) else wrap(leaf)

    jax.tree_util.register_pytree_node(kind, lambda obj: ((leaf_of(obj),), None), rebuild)


# numpy ------------------------------------------------------------------------------------------
def host_array(array: jax.Array, dtype: Any, copy: bool | None) -> np.ndarray:
    """``__array__`` with numpy 2's ``copy`` semantics: ``None`` copies only when needed,
    ``True`` always gives a fresh writable array, ``False`` raises ``ValueError`` when the
    result cannot share the tensor's memory (another dtype, a device that is not the host)."""
    if not holds_whole(array):
        whole_host_array(array, "the tensor")  # raises NotAddressableError, naming gather
    if copy is True:
        return np.array(array, dtype=dtype, copy=True)
    if copy is False:
        if dtype is not None and np.dtype(dtype) != array.dtype:
            raise ValueError(
                f"__array__(copy=False): converting {array.dtype} to {np.dtype(dtype)} needs a copy"
            )
        if any(d.platform != "cpu" for d in array.devices()):
            raise ValueError(
                f"__array__(copy=False): the tensor lives on {array.device}, so a numpy array of "
                "it needs a device-to-host copy; use np.asarray(t) (copy=None) to allow it"
            )
        host = np.asarray(array)
        if host.size and host.ctypes.data != array.unsafe_buffer_pointer():
            raise ValueError("__array__(copy=False): this array cannot be shared with numpy")
        return host
    return np.asarray(array, dtype=dtype)


def _to_numpy(value: Any) -> Any:
    """``value`` with every eager tensor or variable (also inside lists, tuples and dicts, as
    ``np.concatenate([t, t])`` passes them) replaced by its numpy array."""
    from tracejit.ops.tensor_methods import TensorMethods

    if isinstance(value, TensorMethods):
        return np.asarray(value)  # a symbolic tensor raises here, naming the fix
    if type(value) in (list, tuple):
        return type(value)(_to_numpy(v) for v in value)
    if type(value) is dict:
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def operator_ufuncs() -> dict[Any, Callable[..., Any]]:
    """The ufuncs numpy calls for Python's binary operators on an array (``array + t`` is
    ``np.add(array, t)``), each with the tracejit op that implements the operator."""
    from tracejit.ops import bitwise as bw
    from tracejit.ops import elementwise as ew
    from tracejit.ops.linalg import matmul

    return {
        np.add: ew.add, np.subtract: ew.subtract, np.multiply: ew.multiply,
        np.divide: ew.divide, np.floor_divide: ew.floor_divide, np.remainder: ew.mod,
        np.power: ew.power, np.matmul: matmul, np.equal: ew.equal,
        np.not_equal: ew.not_equal, np.less: ew.less, np.less_equal: ew.less_equal,
        np.greater: ew.greater, np.greater_equal: ew.greater_equal,
        np.bitwise_and: bw.bitwise_and, np.bitwise_or: bw.bitwise_or,
        np.bitwise_xor: bw.bitwise_xor, np.left_shift: bw.bitwise_left_shift,
        np.right_shift: bw.bitwise_right_shift,
    }  # fmt: skip


_OPERATORS: dict[Any, Callable[..., Any]] = {}


def as_operator(ufunc: Any, method: str, inputs: tuple[Any, ...], kwargs: dict) -> Any:
    """The tracejit op for an operator ufunc called as ``array OP t`` (None for other calls)."""
    if method != "__call__" or kwargs or len(inputs) != 2:
        return None
    if not _OPERATORS:
        _OPERATORS.update(operator_ufuncs())
    return _OPERATORS.get(ufunc)


def eager_array_ufunc(ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """``__array_ufunc__`` of eager tensors and variables: operators run the tracejit op, other
    ufuncs run in numpy on the tensors' arrays (a numpy result, as TF2's eager tensors give)."""
    op = as_operator(ufunc, method, inputs, kwargs)
    if op is not None:
        return op(*inputs)
    if any(isinstance(x, Symbolic) for x in inputs):
        return NotImplemented  # numpy then asks the symbolic tensor, which names the fix
    return getattr(ufunc, method)(*_to_numpy(inputs), **_to_numpy(kwargs))


def eager_array_function(func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    """``__array_function__`` of eager tensors and variables: the numpy function on their
    arrays, so ``np.mean(t)`` and ``np.concatenate([t, t])`` give numpy results."""
    if any(issubclass(kind, Symbolic) for kind in types):
        return NotImplemented  # numpy then asks the symbolic tensor, which names the fix
    return func(*_to_numpy(args), **_to_numpy(kwargs))


# Symbolic tensors: the error ------------------------------------------------------------------
# numpy names whose array API (and tracejit) name differs.
_RENAMED = {
    "absolute": "abs", "arccos": "acos", "arccosh": "acosh", "arcsin": "asin",
    "arcsinh": "asinh", "arctan": "atan", "arctan2": "atan2", "arctanh": "atanh",
    "conjugate": "conj", "true_divide": "divide", "amax": "max", "amin": "min",
    "bitwise_not": "bitwise_invert", "invert": "bitwise_invert", "power": "pow",
    "left_shift": "bitwise_left_shift", "right_shift": "bitwise_right_shift",
    "add.reduce": "sum", "multiply.reduce": "prod", "maximum.reduce": "max",
    "minimum.reduce": "min", "add.accumulate": "cumulative_sum",
    "multiply.accumulate": "cumulative_prod",
}  # fmt: skip

# jax's call plumbing (jit, transformations, tracebacks): never the function the user called.
_JAX_PLUMBING = (
    "jax._src.traceback_util", "jax._src.pjit", "jax._src.api", "jax._src.api_util",
    "jax._src.linear_util", "jax._src.core", "jax._src.custom_derivatives", "jax._src.dispatch",
    "jax._src.interpreters", "jax._src.numpy.util",
)  # fmt: skip


def tracejit_op(name: str) -> str | None:
    """The public tracejit function for numpy/jax's ``name`` (``tj.sin``, ``tj.nn.softmax``)."""
    import tracejit

    for candidate in (name, _RENAMED.get(name)):
        if candidate is None:
            continue
        if callable(getattr(tracejit, candidate, None)):
            return f"tj.{candidate}"
        if callable(getattr(tracejit.nn, candidate, None)):
            return f"tj.nn.{candidate}"
    return None


def jax_library_name(module: str, name: str) -> str:
    """How a user writes the jax function ``name`` of ``module`` (``jnp.sin``, ``jax.nn.relu``)."""
    if module.startswith("jax._src.numpy"):
        sub = module.split(".")[3] if module.count(".") >= 3 else ""
        return f"jnp.{sub}.{name}" if sub in ("linalg", "fft") else f"jnp.{name}"
    for private, public in (
        ("jax._src.nn", "jax.nn"), ("jax._src.scipy", "jax.scipy"), ("jax._src.lax", "jax.lax"),
        ("jax._src.ops.special", "jax.scipy.special"), ("jax._src.random", "jax.random"),
    ):  # fmt: skip
        if module.startswith(private):
            if public == "jax.scipy":
                return f"jax.scipy.{module.split('.')[3]}.{name}"
            return f"{public}.{name}"
    return name


def _is_plumbing(module: str) -> bool:
    return module.startswith(_JAX_PLUMBING)


def _jax_caller() -> tuple[str, str, SourceLoc | None]:
    """``(written, name, loc)`` for the jax function the user called with a symbolic tensor:
    how it is written (``jnp.sin``), its bare name, and the user's line. The function is the
    outermost non-plumbing jax frame below the user's frame, or the function a jit/transform
    wrapper there holds (a jit-wrapped ``jnp.sin`` has no Python frame of its own)."""
    frames = []
    frame: Any = sys._getframe(2)
    while frame is not None and is_library_frame(frame.f_code.co_filename):
        frames.append(frame)
        frame = frame.f_back
    loc = (
        None
        if frame is None
        else SourceLoc(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
    )
    for library_frame in reversed(frames):  # outermost first
        module = library_frame.f_globals.get("__name__", "")
        if not module.startswith("jax"):
            continue
        if not _is_plumbing(module) and not library_frame.f_code.co_name.startswith("_"):
            name = library_frame.f_code.co_name
            return jax_library_name(module, name), name, loc
        wrapped = library_frame.f_locals.get("fun")
        wrapped_module = getattr(wrapped, "__module__", None) or ""
        name = getattr(wrapped, "__name__", "")
        if name and not _is_plumbing(wrapped_module) and not name.startswith("_"):
            return jax_library_name(wrapped_module, name), name, loc
    return "a jax function", "", loc


def _numpy_location() -> SourceLoc | None:
    frame: Any = sys._getframe(2)
    while frame is not None and (
        is_library_frame(frame.f_code.co_filename) or _NUMPY_MARKER in frame.f_code.co_filename
    ):
        frame = frame.f_back
    if frame is None:
        return None
    return SourceLoc(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _replacement(written: str, name: str, library: str) -> str:
    op = tracejit_op(name) if name else None
    if op is not None:
        return f"use {op}(x), the tracejit op, instead"
    wrapped = written if written != "a jax function" else "fn"
    if library == "numpy":
        return (
            f"tracejit has no op named {name}: compute it with tracejit ops, or wrap the jax "
            f"version with tj.jax_function (tj.jax_function(j{written})(x))"
        )
    return (
        f"tracejit has no op named {name or 'like it'}: wrap the jax function with "
        f"tj.jax_function (tj.jax_function({wrapped})(x)) to call it on tracejit tensors"
    )


def numpy_error(what: str, name: str) -> ForeignFunctionError:
    """The error for ``np.<name>`` (``what``: how the call is written) on a symbolic tensor."""
    return ForeignFunctionError(what, _replacement(what, name, "numpy"), _numpy_location())


def numpy_function_name(func: Any) -> tuple[str, str]:
    """``("np.linalg.norm", "norm")`` for a numpy function (``__array_function__``'s ``func``)."""
    module = getattr(func, "__module__", None) or "numpy"
    name = getattr(func, "__name__", "function")
    written = "np" + module[len("numpy") :] if module.startswith("numpy") else module
    return f"{written}.{name}", name


def ufunc_name(ufunc: Any, method: str) -> tuple[str, str]:
    """``("np.add.reduce", "add.reduce")`` for a ufunc call (``__array_ufunc__``'s arguments)."""
    name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
    return f"np.{name}", name


def jax_error() -> ForeignFunctionError:
    """The error for a jax function that got a symbolic tensor (raised from ``__jax_array__``:
    jax's abstractification and ``jnp``'s argument checks read it)."""
    written, name, loc = _jax_caller()
    return ForeignFunctionError(written, _replacement(written, name, "jax"), loc)
