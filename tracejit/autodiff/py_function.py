"""``tj.py_function`` / ``tj.numpy_function``: arbitrary Python code inside a compiled function.

TF's ``tf.py_function(func, inp, Tout)`` runs ``func`` at run time, on eager tensors, from a
graph; ``tf.numpy_function`` does the same on numpy arrays. Here:

- eagerly (no trace active) both just run ``func`` (``py_function`` on the tensors themselves, so
  an active tape sees its ops; ``numpy_function`` on numpy copies, so no gradient flows);
- while tracing each is one IR node (``py_function[Tout=..., func=NAME]``) whose output avals are
  the declared ``Tout``. It lowers to a jax host callback: ``jax.experimental.io_callback`` for the
  stateful ops (``py_function``, ``numpy_function(stateful=True)``: marked impure, so no pass
  folds, merges or drops them, and XLA keeps them too), ``jax.pure_callback`` for
  ``numpy_function(stateful=False)`` (pure: CSE may merge two identical calls, DCE may drop an
  unused one; never folded).

Every result is checked against ``Tout`` when the callback runs: another shape or dtype raises
an error naming the function (Python numbers and lists are converted to the declared dtype, as
TF converts them).

The gradient of ``py_function`` is TF's: ``func`` runs eagerly under a tape. Its VJP binds the
``py_function_grad`` op, a second callback that re-runs ``func`` under an eager
``GradientTape`` watching the inputs and returns ``tape.gradient(outputs, inputs,
output_gradients=cts)``; gradients flow to the tensors (and variables) in ``inp``.
``numpy_function`` is not differentiable, as in TF. Saved functions refuse both (the function is
Python code, not data).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import io_callback

from tracejit.autodiff.tape import GradientTape
from tracejit.eager.tensor import Tensor, wrap
from tracejit.eager.variable import Variable
from tracejit.errors import (
    ExecutionError,
    InvalidArgumentError,
    OpTypeError,
    is_library_frame,
    python_error_type,
    raised_in_callback,
)
from tracejit.ir.graph import Graph, Node, nested_graphs
from tracejit.ir.source import user_location
from tracejit.ops.arguments import arg_aval
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.registry import bind, defop
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.tracing import context
from tracejit.types import AVal, DType, TensorSpec, array_of_python, as_dtype

TENSOR_INPUTS, NUMPY_INPUTS = "tensors", "numpy"


class HostFunction:
    """A Python function as an op param: compared by identity, printed as its name (the IR
    never shows Python reprs). ``inputs`` says what it is called with: eager tensors
    (``py_function``) or numpy arrays (``numpy_function``)."""

    __slots__ = ("fn", "name", "inputs")

    def __init__(self, fn: Callable[..., Any], name: str, inputs: str) -> None:
        self.fn, self.name, self.inputs = fn, name, inputs

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HostFunction)
            and other.fn is self.fn
            and other.name == self.name
            and other.inputs == self.inputs
        )

    def __hash__(self) -> int:
        return hash((id(self.fn), self.name, self.inputs))

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__

    def what(self) -> str:
        kind = "tj.py_function" if self.inputs == TENSOR_INPUTS else "tj.numpy_function"
        return f"{kind} {self.name!r}"


class OutTypes:
    """The declared ``Tout`` as a param: avals, printed ``(f32[3],i32[])``. Not a tuple, so
    params keep it (and its avals) as it is."""

    __slots__ = ("avals",)

    def __init__(self, avals: Sequence[AVal]) -> None:
        self.avals = tuple(avals)

    def __iter__(self) -> Iterator[AVal]:
        return iter(self.avals)

    def __len__(self) -> int:
        return len(self.avals)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutTypes) and other.avals == self.avals

    def __hash__(self) -> int:
        return hash(self.avals)

    def __str__(self) -> str:
        return "(" + ",".join(str(a) for a in self.avals) + ")"

    __repr__ = __str__


def _noting_errors(host: Callable[..., Any], fn: HostFunction) -> Callable[..., Any]:
    """A host callback whose errors reach the caller as tracejit's run-time errors (not as
    jax's wrapped runtime error with its traceback text), and are not logged again by jax. An
    error of the user's function becomes the ``tj.errors`` class TF uses for it
    (``ValueError`` -> ``InvalidArgumentError``), naming the function and the line that raised."""

    @functools.wraps(host)
    def call(*arrays: Any) -> Any:
        try:
            return host(*arrays)
        except ExecutionError as err:
            noted: Exception = err
        except Exception as err:  # noqa: BLE001 - the user's code: re-raised as TF's class
            line = _raising_line(err)
            noted = python_error_type(err)(f"{fn.what()} raised {type(err).__name__}{line}: {err}")
        noted._tracejit_noted = True  # type: ignore[attr-defined]
        raise raised_in_callback(noted) from None

    if not _QUIET[0]:  # once, when the first callback is made (not at import time)
        logging.getLogger("jax._src.callback").addFilter(_QuietNoted())
        _QUIET[0] = True
    return call


_NUMPY_DIR = os.sep + "numpy" + os.sep


def _raising_line(err: BaseException) -> str:
    """`` at file:line`` of the innermost frame of the user's code in ``err``'s traceback."""
    frames = [
        f
        for f in traceback.extract_tb(err.__traceback__)
        if not is_library_frame(f.filename) and _NUMPY_DIR not in f.filename
    ]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


class _QuietNoted(logging.Filter):
    """Drop jax's log record of a callback failure that tracejit re-raises itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        return not getattr(err, "_tracejit_noted", False)


