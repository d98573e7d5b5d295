"""Tracing Python callables into nested graphs (branch and loop bodies).

A body is traced by a child ``GraphBuilder``: tracers of the enclosing trace that the body uses
are *captured* (they become extra inputs), variables it reads are captured the same way, and
variables it assigns become extra outputs. Several bodies of one op (the branches of a cond,
the condition and body of a loop) are then *aligned*: they get the same captured inputs, in
the same order, so one node can feed them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from tracejit.eager.tensor import Tensor, constant
from tracejit.eager.variable import Variable
from tracejit.errors import OpError
from tracejit.ir.graph import Graph, Value
from tracejit.ir.source import user_location
from tracejit.tracing import context
from tracejit.tracing import signature as sig
from tracejit.tracing.tracer import GraphBuilder, Tracer
from tracejit.types import AVal


@dataclasses.dataclass
class Body:
    """A traced body: its graph (inputs = arguments, then captures), the enclosing values it
    captured, the variables it assigned (their final values are the last outputs), and the
    structure of the Python value it returned."""

    graph: Graph
    captured: list[Value]
    assigned: list[Variable]
    out_structure: Any
    sources: dict[Value, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_user_outputs(self) -> int:
        return len(self.graph.outputs) - len(self.assigned)


def flatten_operands(what: str, operands: Any) -> tuple[Any, list[Any]]:
    """Structure and tensor leaves of operands; Python numbers become tensors (as TF does)."""
    leaves: list[Any] = []
    structure = sig.flatten(_numbers_to_tensors(operands), leaves, objects=True)
    return structure, [x if isinstance(x, (Tensor, Tracer)) else constant(x) for x in leaves]


def _numbers_to_tensors(tree: Any) -> Any:
    if isinstance(tree, (bool, int, float)) and not isinstance(tree, Variable):
        return constant(tree)
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_numbers_to_tensors(x) for x in tree)
    if isinstance(tree, dict):
        return {k: _numbers_to_tensors(v) for k, v in tree.items()}
    return tree


def trace_body(
    name: str,
    fn: Callable[..., Any],
    structures: Sequence[Any],
    presets: Sequence[Variable] = (),
    collect_assigned: bool = True,
) -> Body:
    """Trace ``fn(*args)`` where each arg is rebuilt from ``structures`` with fresh inputs.
    ``presets`` are variables whose value is a loop-carried input (after the arguments); with
    ``collect_assigned`` the final values of assigned (and preset) variables are extra outputs."""
    parent = context.state.builder
    builder = GraphBuilder(name, parent=parent)
    tapes, context.state.tapes = context.state.tapes, ()  # the body's ops are not the tape's
    try:
        return _trace_body(builder, name, fn, structures, presets, collect_assigned)
    finally:
        context.state.tapes = tapes


def _trace_body(
    builder: GraphBuilder,
    name: str,
    fn: Callable[..., Any],
    structures: Sequence[Any],
    presets: Sequence[Variable],
    collect_assigned: bool,
) -> Body:
    with builder.active():
        tracers = iter([builder.new_input(a) for a in sig.tensor_avals(tuple(structures))])
        args = [sig.unflatten(s, tracers) for s in structures]
        for variable in presets:
            builder.preset_variable(variable, builder.new_input(variable.aval).value)
        result = _numbers_to_tensors(fn(*args))
        leaves: list[Any] = []
        out_structure = sig.flatten(result, leaves, objects=True)
        outputs = [builder.to_value(leaf, name) for leaf in leaves]
        assigned: list[Variable] = []
        if collect_assigned:
            assigned = list(presets)
            assigned += [
                v for v, _ in builder.assigned_in_body() if all(v is not p for p in presets)
            ]
            outputs += [builder.variable_value(v) for v in assigned]
    graph = builder.build(outputs, provenance=("traced",))
    return Body(
        graph, list(builder.captures), assigned, out_structure, dict(builder.capture_sources)
    )


def align_captures(
    bodies: list[Body], extra: Sequence[Value] = ()
) -> tuple[list[Body], list[Value]]:
    """Give every body the same captured inputs, after its own arguments: the union of what
    the bodies captured (first-seen order), then ``extra``. Returns the new bodies and the
    enclosing values to pass for those inputs."""
    captured: list[Value] = []
    for body in bodies:
        captured += [c for c in body.captured if c not in captured]
    captured += [c for c in extra if c not in captured]
    sources = {k: v for b in bodies for k, v in b.sources.items()}
    aligned = []
    for body in bodies:
        graph = body.graph
        n_args = len(graph.inputs) - len(body.captured)
        inner_of = dict(zip(body.captured, graph.inputs[n_args:]))
        inputs = list(graph.inputs[:n_args])
        inputs += [inner_of.get(c) or Value(c.aval, f"k{i}") for i, c in enumerate(captured)]
        graph = dataclasses.replace(graph, inputs=tuple(inputs))
        aligned.append(dataclasses.replace(body, graph=graph, captured=captured, sources=sources))
    return aligned, captured


def align(
    bodies: list[Body], extra_assigned: Sequence[Variable] = ()
) -> tuple[list[Body], list[Value], list[Variable]]:
    """Give every body the same assigned variables (as outputs) and captured values (as
    inputs after the arguments). Returns the new bodies, the enclosing values to pass, and the
    assigned variables in output order."""
    parent = context.state.builder
    assigned: list[Variable] = list(extra_assigned)
    for body in bodies:
        assigned += [v for v in body.assigned if all(v is not a for a in assigned)]
    # A body that did not assign a variable outputs the value it had on entry (captured).
    entry = {id(v): parent.variable_value(v) for v in assigned}
    aligned, captured = align_captures(bodies, [entry[id(v)] for v in assigned])
    result = []
    for body, original in zip(aligned, bodies):
        graph = body.graph
        n_args = len(graph.inputs) - len(captured)
        n_user = original.n_user_outputs
        finals = dict(zip([id(v) for v in original.assigned], graph.outputs[n_user:]))
        outputs = list(graph.outputs[:n_user])
        for v in assigned:
            entry_input = graph.inputs[n_args + captured.index(entry[id(v)])]
            outputs.append(finals.get(id(v)) or entry_input)
        graph = dataclasses.replace(graph, outputs=tuple(outputs))
        result.append(dataclasses.replace(body, graph=graph, assigned=assigned))
    return result, captured, assigned


def check_same_outputs(what: str, names: Sequence[str], bodies: Sequence[Body]) -> None:
    """Branch outputs must agree in structure, shape and dtype; say where they do not."""
    first = bodies[0]
    for name, body in zip(names[1:], bodies[1:]):
        if body.out_structure != first.out_structure and not _same_layout(
            first.out_structure, body.out_structure
        ):
            raise OpError(
                what,
                f"the {names[0]} returns {_layout(first.out_structure)} but the {name} returns "
                f"{_layout(body.out_structure)}; both must return the same structure",
                user_location(),
            )
        for i, (a, b) in enumerate(zip(first.graph.outputs, body.graph.outputs)):
            if a.aval.shape != b.aval.shape or a.aval.dtype != b.aval.dtype:
                label = (
                    f"output {i}"
                    if i < first.n_user_outputs
                    else f"variable '{first.assigned[i - first.n_user_outputs].name}'"
                )
                raise OpError(
                    what,
                    f"{label} is {a.aval.strong()} in the {names[0]} but {b.aval.strong()} "
                    f"in the {name}; "
                    "both must have the same shape and dtype",
                    user_location(),
                )


def _same_layout(a: Any, b: Any) -> bool:
    if isinstance(a, AVal) and isinstance(b, AVal):
        return True
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_same_layout(x, y) for x, y in zip(a, b))
    return a == b


def _layout(structure: Any) -> str:
    if isinstance(structure, AVal):
        return "tensor"
    if structure == sig.NONE:
        return "None"
    if isinstance(structure, tuple) and structure and structure[0] in (sig.TUPLE, sig.LIST):
        inner = ", ".join(_layout(s) for s in structure[1])
        return f"({inner})" if structure[0] == sig.TUPLE else f"[{inner}]"
    if isinstance(structure, tuple) and structure and structure[0] == sig.STATIC:
        return repr(structure[2])
    return str(structure[0])
