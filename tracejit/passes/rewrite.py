"""The one place graphs are rewritten: a forward env loop over nodes, and nested graphs.

A forward pass gives ``forward_rewrite`` a ``visit(ctx, node)`` function. Each node reaches it
with its inputs already mapped through the env (so earlier replacements are seen); ``visit``
returns None to keep the node, or one Value per output to replace it (values that already exist,
or ones it made with ``ctx.add_node`` / ``ctx.add_const``). Graph outputs and state outputs are
mapped at the end. When nothing changed the same Graph object comes back, so passes are cheap
no-ops and the manager can tell.

Nested graphs (params holding a Graph, on ops flagged ``subgraphs``) are rewritten by
``map_subgraphs``, which the manager applies before each pass: no pass special-cases
control-flow or fused ops.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from tracejit.host import host_or_none
from tracejit.ir.graph import Graph, Node, Params, Value, map_nested, nested_graphs
from tracejit.ir.source import SourceLoc
from tracejit.ops.registry import OpDef
from tracejit.types import AVal


class RewriteContext:
    """What a visit function may use to build replacements."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes: list[Node] = []
        self.consts: list[tuple[Value, Any]] = list(graph.consts)
        self.const_arrays: dict[Value, Any] = dict(graph.consts)
        numbers = [int(v.id) for v in _all_values(graph) if v.id.isdigit()]
        consts = [int(v.id[1:]) for v, _ in graph.consts if v.id[1:].isdigit()]
        self._ids = itertools.count(max(numbers, default=-1) + 1)
        self._const_ids = itertools.count(max(consts, default=-1) + 1)
        self.changed = False
        # The node defining each value of the graph being built (kept and added nodes so far).
        self.producers: dict[Value, Node] = {}

    def new_value(self, aval: AVal) -> Value:
        return Value(aval, str(next(self._ids)))

    def add_node(
        self, op: OpDef, inputs: tuple[Value, ...], params: Params, loc: SourceLoc | None
    ) -> tuple[Value, ...]:
        avals = op.infer_outputs(tuple(v.aval for v in inputs), params)
        outputs = tuple(self.new_value(a) for a in avals)
        node = Node(op, inputs, params, outputs, loc)
        self.nodes.append(node)
        self.producers.update((out, node) for out in outputs)
        return outputs

    def add_const(self, aval: AVal, array: Any) -> Value:
        value = Value(aval, f"c{next(self._const_ids)}")
        self.consts.append((value, array))
        self.const_arrays[value] = array
        return value

    def const_value(self, value: Value) -> Any | None:
        """The array of a constant value, or None when ``value`` is not a constant."""
        return self.const_arrays.get(value)


Visit = Callable[[RewriteContext, Node], "tuple[Value, ...] | None"]


def forward_rewrite(graph: Graph, visit: Visit, env: dict[Value, Value] | None = None) -> Graph:
    """Rewrite ``graph`` node by node with ``visit``; ``env`` may pre-map values."""
    ctx = RewriteContext(graph)
    env = dict(env or {})
    ctx.changed = bool(env)
    for node in graph.nodes:
        inputs = tuple(env.get(v, v) for v in node.inputs)
        if inputs != node.inputs:
            node = dataclasses.replace(node, inputs=inputs)
            ctx.changed = True
        replacement = visit(ctx, node)
        if replacement is None:
            ctx.nodes.append(node)
            ctx.producers.update((out, node) for out in node.outputs)
        else:
            ctx.changed = True
            env.update(zip(node.outputs, replacement))
    if not ctx.changed:
        return graph
    return dataclasses.replace(
        graph,
        consts=tuple((v, a) for v, a in ctx.consts if v not in env),
        nodes=tuple(ctx.nodes),
        outputs=tuple(env.get(v, v) for v in graph.outputs),
        state_outputs=tuple(env.get(v, v) for v in graph.state_outputs),
    )


def rewrite_and_clean(graph: Graph, visit: Visit) -> Graph:
    """``forward_rewrite``, then drop what the replacements left dead (when anything changed)."""
    from tracejit.passes.dce import dce

    result = forward_rewrite(graph, visit)
    return graph if result is graph else dce(result)


def map_subgraphs(graph: Graph, transform: Callable[[Graph], Graph]) -> Graph:
    """Apply ``transform`` to every nested graph (ops flagged ``subgraphs``), depth first."""
    changed = False
    nodes = []
    for node in graph.nodes:
        if node.op.subgraphs:
            new = map_nested(node, lambda g: transform(map_subgraphs(g, transform)))
            changed = changed or new is not node
            node = new
        nodes.append(node)
    return dataclasses.replace(graph, nodes=tuple(nodes)) if changed else graph


def _all_values(graph: Graph) -> list[Value]:
    """Every value a graph and its nested graphs define (new ids must not collide with any)."""
    values = list(graph.inputs) + list(graph.state)
    for node in graph.nodes:
        values.extend(node.outputs)
        for _, sub in nested_graphs(node):
            values.extend(_all_values(sub))
    return values


def is_scalar_const(ctx: RewriteContext, value: Value, number: float) -> bool:
    """Whether ``value`` is a constant whose every element equals ``number``."""
    array = ctx.const_value(value)
    if array is None:
        return False
    host = host_or_none(array)  # None: a global array of another process's devices
    if host is None:
        return False
    return host.size > 0 and host.size <= 64 and bool(np.all(host == number))
