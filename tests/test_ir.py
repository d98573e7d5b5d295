"""The IR: printer golden tests (the printer is the spec), source locations, the verifier."""

from __future__ import annotations

import dataclasses
import inspect
import textwrap

import numpy as np
import pytest

import tracejit as tj
from tracejit.ir.graph import Graph, Node, Params, Value
from tracejit.ir.printer import WIDTH, format_graph, unwrap
from tracejit.ir.source import SourceLoc
from tracejit.ir.verify import IRVerificationError, verify
from tracejit.ops.elementwise import ADD, EXP
from tracejit.types import AVal, float32

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
B = np.array([0.5, -0.5, 0.0], np.float32)
F3 = tj.TensorSpec((3,))


def predict(x):
    h = x @ W + B
    return tj.nn.softmax(h)


def golden(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def test_printer_golden_predict():
    cf = tj.function(predict, optimize=False).get_concrete_function(tj.TensorSpec((None, 4)))
    assert cf.ir.format(source=False) == golden(
        """
        # predict  [traced]
        func predict(%0: f32[?,4]) -> f32[?,3] {
          %c0: f32[4,3] = const [0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 ...]
          %c1: f32[3] = const [0.5 -0.5 0]
          %1: f32[?,3] = matmul %0, %c0
          %2: f32[?,3] = add %1, %c1
          %3: f32[?,3] = softmax[axis=1] %2
          return %3
        }
        """
    )


def test_printer_source_comments_point_at_user_lines():
    cf = tj.function(predict, optimize=False).get_concrete_function(tj.TensorSpec((None, 4)))
    first_line = inspect.getsourcelines(predict)[1]
    lines = str(cf.ir).splitlines()
    matmul = next(i for i, line in enumerate(lines) if "= matmul" in line)
    softmax = next(i for i, line in enumerate(lines) if "= softmax" in line)
    # A comment stands above the run of nodes from one user line, at the nodes' indentation.
    assert lines[matmul - 1] == f"  # test_ir.py:{first_line + 1} in predict: h = x @ W + B"
    assert "= add" in lines[matmul + 1]  # same line: no second comment
    assert lines[softmax - 1] == (
        f"  # test_ir.py:{first_line + 2} in predict: return tj.nn.softmax(h)"
    )
    assert sum("# test_ir.py:" in line for line in lines) == 2
    assert all("#" not in line for line in lines if line.startswith("  %"))  # nodes carry none


def test_source_comment_once_per_run_and_bodies_inherit_it():
    @tj.function
    def step(x):
        y = tj.exp(x * 2.0) + tj.tanh(x) - 1.0
        return y.sum() * y

    text = str(step.get_concrete_function(tj.TensorSpec((3,))).ir)
    lines = text.splitlines()
    comments = [line for line in lines if "test_ir.py:" in line]
    assert len(comments) == 2, text  # one per user line, not one per node
    # The fused body's nodes come from the line of the node that holds it: no comment inside.
    body = lines[lines.index("    body:") : lines.index("      }")]
    assert not any("test_ir.py:" in line for line in body), text


def _minus_one(x):
    return x - 1.0


def test_a_body_from_other_lines_is_followed_by_its_holders_line_again():
    @tj.function
    def f(x):
        return tj.cond(x.sum() > 0, _minus_one, _minus_one, x) * 2.0

    lines = str(f.get_concrete_function(F3).ir).splitlines()
    here = f"  # test_ir.py:{inspect.getsourcelines(f)[1] + 2} in f: return tj.cond("
    body = f"        # test_ir.py:{inspect.getsourcelines(_minus_one)[1] + 1} in _minus_one:"
    assert sum(line.startswith(body) for line in lines) == 2  # once in each branch
    # The cond's line holds for the multiply after it, but the branches came between: repeated.
    multiply = next(i for i, line in enumerate(lines) if "= multiply" in line)
    assert lines[multiply - 1].startswith(here)
    assert sum(line.startswith(here) for line in lines) == 2


def test_nodes_without_a_location_end_the_run_above():
    a = _value(AVal((3,), float32), "0")
    b, c, d = (_value(AVal((3,), float32), str(i)) for i in (1, 2, 3))
    here = SourceLoc("/somewhere/model.py", 7, "forward")
    nodes = (
        Node(EXP, (a,), Params(), (b,), here),
        Node(EXP, (b,), Params(), (c,), None),
        Node(ADD, (b, c), Params(), (d,), here),
    )
    text = Graph("g", (a,), (), nodes, (d,)).format()
    assert text.splitlines()[2:8] == [
        "  # model.py:7 in forward",
        "  %1: f32[3] = exp %0",
        "  # (no source location)",
        "  %2: f32[3] = exp %1",
        "  # model.py:7 in forward",
        "  %3: f32[3] = add %1, %2",
    ]


def test_printer_types_off_and_const_preview_size():
    cf = tj.function(predict, optimize=False).get_concrete_function(tj.TensorSpec((2, 4)))
    text = cf.ir.format(source=False, types=False, max_const=2)
    assert "%1 = matmul %0, %c0" in text
    assert "%c0 = const [0 0.1 ...]" in text


def test_printer_multiple_outputs_params_and_dtypes():
    @tj.function(optimize=False)
    def parts(x):
        a, b = tj.split(x, 2, axis=0)
        return a.astype("int32"), b.sum(axis=0, keepdims=True)

    text = parts.get_concrete_function(tj.TensorSpec((4, 3))).ir.format(source=False)
    assert "func parts(%0: f32[4,3]) -> (i32[2,3], f32[1,3]) {" in text
    assert "%1: f32[2,3], %2: f32[2,3] = split" in text
    assert "cast[dtype=i32] %1" in text
    assert "sum[axes=(0,), keepdims=true] %2" in text


def test_printer_is_deterministic():
    texts = {
        str(tj.function(predict, optimize=False).get_concrete_function(tj.TensorSpec((None, 4))).ir)
        for _ in range(3)
    }
    assert len(texts) == 1


def test_python_scalars_become_weak_constants_printed_inline():
    cf = tj.function(lambda x: x * 2.0 + 1, optimize=False).get_concrete_function(tj.TensorSpec((3,), "float16"))
    text = cf.ir.format(source=False)
    assert "= const" not in text  # scalar constants have no line of their own
    assert "%1: f16[3] = multiply %0, 2:f32[]" in text  # weak float32 yields to float16
    assert "%2: f16[3] = add %1, 1:i32[]" in text
    assert "multiply %0, 2\n" in cf.ir.format(source=False, types=False) + "\n"
    assert cf.outputs[0].dtype == np.float16
    assert len(cf.ir.consts) == 2  # still constants of the graph, only written inline


def test_scalar_literals_reach_returns_and_special_values():
    cf = tj.function(lambda x: (x + float("nan"), tj.constant(-0.5)), optimize=False).get_concrete_function(F3)
    text = cf.ir.format(source=False)
    assert "add %0, nan:f32[]" in text
    assert "return %1, -0.5:f32[]" in text or "return %1, %" in text


def test_long_statements_wrap_and_define_each_value_once():
    def many_outputs(*xs):
        scale = xs[0] * 2.0
        return tuple(tj.exp(x) * scale for x in xs)  # one fused region, 24 in and 24 out

    many = [tj.TensorSpec((32, 3)) for _ in range(24)]
    cf = tj.function(many_outputs).get_concrete_function(*many)
    text = cf.ir.format(source=False)  # (a comment quotes the user's line, however long)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, text
    # Continuation lines are indented four more than their statement.
    assert any(line.startswith("      = fused[") for line in lines), text
    assert any(line.startswith("          %a") for line in lines), text  # the body's inputs
    flat = " ".join(line.strip() for line in lines)
    (fused,) = cf.ir.nodes
    body = fused.params["body"]
    for value in cf.ir.inputs + body.inputs:
        assert flat.count(f"%{value.id}: ") == 1
    for value in fused.outputs:  # the fused node's result, and the body node it comes from
        assert flat.count(f"%{value.id}: ") == 2
    operands = flat.split("= fused[body={many_outputs_fused_0}] ")[1].split(" body:")[0]
    assert operands == ", ".join(f"%{v.id}" for v in cf.ir.inputs)  # nothing lost in wrapping
    # A line continues exactly when it ends in a comma or the next starts with "= " / "-> ":
    # unwrap joins the statements back into the text printed without a width limit.
    unlimited = format_graph(cf.ir, source=False, width=10**6)
    assert unwrap(text) == unlimited != text
    assert max(len(line) for line in unlimited.splitlines()) > 5 * WIDTH


def test_long_params_break_after_a_comma():
    @tj.function
    def count(n):
        return tj.while_loop(lambda i, t: i < n, lambda i, t: (i + 1, t * 2.0), (0, 1.0))

    graph = count.get_concrete_function(tj.constant(3)).ir
    lines = graph.format(source=False).splitlines()
    assert lines[2] == "  %9: i32[], %10: f32[] = while_loop[body={loop_body}, cond_body={loop_cond},"
    assert lines[3] == "      maximum_iterations=none, n_carry=2] 0:i32[], 1:f32[], %0"
    assert unwrap("\n".join(lines)) == format_graph(graph, source=False, width=10**6)


def test_unwrap_leaves_comments_alone():
    # The source comment quotes a line that ends in a comma: it is not a statement to join.
    @tj.function
    def f(*xs):
        total = tj.concatenate(list(xs),
                               axis=0)  # fmt: skip
        return total

    cf = f.get_concrete_function(*[tj.TensorSpec((2,)) for _ in range(30)])
    text = str(cf.ir)
    assert "in f: total = tj.concatenate(list(xs),\n  %30: f32[60] = concatenate" in text
    assert "      %14, " in text  # the node wraps
    assert unwrap(text) == format_graph(cf.ir, width=10**6)


def test_fused_bodies_are_numbered_and_the_header_counts_regions():
    @tj.function
    def f(x):
        return tj.exp(x * 2.0).sum() * tj.tanh(x + 1.0)

    cf = f.get_concrete_function(F3)
    text = cf.ir.format(source=False)
    assert "fused[body={f_fused_0}]" in text and "func f_fused_0(" in text
    assert "fused[body={f_fused_1}]" in text and "func f_fused_1(" in text
    assert cf.ir.provenance[-1] == "fuse(2 regions)"
    fuse = cf.pass_report()[-1]
    assert (fuse.name, fuse.nodes_before, fuse.nodes_after, fuse.regions) == ("fuse", 6, 6, 2)
    assert str(fuse).startswith("fuse: 6 -> 6 nodes, 2 fused regions")
    assert "2 fused regions" in str(cf.pass_report()).splitlines()[-1]


def _value(aval, id):
    return Value(aval, id)


def test_verifier_accepts_traced_graphs():
    verify(tj.function(predict, optimize=False).get_concrete_function(tj.TensorSpec((None, 4))).ir)


def test_verifier_rejects_use_before_definition():
    a = _value(AVal((3,), float32), "0")
    b = _value(AVal((3,), float32), "1")
    c = _value(AVal((3,), float32), "2")
    graph = Graph("bad", (a,), (), (Node(ADD, (a, b), Params(), (c,)),), (c,))
    with pytest.raises(IRVerificationError, match="uses %1 before it is defined"):
        verify(graph)


def test_verifier_rejects_wrong_aval():
    a = _value(AVal((3,), float32), "0")
    c = _value(AVal((4,), float32), "1")
    graph = Graph("bad", (a,), (), (Node(EXP, (a,), Params(), (c,)),), (c,))
    with pytest.raises(IRVerificationError, match=r"declares f32\[4\] but inference gives f32\[3\]"):
        verify(graph)


def test_verifier_quotes_nodes_as_printed_with_scalar_literals():
    a = _value(AVal((3,), float32), "0")
    two = _value(AVal((), float32), "c0")
    c = _value(AVal((4,), float32), "1")
    graph = Graph("bad", (a,), ((two, np.float32(2)),), (Node(ADD, (a, two), Params(), (c,)),), (c,))
    with pytest.raises(IRVerificationError, match=r"add %0, 2:f32\[\]"):
        verify(graph)


def test_verifier_rejects_double_definition_and_undefined_output():
    a = _value(AVal((3,), float32), "0")
    graph = Graph("bad", (a,), (), (Node(EXP, (a,), Params(), (a,)),), (a,))
    with pytest.raises(IRVerificationError, match="defined twice"):
        verify(graph)
    ghost = _value(AVal((3,), float32), "9")
    with pytest.raises(IRVerificationError, match="output %9 is never defined"):
        verify(Graph("bad", (a,), (), (), (ghost,)))


def test_params_are_sorted_and_hashable():
    p = Params({"b": 1, "a": (2, 3)})
    assert list(p) == ["a", "b"]
    assert hash(p) == hash(Params({"a": (2, 3), "b": 1}))
    assert p == Params({"a": (2, 3), "b": 1})


@pytest.mark.parametrize("debug", [True, False])
def test_a_pass_that_breaks_the_ir_is_caught_only_under_debug_checks(debug):
    """The verifier runs after tracing and after each changing pass when debug checks are on
    (the test suite's setting, TRACEJIT_DEBUG=1); by default it is skipped (issue 16: it was a
    third of tracing time)."""

    def wrong_aval(graph):  # a buggy pass: the exp node's output claims another shape
        node = graph.nodes[-1]
        bad = _value(AVal((4,), float32), node.outputs[0].id)
        return dataclasses.replace(
            graph, nodes=(*graph.nodes[:-1], dataclasses.replace(node, outputs=(bad,))),
            outputs=(bad,),
        )

    before = tj.config.debug_checks()
    tj.config.set_debug_checks(debug)
    try:
        f = tj.function(lambda x: tj.exp(x), optimize=[wrong_aval])
        if debug:
            with pytest.raises(IRVerificationError, match="declares f32\\[4\\]"):
                f.get_concrete_function(tj.TensorSpec((3,)))
        else:
            assert f.get_concrete_function(tj.TensorSpec((3,))).ir.outputs[0].aval.shape == (4,)
    finally:
        tj.config.set_debug_checks(before)
