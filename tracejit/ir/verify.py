"""The IR verifier: invariants every graph must keep, checked after tracing and after passes."""

from __future__ import annotations

import numpy as np

from tracejit.errors import TracejitError
from tracejit.ir.graph import Graph, Node, Value, nested_graphs
from tracejit.ir.printer import format_node, scalar_literals
from tracejit.types import AVal


class IRVerificationError(TracejitError):
    """A graph broke an IR invariant (a bug in a pass or in tracing, never in user code)."""


def _check_aval(graph: Graph, where: str, declared: AVal, inferred: AVal) -> None:
    if declared.shape != inferred.shape and len(declared.shape) == len(inferred.shape):
        # A declared unknown dim may have been refined by inference, and vice versa; only
        # known-vs-known disagreements are errors.
        clash = any(
            d is not None and i is not None and d != i
            for d, i in zip(declared.shape, inferred.shape)
        )
        if not clash and declared.dtype == inferred.dtype:
            return
    if declared.shape != inferred.shape or declared.dtype != inferred.dtype:
        raise IRVerificationError(
            f"graph {graph.name}: {where} declares {declared} but inference gives {inferred}"
        )


def verify(graph: Graph) -> None:
    """Check SSA form (each value defined once, before use), outputs defined, avals consistent
    with each op's inference rule."""
    defined: set[Value] = set()

    def quote(node: Node) -> str:  # as the printed graph shows it (only for error messages)
        return format_node(node, literals=scalar_literals(graph))

    def define(value: Value, where: str | Node) -> None:
        if value in defined:
            place = where if isinstance(where, str) else quote(where)
            raise IRVerificationError(f"graph {graph.name}: %{value.id} defined twice ({place})")
        defined.add(value)

    for value in graph.inputs:
        define(value, "input")
    for value in graph.state:
        define(value, "state")
    for value, array in graph.consts:
        define(value, "const")
        if tuple(np.shape(array)) != value.aval.shape:
            raise IRVerificationError(
                f"graph {graph.name}: const %{value.id} declares {value.aval} "
                f"but holds an array of shape {tuple(np.shape(array))}"
            )
    for node in graph.nodes:
        for value in node.inputs:
            if value not in defined:
                raise IRVerificationError(
                    f"graph {graph.name}: `{quote(node)}` uses %{value.id} before it is defined"
                )
        for _, sub in nested_graphs(node):
            verify(sub)
        inferred = node.op.infer_outputs(tuple(v.aval for v in node.inputs), node.params)
        if len(inferred) != len(node.outputs):
            raise IRVerificationError(
                f"graph {graph.name}: `{quote(node)}` has {len(node.outputs)} outputs, "
                f"inference gives {len(inferred)}"
            )
        for out, aval in zip(node.outputs, inferred):
            if out.aval != aval:  # (formatted only for the error message)
                _check_aval(graph, f"`{quote(node)}`", out.aval, aval)
            define(out, node)
    for value in graph.outputs:
        if value not in defined:
            raise IRVerificationError(f"graph {graph.name}: output %{value.id} is never defined")
    if len(graph.state_outputs) != len(graph.state) or len(graph.state_names) != len(graph.state):
        raise IRVerificationError(f"graph {graph.name}: state slots and names do not line up")
    for before, after in zip(graph.state, graph.state_outputs):
        if after not in defined:
            raise IRVerificationError(
                f"graph {graph.name}: state %{before.id} is assigned "
                f"%{after.id}, which is never defined"
            )
        if after.aval.dtype != before.aval.dtype or len(after.aval.shape) != len(before.aval.shape):
            raise IRVerificationError(
                f"graph {graph.name}: state %{before.id} is {before.aval} "
                f"but is assigned a value of {after.aval}"
            )
