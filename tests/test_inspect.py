"""Inspecting compiled functions: DOT export and rendering, XLA's text and costs, f.summary()."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import GraphvizNotFoundError, SignatureError
from tracejit.ir import dot

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def model(x, n):
    h = tj.nn.softmax(x @ W + 1.0)
    y = tj.cond(n > 0, lambda: tj.exp(h) * 2.0 + 1.0, lambda: h - 1.0)
    counter.assign_add(y.sum(0))
    return y


counter = tj.Variable(tj.zeros((3,)), name="counter")


@pytest.fixture(scope="module")
def model_ir():
    f = tj.function(model)
    spec = (tj.TensorSpec((None, 4)), tj.TensorSpec((), "int32"))
    return f.get_concrete_function(*spec).ir


# DOT -------------------------------------------------------------------------------------------
def test_dot_labels_nodes_with_op_and_aval_and_edges_with_shapes(model_ir):
    text = model_ir.to_dot()
    assert text.startswith('digraph "model" {')
    assert text.rstrip().endswith("}")
    assert 'label="input %0\\nf32[?,4]"' in text
    assert 'label="softmax\\naxis=1\\n%' in text  # op, params, output value and aval
    assert '[label="f32[?,3]"]' in text  # an edge carries its aval
    assert 'tooltip="test_inspect.py:' in text  # hovering shows the user's line


def test_dot_sets_inputs_state_consts_outputs_apart(model_ir):
    text = model_ir.to_dot()
    shapes = {
        kind: f'shape={shape}, fillcolor="{color}"' for kind, (shape, color) in dot.STYLES.items()
    }
    assert shapes["input"] in text
    assert shapes["state"] in text and 'label="state counter' in text
    assert shapes["const"] in text
    assert shapes["output"] in text and 'label="return"' in text
    assert shapes["assign"] in text and 'label="assign counter"' in text
    assert "{rank=source;" in text and "{rank=sink;" in text


def test_dot_draws_bodies_and_fused_regions_as_clusters(model_ir):
    text = model_ir.to_dot()
    assert 'label="cond: true_body"' in text
    assert 'label="cond: false_body"' in text
    assert 'label="fused: body"' in text  # the fused region inside the true branch
    assert text.count("subgraph cluster_") == 3
    assert "lhead=cluster_" in text
    assert 'label="yield"' in text


def test_dot_is_deterministic_and_marks_effects():
    f = tj.function(lambda x: (tj.print("x is", x), x + 1)[1])
    graph = f.get_concrete_function(tj.TensorSpec((2,))).ir
    text = graph.to_dot()
    assert text == graph.to_dot()
    assert f'fillcolor="{dot.STYLES["effect"][1]}"' in text
    assert 'template=\\"x is {}\\"' in text  # quotes escaped inside the DOT label


def rendering_available() -> bool:
    if dot.dot_program() is not None:
        return True
    if os.environ.get("CI"):
        pytest.fail("Graphviz `dot` is missing in CI: .ci/run installs the graphviz package")
    return False


@pytest.mark.parametrize(("name", "magic"), [("graph.svg", b"<?xml"), ("graph.png", b"\x89PNG")])
def test_render_writes_the_picture(model_ir, tmp_path, name, magic):
    if not rendering_available():
        pytest.skip("Graphviz `dot` is not installed (apt-get install graphviz)")
    path = model_ir.render(tmp_path / name)
    assert path.read_bytes().startswith(magic)
    if name.endswith(".svg"):
        assert "cond: true_body" in path.read_text()


def test_render_format_argument_and_bad_format(model_ir, tmp_path):
    with pytest.raises(ValueError, match="format must be one of svg, png, pdf"):
        model_ir.render(tmp_path / "graph.gif")
    if rendering_available():
        out = model_ir.render(tmp_path / "picture", format="svg")
        assert out.read_bytes().startswith(b"<?xml")


def test_render_without_graphviz_says_how_to_install(model_ir, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError) as info:
        model_ir.render(tmp_path / "graph.svg")
    message = str(info.value)
    assert "Graphviz `dot` program" in message
    assert "apt-get install graphviz" in message
    assert "brew install graphviz" in message
    assert "to_dot()" in message


# XLA's view --------------------------------------------------------------------------------------
def test_lower_compiled_text_and_cost_analysis():
    f = tj.function(lambda a, b: a @ b)
    a, b = tj.ones((8, 4)), tj.ones((4, 2))
    cf = f.get_concrete_function(a, b)
    assert "stablehlo.dot_general" in cf.lower(a, b).as_text()
    hlo = cf.compiled_text()
    assert hlo.startswith("HloModule")
    assert "f32[8,2]" in hlo
    costs = cf.cost_analysis()
    assert all(isinstance(v, float) for v in costs.values())
    if "flops" in costs:  # where the backend reports it (CPU and GPU do)
        assert costs["flops"] == pytest.approx(2 * 8 * 4 * 2, rel=0.5)


def test_unknown_dims_need_example_arguments():
    f = tj.function(lambda x: x * 2.0, input_signature=[tj.TensorSpec((None, 3))])
    cf = f.get_concrete_function()
    with pytest.raises(SignatureError, match="unknown dimensions .f32\\[\\?,3\\].*Pass example"):
        cf.compiled_text()
    assert "f32[5,3]" in cf.compiled_text(np.ones((5, 3), np.float32))
    assert isinstance(cf.cost_analysis(tj.ones((7, 3))), dict)


def test_cost_figures_normalizes_jax_versions():
    from tracejit.tracing.inspection import cost_figures

    class Compiled:
        def __init__(self, costs):
            self.costs = costs

        def cost_analysis(self):
            return self.costs

    assert cost_figures(Compiled([{"flops": 4, "name": "x"}])) == {"flops": 4.0}
    assert cost_figures(Compiled({"bytes accessed": 8.0})) == {"bytes accessed": 8.0}
    assert cost_figures(Compiled(None)) == {}
    assert cost_figures(Compiled([])) == {}


# f.summary() -------------------------------------------------------------------------------------
def test_summary_has_one_row_per_trace():
    @tj.function
    def step(x, scale):
        return tj.exp(x) * scale + 1.0

    assert "0 traces, 0 calls" in str(step.summary())
    step(tj.ones((2,)), 2.0)
    step(tj.ones((2,)), 2.0)
    step.get_concrete_function(tj.TensorSpec((5,)), 3.0)  # traced, never called
    table = step.summary()
    assert [row.calls for row in table.rows] == [2, 0]
    first, second = table.rows
    assert first.signature == "x: f32[2], scale: 2.0"
    # Fused into one node holding the three: counts include nested bodies, as the pass report's,
    # and not the fused wrapper (fusion neither adds nor removes work).
    assert first.nodes_traced == 3 and first.nodes_optimized == 3
    assert first.trace_seconds > 0 and first.optimize_seconds > 0
    assert first.compile_seconds is not None and first.compile_seconds > 0
    assert second.compile_seconds is None  # not called yet
    text = str(table)
    assert text.splitlines()[0].startswith("step (test_inspect.py:")
    assert "2 traces, 2 calls" in text
    header = text.splitlines()[1].split()
    assert header == [
        "#",
        "signature",
        "nodes",
        "optimized",
        "trace",
        "ms",
        "optimize",
        "ms",
        "compile",
        "ms",
        "calls",
    ]
    assert "x: f32[5], scale: 3.0" in text
    assert text.splitlines()[3].split()[-2] == "-"  # compile time unknown before the first call


def test_compile_seconds_is_measured_once():
    f = tj.function(lambda x: x + 1)
    x = tj.ones((3,))
    f(x)
    cf = f.get_concrete_function(x)
    first = cf.compile_seconds
    assert first is not None
    f(x)
    assert cf.compile_seconds == first


def test_summary_shows_what_each_trace_accepts():
    f = tj.function(lambda x, scale: x * scale, input_signature=[tj.TensorSpec((None, 2))])
    f(tj.ones((3, 2)), 2)
    f(tj.ones((5, 2)), 2)
    (row,) = f.summary().rows
    assert row.signature == "x: f32[?,2], scale: 2"
    assert row.calls == 2
