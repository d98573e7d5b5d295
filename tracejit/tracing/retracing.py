"""Why did it retrace? Differences between trace-cache keys, ``tj.explain``, and the warning for
functions that retrace often.

Each trace remembers the structure of the call that made it (``ConcreteFunction.call_structure``,
see ``signature.py`` for the encoding) and the number of that call. A new trace is compared with
the closest earlier one, argument by argument (named by parameter name and pytree path:
``batch[0]``, ``config['lr']``), giving ``Change``s: a new shape, dtype, Python value, variable or
structure, each with the remedy that fits it.

The bookkeeping lives on the cache-miss path only: the total number of calls is the sum of the
traces' ``calls`` counters, which the hot path increments anyway.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracejit import config
from tracejit.errors import RetracingError, RetracingWarning
from tracejit.tracing.signature import DICT, LIST, NONE, STATIC, TUPLE, VARIABLE, python_value
from tracejit.types import AVal, TensorSpec, short_name

if TYPE_CHECKING:
    from tracejit.tracing.function import ConcreteFunction, Function

WINDOW_CALLS = 10  # as TF: warn when 5 of a function's last 10 calls traced
WINDOW_TRACES = 5


# Describing structures -----------------------------------------------------------------------
def describe(node: Any) -> str:
    """A structure node in words: ``f32[32,4]``, ``3``, ``variable 'w' f32[3]``, ``[f32[2], 1]``."""
    if isinstance(node, AVal):
        return f"{node}" + (" (weak)" if node.weak else "")
    if node == NONE:
        return "None"
    tag = node[0]
    if tag == STATIC:
        return repr(node[2])
    if tag == VARIABLE:
        variable = node[1].variable
        return f"variable '{variable.name}' {node[2]}"
    if tag in (TUPLE, LIST):
        inner = ", ".join(describe(child) for child in node[1])
        if tag == TUPLE:
            return f"({inner},)" if len(node[1]) == 1 else f"({inner})"
        return f"[{inner}]"
    if tag == DICT:
        _, kind, keys, children = node
        inner = ", ".join(f"{k!r}: {describe(c)}" for k, c in zip(keys, children))
        return "{" + inner + "}" if kind is dict else f"{kind.__name__}({{{inner}}})"
    if isinstance(tag, type) and len(node) == 2:  # namedtuple
        inner = ", ".join(f"{f}={describe(c)}" for f, c in zip(tag._fields, node[1]))
        return f"{tag.__name__}({inner})"
    if isinstance(tag, type) and len(node) == 3:  # dataclass
        inner = ", ".join(f"{f}={describe(c)}" for f, c in zip(node[1], node[2]))
        return f"{tag.__name__}({inner})"
    return str(node)


def describe_call(structure: Sequence[Any], names: Sequence[str]) -> str:
    """``x: f32[32,4], lr: 0.1`` — a trace's arguments by parameter name."""
    return ", ".join(f"{name}: {describe(node)}" for name, node in zip(names, structure))


def _kind(node: Any) -> str:
    """What sort of thing a node is, for 'structure' changes."""
    if isinstance(node, AVal):
        return "a tensor"
    if node == NONE:
        return "None"
    tag = node[0]
    if tag == STATIC:
        return f"a Python {type(python_value(node)).__name__}"
    if tag == VARIABLE:
        return "a variable"
    if tag in (TUPLE, LIST):
        return f"a {tag} of {len(node[1])}"
    if tag == DICT:
        return f"a dict with keys {', '.join(repr(k) for k in node[2])}"
    return f"a {tag.__name__}" if isinstance(tag, type) else "a value"


