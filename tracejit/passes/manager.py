"""The pass manager: an ordered pipeline of named ``Graph -> Graph`` passes that shows its work.

For each pass it records node counts before and after and the time taken, appends a stage to
the graph's provenance header (``cse(-3)``, ``fuse(4 regions)``), optimizes nested graphs too
(through ``map_subgraphs``), can verify the graph after every pass, and can dump the IR after
every pass to text files (``tj.config.dump_ir(dir)`` or ``TRACEJIT_DUMP_IR=<dir>``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence

from tracejit import config
from tracejit.ir.graph import Graph, nested_graphs
from tracejit.ir.verify import verify
from tracejit.ops.fused import FUSED
from tracejit.passes.cse import cse
from tracejit.passes.dce import dce
from tracejit.passes.fold import fold
from tracejit.passes.fuse import fuse_elementwise
from tracejit.passes.hoist import hoist
from tracejit.passes.patterns import MADE_OPS, fuse_patterns
from tracejit.passes.rewrite import map_subgraphs
from tracejit.passes.simplify import simplify

Pass = Callable[[Graph], Graph]

PASSES: dict[str, Pass] = {
    "fold": fold,
    "simplify": simplify,
    "cse": cse,
    "hoist": hoist,
    "dce": dce,
    "fuse_patterns": fuse_patterns,
    "fuse": fuse_elementwise,
}
# Passes whose report row counts the ops of these names they made (the patterns that fired).
REPORTED_OPS: dict[str, frozenset[str]] = {"fuse_patterns": MADE_OPS}
DEFAULT_PIPELINE: tuple[str, ...] = (
    "fold",
    "simplify",
    "cse",
    "hoist",
    "dce",
    "fuse_patterns",
    "fuse",
)


@dataclasses.dataclass(frozen=True)
class PassRecord:
    """What one pass did: its name, node counts before/after, and seconds taken."""

    name: str
    nodes_before: int
    nodes_after: int
    seconds: float
    regions: int = 0  # fused regions the pass made (net)
    made: tuple[tuple[str, int], ...] = ()  # (op name, how many more) for REPORTED_OPS

    def notes(self) -> list[str]:
        """``4 fused regions``, ``1 dot_product_attention``: what the pass made."""
        made = [f"{count} {name}" for name, count in self.made]
        return ([_regions(self.regions)] if self.regions else []) + made

    def __str__(self) -> str:
        counts = f"{self.nodes_before} -> {self.nodes_after} nodes"
        made = "".join(f", {note}" for note in self.notes())
        return f"{self.name}: {counts}{made}, {self.seconds * 1e3:.2f} ms"


class PassReport(list):  # type: ignore[type-arg]
    """The records of one pipeline run; prints as a table."""

    def __str__(self) -> str:
        lines = [f"{'pass':<16}{'nodes before':>14}{'nodes after':>13}{'ms':>10}"]
        for r in self:
            made = f"  {', '.join(r.notes())}" if r.notes() else ""
            lines.append(
                f"{r.name:<16}{r.nodes_before:>14}{r.nodes_after:>13}{r.seconds * 1e3:>10.2f}{made}"
            )
        return "\n".join(lines)


def _regions(count: int, kind: str = "fused ") -> str:
    """``4 fused regions``, ``1 fused region``, ``-1 fused region`` (a pass that unfused one)."""
    return f"{count} {kind}region{'' if abs(count) == 1 else 's'}"


def resolve(pipeline: bool | Sequence[str | Pass]) -> list[tuple[str, Pass]]:
    """``True`` -> the default pipeline, ``False`` -> none, or a list of names/functions."""
    if pipeline is True:
        pipeline = DEFAULT_PIPELINE
    elif pipeline is False or pipeline is None:
        return []
    resolved = []
    for item in pipeline:
        if isinstance(item, str):
            if item not in PASSES:
                raise ValueError(f"unknown pass {item!r}; known passes: {', '.join(PASSES)}")
            resolved.append((item, PASSES[item]))
        elif callable(item):
            resolved.append((getattr(item, "__name__", "pass"), item))
        else:
            raise TypeError(f"a pass is a name or a Graph -> Graph function, got {item!r}")
    return resolved


def count_nodes(graph: Graph) -> int:
    """Nodes including those of nested graphs. A ``fused`` node is a wrapper around its body
    (whose nodes count), not a node of its own: fusing nodes leaves the count as it was."""
    total = 0
    for node in graph.nodes:
        total += (node.op is not FUSED) + sum(count_nodes(sub) for _, sub in nested_graphs(node))
    return total


def count_regions(graph: Graph) -> int:
    """``fused`` nodes, including those in nested graphs."""
    total = 0
    for node in graph.nodes:
        total += (node.op is FUSED) + sum(count_regions(sub) for _, sub in nested_graphs(node))
    return total


def count_ops(graph: Graph, names: frozenset[str]) -> Counter[str]:
    """How many nodes of each op in ``names`` the graph holds, nested graphs included."""
    counts: Counter[str] = Counter()
    for node in graph.nodes:
        if node.op.name in names:
            counts[node.op.name] += 1
        for _, sub in nested_graphs(node):
            counts.update(count_ops(sub, names))
    return counts


def _made(before: Graph, after: Graph, names: frozenset[str]) -> tuple[tuple[str, int], ...]:
    more = count_ops(after, names) - count_ops(before, names)  # keeps only increases
    return tuple(sorted(more.items()))


def stage_label(name: str, delta: int, regions: int) -> str:
    """The provenance entry of a pass that changed the graph: ``cse(-3)``, ``fuse(4 regions)``,
    or the bare name when the node count stayed the same and no region was made."""
    notes = ([f"{delta:+d}"] if delta else []) + ([_regions(regions, "")] if regions else [])
    return f"{name}({', '.join(notes)})" if notes else name


def run_pipeline(
    graph: Graph,
    passes: list[tuple[str, Pass]],
    *,
    check: bool | None = None,
    dump_name: str | None = None,
) -> tuple[Graph, PassReport]:
    """Run ``passes`` in order; return the optimized graph and what each pass did. ``check``
    verifies the graph after each pass that changed it (default: ``config.debug_checks()``)."""
    report = PassReport()
    check = config.debug_checks() if check is None else check
    directory = config.dump_directory()
    if directory and dump_name:
        _dump(directory, dump_name, 0, "traced", graph)
    count = count_nodes(graph)  # counted again only when a pass returns a new graph
    for index, (name, transform) in enumerate(passes, start=1):
        before = count
        start = time.perf_counter()
        result = transform(map_subgraphs(graph, transform))
        elapsed = time.perf_counter() - start
        regions = 0
        made: tuple[tuple[str, int], ...] = ()
        if result is not graph:
            if name in REPORTED_OPS:
                made = _made(graph, result, REPORTED_OPS[name])
            count = count_nodes(result)
            regions = count_regions(result) - count_regions(graph)
            stage = stage_label(name, count - before, regions)
            result = dataclasses.replace(result, provenance=graph.provenance + (stage,))
            if check:
                verify(result)
        report.append(PassRecord(name, before, count, elapsed, regions, made))
        graph = result
        if directory and dump_name:
            _dump(directory, dump_name, index, name, graph)
    return graph, report


def _dump(directory: str, name: str, index: int, stage: str, graph: Graph) -> None:
    os.makedirs(directory, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    with open(os.path.join(directory, f"{safe}.{index:02d}.{stage}.txt"), "w") as handle:
        handle.write(str(graph) + "\n")
