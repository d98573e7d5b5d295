"""Dead-code elimination: drop pure nodes whose outputs nothing uses, and unused constants.

A backward walk with a live set. Effects (impure ops: variable writes are graph state outputs,
prints are impure nodes) are always kept.
"""

from __future__ import annotations

import dataclasses

from tracejit.ir.graph import Graph, Value, live_nodes


def dce(graph: Graph) -> Graph:
    """Remove nodes and constants that do not reach an output, a state output or an effect."""
    kept = live_nodes(graph)
    used: set[Value] = set(graph.outputs) | set(graph.state_outputs)
    for node in kept:
        used.update(node.inputs)
    consts = tuple((v, a) for v, a in graph.consts if v in used)
    if len(kept) == len(graph.nodes) and len(consts) == len(graph.consts):
        return graph
    return dataclasses.replace(graph, nodes=tuple(kept), consts=consts)
