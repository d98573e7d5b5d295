"""The runtime operators of converted code (it calls them as ``ag__.<name>``).

Each one looks at its condition when it runs: a Python value or an eager tensor runs the
statement as plain Python (so loops on Python values unroll at trace time, exactly as without
conversion); a symbolic tensor builds one control-flow node (``staging``, ``loops``).
"""

from __future__ import annotations

import builtins
import functools
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from tracejit.autograph import loops, staging
from tracejit.autograph.conversion import convert, is_library
from tracejit.autograph.exceptions import LoopUnrollWarning
from tracejit.autograph.ranges import TensorRange, builtin_range
from tracejit.autograph.undefined import Undefined, UndefinedReturnValue, retval
from tracejit.eager.tensor import Tensor
from tracejit.ir.source import user_location
from tracejit.ops.elementwise import logical_and, logical_not, logical_or, not_equal
from tracejit.tracing.tracer import Tracer

__all__ = [
    "Undefined",
    "UndefinedReturnValue",
    "and_",
    "converted_call",
    "for_stmt",
    "if_exp",
    "if_stmt",
    "not_",
    "or_",
    "retval",
    "while_stmt",
]

GetState = Callable[[], Sequence[Any]]
SetState = Callable[[Sequence[Any]], None]


# Unrolled loops -------------------------------------------------------------------------------
_warned_lines: set[tuple[str, int]] = set()


class _UnrollWatch:
    """Counts the nodes a Python loop statement adds to the graph being traced and warns once
    per loop line when they pass ``tj.config.unroll_warning_threshold()``."""

    def __init__(self, kind: str) -> None:
        from tracejit import config
        from tracejit.tracing import context

        self.builder = context.state.builder
        self.limit = config.unroll_warning_threshold()
        self.kind = kind
        self.start = len(self.builder.nodes) if self.builder is not None else 0
        self.active = self.builder is not None and self.limit is not None

    def check(self) -> None:
        if not self.active or self.builder is None or self.limit is None:
            return
        emitted = len(self.builder.nodes) - self.start
        if emitted <= self.limit:
            return
        self.active = False
        loc = user_location()
        if loc is None or (loc.file, loc.line) in _warned_lines:
            return
        _warned_lines.add((loc.file, loc.line))
        fix = (
            "iterate over tj.range(n) instead of range(n) (or over a tensor): such a loop is one "
            "loop node"
            if self.kind == "for"
            else "make its condition a tensor (it is then one while_loop node)"
        )
        message = (
            f"{loc.file}:{loc.line} (in {loc.function}): this Python `{self.kind}` loop unrolled "
            f"into more than {self.limit} nodes while tracing '{self.builder.root.name}' (each "
            f"iteration is traced again into the graph, so tracing and compiling grow with the "
            f"number of iterations). To keep it one graph loop, {fix}. "
            "Threshold: tj.config.set_unroll_warning_threshold (None turns this off)."
        )
        warnings.warn_explicit(message, LoopUnrollWarning, loc.file, loc.line)


# Statements -------------------------------------------------------------------------------------
def if_stmt(
    cond: Any,
    body: Callable[[], None],
    orelse: Callable[[], None],
    get_state: GetState,
    set_state: SetState,
    symbol_names: Sequence[str],
    n_outputs: int,
) -> None:
    """``if cond: body() else: orelse()``; a ``cond`` node when ``cond`` is symbolic, whose
    outputs are the first ``n_outputs`` names."""
    if isinstance(cond, Tracer):
        loc = user_location()
        staging.tensor_if(cond, body, orelse, get_state, set_state, symbol_names, n_outputs, loc)
    elif cond:
        body()
    else:
        orelse()


def while_stmt(
    test: Callable[[], Any],
    body: Callable[[], None],
    get_state: GetState,
    set_state: SetState,
    symbol_names: Sequence[str],
    n_carried: int,
) -> None:
    """``while test(): body()``. Once ``test()`` is symbolic (at the first test, or later when
    a Python loop makes a tensor of its condition) the rest of the loop is one ``while_loop``
    node carrying the first ``n_carried`` names."""
    watch = _UnrollWatch("while")
    while True:
        condition = test()
        if isinstance(condition, Tracer):
            loc = user_location()
            loops.tensor_while(test, body, get_state, set_state, symbol_names, n_carried, loc)
            return
        if not condition:
            return
        body()
        watch.check()