# Differences ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One difference between two calls' cache keys: at ``path`` (``x``, ``batch[0]``), of
    ``kind`` shape / dtype / weak / value / variable / structure, from ``old`` to ``new``."""

    path: str
    kind: str
    old: str
    new: str
    spec: str = ""  # for shape changes: a TensorSpec covering both shapes

    def __str__(self) -> str:
        return f"{self.path}: {self.what()}"

    def what(self) -> str:
        """The change without its path: ``shape [32,4] -> [16,4]``."""
        words = {
            "shape": "shape",
            "dtype": "dtype",
            "weak": "tensor type",
            "value": "Python value",
            "variable": "a different variable:",
            "structure": "structure",
        }
        return f"{words[self.kind]} {self.old} -> {self.new}"


def _aval_changes(path: str, old: AVal, new: AVal) -> list[Change]:
    changes = []
    if old.shape != new.shape:
        spec = ""  # a rank change: no TensorSpec covers both
        if len(old.shape) == len(new.shape):
            shape = tuple(a if a == b else None for a, b in zip(old.shape, new.shape))
            spec = repr(TensorSpec(shape=shape, dtype=old.dtype))
        changes.append(Change(path, "shape", old.shape_str(), new.shape_str(), spec))
    if old.dtype != new.dtype:
        changes.append(Change(path, "dtype", short_name(old.dtype), short_name(new.dtype)))
    elif old.weak != new.weak:
        words = {True: "weak (a Python number)", False: "strong (a tensor)"}
        changes.append(Change(path, "weak", words[old.weak], words[new.weak]))
    return changes


def diff(old: Any, new: Any, path: str) -> list[Change]:
    """The changes that turn structure node ``old`` into ``new`` (empty when equal)."""
    if isinstance(old, AVal) and isinstance(new, AVal):
        return _aval_changes(path, old, new)
    if old == new:
        return []
    if isinstance(old, AVal) or isinstance(new, AVal) or NONE in (old, new):
        return [Change(path, "structure", _kind(old), _kind(new))]
    tag, new_tag = old[0], new[0]
    if tag == STATIC and new_tag == STATIC:
        return [Change(path, "value", repr(old[2]), repr(new[2]))]
    if tag == VARIABLE and new_tag == VARIABLE:
        if old[1] == new[1]:
            return _aval_changes(path, old[2], new[2])
        return [Change(path, "variable", describe(old), describe(new))]
    children = _paired_children(old, new, path)
    if children is None:
        return [Change(path, "structure", _kind(old), _kind(new))]
    return [change for a, b, where in children for change in diff(a, b, where)]


def _paired_children(old: Any, new: Any, path: str) -> list[tuple[Any, Any, str]] | None:
    """Matching children of two containers of the same layout, with their paths; None when the
    layouts differ (type, length, keys or fields)."""
    tag = old[0]
    if tag != new[0] or len(old) != len(new):
        return None
    if tag in (TUPLE, LIST):
        if len(old[1]) != len(new[1]):
            return None
        return [(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(old[1], new[1]))]
    if tag == DICT:
        if old[1] is not new[1] or old[2] != new[2]:
            return None
        return [(a, b, f"{path}[{k!r}]") for k, a, b in zip(old[2], old[3], new[3])]
    if isinstance(tag, type) and len(old) == 2:
        return [(a, b, f"{path}.{f}") for f, a, b in zip(tag._fields, old[1], new[1])]
    if isinstance(tag, type) and len(old) == 3 and old[1] == new[1]:
        return [(a, b, f"{path}.{f}") for f, a, b in zip(old[1], old[2], new[2])]
    return None


def diff_calls(old: Sequence[Any], new: Sequence[Any], names: Sequence[str]) -> list[Change]:
    """Changes between two calls' structures, argument by argument."""
    return [change for name, a, b in zip(names, old, new) for change in diff(a, b, name)]


def closest(
    earlier: Sequence[ConcreteFunction], structure: Sequence[Any], names: Sequence[str]
) -> tuple[int, list[Change]] | None:
    """The index of the earlier trace whose call differs least from ``structure`` (the latest
    on ties) and the changes; None when there is no earlier trace."""
    best: tuple[int, list[Change]] | None = None
    for index, concrete in enumerate(earlier):
        changes = diff_calls(concrete.call_structure, structure, names)
        if best is None or len(changes) <= len(best[1]):
            best = (index, changes)
    return best


