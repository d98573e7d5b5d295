"""The report's HTML: one page, inline CSS, script and SVG, every piece of text escaped.

IR lines and source lines that belong together carry the same ``data-file`` (an index into the
page's source files) and ``data-line``; the page's script highlights them together on a click.
"""

from __future__ import annotations

import difflib
import html
import linecache
import os
import re
import tempfile
from pathlib import Path

from tracejit.ir.dot import dot_program, render
from tracejit.ir.graph import Graph
from tracejit.ir.source import SourceLoc
from tracejit.passes.manager import count_nodes
from tracejit.report.assets import CSS, JS
from tracejit.report.collect import (
    FunctionData,
    Stage,
    TraceData,
    XlaView,
    is_backward,
    line_locations,
    walk,
)

CONTEXT = 3  # unchanged lines shown around each change of a diff
MAX_SOURCE_LINES = 400  # longer files are shown around the lines that made nodes
MAX_GRAPH_NODES = 500  # larger graphs are not drawn (dot takes long and the picture is unreadable)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


class SourceFiles:
    """The user's files that nodes come from: each gets an index for ``data-file``."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.used: dict[str, set[int]] = {}
        self.backward: dict[str, set[int]] = {}

    def add(self, loc: SourceLoc) -> int:
        number = self.index.setdefault(loc.file, len(self.index))
        self.used.setdefault(loc.file, set()).add(loc.line)
        if is_backward(loc):
            self.backward.setdefault(loc.file, set()).add(loc.line)
        return number

    def attributes(self, loc: SourceLoc | None) -> str:
        if loc is None:
            return ""
        return f' data-file="{self.add(loc)}" data-line="{loc.line}" title="{esc(loc.describe())}"'


def page(data: FunctionData) -> str:
    files = SourceFiles()
    for trace in data.traces:  # index every file first, so numbering follows the IR's order
        for stage in trace.stages:
            for node in walk(stage.graph):
                if node.loc is not None:
                    files.add(node.loc)
    body = [_header(data), _summary(data), _autograph(data)]
    body += [_trace(trace, files) for trace in data.traces]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>tracejit report: {esc(data.name)}</title>",
            f"<style>{CSS}</style></head><body>",
            *body[:1],
            '<div class="layout"><main>',
            *body[1:],
            "</main>",
            _source_view(files),
            "</div>",
            f"<script>{JS}</script>",
            "</body></html>",
        ]
    )


def _header(data: FunctionData) -> str:
    links = " ".join(f'<a href="#trace-{t.number}">trace {t.number}</a>' for t in data.traces)
    return (
        f"<header><h1>{esc(data.name)}</h1><p>{esc(data.header)}</p>"
        f'<nav><a href="#summary">summary</a> {links} <a href="#source">source</a></nav></header>'
    )


def _summary(data: FunctionData) -> str:
    head = ["#", "signature", "nodes", "optimized", "trace ms", "optimize ms", "compile ms"]
    rows = []
    for t in data.traces:
        cells = [
            f'<td><a href="#trace-{t.number}">{t.number}</a></td>',
            f"<td>{esc(t.signature)}</td>",
            _num(count_nodes(t.stages[0].graph)),
            _num(count_nodes(t.stages[-1].graph)),
            _num(_ms(t.trace_seconds)),
            _num(_ms(t.optimize_seconds)),
            _num(_ms(t.compile_seconds)),
            _num(t.calls),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        return (
            '<section id="summary"><h2>Traces</h2><p class="note">no traces yet: call the '
            "function (or get_concrete_function) first</p></section>"
        )
    header = "".join(f"<th>{esc(h)}</th>" for h in [*head, "calls"])
    return (
        f'<section id="summary"><h2>Traces</h2><table><tr>{header}</tr>{"".join(rows)}</table>'
        '<p class="note">nodes count the bodies of control flow and fused regions too; compile '
        "ms is the first call (jax lowering, XLA compile, run).</p></section>"
    )


def _autograph(data: FunctionData) -> str:
    if not data.autograph_source:
        note = "AutoGraph did not convert this function (autograph=False, or no source)."
        return f'<section id="autograph"><h2>AutoGraph</h2><p class="note">{note}</p></section>'
    same = data.autograph_source.strip() == data.original_source.strip()
    note = " (the same as the source: no control flow to convert)" if same else ""
    return (
        '<section id="autograph"><h2>AutoGraph</h2>'
        f"<p>The converted source that tracing ran{esc(note)} "
        "(<code>tj.autograph.to_code</code>):</p>"
        f'<pre class="autograph long">{esc(data.autograph_source)}</pre></section>'
    )


def _trace(trace: TraceData, files: SourceFiles) -> str:
    parts = [
        f'<section class="trace" id="trace-{trace.number}" data-trace="{trace.number}">',
        f"<h2>Trace {trace.number}: {esc(trace.signature)}</h2>",
        _why(trace),
        _timings(trace),
        _passes(trace, files),
        _backward(trace, files),
        _picture(trace.stages[-1].graph, files),
        _xla(trace.xla),
        "</section>",
    ]
    return "\n".join(parts)


def _why(trace: TraceData) -> str:
    at = f" at call {trace.traced_at_call}" if trace.traced_at_call else ""
    lines = [
        f"<h3>Why it was traced</h3><p>Traced{esc(at)} for <code>{esc(trace.call_signature)}</code>"
    ]
    if trace.call_signature != trace.signature:
        lines.append(f"; the trace accepts <code>{esc(trace.signature)}</code>")
    lines.append(".</p>")
    retrace = trace.retrace
    if retrace is None:
        lines.append("<p>The first trace of this function.</p>")
        return '<div class="why">' + "".join(lines) + "</div>"
    lines.append(
        f"<p>A retrace: compared with trace {retrace.previous}, these arguments changed:"
        "</p><table><tr><th>argument</th><th>change</th><th>before</th><th>now</th></tr>"
    )
    for change in retrace.changes:
        lines.append(
            f'<tr class="change"><td>{esc(change.path)}</td><td>{esc(change.kind)}</td>'
            f"<td>{esc(change.old)}</td><td>{esc(change.new)}</td></tr>"
        )
    if not retrace.changes:
        lines.append('<tr><td colspan="4">the same arguments (cache cleared?)</td></tr>')
    lines.append("</table>")
    lines += [f'<p class="fix">fix: {esc(text)}</p>' for text in retrace.suggestions]
    return '<div class="why">' + "".join(lines) + "</div>"


def _timings(trace: TraceData) -> str:
    rows = [
        ("trace", trace.trace_seconds, "running the Python function into the IR"),
        ("optimize", trace.optimize_seconds, "the pass pipeline"),
        (
            "lower",
            trace.xla.lower_seconds,
            "jax lowering to StableHLO, for this page (cached by jax after a first call)",
        ),
        ("XLA compile", trace.xla.xla_compile_seconds, "XLA compiling, for this page (cached too)"),
        ("first call", trace.compile_seconds, "the first call: lowering, compiling and running"),
    ]
    body = "".join(
        f"<tr><td>{esc(name)}</td>{_num(_ms(seconds))}<td>{esc(what)}</td></tr>"
        for name, seconds, what in rows
    )
    return (
        '<h3>Timings and calls</h3><table class="timings"><tr><th>step</th><th class="num">ms'
        f'</th><th>what</th></tr>{body}</table><p>Calls of this trace: <span class="calls">'
        f"{trace.calls}</span></p>"
    )


def _passes(trace: TraceData, files: SourceFiles) -> str:
    rows = "".join(
        f'<tr><td><a href="#trace-{trace.number}-stage-{s.index}">{esc(s.name)}</a></td>'
        f"{_num(s.record.nodes_before)}{_num(s.record.nodes_after)}"
        f"{_num(f'{s.record.seconds * 1e3:.2f}')}</tr>"
        for s in trace.stages
        if s.record is not None
    )
    parts = [
        '<section class="passes"><h3>The IR after each pass</h3>',
        '<table><tr><th>pass</th><th class="num">nodes before</th><th class="num">nodes after'
        f'</th><th class="num">ms</th></tr>{rows}</table>',
        '<p class="legend">Click a node to see its source line (and a source line to see its '
        'nodes): <span class="backward">backward (gradient) nodes</span>'
        '<span class="diff-line add">added by the pass</span>'
        '<span class="diff-line del">removed by the pass</span></p>',
    ]
    previous: tuple[list[str], list[SourceLoc | None]] | None = None
    for stage in trace.stages:
        text = str(stage.graph)
        lines = text.split("\n")
        locations = line_locations(text, stage.graph)
        parts.append(_stage(trace, stage, lines, locations, previous, files))
        previous = (lines, locations)
    parts.append("</section>")
    return "\n".join(parts)


def _stage(
    trace: TraceData,
    stage: Stage,
    lines: list[str],
    locations: list[SourceLoc | None],
    previous: tuple[list[str], list[SourceLoc | None]] | None,
    files: SourceFiles,
) -> str:
    changed = " changed" if stage.changed else ""
    title = f"{stage.index}. {stage.name}"
    if stage.record is not None:
        r = stage.record
        title += f": {r.nodes_before} -> {r.nodes_after} nodes, {r.seconds * 1e3:.2f} ms"
    ir = "".join(_ir_line("ir-line", line, loc, files) for line, loc in zip(lines, locations))
    parts = [
        f'<section class="stage{changed}" id="trace-{trace.number}-stage-{stage.index}" '
        f'data-stage="{esc(stage.name)}"><h4>{esc(title)}</h4>'
    ]
    if previous is None:
        parts.append(f'<pre class="ir long">{ir}</pre>')
    else:
        diff = _diff(previous, (lines, locations), files)
        parts.append(
            f'<pre class="diff long">{diff}</pre>'
            if diff
            else '<p class="note">no change to the IR text</p>'
        )
        parts.append(
            f"<details><summary>the IR after {esc(stage.name)}</summary>"
            f'<pre class="ir long">{ir}</pre></details>'
        )
    parts.append("</section>")
    return "".join(parts)


def _ir_line(kind: str, text: str, loc: SourceLoc | None, files: SourceFiles) -> str:
    classes = kind
    if loc is not None:
        classes += " node" + (" backward" if is_backward(loc) else "")
    return f'<span class="{classes}"{files.attributes(loc)}>{esc(text)}</span>'


def _diff(
    old: tuple[list[str], list[SourceLoc | None]],
    new: tuple[list[str], list[SourceLoc | None]],
    files: SourceFiles,
) -> str:
    """An inline diff: removed lines, added lines, and a few unchanged lines around them."""
    (a, a_locs), (b, b_locs) = old, new
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    if all(tag == "equal" for tag, *_ in opcodes):
        return ""
    out = []
    for number, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            keep = list(range(j1, j2))
            head = keep[:CONTEXT] if number > 0 else []
            tail = keep[-CONTEXT:] if number < len(opcodes) - 1 else []
            if len(head) + len(tail) >= len(keep) - 1:  # never "1 unchanged line"
                shown = keep
            else:
                shown = head + [-1] + tail
            for j in shown:
                if j < 0:
                    skipped = len(keep) - len(head) - len(tail)
                    out.append(f'<span class="diff-line skip">  … {skipped} unchanged lines</span>')
                else:
                    out.append(_ir_line("diff-line", "  " + b[j], b_locs[j], files))
            continue
        out += [_ir_line("diff-line del", "- " + a[i], a_locs[i], files) for i in range(i1, i2)]
        out += [_ir_line("diff-line add", "+ " + b[j], b_locs[j], files) for j in range(j1, j2)]
    return "".join(out)


def _backward(trace: TraceData, files: SourceFiles) -> str:
    traced = walk(trace.stages[0].graph)
    backward = [n for n in traced if is_backward(n.loc)]
    if not backward:
        return (
            '<h3>Backward pass</h3><p class="note">No node of this trace comes from a '
            "gradient call (tape.gradient, tj.grad, optimizer.minimize): no backward part.</p>"
        )
    calls = {(n.loc.file, n.loc.line): n.loc for n in backward if n.loc is not None}
    items = "".join(
        f'<li><span class="node backward"{files.attributes(loc)}>{esc(loc.describe())}</span></li>'
        for _, loc in sorted(calls.items(), key=lambda item: item[0])
    )
    return (
        f'<h3>Backward pass</h3><p class="backward-summary">{len(backward)} of {len(traced)} '
        "traced nodes are the backward part (their source line is a gradient call; such nodes "
        f"are shaded in the IR above):</p><ul>{items}</ul>"
    )


def _picture(graph: Graph, files: SourceFiles) -> str:
    title = "<h3>The optimized graph</h3>"
    if dot_program() is None:
        return (
            f'{title}<p class="note graph-missing">Graphviz is not installed, so there is no '
            "picture of the graph here. Install it (<code>apt-get install graphviz</code>, "
            "<code>brew install graphviz</code> or <code>conda install graphviz</code>) and make "
            "the report again.</p>"
        )
    if count_nodes(graph) > MAX_GRAPH_NODES:
        return (
            f'{title}<p class="note">The graph has more than {MAX_GRAPH_NODES} nodes; it is '
            "not drawn (use graph.render(path) to draw it anyway).</p>"
        )
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = render(graph, Path(directory) / "graph.svg")
            svg = path.read_text(encoding="utf-8")
    except Exception as err:  # noqa: BLE001 - the page says why instead of failing
        return f'{title}<p class="note">Graphviz failed: {esc(err)}</p>'
    return f'{title}<div class="graph-picture">{_link_svg(_strip_prolog(svg), graph, files)}</div>'


def _strip_prolog(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _link_svg(svg: str, graph: Graph, files: SourceFiles) -> str:
    """Give each drawn node whose tooltip is a source location that location's data attributes
    (the DOT writer puts ``loc.describe()`` in the tooltip)."""
    by_tooltip = {n.loc.describe(): n.loc for n in walk(graph) if n.loc is not None}

    def link(match: re.Match[str]) -> str:
        loc = by_tooltip.get(html.unescape(match.group(1)))
        if loc is None:
            return match.group(0)
        number = files.add(loc)
        return f'{match.group(0)[:-1]} data-file="{number}" data-line="{loc.line}">'

    return re.sub(r'<a xlink:title="([^"]*)">', link, svg)


def _xla(view: XlaView) -> str:
    parts = ["<h3>StableHLO (jax's lowering)</h3>"]
    if view.stablehlo:
        parts.append(
            f"<details><summary>{len(view.stablehlo.splitlines())} lines</summary>"
            f'<pre class="stablehlo long">{esc(view.stablehlo)}</pre></details>'
        )
    else:
        parts.append(f'<p class="note">{esc(view.stablehlo_note)}</p>')
    parts.append("<h3>Compiled HLO (after XLA's passes)</h3>")
    if view.hlo:
        parts.append(
            f"<details><summary>{len(view.hlo.splitlines())} lines</summary>"
            f'<pre class="hlo long">{esc(view.hlo)}</pre></details>'
        )
    else:
        parts.append(f'<p class="note">{esc(view.hlo_note)}</p>')
    parts.append("<h3>XLA's cost analysis</h3>")
    if view.costs:
        rows = "".join(
            f"<tr><td>{esc(k)}</td>{_num(f'{v:,.0f}' if float(v).is_integer() else f'{v:.4g}')}"
            "</tr>"
            for k, v in sorted(view.costs.items())
        )
        parts.append(
            f'<table class="costs"><tr><th>figure</th><th class="num">value</th></tr>{rows}</table>'
        )
    else:
        why = view.hlo_note or "the backend reports no cost figures"
        parts.append(f'<p class="note">{esc(why)}</p>')
    return "".join(parts)


def _source_view(files: SourceFiles) -> str:
    parts = ['<aside id="source"><h2>Source</h2>']
    if not files.index:
        parts.append('<p class="note">No node has a source location.</p>')
    for path, number in files.index.items():
        lines = linecache.getlines(path)
        used = files.used.get(path, set())
        back = files.backward.get(path, set())
        parts.append(
            f'<div class="src-file" data-file-index="{number}"><h3>{esc(_display_path(path))}</h3>'
        )
        if not lines:
            parts.append('<p class="note">the file cannot be read</p></div>')
            continue
        parts.append('<pre class="source">')
        for start, stop in _windows(len(lines), used):
            if start > 1:
                parts.append(f'<span class="src-line skip">… (lines before {start})</span>')
            for line in range(start, stop + 1):
                text = lines[line - 1].rstrip("\n")
                classes = "src-line"
                attributes = f' id="src-{number}-{line}"'
                if line in used:
                    classes += " used" + (" backward" if line in back else "")
                    attributes += f' data-file="{number}" data-line="{line}"'
                parts.append(
                    f'<span class="{classes}"{attributes}><span class="lineno">'
                    f"{line}</span>{esc(text)}</span>"
                )
        parts.append("</pre></div>")
    parts.append("</aside>")
    return "".join(parts)


def _windows(total: int, used: set[int]) -> list[tuple[int, int]]:
    """Line ranges (1-based, inclusive) to show: the whole file when short, else the lines
    around the used ones."""
    if total <= MAX_SOURCE_LINES or not used:
        return [(1, total)]
    ranges: list[tuple[int, int]] = []
    for line in sorted(used):
        start, stop = max(1, line - 15), min(total, line + 15)
        if ranges and start <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], stop)
        else:
            ranges.append((start, stop))
    return ranges


def _display_path(path: str) -> str:
    """The path relative to the working directory when it is below it, else as it is."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def _num(value: object) -> str:
    return f'<td class="num">{esc(value)}</td>'


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"
