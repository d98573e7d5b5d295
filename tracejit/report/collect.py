"""Gathering what a compile report shows, as plain data: per trace its signature, why it was
traced, timings, the IR after each pass (re-running the trace's own pipeline one pass at a
time, through the pass manager), jax's StableHLO, XLA's HLO and cost figures.

Nothing here writes HTML (``render.py`` does), so the data can be tested on its own.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracejit.errors import TracejitError
from tracejit.ir.graph import Graph, Node, nested_graphs
from tracejit.ir.source import SourceLoc
from tracejit.passes.manager import PassRecord, run_pipeline
from tracejit.tracing import inspection
from tracejit.tracing.retracing import Retrace, definition_site, describe_call, explain
from tracejit.tracing.signature import symbolic_structs

if TYPE_CHECKING:
    from tracejit.tracing.function import ConcreteFunction, Function

# A node made by the backward pass carries the line of the call that asked for gradients
# (tracing records the innermost user frame, and the VJP rules run inside that call): the IR has
# no other mark, so a node is "backward" when its line calls one of these.
GRADIENT_CALL = re.compile(
    r"\b(gradient|grad|value_and_grad|jacobian|batch_jacobian|minimize)\s*\("
)


@dataclass(frozen=True)
class Stage:
    """The graph after one pass (``index`` 0: as traced), with what the pass did."""

    index: int
    name: str
    graph: Graph
    record: PassRecord | None  # None for the traced graph

    @property
    def changed(self) -> bool:
        return self.record is not None and self.record.nodes_before != self.record.nodes_after


@dataclass(frozen=True)
class XlaView:
    """What jax and XLA made of a trace; a ``*_note`` says why a part is missing."""

    stablehlo: str = ""
    stablehlo_note: str = ""
    hlo: str = ""
    hlo_note: str = ""
    costs: dict[str, float] = field(default_factory=dict)
    lower_seconds: float | None = None
    xla_compile_seconds: float | None = None


@dataclass(frozen=True)
class TraceData:
    number: int  # 1-based
    signature: str  # what the trace accepts (relaxed or from input_signature)
    call_signature: str  # the call that made it
    traced_at_call: int
    retrace: Retrace | None  # None for the first trace
    trace_seconds: float
    optimize_seconds: float
    compile_seconds: float | None
    calls: int
    stages: list[Stage]
    xla: XlaView
    concrete: ConcreteFunction


@dataclass(frozen=True)
class FunctionData:
    name: str
    site: str
    header: str  # tj.explain's first line
    traces: list[TraceData]
    autograph_source: str  # "" when no conversion happened
    original_source: str


def collect_function(target: Function[..., Any] | ConcreteFunction) -> FunctionData:
    """The report's data for a ``tj.function`` (every trace so far) or one of its traces."""
    from tracejit.tracing.function import ConcreteFunction, Function

    if isinstance(target, ConcreteFunction):
        function, chosen = target.function, [target]
    elif isinstance(target, Function):
        function, chosen = target, target.concrete_functions()
    else:
        raise TypeError(
            f"tj.report needs a tj.function or one of its traces (a ConcreteFunction), got "
            f"{type(target).__name__}"
        )
    every = function.concrete_functions()
    explanation = explain(function)
    retraces = {r.trace: r for r in explanation.retraces}
    names = function._signature.names
    traces = []
    for concrete in chosen:
        number = next((i for i, c in enumerate(every, 1) if c is concrete), 0)
        traces.append(
            TraceData(
                number=number,
                signature=describe_call(concrete.in_structure, names),
                call_signature=describe_call(concrete.call_structure, names),
                traced_at_call=concrete.traced_at_call,
                retrace=retraces.get(number),
                trace_seconds=concrete.trace_seconds,
                optimize_seconds=concrete.optimize_seconds,
                compile_seconds=concrete.compile_seconds,
                calls=concrete.calls,
                stages=stages(concrete),
                xla=xla_view(concrete),
                concrete=concrete,
            )
        )
    original, converted = _sources(function)
    return FunctionData(
        name=str(function.name),
        site=definition_site(function.python_function),
        header=explanation.header,
        traces=traces,
        autograph_source=converted,
        original_source=original,
    )


def stages(concrete: ConcreteFunction) -> list[Stage]:
    """The traced graph, then the graph after each pass of the trace's pipeline: the pass
    manager runs it again one pass at a time (passes are deterministic, so the last stage is
    ``concrete.ir``)."""
    graph = concrete.ir_unoptimized
    found = [Stage(0, "traced", graph, None)]
    for index, (name, transform) in enumerate(concrete.function._passes, start=1):
        graph, records = run_pipeline(graph, [(name, transform)], check=False)
        found.append(Stage(index, name, graph, records[0]))
    return found


