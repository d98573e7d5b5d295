"""Checks on what a traced Python function did: the variables it created, what it returned.

As in TF2, a ``tj.function`` may create variables on its first trace only. When the first trace
creates any, the function is traced a second time at once (TF does the same) and the second
trace must create none: a body that makes a new ``tj.Variable`` on every trace (on every call, in
TF's model) is then reported on the first call, at the user's ``tj.Variable(...)`` line.
"""

from __future__ import annotations

import enum
from typing import Any

from tracejit.eager.variable import VariableCreationError
from tracejit.tracing import signature as sig
from tracejit.tracing.tracer import GraphBuilder
from tracejit.types import AVal

_FIX = (
    "create variables outside the function, or once and keep them "
    "(`if self.v is None: self.v = tj.Variable(...)`), then reuse them"
)


def _sites(builder: GraphBuilder) -> str:
    lines = []
    for variable, loc in list(zip(builder.created_variables, builder.created_at))[:3]:
        where = loc.describe() if loc is not None else "(no user line found)"
        lines.append(f"\n  '{variable.name}' created at {where}")
    more = len(builder.created_variables) - len(lines)
    return "".join(lines) + (f"\n  ... and {more} more" if more > 0 else "")


def check_created_variables(name: str, builder: GraphBuilder, trace: int, check: bool) -> None:
    """Raise ``VariableCreationError`` (a ``ValueError``, as TF raises) when ``builder``'s trace
    created variables but may not: ``check`` marks the second trace of the first call, ``trace``
    is the trace's number."""
    if not builder.created_variables:
        return
    count = len(builder.created_variables)
    if check:
        message = (
            f"{name} creates new variables each time it is traced: its first trace created "
            f"variables, and tracing it again (as TF2 does, to check that variables are made on "
            f"the first call only) created {count} more. A tj.function may create variables "
            f"on its first call only: {_FIX}."
        )
    else:
        message = (
            f"{name} created {count} variable(s) while being traced again (trace {trace}). As "
            f"in TF2, a tj.function may create variables on its first call only: {_FIX}."
        )
    raise VariableCreationError(message + _sites(builder))


# Return values ---------------------------------------------------------------------------------
# Python values a tj.function may return as they are (TF converts them to tensors; tracejit
# hands them back unchanged, since they are part of the trace).
_PYTHON_VALUES = (bool, int, float, complex, str, bytes, enum.Enum, type(Ellipsis))


def check_outputs(name: str, structure: Any) -> None:
    """A ``TypeError`` when the function's result holds something that is not a tensor, a
    variable, a Python value, None or a nest of them (as TF raises)."""
    bad = _first_bad(structure, "")
    if bad is None:
        return
    where, value = bad
    at = f" at {where}" if where else ""
    raise TypeError(
        f"{name} returned {value!r:.60} (of type {type(value).__name__}){at}: a tj.function must "
        "return tensors, Python numbers, strings, None, or tuples, lists, dicts, namedtuples "
        "or dataclasses of them (as TF requires). Return the object from Python code outside "
        "the function, or return the tensors it holds."
    )


def _first_bad(structure: Any, path: str) -> tuple[str, Any] | None:
    if isinstance(structure, AVal) or not isinstance(structure, tuple) or not structure:
        return None  # a tensor or None
    tag = structure[0]
    if tag == sig.STATIC:
        value = structure[2]
        return None if isinstance(value, _PYTHON_VALUES) else (path, value)
    if tag == sig.VARIABLE:
        return None
    if tag in (sig.TUPLE, sig.LIST):
        children = [(f"{path}[{i}]", c) for i, c in enumerate(structure[1])]
    elif tag == sig.DICT:
        children = [(f"{path}[{k!r}]", c) for k, c in zip(structure[2], structure[3])]
    elif isinstance(tag, type) and len(structure) == 3:  # dataclass
        children = [(f"{path}.{f}", c) for f, c in zip(structure[1], structure[2])]
    elif isinstance(tag, type):  # namedtuple
        children = [(f"{path}[{i}]", c) for i, c in enumerate(structure[1])]
    else:
        children = []
    for child_path, child in children:
        found = _first_bad(child, child_path)
        if found is not None:
            return found
    return None