def for_stmt(
    iterable: Any,
    extra_test: Callable[[], Any] | None,
    body: Callable[[Any], None],
    get_state: GetState,
    set_state: SetState,
    symbol_names: Sequence[str],
    n_carried: int,
) -> None:
    """``for item in iterable: body(item)``, stopping when ``extra_test()`` (no break or
    return yet) is false. A symbolic tensor is scanned over its first axis; a ``tj.range`` with
    a symbolic bound is a ``while_loop``; anything else is iterated in Python."""
    args = (extra_test, body, get_state, set_state, symbol_names, n_carried)
    if isinstance(iterable, Tracer):
        loops.tensor_for(iterable, *args, user_location())
    elif isinstance(iterable, TensorRange):
        loops.tensor_range(iterable, *args, user_location())
    elif extra_test is None:
        watch = _UnrollWatch("for")
        for item in iterable:
            body(item)
            watch.check()
    else:
        loc = user_location()
        watch = _UnrollWatch("for")
        for item in iterable:
            keep = loops.guarded(
                extra_test,
                functools.partial(body, item),
                get_state,
                set_state,
                symbol_names,
                n_carried,
                loc,
            )
            if not keep:
                break
            watch.check()


# Expressions ------------------------------------------------------------------------------------
def _as_bool(value: Any) -> Any:
    if isinstance(value, (Tracer, Tensor)):
        return value if value.aval.dtype == bool else not_equal(value, 0)
    return bool(value)


def _logic(
    combine: Callable[[Any, Any], Any], value: Any, rest: Sequence[Callable[[], Any]]
) -> Any:
    """A symbolic operand: the remaining operands are evaluated too and combined elementwise."""
    result = _as_bool(value)
    for operand in rest:
        result = combine(result, _as_bool(operand()))
    return result


def and_(*operands: Callable[[], Any]) -> Any:
    """``a and b and ...`` with each operand a thunk: Python's short-circuit on Python values,
    ``tj.logical_and`` from the first symbolic operand on."""
    value = operands[0]()
    for index in builtins.range(1, len(operands)):
        if isinstance(value, Tracer):
            return _logic(logical_and, value, operands[index:])
        if not value:
            return value
        value = operands[index]()
    return value


def or_(*operands: Callable[[], Any]) -> Any:
    """``a or b or ...``: like ``and_``, with ``tj.logical_or``."""
    value = operands[0]()
    for index in builtins.range(1, len(operands)):
        if isinstance(value, Tracer):
            return _logic(logical_or, value, operands[index:])
        if value:
            return value
        value = operands[index]()
    return value


def not_(value: Any) -> Any:
    """``not value``; ``tj.logical_not`` for a symbolic tensor."""
    if isinstance(value, Tracer):
        return logical_not(_as_bool(value))
    return not value


def if_exp(cond: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
    """``true_fn() if cond else false_fn()``; a ``cond`` node for a symbolic ``cond``."""
    if isinstance(cond, Tracer):
        branches = (lambda: [true_fn()], lambda: [false_fn()])
        loc = user_location()
        merged = staging.cond_values(
            cond, branches, [None], ["value"], "conditional expression", loc
        )
        return merged[0]
    return true_fn() if cond else false_fn()


# Calls ------------------------------------------------------------------------------------------
def converted_call(f: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Any:
    """``f(*args, **kwargs)``, with ``f`` converted first when it is user code (a function, a
    method, a callable object's ``__call__``); library code is called as it is."""
    kwargs = kwargs or {}
    if f is builtins.range:
        return builtin_range(*args, **kwargs)
    converted_variant = getattr(f, "__tj_autograph__", None)
    if converted_variant is not None:  # a library wrapper of user code (tj.custom_gradient)
        return converted_variant()(*args, **kwargs)
    if isinstance(f, types.FunctionType):
        return convert(f)(*args, **kwargs)
    if isinstance(f, types.MethodType):
        return convert(f)(*args, **kwargs)
    if isinstance(f, functools.partial):
        return converted_call(f.func, f.args + tuple(args), {**f.keywords, **kwargs})
    call = next((vars(k)["__call__"] for k in type(f).__mro__ if "__call__" in vars(k)), None)
    if (
        not isinstance(f, type)
        and isinstance(call, types.FunctionType)
        and not is_library(call)
        and not _is_tracejit_function(f)
    ):
        return convert(call)(f, *args, **kwargs)
    return f(*args, **kwargs)


def _is_tracejit_function(f: Any) -> bool:
    from tracejit.tracing.function import Function

    return isinstance(f, Function)