def xla_view(concrete: ConcreteFunction) -> XlaView:
    """StableHLO (symbolic shapes where dims are unknown), XLA's HLO and costs (concrete shapes
    only), and how long lowering and compiling took here."""
    avals = concrete.input_avals
    try:
        if all(a.is_fully_known() for a in avals):
            structs: Any = [a.to_struct() for a in avals]
        else:
            structs = symbolic_structs(avals)
        start = time.perf_counter()
        lowered = concrete.executable.lower(structs)
        stablehlo = lowered.as_text()
        lower_seconds = time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - the report shows why instead of failing
        return XlaView(stablehlo_note=f"lowering failed: {type(err).__name__}: {err}")
    if not all(a.is_fully_known() for a in avals):
        unknown = ", ".join(str(a) for a in avals if not a.is_fully_known())
        note = (
            f"this trace has inputs with unknown dimensions ({unknown}) and XLA compiles for "
            "concrete shapes: use cf.compiled_text(x) with example arguments"
        )
        return XlaView(stablehlo, hlo_note=note, lower_seconds=lower_seconds)
    try:
        start = time.perf_counter()
        compiled = lowered.compile()
        compile_seconds = time.perf_counter() - start
        hlo = compiled.as_text()
        costs = inspection.cost_figures(compiled)
    except Exception as err:  # noqa: BLE001
        note = f"compiling failed: {type(err).__name__}: {err}"
        return XlaView(stablehlo, hlo_note=note, lower_seconds=lower_seconds)
    return XlaView(stablehlo, "", hlo, "", costs, lower_seconds, compile_seconds)


def _sources(function: Function[..., Any]) -> tuple[str, str]:
    """The function's own source and AutoGraph's conversion of it ("" when tracing used the
    function as it is)."""
    import inspect

    from tracejit import autograph

    try:
        original = inspect.getsource(function.python_function)
    except (OSError, TypeError):
        original = ""
    converted = function._converted
    if not function.autograph or converted is None or not autograph.is_converted(converted):
        return original, ""
    try:
        return original, autograph.to_code(function.python_function)
    except (TracejitError, TypeError):
        return original, ""


# Nodes and their source lines ------------------------------------------------------------------
def walk(graph: Graph) -> list[Node]:
    """Every node, nested bodies right after the node that holds them (the printer's order)."""
    found: list[Node] = []
    for node in graph.nodes:
        found.append(node)
        for _, body in nested_graphs(node):
            found.extend(walk(body))
    return found


def is_backward(loc: SourceLoc | None) -> bool:
    """Whether a node with this location was made by a gradient call (see GRADIENT_CALL)."""
    return loc is not None and GRADIENT_CALL.search(loc.text) is not None


_DEFINES = re.compile(r"^\s*%([\w.]+)\s*[:,=]")
_HEADER = re.compile(r"^\s*#\s*(\S+?):(\d+) in ")


def line_locations(text: str, graph: Graph) -> list[SourceLoc | None]:
    """For each line of ``str(graph)``, the location of the node it prints (None for other
    lines). Lines are matched to nodes in print order by the first value a line defines, so this
    reads only ``%id`` at the start of a node's line, not the rest of the text format; the lines
    that continue a wrapped node line get that node's location too, and a comment naming a
    node's ``file:line`` (a group header) gets that location."""
    nodes = walk(graph)
    by_place = {(os.path.basename(n.loc.file), n.loc.line): n.loc for n in nodes if n.loc}
    result: list[SourceLoc | None] = []
    position = 0
    current: SourceLoc | None = None
    current_indent = -1
    previous = ""
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        match = _DEFINES.match(line)
        node = nodes[position] if position < len(nodes) else None
        header = _HEADER.match(line)
        if node is not None and _prints(node, line, match):
            position += 1
            current, current_indent = node.loc, indent
            result.append(node.loc)
        elif current is not None and indent > current_indent and _continues(line, previous):
            result.append(current)
        elif header is not None:
            current = None
            result.append(by_place.get((header.group(1), int(header.group(2)))))
        else:
            current = None
            result.append(None)
        previous = line
    return result


def _prints(node: Node, line: str, match: re.Match[str] | None) -> bool:
    if node.outputs:
        return match is not None and match.group(1) == node.outputs[0].id
    return match is None and line.strip().startswith(node.op.name)


def _continues(line: str, previous: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if previous.rstrip().endswith(",") or stripped.startswith(("=", "->")):
        return True
    return not stripped.startswith(("#", "body", "func", "}", "%", "state", "assign", "return"))
