"""tj.print: an ordered effect that prints at run time, kept by the passes, shown in the IR."""

from __future__ import annotations

import io
import sys

import jax
import numpy as np

import tracejit as tj
from tracejit.ir.graph import live_nodes
from tracejit.passes.cse import cse
from tracejit.passes.dce import dce


def output(capsys) -> str:
    jax.effects_barrier()  # on accelerators prints may arrive after the call returns
    return capsys.readouterr().out


def test_eager_print_is_immediate(capsys):
    tj.print("x:", tj.constant([1.0, 2.0]), 3, "{not a field}", np.int32(4))
    assert output(capsys) == "x: [1. 2.] 3 {not a field} 4\n"
    tj.print(tj.constant(True), tj.constant(2.5), sep=", ", end="!\n")
    assert output(capsys) == "True, 2.5!\n"


def test_compiled_prints_every_call_in_program_order(capsys):
    @tj.function
    def step(x):
        tj.print("first", x)
        y = tj.exp(x) * 2.0
        tj.print("second", y.sum(), sep="=")
        tj.print("third")
        return y

    step(tj.zeros((2,)))
    step(tj.ones((2,)))
    assert step.trace_count == 1
    expected = ["first [0. 0.]", "second=4.0", "third", "first [1. 1.]"]
    assert output(capsys).splitlines()[:4] == expected


def test_print_to_a_file(capsys):
    buffer = io.StringIO()

    @tj.function
    def f(x):
        tj.print("to buffer", x, file=buffer, end="")
        return x + 1

    f(tj.constant(1))
    jax.effects_barrier()
    assert buffer.getvalue() == "to buffer 1"
    assert output(capsys) == ""


def test_print_is_an_effect_that_passes_keep():
    def body(x):
        tj.print(x)
        tj.print(x)  # identical, still printed twice: never merged
        unused = x * 2.0  # noqa: F841 - dead, removed
        return x

    graph = tj.function(body, optimize=False).get_concrete_function(tj.TensorSpec((2,))).ir
    assert [n.op.name for n in live_nodes(graph)] == ["print", "print"]
    optimized = dce(cse(graph))
    assert [n.op.name for n in optimized.nodes] == ["print", "print"]
    f = tj.function(body)
    assert [n.op.name for n in f.get_concrete_function(tj.TensorSpec((2,))).ir.nodes] == [
        "print",
        "print",
    ]


def test_print_in_the_ir():
    f = tj.function(lambda x: (tj.print("value:", x, file=sys.stderr), x)[1], optimize=False)
    text = f.get_concrete_function(tj.TensorSpec((2,))).ir.format(source=False)
    assert 'print[end="\\n", file=stderr, template="value: {}"] %0' in text.splitlines()[2]


def test_print_inside_control_flow_and_called_functions(capsys):
    inner = tj.function(lambda x: (tj.print("inner", x), x * 2)[1])

    @tj.function
    def outer(x, n):
        y = tj.cond(n > 0, lambda: (tj.print("positive", n), x + 1.0)[1], lambda: x)
        tj.fori_loop(0, 2, lambda i, c: (tj.print("loop", i), c)[1], y)
        return inner(y)

    outer(tj.constant(1.0), tj.constant(3))
    outer(tj.constant(1.0), tj.constant(0))
    assert output(capsys).splitlines() == [
        "positive 3",
        "loop 0",
        "loop 1",
        "inner 2.0",
        "loop 0",
        "loop 1",
        "inner 1.0",
    ]


def test_gradients_do_not_print_again(capsys):
    @tj.function
    def f(x):
        tj.print("forward", x.sum())
        return tj.cond(x.sum() > 0, lambda: (tj.print("branch"), x * x)[1], lambda: x)

    x = tj.constant([1.0, 2.0])
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = f(x).sum()
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2.0, 4.0])
    assert output(capsys).splitlines() == ["forward 3.0", "branch"]


def test_print_under_run_functions_eagerly(capsys):
    f = tj.function(lambda x: (tj.print("eager", x), x)[1])
    tj.config.run_functions_eagerly(True)
    try:
        f(tj.constant(5))
    finally:
        tj.config.run_functions_eagerly(False)
    assert output(capsys) == "eager 5\n"


def test_print_in_a_branch_prints_once_when_a_tape_differentiates_it(capsys):
    @tj.function
    def grad(x):
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = tj.cond(x > 0, lambda: (tj.print("in branch"), x * x)[1], lambda: -x)
        return tape.gradient(y, x)

    assert float(grad(tj.constant(3.0))) == 6.0
    assert output(capsys) == "in branch\n"