_QUIET = [False]  # whether jax's callback logger has the filter


@contextlib.contextmanager
def _eager_host() -> Iterator[None]:
    """Run the user's function eagerly with no tape recording: callbacks run on the calling
    thread, which may be inside a trace or a tape of its own."""
    state = context.state
    tapes = state.tapes
    state.tapes = ()
    try:
        with context.interpreting(context.base_interpreter()):
            yield
    finally:
        state.tapes = tapes


# Checking results against Tout ------------------------------------------------------------------
def _describe(shape: Sequence[int | None] | None, dtype: DType) -> str:
    shown = "any shape" if shape is None else f"shape {tuple(shape)}"
    return f"{shown} and dtype {dtype}"


def _checked(
    value: Any, shape: tuple[int | None, ...] | None, dtype: DType, fn: HostFunction, i: int
) -> Any:
    """``value`` as an array of the declared dtype (a jax array, or the tensor itself when it
    already is one), or an ``InvalidArgumentError`` naming the function and output."""
    if isinstance(value, (Tensor, Variable)):
        got_dtype, got_shape = value.dtype, tuple(value.shape)
    elif isinstance(value, (np.ndarray, np.generic, jax.Array)):
        got_dtype, got_shape = np.dtype(value.dtype), tuple(np.shape(value))
    else:
        try:
            array = array_of_python(value, dtype)
        except (TypeError, ValueError, OverflowError) as err:
            raise InvalidArgumentError(
                f"{fn.what()}: output {i} is {value!r:.60}, which cannot become a tensor of "
                f"dtype {dtype}: {err}"
            ) from None
        if array is None:
            raise InvalidArgumentError(
                f"{fn.what()}: output {i} is a {type(value).__name__} ({value!r:.60}); "
                f"expected a tensor, array or Python number of {_describe(shape, dtype)}"
            )
        value = array.astype(dtype)
        got_dtype, got_shape = dtype, tuple(value.shape)
    if np.dtype(got_dtype) != dtype or not _fits(shape, got_shape):  # exact, as in TF
        raise InvalidArgumentError(
            f"{fn.what()}: output {i} has {_describe(got_shape, np.dtype(got_dtype))}, but Tout "
            f"declares {_describe(shape, dtype)}; return what Tout says, or change Tout"
        )
    return value


def _fits(shape: tuple[int | None, ...] | None, actual: tuple[int | None, ...]) -> bool:
    if shape is None:
        return True
    return len(shape) == len(actual) and all(s is None or s == a for s, a in zip(shape, actual))


def _results(result: Any, single: bool, count: int, fn: HostFunction) -> list[Any]:
    """The function's result as a list of ``count`` outputs."""
    if single:
        return [result]
    if count == 0 and result is None:
        return []
    if not isinstance(result, (list, tuple)) or len(result) != count:
        got = f"{len(result)} values" if isinstance(result, (list, tuple)) else "one value"
        raise InvalidArgumentError(
            f"{fn.what()}: Tout declares {count} outputs, but the function returned {got}"
        )
    return list(result)


# Running the function ---------------------------------------------------------------------------
def _call(fn: HostFunction, arrays: Sequence[Any]) -> Any:
    if fn.inputs == TENSOR_INPUTS:
        return fn.fn(*[wrap(jax.numpy.asarray(a)) for a in arrays])
    return fn.fn(*[np.asarray(a) for a in arrays])


