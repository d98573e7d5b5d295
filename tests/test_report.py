"""tj.report: the HTML compile report. Structural checks on the page, and a real browser
(Playwright driving the system Chromium) loading it from disk and clicking a node."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracejit as tj
from tracejit.passes.manager import DEFAULT_PIPELINE
from tracejit.report import collect as collect_module
from tracejit.report import render as render_module


def make_train_step():
    w = tj.Variable(np.full((3, 2), 0.5, np.float32), name="w")

    @tj.function
    def train_step(x, y, lr):
        with tj.GradientTape() as tape:
            pred = x @ w
            loss = tj.mean((pred - y) ** 2)
            if loss > 100.0:  # AutoGraph makes this a cond
                loss = loss / 2.0
        (grad,) = tape.gradient(loss, [w])
        w.assign_sub(lr * grad)
        return loss

    return train_step


@pytest.fixture(scope="module")
def train_step():
    step = make_train_step()
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    step(x, y, 0.1)
    step(x, y, 0.1)
    step(np.ones((5, 3), np.float32), np.zeros((5, 2), np.float32), 0.1)  # a shape retrace
    return step


@pytest.fixture(scope="module")
def page(train_step, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "train_step.html"
    assert tj.report(train_step, path) == path
    return path.read_text(encoding="utf-8")


def sections(html: str, cls: str) -> list[str]:
    return re.findall(rf'<section class="{cls}[^"]*"[^>]*>', html)


def test_every_section_is_there(page):
    for anchor in ('id="summary"', 'id="autograph"', 'id="trace-1"', 'id="trace-2"'):
        assert anchor in page
    for heading in (
        "Why it was traced",
        "Timings and calls",
        "The IR after each pass",
        "Backward pass",
        "The optimized graph",
        "StableHLO (jax's lowering)",
        "Compiled HLO (after XLA's passes)",
        "XLA's cost analysis",
    ):
        assert page.count(f"<h3>{heading}</h3>") == 2, heading  # once per trace
    stages = re.findall(
        r'<section class="stage[^"]*" id="trace-1-stage-\d+" data-stage="(\w+)"', page
    )
    assert stages == ["traced", *DEFAULT_PIPELINE]
    assert len(sections(page, "stage")) == 2 * (len(DEFAULT_PIPELINE) + 1)
    assert '<aside id="source">' in page and 'class="src-line used' in page


def test_trace_facts(page, train_step):
    assert "x: f32[4,3], y: f32[4,2], lr: 0.1" in page  # the input signature
    # the retrace explanation with the argument diff and its fix
    assert '<tr class="change"><td>x</td><td>shape</td><td>[4,3]</td><td>[5,3]</td></tr>' in page
    assert "fix: x changes shape" in page
    assert "The first trace of this function." in page
    assert re.search(r'Calls of this trace: <span class="calls">2</span>', page)
    assert re.search(r'Calls of this trace: <span class="calls">1</span>', page)
    first = train_step.concrete_functions()[0]
    assert f"{first.compile_seconds * 1e3:.1f}" in page  # the first call's compile time


def test_ir_text_diffs_and_xla(page, train_step):
    cf = train_step.concrete_functions()[0]
    html_ir = re.sub(r"<[^>]+>", "", page)  # the text a reader sees (still escaped)
    assert tj.report_html(cf).count('class="diff-line add') > 0  # a pass added lines
    assert 'class="diff-line del' in page
    # the last stage is the optimized graph, line for line
    for line in str(cf.ir).splitlines():
        assert render_module.esc(line) in html_ir
    assert "stablehlo.dot_general" in page or "dot_general" in page
    assert "HloModule" in page
    assert re.search(r"<td>flops</td><td class=\"num\">[\d,]+</td>", page)


def test_nodes_link_to_their_source_lines(page, train_step):
    cf = train_step.concrete_functions()[0]
    site = train_step.python_function.__code__.co_firstlineno
    matmul = site + 3  # pred = x @ w
    assert re.search(rf'class="ir-line node" data-file="0" data-line="{matmul}"', page)
    assert re.search(rf'id="src-0-{matmul}" data-file="0" data-line="{matmul}"', page)
    # every node of every stage is linked to its line
    for stage in collect_module.stages(cf):
        text = str(stage.graph)
        located = [loc for loc in collect_module.line_locations(text, stage.graph) if loc]
        nodes = [n for n in collect_module.walk(stage.graph) if n.loc is not None]
        assert len(located) >= len(nodes), stage.name


def test_backward_part_is_marked(page, train_step):
    gradient_line = train_step.python_function.__code__.co_firstlineno + 7
    assert re.search(
        rf'class="ir-line node backward" data-file="0" data-line="{gradient_line}"', page
    )
    assert re.search(rf'class="src-line used backward" id="src-0-{gradient_line}"', page)
    forward_line = gradient_line - 4
    assert not re.search(rf'node backward" data-file="0" data-line="{forward_line}"', page)
    assert "traced nodes are the backward part" in page


def test_no_backward_part_without_gradients(tmp_path):
    f = tj.function(lambda x: tj.exp(x) + 1.0)
    f(np.ones(3, np.float32))
    text = tj.report_html(f)
    assert "no backward part" in text and 'class="ir-line node backward"' not in text


def test_autograph_source(page):
    assert '<pre class="autograph long">' in page
    assert "ag__" in page  # the converted `if`

    @tj.function(autograph=False)
    def plain(x):
        return x * 2.0

    plain(np.ones(2, np.float32))
    assert "AutoGraph did not convert this function" in tj.report_html(plain)


def test_page_is_self_contained(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert not re.search(r"<(link|script\s+src|iframe|img|object|embed)\b", page)
    style = page[page.index("<style>") : page.index("</style>")]
    assert "@import" not in style and "url(" not in style
    assert page.count("<script>") == 1 and page.count("<style>") == 1
    if shutil.which("dot"):
        assert "<svg" in page and "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_user_strings_are_escaped(tmp_path):
    source = tmp_path / "evil_module.py"
    source.write_text(
        textwrap.dedent(
            """
            import tracejit as tj

            def evil(x, tag):
                y = x * 2.0  # <script>alert("x & y")</script>
                return y
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import evil_module
    finally:
        sys.path.remove(str(tmp_path))
    evil_module.evil.__name__ = "<b>evil</b>"
    f = tj.function(evil_module.evil)
    f(np.ones(2, np.float32), "<i>&'")
    text = tj.report_html(f)
    assert "<b>evil</b>" not in text and "&lt;b&gt;evil&lt;/b&gt;" in text
    assert "<script>alert" not in text and "&lt;script&gt;alert(&quot;x &amp; y&quot;)" in text
    assert "<i>&" not in text and "&lt;i&gt;&amp;" in text


