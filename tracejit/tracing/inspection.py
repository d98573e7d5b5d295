"""Looking inside compiled functions: XLA's optimized HLO and cost figures for a trace, a summary
table of a function's traces, trace logging, and run-time errors that name the function.

``Function`` and ``ConcreteFunction`` expose these as methods (``cf.compiled_text()``,
``cf.cost_analysis()``, ``f.summary()``); this module holds the work so ``function.py`` stays
about the call path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax

from tracejit import config
from tracejit.errors import (
    ExecutionError,
    SignatureError,
    TracejitError,
    execution_error_type,
    take_callback_error,
    trimmed,
)
from tracejit.ir.graph import Graph, nested_graphs
from tracejit.ops.tensor_methods import is_tensor_leaf
from tracejit.passes.manager import count_nodes
from tracejit.tracing.retracing import definition_site, describe_call
from tracejit.types import TensorSpec

if TYPE_CHECKING:
    from tracejit.tracing.function import ConcreteFunction, Function


# XLA's view ------------------------------------------------------------------------------------
def compile_trace(concrete: ConcreteFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """jax's ``Compiled`` for one trace: for these example arguments, or for the trace's own
    input avals when every dimension is known."""
    if args or kwargs:
        specs = [
            a
            for a in jax.tree_util.tree_leaves((args, kwargs), is_leaf=is_tensor_leaf)
            if isinstance(a, TensorSpec)
        ]
        unknown = [str(s.aval()) for s in specs if not s.aval().is_fully_known()]
    else:
        unknown = [str(a) for a in concrete.input_avals if not a.is_fully_known()]
    if not unknown and (args or kwargs):
        return concrete.lower(*args, **kwargs).compile()
    avals = concrete.input_avals
    if unknown:
        raise SignatureError(
            f"{concrete.name}: this trace has inputs with unknown dimensions "
            f"({', '.join(unknown)}), and XLA compiles for concrete shapes. Pass example "
            "arguments (tensors or arrays of the shapes to compile for), e.g. "
            "cf.compiled_text(x) or cf.cost_analysis(x)."
        )
    return concrete.executable.lower([a.to_struct() for a in avals]).compile()


def cost_figures(compiled: Any) -> dict[str, float]:
    """XLA's cost analysis as a flat dict (``flops``, ``bytes accessed``, ...): jax returns a
    dict, or a list with one dict per device in older versions, or None where the backend
    gives no figures."""
    costs = compiled.cost_analysis()
    if isinstance(costs, (list, tuple)):
        costs = costs[0] if costs else None
    if not costs:
        return {}
    return {str(k): float(v) for k, v in costs.items() if isinstance(v, (int, float))}


# f.summary() ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TraceRow:
    """One trace of a function, as ``f.summary()`` lists it (times in seconds; compile is None
    until the trace's first call)."""

    signature: str
    nodes_traced: int
    nodes_optimized: int
    trace_seconds: float
    optimize_seconds: float
    compile_seconds: float | None
    calls: int


class FunctionSummary:
    """What ``f.summary()`` returns: prints as a table; ``.rows`` holds the data."""

    COLUMNS = ("#", "signature", "nodes", "optimized", "trace ms", "optimize ms", "compile ms")

    def __init__(self, header: str, rows: list[TraceRow]) -> None:
        self.header = header
        self.rows = rows

    def __str__(self) -> str:
        table = [(*self.COLUMNS, "calls")]
        for i, r in enumerate(self.rows, start=1):
            compile_ms = "-" if r.compile_seconds is None else f"{r.compile_seconds * 1e3:.1f}"
            table.append(
                (
                    str(i),
                    r.signature,
                    str(r.nodes_traced),
                    str(r.nodes_optimized),
                    f"{r.trace_seconds * 1e3:.1f}",
                    f"{r.optimize_seconds * 1e3:.1f}",
                    compile_ms,
                    str(r.calls),
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = [self.header]
        for row in table:
            cells = [
                cell.ljust(width) if column == 1 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths))
            ]
            lines.append("  " + "  ".join(cells).rstrip())
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def summary(function: Function[..., Any]) -> FunctionSummary:
    traces = function.concrete_functions()
    names = function._signature.names
    rows = [
        TraceRow(
            describe_call(c.in_structure, names),  # what the trace accepts
            count_nodes(c.ir_unoptimized),
            count_nodes(c.ir),
            c.trace_seconds,
            c.optimize_seconds,
            c.compile_seconds,
            c.calls,
        )
        for c in traces
    ]
    site = definition_site(function.python_function)
    where = f" ({site})" if site else ""
    calls = sum(r.calls for r in rows)
    plural = "" if len(rows) == 1 else "s"
    header = f"{function.name}{where}: {len(rows)} trace{plural}, {calls} calls"
    return FunctionSummary(header, rows)


# Logging -----------------------------------------------------------------------------------------
def log_trace(function: Function[..., Any], concrete: ConcreteFunction) -> None:
    """Called after each new trace: log it, and write the function's report when asked
    (``tj.config.write_reports`` / ``TRACEJIT_REPORT``)."""
    directory = config.report_directory()
    if directory:
        from tracejit.report import write_function_report  # (the report builds on tracing)

        write_function_report(function, directory)
    if not config.logging_enabled("trace"):
        return
    config.logger.info(
        "traced %s(%s) in %.1f ms: %d nodes, %d after optimization (%.1f ms)",
        function.name,
        describe_call(concrete.call_structure, function._signature.names),
        concrete.trace_seconds * 1e3,
        count_nodes(concrete.ir_unoptimized),
        count_nodes(concrete.ir),
        concrete.optimize_seconds * 1e3,
    )


def log_cache_hit(function: Function[..., Any], concrete: ConcreteFunction) -> None:
    config.logger.info(
        "cache hit %s(%s), call %d of this trace",
        function.name,
        ", ".join(str(a) for a in concrete.input_avals),
        concrete.calls + 1,
    )


# Run-time errors -----------------------------------------------------------------------------
def run_error(concrete: ConcreteFunction, err: Exception) -> ExecutionError | None:
    """Running a compiled trace raised ``err``. tracejit's own errors (e.g. a lowering error
    naming the IR node) are re-raised as they are, minus tracejit's frames: None. Anything from
    jax/XLA gives an ``ExecutionError`` (of the class of TF's ``tf.errors`` family that fits) to
    raise from it, naming the function, its inputs and
    the user lines of its effects."""
    trimmed(err)
    if isinstance(err, TracejitError):
        return None
    ins = ", ".join(str(a) for a in concrete.input_avals)
    site = definition_site(concrete.function.python_function)
    where = f" (defined at {site})" if site else ""
    raised = take_callback_error(err)  # tracejit's own error, raised in a host callback
    if isinstance(raised, ExecutionError):
        return type(raised)(
            f"{concrete.name}{where} failed at run time on inputs ({ins}): {raised}"
        )
    message = (
        f"{concrete.name}{where} failed at run time on inputs ({ins}): {type(err).__name__}: {err}"
    )
    effects = _effect_lines(concrete.ir)
    if effects and "callback" in str(err).lower():
        lines = "\n    ".join(effects)
        message += f"\n  the compiled function calls back into Python at:\n    {lines}"
    return execution_error_type(err)(message)


def _effect_lines(graph: Graph) -> list[str]:
    found = []
    for node in graph.nodes:
        if not node.op.pure:
            where = node.loc.describe() if node.loc is not None else "?"
            found.append(f"{node.op.name}: {where}")
        for _, body in nested_graphs(node):
            found.extend(_effect_lines(body))
    return found