def _host_outputs(fn: HostFunction, Tout: OutTypes, single: bool) -> Callable[..., Any]:
    def host(*arrays: Any) -> list[np.ndarray]:
        with _eager_host():
            outs = _results(_call(fn, arrays), single, len(Tout), fn)
            checked = [
                _checked(o, a.shape, a.dtype, fn, i) for i, (o, a) in enumerate(zip(outs, Tout))
            ]
        return [np.asarray(o, a.dtype) for o, a in zip(checked, Tout)]

    return _noting_errors(host, fn)


def _structs(avals: Iterable[AVal], where: str) -> list[jax.ShapeDtypeStruct]:
    for aval in avals:
        if not aval.is_fully_known():
            raise OpTypeError(where, f"Tout must give every output's full shape, got {aval}")
    return [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals]


def _infer(*avals: AVal, func: Any, Tout: OutTypes, single: bool) -> tuple[AVal, ...]:
    if not isinstance(func, HostFunction):
        raise OpTypeError("py_function", f"param func must be a HostFunction, got {func!r:.60}")
    return tuple(Tout)


def _stateful_impl(
    *arrays: Any, func: HostFunction, Tout: OutTypes, single: bool
) -> tuple[Any, ...]:
    host = _host_outputs(func, Tout, single)
    return tuple(io_callback(host, _structs(Tout, func.what()), *arrays, ordered=True))


def _pure_impl(*arrays: Any, func: HostFunction, Tout: OutTypes, single: bool) -> tuple[Any, ...]:
    host = _host_outputs(func, Tout, single)
    structs = _structs(Tout, func.what())
    return tuple(jax.pure_callback(host, structs, *arrays, vmap_method="sequential"))


# The gradient: func re-run under an eager tape ------------------------------------------------
def _py_function_vjp(
    cts: tuple[Any, ...],
    *args: Any,
    out: tuple[Any, ...],
    func: HostFunction,
    Tout: OutTypes,
    single: bool,
) -> list[Any]:
    wrt = tuple(takes_gradient(a) for a in args)
    if not any(wrt):
        return [None] * len(args)
    out_mask = tuple(bool(np.issubdtype(a.dtype, np.inexact)) for a in Tout)
    kept = [c for c, m in zip(cts, out_mask) if m]
    grads = iter(bind(PY_FUNCTION_GRAD, *args, *kept, func=func, Tout=Tout, single=single, wrt=wrt))
    return [cast_ct(next(grads), a) if w else None for a, w in zip(args, wrt)]


def _infer_grad(
    *avals: AVal, func: Any, Tout: OutTypes, single: bool, wrt: tuple[bool, ...]
) -> tuple[AVal, ...]:
    return tuple(a.strong() for a, w in zip(avals[: len(wrt)], wrt) if w)


def _grad_impl(
    *arrays: Any, func: HostFunction, Tout: OutTypes, single: bool, wrt: tuple[bool, ...]
) -> tuple[Any, ...]:
    n = len(wrt)
    primals = arrays[:n]
    out_mask = tuple(bool(np.issubdtype(a.dtype, np.inexact)) for a in Tout)

    def host(*values: Any) -> list[np.ndarray]:
        inputs, cts = values[:n], iter(values[n:])
        wanted = [np.asarray(x) for x, w in zip(inputs, wrt) if w]
        with _eager_host():
            tensors = [wrap(jax.numpy.asarray(x)) for x in inputs]
            sources = [t for t, w in zip(tensors, wrt) if w]
            with GradientTape() as tape:
                tape.watch(sources)
                outs = _results(func.fn(*tensors), single, len(Tout), func)
                outs = [
                    _checked(o, a.shape, a.dtype, func, i)
                    for i, (o, a) in enumerate(zip(outs, Tout))
                ]
            targets, seeds = [], []
            for o, m in zip(outs, out_mask):
                ct = next(cts) if m else None
                if m and isinstance(o, TensorMethods):  # a numpy result is unconnected
                    targets.append(o)
                    seeds.append(wrap(jax.numpy.asarray(ct)))
            if not targets:
                return [np.zeros(x.shape, x.dtype) for x in wanted]
            grads = tape.gradient(
                targets, sources, output_gradients=seeds, unconnected_gradients="zero"
            )
        return [np.asarray(g, x.dtype) for g, x in zip(grads, wanted)]

    structs = [jax.ShapeDtypeStruct(np.shape(x), x.dtype) for x, w in zip(primals, wrt) if w]
    return tuple(
        jax.pure_callback(_noting_errors(host, func), structs, *arrays, vmap_method="sequential")
    )


