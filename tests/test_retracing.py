"""Why did it retrace: tj.explain, the frequent-retracing warning (and strict mode), logging."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import warnings

import numpy as np
import pytest

import tracejit as tj
from tracejit import config
from tracejit.errors import RetracingError, RetracingWarning
from tracejit.tracing.retracing import diff, suggestion
from tracejit.types import AVal, float32


@pytest.fixture(autouse=True)
def default_settings():
    yield
    tj.config.set_retrace_warning("warn")
    tj.config.set_log(None)


def changes_of(f):
    return [[str(c) for c in r.changes] for r in tj.explain(f).retraces]


def scale(x, factor=2.0):
    return x * factor


DEFINED_AT = f"test_retracing.py:{inspect.getsourcelines(scale)[1]}"


# tj.explain -----------------------------------------------------------------------------------
def test_explain_names_the_argument_and_how_it_changed():
    f = tj.function(scale)
    f(tj.ones((32, 4)))
    f(tj.ones((32, 4)))  # cached
    f(tj.ones((16, 4)))
    f(np.ones((16, 4), np.int32))
    f(tj.ones((16, 4)), 3.0)
    report = tj.explain(f)
    assert changes_of(f) == [
        ["x: shape [32,4] -> [16,4]"],
        ["x: dtype f32 -> i32"],
        ["factor: Python value 2.0 -> 3.0"],  # closest to trace 2, not trace 3
    ]
    assert [(r.trace, r.call, r.previous) for r in report.retraces] == [
        (2, 3, 1),
        (3, 4, 2),
        (4, 5, 2),
    ]
    text = str(report)
    assert text.splitlines()[0] == f"scale ({DEFINED_AT}): 4 traces in 5 calls"
    assert "trace 1: x: f32[32,4], factor: 2.0" in text
    assert "input_signature=[..., TensorSpec(shape=(None, 4), dtype=float32), ...]" in text
    assert "reduce_retracing=True" in text
    assert "cast it to one dtype" in text
    assert "pass a tensor instead (tj.constant(3.0))" in text


def test_explain_without_retraces():
    f = tj.function(scale)
    assert str(tj.explain(f)) == f"scale ({DEFINED_AT}): 0 traces in 0 calls; no retracing"
    f(tj.ones((2,)))
    f(tj.ones((2,)))
    assert "1 trace in 2 calls; no retracing" in str(tj.explain(f))
    assert tj.explain(f).retraces == []


@dataclasses.dataclass(frozen=True)
class Options:
    mode: str
    rate: float


def test_explain_follows_pytree_paths_variables_and_structure():
    tj.config.set_retrace_warning("off")  # six traces in six calls, on purpose

    @tj.function
    def g(batch, config, v, opts):
        return batch[0] * v + config["lr"]

    v1, v2 = tj.Variable(tj.ones((2,)), name="w"), tj.Variable(tj.ones((2,)), name="w2")
    x = tj.ones((2,))
    g([x, x], {"lr": 0.1}, v1, Options("a", 1.0))
    g([x, tj.ones((3,))], {"lr": 0.1}, v1, Options("a", 1.0))
    g([x, tj.ones((3,))], {"lr": 0.2}, v1, Options("a", 1.0))
    g([x, tj.ones((3,))], {"lr": 0.2}, v2, Options("a", 1.0))
    g([x, tj.ones((3,))], {"lr": 0.2}, v2, Options("b", 1.0))
    g([x], {"lr": 0.2}, v2, Options("b", 1.0))
    assert changes_of(g) == [
        ["batch[1]: shape [2] -> [3]"],
        ["config['lr']: Python value 0.1 -> 0.2"],
        ["v: a different variable: variable 'w' f32[2] -> variable 'w2' f32[2]"],
        ["opts.mode: Python value 'a' -> 'b'"],
        ["batch: structure a list of 2 -> a list of 1"],
    ]
    text = str(tj.explain(g))
    assert "variables are keyed by identity" in text
    assert "each distinct value traces once" in text  # a string mode, not a number
    assert "keep it the same across calls" in text


def test_diff_of_weak_types_and_kinds():
    from tracejit.tracing.signature import flatten

    def node(value):
        return flatten(value, [])

    assert diff(node(tj.constant(1.0)), node(np.float32(1.0)), "x") == []
    weak, strong = AVal((), float32, True), AVal((), float32, False)
    assert [str(c) for c in diff(weak, strong, "x")] == [
        "x: tensor type weak (a Python number) -> strong (a tensor)"
    ]
    rank = diff(AVal((2, 3), float32), AVal((6,), float32), "x")
    assert [str(c) for c in rank] == ["x: shape [2,3] -> [6]"]
    assert "changes rank" in suggestion(rank[0])
    changes = [str(c) for c in diff(node(1.0), node(tj.constant(1.0)), "x")]
    assert changes == ["x: structure a Python float -> a tensor"]
    assert [str(c) for c in diff(node(None), node((1, 2)), "y")] == [
        "y: structure None -> a tuple of 2"
    ]


# Frequent retracing ---------------------------------------------------------------------------
def call_with_new_values(f, n, start=0):
    for i in range(start, start + n):
        f(tj.ones((2,)), float(i))


def test_warns_once_after_five_traces_in_ten_calls():
    f = tj.function(scale)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call_with_new_values(f, 4)
        assert not caught
        call_with_new_values(f, 3, start=4)  # the 5th trace warns; later ones do not
    assert len(caught) == 1
    warning = caught[0]
    assert warning.category is RetracingWarning
    assert warning.filename == __file__  # points at the call in user code
    message = str(warning.message)
    assert (
        f"tj.function scale ({DEFINED_AT}) was traced 5 times within its last 10 calls" in message
    )
    assert "The argument that keeps changing is factor (Python value 3.0 -> 4.0)" in message
    assert "pass a tensor instead" in message
    assert "set_retrace_warning('off')" in message


def test_no_warning_when_traces_are_spread_over_many_calls():
    f = tj.function(scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(8):
            f(tj.ones((2,)), float(i))
            for _ in range(2):
                f(tj.ones((2,)), float(i))  # cached calls dilute the traces
    assert f.trace_count == 8


def test_retrace_warning_off_and_error():
    f = tj.function(scale)
    tj.config.set_retrace_warning("off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call_with_new_values(f, 6)
    g = tj.function(scale)
    tj.config.set_retrace_warning("error")
    call_with_new_values(g, 4)
    with pytest.raises(RetracingError) as info:
        g(tj.ones((2,)), 99.0)
    assert "was traced 5 times within its last 10 calls" in str(info.value)
    assert "factor" in str(info.value)
    assert g.trace_count == 4  # strict mode refuses before tracing
    g(tj.ones((2,)), 1.0)  # known signatures still run
    with pytest.raises(ValueError, match="must be one of"):
        tj.config.set_retrace_warning("loud")


# Logging ------------------------------------------------------------------------------------------
def test_logs_traces_compiles_retraces_and_cache_hits(caplog):
    caplog.set_level(logging.INFO, logger="tracejit")
    tj.config.set_log("trace,compile,retrace,cache")
    f = tj.function(scale)
    f(tj.ones((2,)))
    f(tj.ones((2,)))
    f(tj.ones((3,)))
    messages = [r.getMessage() for r in caplog.records if r.name == "tracejit"]
    assert messages[0].startswith("traced scale(x: f32[2], factor: 2.0) in ")
    assert "nodes" in messages[0] and "after optimization" in messages[0]
    assert messages[1].startswith("compiled scale(f32[2]) in ") and " ms" in messages[1]
    assert messages[2] == "cache hit scale(f32[2]), call 2 of this trace"
    assert messages[3] == "retracing scale (trace 2, call 3): x: shape [2] -> [3]"
    assert messages[4].startswith("traced scale(x: f32[3]")


def test_logging_off_logs_nothing(caplog):
    caplog.set_level(logging.DEBUG, logger="tracejit")
    f = tj.function(scale)
    f(tj.ones((2,)))
    f(tj.ones((2,)))
    f(tj.ones((3,)))
    assert not [r for r in caplog.records if r.name == "tracejit"]


def test_log_settings_parse():
    tj.config.set_log(["trace", "cache"])
    assert tj.config.log_events() == {"trace", "cache"}
    assert config._config.log_cache
    tj.config.set_log("all")
    assert tj.config.log_events() == set(config.LOG_EVENTS)
    tj.config.set_log("")
    assert not tj.config.log_events() and not config._config.log_cache
    with pytest.raises(ValueError, match="unknown log event.*choose from trace, compile"):
        tj.config.set_log("trace,compiles")


def test_environment_settings(monkeypatch):
    monkeypatch.setenv("TRACEJIT_LOG", "retrace, compile")
    monkeypatch.setenv("TRACEJIT_RETRACE_WARNING", "error")
    config._from_environment()
    assert tj.config.log_events() == {"retrace", "compile"}
    assert tj.config.retrace_warning() == "error"
    monkeypatch.setenv("TRACEJIT_LOG", "bogus")
    with pytest.warns(UserWarning, match="ignoring the environment setting"):
        config._from_environment()


def test_explain_gives_a_repeated_fix_once():
    f = tj.function(lambda x: x * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(1, 11):
            f(tj.ones((n,)))
    text = str(tj.explain(f))
    assert text.count("give it an unknown dimension") == 1
    assert text.count("fix: as for trace 2") == 8
    assert len(tj.explain(f).retraces[-1].suggestions) == 1  # the data keeps every suggestion
