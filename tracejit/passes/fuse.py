"""Elementwise fusion: maximal connected groups of elementwise ops (and broadcasts of their
inputs) become one ``fused`` node holding the group as a nested graph — visible in the printed
IR and lowered as one jax function.

Groups form in one forward sweep. An elementwise node joins the groups of its elementwise
producers (merging them) unless that would make a cycle: a group never grows across a
reduction, matmul or effect, and never absorbs a node that also depends on the group through
such an op. ``deps[v]`` is the set of groups a value depends on (through anything); a node may
join groups M only if none of its other inputs, and none of M's external inputs, depend on M.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools

import numpy as np

from tracejit.ir.graph import Graph, Node, Params, Value, nested_graphs
from tracejit.ops.fused import FUSED
from tracejit.passes.dce import dce


def _fusible(node: Node) -> bool:
    return node.op.fusible and node.op.pure and not node.op.random


class _Groups:
    """Union-find over group ids, with each group's member nodes and external-input deps."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, list[Node]] = {}
        self.ext_deps: dict[int, set[int]] = {}

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def new(self, node: Node, deps: set[int]) -> int:
        g = len(self.parent)
        self.parent[g], self.members[g], self.ext_deps[g] = g, [node], set(deps)
        return g

    def canon(self, groups: set[int]) -> set[int]:
        return {self.find(g) for g in groups}

    def closure(self, groups: set[int]) -> set[int]:
        """``groups`` and every group they depend on now: a group's external deps grow as it
        absorbs nodes, after the deps of its earlier values were recorded."""
        result = self.canon(groups)
        frontier = list(result)
        while frontier:
            for d in self.canon(self.ext_deps[frontier.pop()]):
                if d not in result:
                    result.add(d)
                    frontier.append(d)
        return result


def fuse_elementwise(graph: Graph) -> Graph:
    """Group elementwise ops into ``fused`` nodes (groups of one node stay as they are)."""
    if graph.provenance == ("fuse",):  # the body of a fused node: already one group
        return graph
    groups = _Groups()
    group_of: dict[Value, int] = {}  # value -> group id (values produced by grouped nodes)
    deps: dict[Value, set[int]] = {}  # value -> groups it depends on
    node_group: dict[int, int] = {}  # id(node) -> group id

    for node in graph.nodes:
        in_deps = [groups.closure(deps.get(v, set())) for v in node.inputs]
        all_deps = set().union(*in_deps) if in_deps else set()
        if not _fusible(node):
            for out in node.outputs:
                deps[out] = all_deps
            continue
        candidates = {groups.find(group_of[v]) for v in node.inputs if v in group_of}
        external = [
            d
            for v, d in zip(node.inputs, in_deps)
            if v not in group_of or groups.find(group_of[v]) not in candidates
        ]
        ok = all(not (d & candidates) for d in external) and all(
            not (groups.closure(groups.ext_deps[g]) & candidates) for g in candidates
        )
        if candidates and ok:
            target = min(candidates)
            for g in candidates - {target}:
                groups.parent[g] = target
                groups.members[target] += groups.members.pop(g)
                groups.ext_deps[target] |= groups.ext_deps.pop(g)
            groups.members[target].append(node)
            groups.ext_deps[target] |= set().union(*external) if external else set()
            g = target
        else:
            g = groups.new(node, set().union(*external) if external else all_deps)
        node_group[id(node)] = g
        for out in node.outputs:
            group_of[out] = g
            deps[out] = all_deps | {g}

    position = {id(node): i for i, node in enumerate(graph.nodes)}
    fusions = {
        groups.find(g): sorted(members, key=lambda n: position[id(n)])
        for g, members in groups.members.items()
        if len(members) > 1
    }
    if not fusions:
        return graph
    return _rebuild(graph, fusions, groups, node_group)


def _rebuild(
    graph: Graph, fusions: dict[int, list[Node]], groups: _Groups, node_group: dict[int, int]
) -> Graph:
    """Replace each group by one fused node, then restore topological order."""
    group_of_value = {v: g for g, members in fusions.items() for n in members for v in n.outputs}
    scalars = {v: a for v, a in graph.consts if v.aval.ndim == 0}

    def group(node: Node) -> int | None:
        g = node_group.get(id(node))
        return groups.find(g) if g is not None else None

    outside_uses = set(graph.outputs) | set(graph.state_outputs)
    for node in graph.nodes:
        g = group(node)
        for v in node.inputs:
            if v in group_of_value and group_of_value[v] != (g if g in fusions else None):
                outside_uses.add(v)
    # Each body gets its own name, numbered in order (``f_fused_0``, ``f_fused_1``, ...) past
    # the names the graph's nested graphs already use (fusing a graph fused before).
    taken = {body.name for node in graph.nodes for _, body in nested_graphs(node)}
    candidates = (f"{graph.name}_fused_{k}" for k in itertools.count())
    names = (name for name in candidates if name not in taken)
    nodes: list[Node] = []
    for node in graph.nodes:
        g = group(node)
        if g not in fusions:
            nodes.append(node)
        elif node is fusions[g][-1]:
            nodes.append(_fused_node(next(names), fusions[g], outside_uses, scalars))
    result = dataclasses.replace(graph, nodes=_stable_topological(nodes, graph))
    return dce(result)  # scalar constants moved into bodies may be unused outside now


def _stable_topological(nodes: list[Node], graph: Graph) -> tuple[Node, ...]:
    """Order nodes so every input is defined first, keeping the given order where possible
    (a fused node sits at its last member; users of its outputs placed earlier move after it)."""
    producer = {v: i for i, n in enumerate(nodes) for v in n.outputs}
    waiting: dict[int, list[int]] = {}
    missing = [0] * len(nodes)
    for i, node in enumerate(nodes):
        for j in {producer[v] for v in node.inputs if v in producer}:
            if j != i:
                missing[i] += 1
                waiting.setdefault(j, []).append(i)
    ready = [i for i, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for k in waiting.get(i, ()):
            missing[k] -= 1
            if missing[k] == 0:
                heapq.heappush(ready, k)
    if len(order) != len(nodes):
        raise AssertionError(f"fusion made a cycle in {graph.name}")
    return tuple(order)


def _fused_node(
    name: str, members: list[Node], outside_uses: set[Value], scalars: dict[Value, np.ndarray]
) -> Node:
    """The fused node of a group, its body named ``name``: operands are the values it reads
    from outside (scalar constants move into the body, where passes and readers see their
    values)."""
    produced = {v for node in members for v in node.outputs}
    external: list[Value] = []
    consts: dict[Value, np.ndarray] = {}
    for node in members:
        for v in node.inputs:
            if v in scalars:
                consts[v] = scalars[v]
            elif v not in produced and v not in external:
                external.append(v)
    outputs = [v for node in members for v in node.outputs if v in outside_uses]
    # The body gets its own block arguments; its nodes keep their values (ids stay stable).
    arguments = [Value(v.aval, f"a{i}") for i, v in enumerate(external)]
    rename = dict(zip(external, arguments))
    body_nodes = tuple(
        dataclasses.replace(node, inputs=tuple(rename.get(v, v) for v in node.inputs))
        for node in members
    )
    body = Graph(
        name,
        tuple(arguments),
        tuple(consts.items()),
        body_nodes,
        tuple(outputs),
        provenance=("fuse",),
    )
    return Node(FUSED, tuple(external), Params({"body": body}), tuple(outputs), members[-1].loc)