def _py_function_jvp(tangents: Any, *args: Any, out: Any, **params: Any) -> Any:
    from tracejit.autodiff.tape import GradientError

    raise GradientError(
        "op 'py_function' has no forward-mode rule: its gradient re-runs Python code under an "
        "eager tape, which forward mode cannot push tangents through; compute the JVP inside "
        "the Python function, or use tracejit ops"
    )


PY_FUNCTION = defop(
    "py_function",
    _infer,
    _stateful_impl,
    _py_function_vjp,
    jvp=_py_function_jvp,
    multiple_results=True,
    pure=False,
    foldable=False,
    doc="Run a Python function on eager tensors when the program runs (stateful).",
)
PY_FUNCTION_GRAD = defop(
    "py_function_grad",
    _infer_grad,
    _grad_impl,
    multiple_results=True,
    pure=False,  # re-runs the user's (stateful) function
    foldable=False,
    differentiable=False,
    doc="The VJP of py_function: the function re-run under an eager GradientTape.",
)
NUMPY_FUNCTION = defop(
    "numpy_function",
    _infer,
    _stateful_impl,
    multiple_results=True,
    pure=False,
    foldable=False,
    differentiable=False,
    doc="Run a Python function on numpy arrays when the program runs (stateful).",
)
NUMPY_FUNCTION_STATELESS = defop(
    "numpy_function_stateless",
    _infer,
    _pure_impl,
    multiple_results=True,
    foldable=False,
    differentiable=False,
    doc="Run a pure Python function on numpy arrays when the program runs.",
)


def host_calls(graph: Graph) -> list[tuple[Node, HostFunction]]:
    """The nodes of ``graph`` (nested bodies included) that call back into Python."""
    found = []
    for node in graph.nodes:
        found.extend((node, v) for v in node.params.values() if isinstance(v, HostFunction))
        for _, body in nested_graphs(node):
            found.extend(host_calls(body))
    return found


# The public functions ---------------------------------------------------------------------------
def _declared(
    Tout: Any, what: str
) -> tuple[list[tuple[tuple[int | None, ...] | None, DType]], bool]:
    """``Tout`` as ``[(shape or None, dtype)]`` and whether the result is one tensor."""
    single = not isinstance(Tout, (list, tuple))
    entries = [Tout] if single else list(Tout)
    declared = []
    for i, entry in enumerate(entries):
        if isinstance(entry, TensorSpec):
            declared.append((entry.shape, entry.dtype))
            continue
        try:
            declared.append((None, as_dtype(entry)))
        except TypeError:
            raise TypeError(
                f"{what}: Tout[{i}] is {entry!r:.60}; expected a tj.TensorSpec(shape, dtype) or "
                "a dtype"
            ) from None
    return declared, single


def _traced_avals(
    declared: list[tuple[tuple[int | None, ...] | None, DType]], what: str
) -> tuple[AVal, ...]:
    avals = []
    for i, (shape, dtype) in enumerate(declared):
        if shape is None or None in shape:
            raise OpTypeError(
                "py_function",
                f"{what}: inside a tj.function, Tout must give each output's full shape (XLA "
                f"compiles fixed shapes), got {_describe(shape, dtype)} for output {i}; write "
                f"Tout=tj.TensorSpec(shape, {dtype}) (tj.TensorSpec([], {dtype}) for a scalar)",
                user_location(),
            )
        avals.append(AVal(tuple(shape), dtype, False))
    return tuple(avals)


def _inputs(inp: Any, what: str) -> list[Any]:
    items = list(inp) if isinstance(inp, (list, tuple)) else [inp]
    for i, item in enumerate(items):
        if not isinstance(item, (TensorMethods, Variable, np.ndarray, np.generic, jax.Array)):
            if not isinstance(item, (bool, int, float, complex)):
                raise OpTypeError(
                    "py_function",
                    f"{what}: inp[{i}] is a {type(item).__name__}; inp holds tensors, arrays or "
                    "Python numbers (close over other Python values in func)",
                    user_location(),
                )
        arg_aval("py_function", item)
    return items


def _run(
    func: Callable[..., Any], inp: Any, Tout: Any, name: str | None, inputs: str, op: Any
) -> Any:
    if not callable(func):
        raise TypeError(f"expected a callable func, got {type(func).__name__}")
    default = str(getattr(func, "__name__", type(func).__name__))
    host = HostFunction(func, name or ("lambda" if default == "<lambda>" else default), inputs)
    what = host.what()
    items = _inputs(inp, what)
    declared, single = _declared(Tout, what)
    if context.state.builder is None:  # eagerly: just run the function
        if inputs == TENSOR_INPUTS:
            result = func(*[x if isinstance(x, TensorMethods) else _tensor(x) for x in items])
        else:
            result = func(*[np.asarray(x) for x in items])
        outs = _results(result, single, len(declared), host)
        checked = [
            _tensor(_checked(o, s, d, host, i)) for i, (o, (s, d)) in enumerate(zip(outs, declared))
        ]
        return checked[0] if single else checked
    avals = _traced_avals(declared, what)
    outs = bind(op, *items, func=host, Tout=OutTypes(avals), single=single)
    return outs[0] if single else list(outs)


