"""The IR: printer golden tests (the printer is the spec), source locations, the verifier."""

from __future__ import annotations

import dataclasses
import inspect
import textwrap

import numpy as np
import pytest

import tracejit as tj
from tracejit.ir.graph import Graph, Node, Params, Value
from tracejit.ir.verify import IRVerificationError, verify
from tracejit.ops.elementwise import ADD, EXP
from tracejit.types import AVal, float32

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
B = np.array([0.5, -0.5, 0.0], np.float32)


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
    matmul = next(line for line in lines if "= matmul" in line)
    softmax = next(line for line in lines if "= softmax" in line)
    assert matmul.endswith(f"# test_ir.py:{first_line + 1} in predict: h = x @ W + B")
    assert softmax.endswith(f"# test_ir.py:{first_line + 2} in predict: return tj.nn.softmax(h)")
    # Comments line up in one column.
    assert matmul.index("#") == softmax.index("#")


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


def test_python_scalars_become_weak_constants():
    cf = tj.function(lambda x: x * 2.0 + 1, optimize=False).get_concrete_function(tj.TensorSpec((3,), "float16"))
    text = cf.ir.format(source=False)
    assert "%c0: f32[] = const 2" in text
    assert "%1: f16[3] = multiply %0, %c0" in text  # weak float32 yields to float16
    assert cf.outputs[0].dtype == np.float16


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