def suggestion(change: Change) -> str:
    """What to do about one kind of change."""
    name = change.path
    if change.kind == "shape" and not change.spec:
        return (
            f"{name} changes rank (number of dimensions): reshape it to one rank before the "
            "call, or use one tj.function per rank"
        )
    if change.kind == "shape":
        return (
            f"{name} changes shape: give it an unknown dimension with "
            f"input_signature=[..., {change.spec}, ...], or use "
            "tj.function(reduce_retracing=True)"
        )
    if change.kind == "dtype":
        return f"{name} changes dtype: cast it to one dtype before the call (tj.cast)"
    if change.kind == "weak":
        return (
            f"{name} is sometimes a Python number and sometimes a tensor: convert it with "
            "tj.constant(...) before the call"
        )
    if change.kind == "value":
        if _looks_numeric(change.old) and _looks_numeric(change.new):
            return (
                f"{name} is a Python number, so each new value is a new trace: pass a tensor "
                f"instead (tj.constant({change.new})), which is an input of one graph"
            )
        return (
            f"{name} is a Python value, part of the cache key: each distinct value traces "
            "once; pass a tensor if it is data"
        )
    if change.kind == "variable":
        return (
            f"{name} is a new tj.Variable on each call (variables are keyed by identity): "
            "create variables once and pass the same ones"
        )
    return (
        f"the structure of {name} changed (container type, length, keys or None): keep it the "
        "same across calls, or stack the varying part into one tensor"
    )


def _looks_numeric(text: str) -> bool:
    try:
        complex(text)
    except ValueError:
        return text in ("True", "False")
    return True