def _tensor(value: Any) -> Any:
    if isinstance(value, TensorMethods):
        return value
    if isinstance(value, Variable):
        return value.value()
    return wrap(jax.numpy.asarray(value))


def py_function(
    func: Callable[..., Any] | None = None,
    inp: Any = None,
    Tout: Any = None,  # noqa: N803 - TF's parameter name
    name: str | None = None,
) -> Any:
    """Run Python code on eager tensors from a compiled function, as ``tf.py_function``.

    ``func(*inp)`` is called with eager tensors when the program *runs* (every call of a
    ``tj.function``, not only while tracing), and may run any Python: tracejit eager ops,
    numpy, I/O. ``Tout`` declares the result: a ``tj.TensorSpec(shape, dtype)`` (one tensor)
    or a list of them (a list of tensors); inside a ``tj.function`` full shapes are needed, as
    XLA compiles fixed shapes (eagerly a bare dtype is enough). A result of another shape or
    dtype raises ``tj.errors.InvalidArgumentError`` naming the function. The op is stateful:
    passes never fold, merge or drop it. Gradients flow to the tensors in ``inp``: the VJP
    re-runs ``func`` under an eager ``GradientTape``, as TF does.

    >>> import numpy as np
    >>> import tracejit as tj
    >>> def log_huber(x):  # any Python, run eagerly
    ...     return tj.where(tj.abs(x) < 1.0, x * x / 2, tj.abs(x) - 0.5)
    >>> @tj.function
    ... def f(x):
    ...     return tj.py_function(log_huber, [x], Tout=tj.TensorSpec([3], tj.float32)) * 2
    >>> f(tj.constant([0.5, 2.0, -3.0])).numpy()
    array([0.25, 3.  , 5.  ], dtype=float32)
    """
    if func is None or inp is None:  # as a decorator: @tj.py_function(Tout=...)
        return _decorator(func, inp, Tout, name, TENSOR_INPUTS, PY_FUNCTION, "py_function")
    return _run(func, inp, Tout, name, TENSOR_INPUTS, PY_FUNCTION)


def numpy_function(
    func: Callable[..., Any] | None = None,
    inp: Any = None,
    Tout: Any = None,  # noqa: N803 - TF's parameter name
    stateful: bool = True,
    name: str | None = None,
) -> Any:
    """Run numpy code from a compiled function, as ``tf.numpy_function``.

    Like ``py_function``, but ``func`` gets numpy arrays and may return numpy arrays or Python
    numbers. ``stateful=False`` promises a pure function: passes may then merge two identical
    calls or drop an unused one (it is never evaluated at trace time). Not differentiable.

    >>> import numpy as np
    >>> import tracejit as tj
    >>> @tj.function
    ... def f(x):
    ...     return tj.numpy_function(np.sort, [x], tj.TensorSpec([3], tj.int32))
    >>> f(tj.constant([3, 1, 2])).numpy()
    array([1, 2, 3], dtype=int32)
    """
    op = NUMPY_FUNCTION if stateful else NUMPY_FUNCTION_STATELESS
    if func is None or inp is None:  # as a decorator: @tj.numpy_function(Tout=...)
        return _decorator(func, inp, Tout, name, NUMPY_INPUTS, op, "numpy_function")
    return _run(func, inp, Tout, name, NUMPY_INPUTS, op)


def _decorator(
    func: Any,
    inp: Any,
    Tout: Any,
    name: str | None,
    inputs: str,
    op: Any,
    api: str,  # noqa: N803
) -> Any:
    """TF's decorator form: ``@tj.py_function(Tout=...)`` makes ``f(*inp)`` call the op."""
    if Tout is None:
        raise TypeError(f"tj.{api} needs Tout (a tj.TensorSpec, a dtype, or a list of them)")
    if inp is not None:
        raise TypeError(f"tj.{api}: as a decorator, give Tout (and name), not inp")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any) -> Any:
            return _run(fn, list(args), Tout, name, inputs, op)

        return call

    return decorate if func is None else decorate(func)


__all__ = ["HostFunction", "numpy_function", "py_function"]
