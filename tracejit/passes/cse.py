"""Common-subexpression elimination: pure nodes with the same op, inputs and params are merged
(commutative ops in either operand order); equal small constants are merged too."""

from __future__ import annotations

from typing import Any

import numpy as np

from tracejit.host import host_or_none
from tracejit.ir.graph import Graph, Node, Value
from tracejit.passes.rewrite import RewriteContext, forward_rewrite

_CONST_BYTES = 4096  # constants up to this size are compared by contents


def _const_key(value: Value, array: Any) -> Any:
    if np.size(array) * np.dtype(value.aval.dtype).itemsize > _CONST_BYTES:
        return None
    host = host_or_none(array)  # None: a global array this process holds only part of
    if host is None:
        return None
    return (value.aval, host.tobytes(), type(array) if np.ndim(array) == 0 else None)


def cse(graph: Graph) -> Graph:
    """Merge duplicate pure nodes and duplicate small constants."""
    merged: dict[Value, Value] = {}
    seen_consts: dict[Any, Value] = {}
    for value, array in graph.consts:
        key = _const_key(value, array)
        if key is not None:
            merged[value] = seen_consts.setdefault(key, value)
    merged = {v: w for v, w in merged.items() if v is not w}
    seen: dict[Any, tuple[Value, ...]] = {}

    def visit(ctx: RewriteContext, node: Node) -> tuple[Value, ...] | None:
        if not node.op.pure or node.op.random:
            return None
        operands = tuple(sorted(node.inputs, key=id)) if node.op.commutative else node.inputs
        key = (node.op, operands, node.params)
        found = seen.get(key)
        if found is not None:
            return found
        seen[key] = node.outputs
        return None

    return forward_rewrite(graph, visit, merged)