def test_one_trace_and_unknown_dims():
    f = tj.function(lambda x: tj.sum(x * 2.0, axis=1))
    cf = f.get_concrete_function(tj.TensorSpec((None, 3)))
    f(np.ones((2, 3), np.float32))
    text = tj.report_html(cf)
    assert 'id="trace-1"' in text and 'id="trace-2"' not in text
    assert "tensor&lt;?x3xf32&gt;" in text  # symbolic StableHLO
    assert "XLA compiles for concrete shapes" in text


def test_without_graphviz(monkeypatch, train_step):
    monkeypatch.setattr(render_module, "dot_program", lambda: None)
    text = tj.report_html(train_step)
    assert "Graphviz is not installed" in text and "<svg" not in text


def test_wrong_argument():
    with pytest.raises(TypeError, match="tj.report needs a tj.function"):
        tj.report_html(lambda x: x)


def test_write_reports_after_each_trace(tmp_path):
    tj.config.write_reports(str(tmp_path))
    try:
        f = tj.function(lambda x: x + 1.0)
        f(np.ones(2, np.float32))
        g = tj.function(lambda x: x - 1.0)  # the same name: a second file
        g(np.ones(2, np.float32))
    finally:
        tj.config.write_reports(None)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["_lambda_.html", "_lambda__2.html"]
    assert "trace-1" in (tmp_path / "_lambda_.html").read_text()


def test_environment_variable_writes_final_reports_at_exit(tmp_path):
    script = tmp_path / "program.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import tracejit as tj

            @tj.function
            def double(x):
                return x * 2.0

            for _ in range(3):
                double(np.ones(2, np.float32))
            """
        )
    )
    env = dict(os.environ, TRACEJIT_REPORT=str(tmp_path / "reports"))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "reports" / "double.html").read_text()
    assert 'Calls of this trace: <span class="calls">3</span>' in text  # rewritten at exit


# A real browser ---------------------------------------------------------------------------------
def browser_or_skip():
    """Playwright and a Chromium, or a skip saying what is missing (a failure in CI, which
    installs both)."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright, reason = None, "playwright is not installed (pip install playwright)"
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if reason is None and executable is None:
        reason = "no Chromium browser on PATH (apt-get install chromium)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    return sync_playwright, executable


def test_report_in_a_real_browser(page, tmp_path):
    sync_playwright, executable = browser_or_skip()
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(path.as_uri())
            check_page(tab)
        finally:
            browser.close()
    assert errors == []


def check_page(tab):
    for trace in (1, 2):
        names = tab.eval_on_selector_all(
            f"#trace-{trace} section.stage", "els => els.map(e => e.dataset.stage)"
        )
        assert names == ["traced", *DEFAULT_PIPELINE]
    assert tab.locator("#source .src-line").count() > 5
    assert tab.locator("#source .src-line.used").count() >= 4
    # a node -> its source line
    node = tab.locator("#trace-1-stage-0 .ir-line.node").nth(0)
    file, line = node.get_attribute("data-file"), node.get_attribute("data-line")
    node.click()
    assert "hl" in tab.locator(f"#src-{file}-{line}").get_attribute("class").split()
    assert tab.locator(".ir-line.node.hl").count() >= 1
    # a source line -> its nodes (and no longer the previous ones)
    other = tab.locator("#source .src-line.used.backward").first
    other_line = other.get_attribute("data-line")
    other.click()
    assert "hl" not in tab.locator(f"#src-{file}-{line}").get_attribute("class").split()
    lit = tab.eval_on_selector_all(".ir-line.node.hl", "els => els.map(e => e.dataset.line)")
    assert lit and set(lit) == {other_line}
    if shutil.which("dot"):  # a node of the drawn graph -> its line
        drawn = tab.locator("#trace-1 .graph-picture a[data-line]").first
        drawn_line = drawn.get_attribute("data-line")
        drawn.click()
        source = tab.locator(f"#source .src-line[data-line='{drawn_line}']").first
        assert "hl" in source.get_attribute("class").split()


def test_function_without_traces():
    f = tj.function(lambda x: x * 3.0)
    text = tj.report_html(f)
    assert "no traces yet" in text and 'class="trace"' not in text


def test_long_source_files_are_shown_around_the_used_lines():
    assert render_module._windows(50, {10}) == [(1, 50)]
    assert render_module._windows(1000, {100, 110, 900}) == [(85, 125), (885, 915)]
