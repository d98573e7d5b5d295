"""Evaluate a graph through ``bind``: the same env loop as lowering, but each node goes through
the current interpreter — so it runs eagerly, records on tapes, or is re-emitted into an
enclosing trace (inlining)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracejit.ir.graph import Graph, Value
from tracejit.ops.registry import bind


def evaluate_graph(graph: Graph, inputs: Sequence[Any], state: Sequence[Any]) -> list[Any]:
    """The graph's outputs for these inputs and state values (tensors, tracers or arrays)."""
    env: dict[Value, Any] = dict(zip(graph.inputs, inputs))
    env.update(zip(graph.state, state))
    env.update(graph.consts)
    for node in graph.nodes:
        out = bind(node.op, *[env[v] for v in node.inputs], **node.params)
        env.update(zip(node.outputs, out if node.op.multiple_results else (out,)))
    return [env[v] for v in graph.outputs]
