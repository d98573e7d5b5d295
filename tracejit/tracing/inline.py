"""Evaluate a graph through ``bind``: the same env loop as lowering, but each node goes through
the current interpreter — so it runs eagerly, records on tapes, or is re-emitted into an
enclosing trace (inlining)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tracejit.ir.graph import Graph, evaluate
from tracejit.ops.registry import apply_bind


def evaluate_graph(graph: Graph, inputs: Sequence[Any], state: Sequence[Any]) -> list[Any]:
    """The graph's outputs for these inputs and state values (tensors, tracers or arrays)."""
    # State inputs follow the ordinary inputs, as in lowering.
    flat = dataclasses.replace(graph, inputs=tuple(graph.inputs) + tuple(graph.state))
    return evaluate(flat, [*inputs, *state], apply_bind)
