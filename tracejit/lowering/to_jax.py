"""Lowering: a Graph becomes a Python function of jax calls, compiled whole by ``jax.jit``.

The function is the env loop over the graph's nodes, calling each op's own ``impl`` — the same
callable eager mode runs — so XLA sees one program per concrete input shape. Dead nodes are not
lowered. Scalar constants are inlined (Python scalars keep jax's weak typing); array constants
become extra arguments so they are not baked into the executable as literals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError
from tracejit.host import host_array
from tracejit.ir.graph import Graph, Node, Value, evaluate, live_nodes
from tracejit.ir.printer import format_node, scalar_literals


def _inline_scalar(value: Value, array: Any) -> Any:
    item = host_array(array, f"the constant %{value.id}")
    if value.aval.weak:
        return item.item()  # a Python scalar: weakly typed inside jax, like the user's literal
    return item.astype(value.aval.dtype)[()]


def graph_to_function(graph: Graph) -> tuple[Callable[..., Any], list[Any]]:
    """Return ``(fn, const_args)``: ``fn(*inputs, *state, *const_args)`` computes the graph's
    outputs followed by the new values of the assigned state slots (a single array when that
    is one value, else a tuple)."""
    inlined: dict[Value, Any] = {}
    arg_consts: list[Value] = []
    const_args: list[Any] = []
    for value, array in graph.consts:
        if value.aval.ndim == 0:
            inlined[value] = _inline_scalar(value, array)
        else:
            arg_consts.append(value)
            const_args.append(jnp.asarray(array))
    # The graph as jax runs it: inputs, state and array constants become parameters, scalar
    # constants are inlined, and only live nodes remain; ``evaluate`` is the env loop.
    lowered = dataclasses.replace(
        graph,
        inputs=tuple(graph.inputs) + tuple(graph.state) + tuple(arg_consts),
        consts=tuple(inlined.items()),
        nodes=tuple(live_nodes(graph)),
        outputs=tuple(graph.outputs) + tuple(graph.state_outputs[i] for i in graph.updated_state()),
        state=(),
        state_outputs=(),
        state_names=(),
    )
    single = len(lowered.outputs) == 1

    def apply(node: Node, *args: Any) -> Any:
        try:
            return node.op.impl(*args, **node.params)
        except Exception as err:  # noqa: BLE001 - re-raised naming the node and user line
            raise _lowering_error(graph, node, list(args), err) from err

    def run(*arrays: Any) -> Any:
        results = [_as_array(x) for x in evaluate(lowered, arrays, apply)]
        return results[0] if single else tuple(results)

    run.__name__ = graph.name
    return run, const_args


def _lowering_error(graph: Graph, node: Node, args: list[Any], err: Exception) -> OpError:
    """A failure while jax traces the lowered graph, attributed to the IR node that caused it
    (typically concrete shapes that do not fit where the trace had unknown dims)."""
    shapes = ", ".join(str(tuple(np.shape(a))) for a in args)
    return OpError(
        node.op.name,
        f"failed at run time in {graph.name} on inputs of shapes {shapes}: {err}\n"
        f"  IR: {format_node(node, literals=scalar_literals(graph))}",
        node.loc,
    )


def _as_array(x: Any) -> Any:
    # An output that is an inlined Python scalar constant still comes back as an array.
    return x if isinstance(x, jax.Array) else jnp.asarray(x)