# tj.explain ----------------------------------------------------------------------------------
def definition_site(fn: Any) -> str:
    """``train.py:12`` for a Python function ("" when it has no source file)."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return ""
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


@dataclass(frozen=True)
class Retrace:
    """One trace after the first: which earlier trace it is closest to and what changed."""

    trace: int  # 1-based
    call: int  # the call that made it (1-based), 0 when it came from get_concrete_function
    previous: int  # 1-based number of the closest earlier trace
    changes: tuple[Change, ...]
    suggestions: tuple[str, ...]


class RetraceReport:
    """What ``tj.explain(f)`` returns: prints as a report; ``.retraces`` holds the data."""

    def __init__(self, header: str, first: str, retraces: list[Retrace]) -> None:
        self.header = header
        self.first = first
        self.retraces = retraces

    def __str__(self) -> str:
        lines = [self.header]
        if self.first:
            lines.append(f"  trace 1: {self.first}")
        given: dict[str, int] = {}  # each fix is printed once, at the first trace it fixes
        for r in self.retraces:
            at = f" at call {r.call}" if r.call else ""
            what = "; ".join(str(c) for c in r.changes) or "the same arguments (cache cleared?)"
            lines.append(f"  trace {r.trace}{at}: {what}  (vs trace {r.previous})")
            for text in r.suggestions:
                if text in given:
                    lines.append(f"    fix: as for trace {given[text]}")
                else:
                    given[text] = r.trace
                    lines.append(f"    fix: {text}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def _retraces(function: Function[..., Any]) -> list[Retrace]:
    names = function._signature.names
    traces = function.concrete_functions()
    found = []
    for index in range(1, len(traces)):
        concrete = traces[index]
        best = closest(traces[:index], concrete.call_structure, names)
        assert best is not None
        previous, changes = best
        tips = dict.fromkeys(suggestion(change) for change in changes)
        found.append(
            Retrace(index + 1, concrete.traced_at_call, previous + 1, tuple(changes), tuple(tips))
        )
    return found


def explain(function: Function[..., Any]) -> RetraceReport:
    """Why ``function`` (a ``tj.function``) traced more than once: for each retrace, the
    arguments that changed since the closest earlier trace, and what to do about it.

    >>> import tracejit as tj
    >>> @tj.function
    ... def scale(x, factor):
    ...     return x * factor
    >>> _ = scale(tj.ones((32, 4)), 2.0)
    >>> _ = scale(tj.ones((16, 4)), 2.0)
    >>> _ = scale(tj.ones((16, 4)), 3.0)
    >>> print(tj.explain(scale))  # doctest: +ELLIPSIS
    scale (<doctest ...>:1): 3 traces in 3 calls
      trace 1: x: f32[32,4], factor: 2.0
      trace 2 at call 2: x: shape [32,4] -> [16,4]  (vs trace 1)
        fix: x changes shape: give it an unknown dimension with
          input_signature=[..., TensorSpec(shape=(None, 4), dtype=float32), ...],
          or use tj.function(reduce_retracing=True)
      trace 3 at call 3: factor: Python value 2.0 -> 3.0  (vs trace 2)
        fix: factor is a Python number, so each new value is a new trace: pass a tensor
          instead (tj.constant(3.0)), which is an input of one graph
    """
    traces = function.concrete_functions()
    calls = sum(c.calls for c in traces)
    site = definition_site(function.python_function)
    where = f" ({site})" if site else ""
    plural = "s" if len(traces) != 1 else ""
    header = f"{function.name}{where}: {len(traces)} trace{plural} in {calls} calls"
    if len(traces) <= 1:
        header += "; no retracing"
    first = describe_call(traces[0].call_structure, function._signature.names) if traces else ""
    return RetraceReport(header, first, _retraces(function))


# The frequent-retracing check (miss path only) --------------------------------------------
def note_new_trace(function: Function[..., Any], key: tuple[Any, ...], call: int) -> None:
    """Called before ``function`` traces for call number ``call`` (1-based): log the retrace,
    and warn or raise when 5 of the last 10 calls traced."""
    traces = function.concrete_functions()
    if not traces:
        return
    names = function._signature.names
    if config.logging_enabled("retrace"):
        best = closest(traces, key, names)
        changes = "; ".join(str(c) for c in best[1]) if best else ""
        config.logger.info(
            "retracing %s (trace %d, call %d): %s", function.name, len(traces) + 1, call, changes
        )
    mode = config.retrace_warning()
    if mode == "off":
        return
    recent = [c for c in traces if c.traced_at_call > call - WINDOW_CALLS]
    if len(recent) + 1 < WINDOW_TRACES:
        return
    if mode == "warn" and function._warned_retracing:
        return
    message = _frequent_retracing_message(function, traces, key, len(recent) + 1)
    if mode == "error":
        raise RetracingError(message)
    function._warned_retracing = True
    warnings.warn(message, RetracingWarning, stacklevel=4)


def _frequent_retracing_message(
    function: Function[..., Any], traces: list[ConcreteFunction], key: Any, count: int
) -> str:
    names = function._signature.names
    counts: Counter[str] = Counter()
    last: dict[str, tuple[int, Change]] = {}
    structures = [c.call_structure for c in traces] + [key]
    for index in range(1, len(structures)):
        best = closest(traces[:index], structures[index], names)
        for change in best[1] if best else ():
            counts[change.path] += 1
            last[change.path] = (index, change)
    site = definition_site(function.python_function)
    where = f" ({site})" if site else ""
    message = (
        f"tj.function {function.name}{where} was traced {count} times within its last "
        f"{WINDOW_CALLS} calls; tracing is slow, so this is probably not intended."
    )
    if counts:
        # The path that changed most often; among equals, the one that changed last.
        path = max(counts, key=lambda p: (counts[p], last[p][0]))
        change = last[path][1]
        message += f" The argument that keeps changing is {change.path} ({change.what()}). Fix: "
        message += suggestion(change) + "."
    message += (
        " tj.explain(f) lists every retrace. tj.config.set_retrace_warning('off') silences "
        "this; 'error' makes it a RetracingError."
    )
    return message
