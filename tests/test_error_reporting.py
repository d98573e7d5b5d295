"""Errors point at the user's code: trimmed tracebacks, run-time errors naming the function,
and the text of the inspection and retracing errors."""

from __future__ import annotations

import inspect
import io
import traceback

import pytest

import tracejit as tj
from tracejit.errors import (
    ExecutionError,
    OpError,
    RetracingError,
    ShapeError,
    TracerConversionError,
    is_internal_frame,
    trim_traceback,
)


@pytest.fixture(autouse=True)
def trimmed_by_default():
    tj.config.set_full_traceback(False)
    yield
    tj.config.set_full_traceback(False)
    tj.config.set_retrace_warning("warn")


def line_of(marker: str, fn) -> int:
    source, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(source) if marker in line)


def frames(err: BaseException) -> list[traceback.FrameSummary]:
    return traceback.extract_tb(err.__traceback__)


def internal(err: BaseException) -> list[str]:
    return [f"{f.filename}:{f.name}" for f in frames(err) if is_internal_frame(f.filename)]


def helper(x):
    return x @ x  # MARK-matmul


def model(x):
    y = x * 2.0
    return helper(y)


def test_trace_error_traceback_shows_only_user_frames():
    with pytest.raises(ShapeError) as info:
        tj.function(model)(tj.ones((2, 3)))
    err = info.value
    assert internal(err) == []
    names = [f.name for f in frames(err)]
    assert names[-2:] == ["model", "helper"]  # the user's frames, innermost last
    assert frames(err)[-1].lineno == line_of("MARK-matmul", helper)
    assert str(err).startswith("matmul: ") and "(2, 3)" in str(err)
    assert f"test_error_reporting.py:{line_of('MARK-matmul', helper)} in helper" in str(err)


def test_full_traceback_keeps_tracejit_frames(monkeypatch):
    tj.config.set_full_traceback(True)
    with pytest.raises(ShapeError) as info:
        tj.function(model)(tj.ones((2, 3)))
    assert len(internal(info.value)) > 3
    from tracejit import config

    monkeypatch.setenv("TRACEJIT_FULL_TRACEBACK", "1")
    assert config._env_flag("TRACEJIT_FULL_TRACEBACK")
    monkeypatch.setenv("TRACEJIT_FULL_TRACEBACK", "0")
    assert not config._env_flag("TRACEJIT_FULL_TRACEBACK")


def branchy(x):
    if x.sum() > 0:  # MARK-if
        return x
    return -x


def test_unsupported_python_construct_is_trimmed_and_names_the_line():
    f = tj.function(branchy, autograph=False)  # without AutoGraph an `if` on a tensor fails
    with pytest.raises(TracerConversionError) as info:
        f(tj.ones((3,)))
    assert internal(info.value) == []
    assert frames(info.value)[-1].name == "branchy"
    message = str(info.value)
    assert "bool() of a symbolic tensor" in message
    assert f"test_error_reporting.py:{line_of('MARK-if', branchy)} in branchy" in message
    with pytest.raises(TracerConversionError) as again:
        f.get_concrete_function(tj.TensorSpec((3,)))
    assert internal(again.value) == []


def test_eager_op_error_keeps_only_the_public_entry_point():
    with pytest.raises(ShapeError) as info:
        tj.multiply(tj.ones((2, 3)), tj.ones((2, 4)))  # MARK-eager
    assert len(internal(info.value)) <= 1  # tj.multiply itself; not bind or the interpreter
    here = line_of("MARK-eager", test_eager_op_error_keeps_only_the_public_entry_point)
    assert f"test_error_reporting.py:{here}" in str(info.value)


def test_bad_argument_names_the_parameter():
    f = tj.function(lambda x, options: x)
    with pytest.raises(TypeError, match="argument 'options' is a set, which is neither a tensor"):
        f(tj.ones((2,)), {1, 2})


def add(x, y):
    return x + y  # MARK-add


def test_lowering_error_on_first_call_names_ir_node_and_is_trimmed():
    f = tj.function(add)
    f.get_concrete_function(tj.TensorSpec((None,)), tj.TensorSpec((None,)))
    with pytest.raises(OpError) as info:
        f(tj.ones((3,)), tj.ones((2,)))
    message = str(info.value)
    assert "failed at run time in add on inputs of shapes (3,), (2,)" in message
    assert "IR: %2: f32[?] = add %0, %1" in message
    assert f"test_error_reporting.py:{line_of('MARK-add', add)} in add" in message
    assert internal(info.value) == []


def printer(x):
    tj.print("value", x, file=closed)  # MARK-print
    return x + 1


closed = io.StringIO()
closed.close()


def test_run_time_error_names_function_inputs_and_callback_line():
    f = tj.function(printer)
    with pytest.raises(ExecutionError) as info:
        f(tj.ones((2,)))
        import jax

        jax.effects_barrier()
    message = str(info.value)
    assert message.startswith(
        f"printer (defined at test_error_reporting.py:{line_of('def printer', printer)})"
    )
    assert "failed at run time on inputs (f32[2])" in message
    assert "I/O operation on closed file" in message
    assert "calls back into Python at:" in message
    assert f"print: test_error_reporting.py:{line_of('MARK-print', printer)} in printer" in message
    assert isinstance(info.value, RuntimeError)
    assert info.value.__cause__ is not None


def test_retracing_error_text():
    tj.config.set_retrace_warning("error")
    f = tj.function(lambda x: x + 1)
    for n in range(1, 5):
        f(tj.ones((n,)))
    with pytest.raises(RetracingError) as info:
        f(tj.ones((5,)))
    message = str(info.value)
    assert "tj.function <lambda> (test_error_reporting.py:" in message
    assert "was traced 5 times within its last 10 calls" in message
    assert "The argument that keeps changing is x (shape [4] -> [5])" in message
    assert "TensorSpec(shape=(None,), dtype=float32)" in message


def test_trim_traceback_keeps_user_frames_in_order():
    def user():
        raise ValueError("boom")

    try:
        user()
    except ValueError as err:
        tb = err.__traceback__
    kept = trim_traceback(tb)
    assert [f.name for f in traceback.extract_tb(kept)] == [
        "test_trim_traceback_keeps_user_frames_in_order",
        "user",
    ]
