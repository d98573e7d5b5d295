"""The IR's text form. The printer is the spec: deterministic, golden-tested.

# predict  [traced -> fuse(1 region)]
func predict(%0: f32[?,4]) -> f32[?,3] {
  %c0: f32[4,3] = const [0.1 0.2 0.3 0.4 ...]
  # iris.py:31 in forward: h = x @ w
  %1: f32[?,3] = matmul %0, %c0
  %2: f32[?,3] = multiply %1, 0.5:f32[]
  # iris.py:32 in forward: return tj.nn.softmax(h)
  %3: f32[?,3] = softmax[axis=1] %2
  return %3
}

- One node per statement. A statement wider than ``WIDTH`` characters continues on lines
  indented four more: it breaks only after a comma (between results, params, operands,
  inputs), or before ``= op`` / ``-> results`` (which, once a statement has wrapped, start
  lines of their own). So a line continues exactly when it ends in a comma or the next line
  starts with ``= `` or ``-> `` (comments aside); ``unwrap`` joins each statement back.
- A source comment (``# file:line in function: text``) stands on its own line above the run of
  nodes it applies to, and holds until the next one at that indentation (``# (no source
  location)`` ends a run when the next node has none). A nested body inherits the location of
  the node that holds it, so its lines carry a comment only where they come from another line.
- Scalar (0-d) constants are written inline where they are used, as ``value:aval``
  (``0.1:f32[]``); larger constants are declared once, ``%c0: f32[4,3] = const [...]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tracejit.host import host_or_none
from tracejit.ir.graph import Graph, Node, Value, nested_graphs
from tracejit.ir.source import SourceLoc
from tracejit.types import AVal, short_name

WIDTH = 100  # statements wider than this wrap onto continuation lines
CONTINUATION = "    "  # extra indentation of a statement's continuation lines
NO_SOURCE = "(no source location)"
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.+\-]+")


def format_aval(aval: AVal) -> str:
    return str(aval)


def format_param(value: Any) -> str:
    """Params print compactly and never as Python reprs."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, np.dtype):
        return short_name(value)
    if isinstance(value, tuple) and value and all(isinstance(v, Graph) for v in value):
        return "(" + ",".join(f"{{{g.name}}}" for g in value) + ")"
    if isinstance(value, tuple):
        inner = ",".join(format_param(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Graph):
        return f"{{{value.name}}}"
    if isinstance(value, str) and not _PLAIN_TEXT.fullmatch(value):
        return json.dumps(value)  # quoted, with escapes, so one node stays one line
    return str(value)


def format_const(array: np.ndarray, max_const: int) -> str:
    """A short preview of a constant's elements."""
    host = host_or_none(array)
    if host is None:  # a global array split over processes: this one cannot see it all
        return "[global]"
    array = host
    if array.ndim == 0:
        return _format_scalar(array.item())
    flat = array.reshape(-1)
    shown = " ".join(_format_scalar(x) for x in flat[:max_const].tolist())
    more = " ..." if flat.size > max_const else ""
    return f"[{shown}{more}]"


def _format_scalar(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return f"{x:.6g}" if np.isfinite(x) else str(x)
    return str(x)


def scalar_literals(graph: Graph, *, types: bool = True) -> dict[Value, str]:
    """How each scalar constant of ``graph`` is written where it is used: ``0.1:f32[]``."""
    return {
        value: format_const(array, 1) + (f":{value.aval}" if types else "")
        for value, array in graph.consts
        if value.aval.ndim == 0
    }


def _value_decl(value: Value, types: bool) -> str:
    return f"%{value.id}: {value.aval}" if types else f"%{value.id}"


def _use(value: Value, literals: Mapping[Value, str]) -> str:
    return literals.get(value) or f"%{value.id}"


def _listed(items: Sequence[str], first: str = "", last: str = "") -> list[str]:
    """``items`` as comma-separated atoms, ``first`` glued to the first, ``last`` to the last."""
    if not items:
        return [first + last]
    atoms = [f"{item}," for item in items[:-1]] + [items[-1]]
    atoms[0] = first + atoms[0]
    atoms[-1] += last
    return atoms


def _node_atoms(
    node: Node, types: bool, literals: Mapping[Value, str]
) -> tuple[list[str], list[str]]:
    """The atoms of a node's statement in two parts: the values it defines, and ``= op[params]``
    with its operands (an effect defines no values: ``print %3``). Atoms break only after a
    comma: between results, params and operands (the first operand stays with the op)."""
    items = [f"{k}={format_param(v)}" for k, v in node.params.items()]
    rest = _listed(items, f"{node.op.name}[", "]") if items else [node.op.name]
    if node.inputs:
        operands = _listed([_use(v, literals) for v in node.inputs])
        rest = [*rest[:-1], f"{rest[-1]} {operands[0]}", *operands[1:]]
    if not node.outputs:
        return [], rest
    return _listed([_value_decl(v, types) for v in node.outputs]), ["= " + rest[0], *rest[1:]]


def format_node(
    node: Node, *, types: bool = True, literals: Mapping[Value, str] | None = None
) -> str:
    """``%2: f32[3] = add %0, %1`` on one line (without indentation or source comment);
    ``literals`` (``scalar_literals(graph)``) writes scalar constants inline."""
    outs, rest = _node_atoms(node, types, literals or {})
    return " ".join(outs + rest)


def _wrap(indent: str, *parts: list[str], width: int = WIDTH) -> list[str]:
    """One statement from its ``parts`` (lists of atoms joined by spaces), in lines of at most
    ``width`` characters where possible: an atom is never split, continuation lines are indented
    ``CONTINUATION`` more, and once the statement has wrapped, each later part starts a line of
    its own (the ``= op`` after a long list of results, the ``->`` of a long signature)."""
    lines: list[str] = []
    for part in parts:
        fresh = len(lines) > 1
        for atom in part:
            if not lines:
                lines.append(indent + atom)
            elif fresh or len(lines[-1]) + 1 + len(atom) > width:
                lines.append(indent + CONTINUATION + atom)
            else:
                lines[-1] += " " + atom
            fresh = False
    return lines


def unwrap(text: str) -> str:
    """``text`` (a printed graph) with each wrapped statement joined back onto one line: the
    text ``format_graph`` gives with no width limit."""
    lines: list[str] = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        previous = lines[-1].lstrip() if lines else "#"
        if not previous.startswith("#") and (
            previous.endswith(",") or stripped.startswith(("= ", "-> "))
        ):
            lines[-1] += " " + stripped
        else:
            lines.append(line)
    return "\n".join(lines)


def _sharding(graph: Graph, kind: str, index: int) -> str:
    """`` @P(data,none)`` where tj.distribute noted a sharding for an input, output or state."""
    notes = graph.metadata.get("shardings")
    text = notes[kind][index] if notes else None
    return f" @{text}" if text else ""


def format_graph(
    graph: Graph,
    *,
    source: bool = True,
    types: bool = True,
    max_const: int = 8,
    indent: str = "",
    width: int = WIDTH,
) -> str:
    """The whole graph as text, with a header naming the stages that produced it."""
    printer = _Printer(source=source, types=types, max_const=max_const, width=width)
    return "\n".join(printer.graph(graph, indent, None)[0])


class _Printer:
    def __init__(self, *, source: bool, types: bool, max_const: int, width: int) -> None:
        self.source, self.types, self.max_const, self.width = source, types, max_const, width

    def graph(
        self, graph: Graph, indent: str, inherited: SourceLoc | None
    ) -> tuple[list[str], bool]:
        """The lines of ``graph``, and whether it printed a source comment of its own.
        ``inherited`` is the location already in effect (that of the node holding a body)."""
        lines = [f"{indent}# {graph.name}  [{' -> '.join(graph.provenance)}]"]
        mesh = graph.metadata.get("shardings", {}).get("mesh")
        if mesh:
            lines.append(f"{indent}# mesh: {mesh}")
        ins = [
            _value_decl(v, True) + _sharding(graph, "inputs", i) for i, v in enumerate(graph.inputs)
        ]
        outs = [
            format_aval(v.aval) + _sharding(graph, "outputs", i)
            for i, v in enumerate(graph.outputs)
        ]
        results = _listed(outs, "-> ", " {") if len(outs) == 1 else _listed(outs, "-> (", ") {")
        signature = _listed(ins, f"func {graph.name}(", ")")
        lines += _wrap(indent, signature, results, width=self.width)
        inner = indent + "  "
        literals = scalar_literals(graph, types=self.types)
        for i, (value, name) in enumerate(zip(graph.state, graph.state_names)):
            at = _sharding(graph, "state", i)
            lines.append(f"{inner}state {_value_decl(value, self.types)} = variable {name}{at}")
        for value, array in graph.consts:
            if value not in literals:
                preview = format_const(array, self.max_const)
                lines.append(f"{inner}{_value_decl(value, self.types)} = const {preview}")
        shown, again, commented = inherited, False, False  # the location in effect here
        for node in graph.nodes:
            if self.source and (node.loc != shown or again and node.loc is not None):
                where = NO_SOURCE if node.loc is None else node.loc.describe()
                lines.append(f"{inner}# {where}")
                shown, again, commented = node.loc, False, True
            lines += _wrap(inner, *_node_atoms(node, self.types, literals), width=self.width)
            for label, body in nested_graphs(node):
                lines.append(f"{inner}  {label}:")
                nested, body_commented = self.graph(body, inner + "    ", node.loc)
                lines += nested
                again = again or body_commented  # the body moved off this line: say it again
        for i in graph.updated_state():
            lines.append(
                f"{inner}assign %{graph.state[i].id} <- {_use(graph.state_outputs[i], literals)}"
            )
        returned = [_use(v, literals) for v in graph.outputs]
        lines += _wrap(
            inner, _listed(returned, "return ") if returned else ["return"], width=self.width
        )
        lines.append(f"{indent}}}")
        return lines, commented
