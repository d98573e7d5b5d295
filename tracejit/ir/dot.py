"""The IR as a picture: Graphviz DOT text (``graph.to_dot()``) and rendering (``graph.render``).

Each op node is a box labelled with its op, params and output avals; edges carry the aval of the
value flowing along them. Inputs, state, constants and outputs have their own shapes and colors,
impure ops (prints) are red, and the graphs a node holds in its params (control-flow bodies, fused
regions) are drawn as clusters next to it. The text is deterministic, so it can be diffed and
golden-tested; hovering a node in the SVG shows the user's source line.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tracejit.errors import GraphvizNotFoundError, TracejitError
from tracejit.ir.graph import Graph, Node, Value, nested_graphs
from tracejit.ir.printer import format_param

# (shape, fill color) of each kind of DOT node.
STYLES = {
    "input": ("invhouse", "#d5e8d4"),
    "state": ("cylinder", "#fff2cc"),
    "const": ("note", "#eeeeee"),
    "op": ("box", "#dae8fc"),
    "effect": ("box", "#f8cecc"),
    "output": ("house", "#e1d5e7"),
    "assign": ("cylinder", "#e1d5e7"),
}
FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = (
    "Install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS), `conda install graphviz`, or see https://graphviz.org/download/. "
    "graph.to_dot() gives the DOT text without it."
)


def _quote(text: str) -> str:
    """A DOT string literal; ``\\n`` in ``text`` becomes a centered line break."""
    lines = text.split("\n")
    escaped = [line.replace("\\", "\\\\").replace('"', '\\"') for line in lines]
    return '"' + "\\n".join(escaped) + '"'


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Writer:
    """Accumulates DOT lines; ``ids`` numbers DOT nodes in the order they are written."""

    def __init__(self, max_label: int) -> None:
        self.lines: list[str] = []
        self.max_label = max_label
        self._next = 0
        self._next_cluster = 0

    def new_id(self) -> str:
        self._next += 1
        return f"n{self._next}"

    def node(self, indent: str, kind: str, label: str, tooltip: str | None = None) -> str:
        shape, color = STYLES[kind]
        name = self.new_id()
        extra = f", tooltip={_quote(tooltip)}" if tooltip else ""
        self.lines.append(
            f"{indent}{name} [shape={shape}, fillcolor={_quote(color)}, "
            f"label={_quote(label)}{extra}];"
        )
        return name

    def edge(self, indent: str, source: str, target: str, label: str, extra: str = "") -> None:
        self.lines.append(f"{indent}{source} -> {target} [label={_quote(label)}{extra}];")

    def graph(self, graph: Graph, indent: str, top: bool) -> str | None:
        """Write ``graph``'s nodes and edges; return the id of its first DOT node (an anchor for
        the edge pointing into a cluster)."""
        where: dict[Value, str] = {}
        first = self._next
        sources = []
        for value in graph.inputs:
            role = "input" if top else "argument"
            where[value] = self.node(indent, "input", f"{role} %{value.id}\n{value.aval}")
            sources.append(where[value])
        for value, name in zip(graph.state, graph.state_names):
            where[value] = self.node(indent, "state", f"state {name}\n%{value.id}: {value.aval}")
            sources.append(where[value])
        for value, _ in graph.consts:
            where[value] = self.node(indent, "const", f"const %{value.id}\n{value.aval}")
        for node in graph.nodes:
            self._op(node, where, indent)
        sinks = []
        keyword = "return" if top else "yield"
        for i, value in enumerate(graph.outputs):
            label = f"{keyword} {i}\n{value.aval}" if len(graph.outputs) > 1 else keyword
            sinks.append(self.node(indent, "output", label))
            self._value_edge(indent, where, value, sinks[-1])
        for i in graph.updated_state():
            value = graph.state_outputs[i]
            sinks.append(self.node(indent, "assign", f"assign {graph.state_names[i]}"))
            self._value_edge(indent, where, value, sinks[-1])
        if top and sources:
            self.lines.append(f"{indent}{{rank=source; {'; '.join(sources)}}}")
        if top and sinks:
            self.lines.append(f"{indent}{{rank=sink; {'; '.join(sinks)}}}")
        return f"n{first + 1}" if self._next > first else None

    def _value_edge(self, indent: str, where: dict[Value, str], value: Value, target: str) -> None:
        source = where.get(value)
        if source is not None:  # a value from outside this graph would be a verifier error
            self.edge(indent, source, target, str(value.aval))

    def _op(self, node: Node, where: dict[Value, str], indent: str) -> None:
        params = [
            f"{k}={_shorten(format_param(v), self.max_label)}"
            for k, v in node.params.items()
            if not any(key == k or key.startswith(f"{k}[") for key, _ in nested_graphs(node))
        ]
        label = node.op.name
        if params:
            label += "\n" + _shorten(", ".join(params), self.max_label)
        outs = ", ".join(f"%{v.id}: {v.aval}" for v in node.outputs)
        if outs:
            label += "\n" + _shorten(outs, self.max_label)
        kind = "op" if node.op.pure else "effect"
        tooltip = node.loc.describe() if node.loc is not None else None
        name = self.node(indent, kind, label, tooltip)
        for value in node.inputs:
            self._value_edge(indent, where, value, name)
        for value in node.outputs:
            where[value] = name
        for key, body in nested_graphs(node):
            self._cluster(node, name, key, body, indent)

    def _cluster(self, node: Node, owner: str, key: str, body: Graph, indent: str) -> None:
        self._next_cluster += 1
        cluster = f"cluster_{self._next_cluster}"
        self.lines.append(f"{indent}subgraph {cluster} {{")
        inner = indent + "  "
        self.lines.append(
            f'{inner}label={_quote(f"{node.op.name}: {key}")}; style="rounded,dashed"; '
            'color="#888888"; fontsize=10;'
        )
        anchor = self.graph(body, inner, top=False)
        self.lines.append(f"{indent}}}")
        if anchor is not None:
            self.lines.append(
                f'{indent}{owner} -> {anchor} [lhead={cluster}, style=dashed, color="#888888", '
                "arrowhead=odot];"
            )


def to_dot(graph: Graph, *, max_label: int = 48) -> str:
    """Graphviz DOT text for ``graph``: op nodes labelled with op, params and output avals,
    edges with avals, nested graphs as clusters. Labels longer than ``max_label`` are cut.

    >>> import tracejit as tj
    >>> f = tj.function(lambda x: tj.exp(x) + 1.0)
    >>> dot = f.get_concrete_function(tj.TensorSpec([3])).ir.to_dot()
    >>> dot.splitlines()[0]
    'digraph "<lambda>" {'
    """
    writer = _Writer(max_label)
    title = f"{graph.name}  [{' -> '.join(graph.provenance)}]"
    writer.lines += [
        f"digraph {_quote(graph.name)} {{",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; fontsize=12;",
        "  rankdir=TB; compound=true; nodesep=0.3; ranksep=0.35;",
        '  node [fontname=Helvetica, fontsize=10, style="rounded,filled", color="#666666"];',
        '  edge [fontname=Helvetica, fontsize=9, color="#555555", fontcolor="#333333"];',
    ]
    writer.graph(graph, "  ", top=True)
    writer.lines.append("}")
    return "\n".join(writer.lines) + "\n"


def dot_program() -> str | None:
    """The path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def render(graph: Graph, path: str | Path, format: str | None = None) -> Path:
    """Draw ``graph`` to ``path`` with Graphviz's ``dot`` (``format``: svg, png or pdf; by
    default the path's suffix, else svg). Raises ``GraphvizNotFoundError`` saying how to install
    Graphviz when ``dot`` is missing."""
    path = Path(path)
    chosen = (format or path.suffix.lstrip(".") or "svg").lower()
    if chosen not in FORMATS:
        raise ValueError(f"render: format must be one of {', '.join(FORMATS)}, got {chosen!r}")
    program = dot_program()
    if program is None:
        raise GraphvizNotFoundError(
            f"render: drawing {graph.name} needs the Graphviz `dot` program, which is not on "
            f"PATH. {INSTALL_HINT}"
        )
    done = subprocess.run(
        [program, f"-T{chosen}", "-o", str(path)],
        input=to_dot(graph).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise TracejitError(
            f"render: Graphviz `dot` failed on {graph.name} (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return path
