"""Differentiating through a compiled call from eager code (as TF2's eager tapes do).

A ``ConcreteFunction`` called while a tape records is recorded as *one* tape entry. Its VJP is a
second compiled function, built from the forward graph on first use: it replays the graph under
a tape (through ``bind``, so the replay and the backward pass both become IR) and returns the
cotangents of the inputs and of the variables the graph reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tracejit.autodiff.tape import GradientTape
from tracejit.tracing import context
from tracejit.tracing.inline import evaluate_graph
from tracejit.tracing.signature import flatten

if TYPE_CHECKING:
    from tracejit.tracing.function import ConcreteFunction, Function


def record_call(concrete: ConcreteFunction, leaves: list[Any], canonical: Sequence[Any]) -> Any:
    """Run ``concrete`` and record it on the active tapes with its compiled VJP."""
    from tracejit.ops.creation import zeros_like

    objects: list[Any] = []
    for arg in canonical:
        flatten(arg, objects, objects=True)
    executable = concrete.executable
    state_before: list[Any] = []
    if concrete.variables:  # the values read are kept (not donated) for the backward pass
        result = executable.run_with_state(leaves, state_out=state_before)
    else:
        result = executable.run(leaves)
    outputs: list[Any] = []
    flatten(result, outputs, objects=True)

    def vjp(cts: tuple[Any, ...]) -> list[Any]:
        seeds = [zeros_like(o) if c is None else c for c, o in zip(cts, outputs)]
        return concrete.backward_function()(list(leaves), state_before, seeds)

    inputs = objects + list(concrete.variables)
    for tape in context.state.tapes:
        tape.record(inputs, outputs, vjp)
    return result


def make_backward(concrete: ConcreteFunction) -> Function[..., Any]:
    from tracejit.ops.debug import without_prints
    from tracejit.tracing.function import Function

    # Every op of the traced graph has a VJP rule; prints ran in the forward call already.
    graph = without_prints(concrete.ir_unoptimized)

    def backward(inputs: list[Any], state: list[Any], cts: list[Any]) -> list[Any]:
        with GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            tape.watch(state)
            outs = evaluate_graph(graph, inputs, state)
        return tape.gradient(outs, list(inputs) + list(state), output_gradients=cts)

    backward.__name__ = f"{graph.name}_vjp"
    return Function(backward)
