"""The report page's stylesheet and script, inlined into every page (it opens from disk, with no
network). The script links IR nodes and source lines: clicking either highlights both."""

CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --hl: #ffe58a; --back: #f3e8ff;
  --add: #e6ffec; --del: #ffebe9; --used: #eef6ff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); }
header { padding: 12px 20px; border-bottom: 1px solid var(--line); background: #f6f8fa; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; color: var(--muted); }
header nav a { margin-right: 12px; }
.layout { display: flex; align-items: flex-start; }
main { flex: 1 1 60%; min-width: 0; padding: 8px 20px 40px; }
aside#source { flex: 0 0 40%; position: sticky; top: 0; height: 100vh; overflow: auto;
  border-left: 1px solid var(--line); padding: 8px 12px; background: #fcfcfd; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; }
pre { margin: 0; padding: 8px; background: #f6f8fa; border: 1px solid var(--line);
  border-radius: 6px; overflow: auto; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo,
  Consolas, monospace; }
pre.long { max-height: 480px; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { border: 1px solid var(--line); padding: 2px 8px; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: var(--muted); font-style: italic; }
.change { font-family: ui-monospace, monospace; }
.fix { color: #0a3069; }
.ir-line, .src-line, .diff-line { display: block; white-space: pre; min-height: 1.4em; }
.node, .src-line.used { cursor: pointer; }
.node:hover, .src-line.used:hover { outline: 1px solid #8c959f; }
.backward { background: var(--back); }
.src-line.used { background: var(--used); }
.src-line.used.backward { background: var(--back); }
.diff-line.add { background: var(--add); }
.diff-line.del { background: var(--del); }
.diff-line.skip { color: var(--muted); font-style: italic; }
.hl, .src-line.hl, .diff-line.hl { background: var(--hl) !important; }
.lineno { display: inline-block; width: 4em; color: var(--muted); user-select: none; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 8px;
  border: 1px solid var(--line); }
.graph-picture svg { max-width: 100%; height: auto; }
.graph-picture a.hl polygon, .graph-picture a.hl path, .graph-picture a.hl ellipse {
  stroke: #d1242f; stroke-width: 3px; }
.graph-picture a[data-file] { cursor: pointer; }
.stage { border-left: 3px solid var(--line); padding-left: 10px; margin: 10px 0; }
.stage.changed { border-left-color: #0969da; }
"""

JS = """
(function () {
  'use strict';
  function clear() {
    document.querySelectorAll('.hl').forEach(function (e) { e.classList.remove('hl'); });
  }
  function visible(e) { return e.getClientRects().length > 0; }
  function highlight(file, line) {
    clear();
    var selector = '[data-file="' + file + '"][data-line="' + line + '"]';
    var found = document.querySelectorAll(selector);
    found.forEach(function (e) { e.classList.add('hl'); });
    return found;
  }
  document.addEventListener('click', function (event) {
    var target = event.target.closest('[data-file][data-line]');
    if (!target) { return; }
    var file = target.getAttribute('data-file');
    var line = target.getAttribute('data-line');
    var found = highlight(file, line);
    if (target.classList.contains('src-line')) {
      var first = Array.prototype.find.call(found, function (e) {
        return !e.classList.contains('src-line') && visible(e);
      });
      if (first) { first.scrollIntoView({block: 'center'}); }
    } else {
      var source = document.getElementById('src-' + file + '-' + line);
      if (source) { source.scrollIntoView({block: 'center'}); }
    }
  });
})();
"""
