"""Per-thread interpreter state: the interpreter ``bind`` routes ops to, and the active tapes.

``bind`` reads this on every op call, so the module stays tiny and import-free. Each thread has
its own state: tracing in one thread never captures ops run in another.

The model is JAX's trace stack with the evaluation trace at the bottom, in a simpler form: one
innermost ``Interpreter`` (a ``GraphBuilder`` while tracing, the eager interpreter otherwise)
plus the active gradient tapes, which each record the op after it ran. The eager interpreter
sits above this layer (it wraps results in ``Tensor``), so ``tracejit.eager`` installs it here
explicitly with ``set_base_interpreter`` when that package is imported.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class Interpreter:
    """What ``bind`` hands an op to: ``bind(op, args, params)`` returns the op's result(s)."""

    tracing = False  # True for interpreters that build graphs (their results are symbolic)

    def bind(self, op: Any, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        raise NotImplementedError


class Symbolic:
    """Base class of values that stand for a graph value while a trace is built (the tracer).

    Lower layers test ``isinstance(x, Symbolic)`` instead of importing the tracer class."""

    __slots__ = ()


class _Uninstalled(Interpreter):
    def bind(self, op: Any, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        raise RuntimeError("no eager interpreter installed: import tracejit (or tracejit.eager)")


class _State(threading.local):
    interpreter: Interpreter = _Uninstalled()  # innermost interpreter; the eager one at the base
    tapes: tuple[Any, ...] = ()  # active tapes (objects with ``record_op``), innermost last
    strategy: Any = None  # the innermost tj.distribute strategy whose scope() is active
    device: Any = None  # the jax device of the innermost tj.device(...) block (None: jax's default)

    @property
    def builder(self) -> Any:
        """The innermost active GraphBuilder, or None when running eagerly."""
        interpreter = self.interpreter
        return interpreter if interpreter.tracing else None


state = _State()
_base: list[Interpreter] = [_State.interpreter]


def set_base_interpreter(interpreter: Interpreter) -> None:
    """Install the interpreter at the bottom of every thread's stack (the eager one)."""
    _State.interpreter = interpreter  # the class attribute is each thread's default
    _base[0] = interpreter


def base_interpreter() -> Interpreter:
    return _base[0]


@contextlib.contextmanager
def interpreting(interpreter: Interpreter) -> Iterator[None]:
    """Make ``interpreter`` the innermost one in this thread for the block."""
    previous = state.interpreter
    state.interpreter = interpreter
    try:
        yield
    finally:
        state.interpreter = previous


def paused_tracing() -> contextlib.AbstractContextManager[None]:
    """Run eagerly for a moment inside a trace (variable initializers, like TF's init_scope)."""
    return interpreting(_base[0])


@contextlib.contextmanager
def init_scope() -> Iterator[None]:
    """Lift code out of the trace being built into eager mode, with the gradient tapes paused,
    as TF's ``tf.init_scope``: ops in the block run at once on concrete tensors (once, while
    tracing), so state made there (variables, tables, a value computed once) exists outside the
    graph, and the trace captures it (a tensor as a constant, a variable as state).

    >>> import tracejit as tj
    >>> @tj.function
    ... def f(x):
    ...     with tj.init_scope():
    ...         eager = tj.executing_eagerly()
    ...     return x + 1, eager, tj.executing_eagerly()
    >>> f(tj.constant(1.0))[1:]
    (True, False)
    """
    previous, tapes = state.interpreter, state.tapes
    state.interpreter, state.tapes = _base[0], ()
    try:
        yield
    finally:
        state.interpreter, state.tapes = previous, tapes


def executing_eagerly() -> bool:
    """Whether ops run at once (True) or are being traced into a graph (False, inside a
    ``tj.function`` that is being traced), as TF's ``tf.executing_eagerly``."""
    return not state.interpreter.tracing
