"""Error messages: each class names what happened, what was expected and the user's line."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import EscapedTracerError, OpError, ShapeError, TracerConversionError


def line_of(marker: str, fn) -> int:
    source, start = inspect.getsourcelines(fn)
    for offset, line in enumerate(source):
        if marker in line:
            return start + offset
    raise AssertionError(marker)


def branchy(x):
    if x.sum() > 0:  # MARK-bool
        return x
    return -x


def test_bool_of_tracer_names_user_line():
    with pytest.raises(TracerConversionError) as info:
        tj.function(branchy, autograph=False)(tj.ones((3,)))
    message = str(info.value)
    assert "bool() of a symbolic tensor" in message
    assert "tj.where" in message  # what to do instead
    assert f"test_errors.py:{line_of('MARK-bool', branchy)} in branchy" in message
    assert "if x.sum() > 0:" in message


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (lambda x: float(x), "float() of a symbolic tensor"),
        (lambda x: int(x.sum()), "int() of a symbolic tensor"),
        (lambda x: x.numpy(), ".numpy() of a symbolic tensor"),
        (lambda x: np.asarray(x), "Converting a symbolic tensor to a numpy array"),
        (lambda x: range(x.sum()), "int() of a symbolic tensor"),
    ],
)
def test_concrete_value_requests_are_clear(body, what):
    with pytest.raises(TracerConversionError, match="not available while tracing") as info:
        tj.function(body, autograph=False)(tj.ones((3,)))
    assert what in str(info.value)
    assert "test_errors.py" in str(info.value)


def test_len_of_unknown_dimension():
    f = tj.function(lambda x: len(x))
    with pytest.raises(TracerConversionError, match="first dimension is unknown"):
        f.get_concrete_function(tj.TensorSpec((None, 2)))
    assert f(tj.ones((5, 2))) == 5  # known while tracing: a Python int


def bad_shapes(x, y):
    return x + y  # MARK-add


def test_shape_error_while_tracing_names_shapes_and_line():
    with pytest.raises(ShapeError) as info:
        tj.function(bad_shapes)(tj.ones((3,)), tj.ones((4,)))
    message = str(info.value)
    assert "add: shapes (3,), (4,) cannot be broadcast together" in message
    assert f"test_errors.py:{line_of('MARK-add', bad_shapes)} in bad_shapes" in message


def test_shape_error_eager_names_shapes_and_line():
    with pytest.raises(ShapeError) as info:
        tj.multiply(tj.ones((2, 3)), tj.ones((2, 4)))  # MARK-eager
    message = str(info.value)
    assert "(2, 3), (2, 4)" in message
    here = line_of("MARK-eager", test_shape_error_eager_names_shapes_and_line)
    assert f"test_errors.py:{here} in test_shape_error_eager_names_shapes_and_line" in message


def test_bad_argument_type_names_position():
    with pytest.raises(TypeError, match=r"add: argument 1 must be a tensor, array or Python number, got str"):
        tj.add(tj.ones((2,)), "three")


def test_escaped_tracer():
    leaked = []

    @tj.function
    def keep(x):
        leaked.append(x)
        return x + 1

    keep(tj.ones((2,)))
    with pytest.raises(EscapedTracerError, match="trace that has finished"):
        tj.exp(leaked[0])


def test_run_time_shape_failure_points_at_ir_node():
    f = tj.function(bad_shapes)
    f.get_concrete_function(tj.TensorSpec((None,)), tj.TensorSpec((None,)))
    with pytest.raises(OpError) as info:
        f(tj.ones((3,)), tj.ones((2,)))
    message = str(info.value)
    assert "failed at run time in bad_shapes" in message
    assert "IR: %2: f32[?] = add %0, %1" in message
    assert f"test_errors.py:{line_of('MARK-add', bad_shapes)}" in message
