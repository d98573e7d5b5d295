"""The IR's text form. The printer is the spec: deterministic, one node per line, golden-tested.

# predict  [traced -> cse(-1)]
func predict(%0: f32[?,4]) -> f32[?,3] {
  %c0: f32[4,3] = const [0.1 0.2 0.3 0.4 ...]
  %1: f32[?,3] = matmul %0, %c0                 # iris.py:31 in forward: h = x @ w
  return %1
}
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from tracejit.ir.graph import Graph, Node, Value, nested_graphs
from tracejit.types import AVal, short_name

COMMENT_COLUMN = 48
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
    array = np.asarray(array)
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


def _value_decl(value: Value, types: bool) -> str:
    return f"%{value.id}: {value.aval}" if types else f"%{value.id}"


def format_node(node: Node, *, types: bool = True) -> str:
    """``%2: f32[3] = add %0, %1`` (without indentation or source comment)."""
    outs = ", ".join(_value_decl(v, types) for v in node.outputs)
    params = ""
    if node.params:
        params = "[" + ", ".join(f"{k}={format_param(v)}" for k, v in node.params.items()) + "]"
    args = ", ".join(f"%{v.id}" for v in node.inputs)
    assign = f"{outs} = " if outs else ""  # an effect (print) defines no values
    return f"{assign}{node.op.name}{params}{' ' if args else ''}{args}"


def _with_comment(text: str, comment: str | None) -> str:
    if not comment:
        return text
    return f"{text.ljust(COMMENT_COLUMN - 2)}  # {comment}"


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
) -> str:
    """The whole graph as text, with a header naming the stages that produced it."""
    lines = [f"{indent}# {graph.name}  [{' -> '.join(graph.provenance)}]"]
    mesh = graph.metadata.get("shardings", {}).get("mesh")
    if mesh:
        lines.append(f"{indent}# mesh: {mesh}")
    ins = ", ".join(
        _value_decl(v, True) + _sharding(graph, "inputs", i) for i, v in enumerate(graph.inputs)
    )
    outs = [
        format_aval(v.aval) + _sharding(graph, "outputs", i) for i, v in enumerate(graph.outputs)
    ]
    result = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
    lines.append(f"{indent}func {graph.name}({ins}) -> {result} {{")
    inner = indent + "  "
    for i, (value, name) in enumerate(zip(graph.state, graph.state_names)):
        at = _sharding(graph, "state", i)
        lines.append(f"{inner}state {_value_decl(value, types)} = variable {name}{at}")
    for value, array in graph.consts:
        lines.append(f"{inner}{_value_decl(value, types)} = const {format_const(array, max_const)}")
    for node in graph.nodes:
        comment = node.loc.describe() if (source and node.loc is not None) else None
        lines.append(_with_comment(inner + format_node(node, types=types), comment))
        for name, sub in nested_graphs(node):
            lines.append(f"{inner}  {name}:")
            nested = format_graph(
                sub, source=source, types=types, max_const=max_const, indent=inner + "    "
            )
            lines.append(nested)
    for i in graph.updated_state():
        lines.append(f"{inner}assign %{graph.state[i].id} <- %{graph.state_outputs[i].id}")
    lines.append(f"{inner}return " + ", ".join(f"%{v.id}" for v in graph.outputs))
    lines.append(f"{indent}}}")
    return "\n".join(lines)
