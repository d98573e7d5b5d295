"""TF2's function model, the rest of it (issue 14): unknown-rank TensorSpecs, tj.py_function and
tj.numpy_function, tj.init_scope, tj.device and the tracing protocol, each checked against what
TF's guides and API docs say the TF name does (the docs' own examples where they have one)."""

from __future__ import annotations

import inspect
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracejit as tj
from tracejit import errors

HERE = Path(__file__).parent


def line_of(marker: str, fn: Any) -> int:
    source, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(source) if marker in line)


def ops_of(concrete: Any) -> list[str]:
    """The op names of a concrete function's optimized graph (or of a graph)."""
    graph = getattr(concrete, "ir", concrete)
    return [node.op.name for node in graph.nodes]


# 1. TensorSpec(shape=None): any rank, one trace per rank --------------------------------------
def test_unknown_rank_spec_accepts_every_rank_and_traces_once_per_rank():
    traced_shapes = []

    @tj.function(input_signature=[tj.TensorSpec(shape=None, dtype=tj.float32)])
    def total(x):
        traced_shapes.append(x.shape)
        return tj.sum(x * 2.0)

    arrays = [
        np.arange(3, dtype=np.float32),
        np.arange(5, dtype=np.float32),  # same rank: the rank-1 trace is reused
        np.ones((2, 3), np.float32),
        np.float32(4.0),
    ]
    for array in arrays:
        np.testing.assert_allclose(total(tj.constant(array)).numpy(), np.sum(array * 2.0))
    # TF traces one graph of unknown rank; XLA needs ranks, so tracejit traces once per rank,
    # each trace with every dimension unknown.
    assert traced_shapes == [(None,), (None, None), ()]
    assert total.trace_count == 3
    specs = [c.inputs[0] for c in total.concrete_functions()]
    assert [s.shape for s in specs] == [(None,), (None, None), ()]


def test_unknown_rank_spec_still_checks_the_dtype():
    f = tj.function(lambda x: x + 1, input_signature=[tj.TensorSpec(None, tj.float32)])
    with pytest.raises(TypeError) as info:  # SignatureError: a TypeError and a ValueError
        f(tj.constant([1, 2]))
    message = str(info.value)
    assert "expected TensorSpec(shape=None, dtype=float32)" in message
    assert "dtype int32" in message


def test_unknown_rank_spec_inside_a_nested_signature():
    @tj.function(input_signature=[(tj.TensorSpec(None), tj.TensorSpec([2]))])
    def f(pair):
        x, y = pair
        return tj.sum(x) + y

    x1, x3 = np.ones((4,), np.float32), np.ones((2, 2, 2), np.float32)
    y = np.array([1.0, 2.0], np.float32)
    np.testing.assert_allclose(f((tj.constant(x1), tj.constant(y))).numpy(), x1.sum() + y)
    np.testing.assert_allclose(f((tj.constant(x3), tj.constant(y))).numpy(), x3.sum() + y)
    assert f.trace_count == 2


def test_concrete_function_of_an_unknown_rank_signature_needs_a_rank():
    f = tj.function(lambda x: x * 2, input_signature=[tj.TensorSpec(None)])
    with pytest.raises(ValueError, match="unknown rank.*one rank at a time"):
        f.get_concrete_function()
    concrete = f.get_concrete_function(tj.TensorSpec([None, None]))
    assert concrete.inputs == [tj.TensorSpec((None, None))]
    f(tj.ones((3, 4)))  # a rank-2 call reuses that trace
    assert f.trace_count == 1


def test_unknown_rank_tensor_spec_itself():
    spec = tj.TensorSpec(shape=None, dtype="int32")
    assert spec.shape is None and not spec.rank_known
    assert repr(spec) == "TensorSpec(shape=None, dtype=int32)"
    assert spec.is_compatible_with(tj.AVal((2, 3, 4), tj.int32))
    assert not spec.is_compatible_with(tj.AVal((2,), tj.float32))
    with pytest.raises(ValueError, match="unknown rank"):
        spec.aval()


def test_per_rank_traces_save_and_load(tmp_path):
    @tj.function(input_signature=[tj.TensorSpec(None)])
    def total(x):
        return tj.sum(x) * 2

    total(tj.ones((3,)))
    total(tj.ones((2, 2)))
    loaded = tj.saved.load(tj.saved.save(total, str(tmp_path / "total")))
    assert float(loaded.total(tj.ones((5,)))) == 10.0  # each saved rank serves any sizes
    assert float(loaded.total(tj.ones((2, 3)))) == 12.0
    with pytest.raises(TypeError, match="matches no saved signature"):
        loaded.total(tj.ones((2, 2, 2)))  # a rank never traced: nothing to run


# 2. tj.py_function / tj.numpy_function ---------------------------------------------------------
def log_huber(x, m):
    """The TF API docs' example: Python control flow on eager tensors."""
    if tj.abs(x) <= m:
        return x**2
    return m**2 * (1 - 2 * tj.log(m) + tj.log(x**2))


def huber_reference(x: float, m: float) -> tuple[float, float]:
    """Value and d/dx of log_huber, written out."""
    if abs(x) <= m:
        return x**2, 2 * x
    return m**2 * (1 - 2 * math.log(m) + math.log(x**2)), m**2 * 2 / x


def test_py_function_eagerly_as_in_tf_docs():
    x, m = tj.constant(1.0), tj.constant(2.0)
    with tj.GradientTape() as tape:
        tape.watch([x, m])
        y = tj.py_function(func=log_huber, inp=[x, m], Tout=tj.float32)
    assert float(y) == 1.0
    assert float(tape.gradient(y, x)) == 2.0  # TF's docs: dy_dx == 2.0


@pytest.mark.parametrize("value", [1.0, 3.0, -5.0])
def test_py_function_in_a_compiled_function_with_its_gradient(value):
    @tj.function
    def f(x, m):
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = tj.py_function(log_huber, [x, m], Tout=tj.TensorSpec([], tj.float32))
        return y, tape.gradient(y, x)

    y, dy_dx = f(tj.constant(value), tj.constant(2.0))
    expected_y, expected_dy = huber_reference(value, 2.0)
    np.testing.assert_allclose(float(y), expected_y, rtol=1e-6)
    np.testing.assert_allclose(float(dy_dx), expected_dy, rtol=1e-6)
    assert f.trace_count == 1  # the Python `if` ran at run time, not while tracing


def test_py_function_runs_on_every_call_and_is_one_node_in_the_ir():
    calls = []

    def double(t):
        calls.append(t.numpy().copy())
        assert isinstance(t, tj.Tensor)  # eager tensors, as TF's py_function passes
        return t * 2

    @tj.function
    def f(x):
        return tj.py_function(double, [x], tj.TensorSpec([3], tj.float32)) + 1

    for i in range(3):
        out = f(tj.constant([1.0, 2.0, 3.0]) * i)
        np.testing.assert_allclose(out.numpy(), np.array([1.0, 2.0, 3.0]) * i * 2 + 1)
    assert len(calls) == 3 and f.trace_count == 1
    concrete = f.get_concrete_function(tj.TensorSpec([3]))
    assert ops_of(concrete).count("py_function") == 1
    text = str(concrete.ir)
    assert "py_function[Tout=(f32[3]), func=double" in text
    assert "test_tf2_more.py" in text  # the node points at the user's line


def test_stateful_py_function_is_never_merged_dropped_or_folded():
    calls = []

    def tick(t):
        calls.append(1)
        return t + len(calls)

    @tj.function
    def f():
        one = tj.constant(1.0)
        a = tj.py_function(tick, [one], tj.TensorSpec([], tj.float32))
        b = tj.py_function(tick, [one], tj.TensorSpec([], tj.float32))  # same call: not CSE'd
        tj.py_function(tick, [one], tj.TensorSpec([], tj.float32))  # unused: not DCE'd
        return a, b

    a, b = f()
    assert len(calls) == 3
    assert (float(a), float(b)) == (2.0, 3.0)  # run in program order
    assert ops_of(f.get_concrete_function()).count("py_function") == 3
    f()
    assert len(calls) == 6  # and again on every call, never folded at trace time


def test_py_function_in_a_loop_body_runs_each_iteration():
    seen = []

    def record(t):
        seen.append(float(t))
        return t * 2

    @tj.function
    def f(x, n):
        for _ in tj.range(n):  # a graph loop: the callback is in its body
            x = tj.py_function(record, [x], tj.TensorSpec([], tj.float32))
        return x

    assert float(f(tj.constant(1.0), tj.constant(3))) == 8.0
    assert seen == [1.0, 2.0, 4.0]
    assert "while_loop" in ops_of(f.get_concrete_function(tj.constant(1.0), tj.constant(3)))


def test_stateless_numpy_function_may_be_merged_and_dropped():
    @tj.function
    def f(x):
        a = tj.numpy_function(np.sort, [x], tj.TensorSpec([4], tj.float32), stateful=False)
        b = tj.numpy_function(np.sort, [x], tj.TensorSpec([4], tj.float32), stateful=False)
        tj.numpy_function(np.cumsum, [x], tj.TensorSpec([4], tj.float32), stateful=False)
        return a + b

    x = np.array([3.0, 1.0, 4.0, 2.0], np.float32)
    np.testing.assert_allclose(f(tj.constant(x)).numpy(), np.sort(x) * 2)
    concrete = f.get_concrete_function(tj.TensorSpec([4]))
    assert ops_of(concrete).count("numpy_function_stateless") == 1  # CSE'd, and DCE'd
    assert ops_of(concrete.ir_unoptimized).count("numpy_function_stateless") == 3


def test_numpy_function_gets_numpy_arrays_and_may_return_python_numbers():
    seen = []

    def stats(a, b):
        seen.append((type(a), type(b)))
        return np.float32(a.sum()), float(b.max())  # a numpy scalar and a Python float

    @tj.function
    def f(x, y):
        return tj.numpy_function(
            stats, [x, y], [tj.TensorSpec([], tj.float32), tj.TensorSpec([], tj.float32)]
        )

    total, top = f(tj.constant([1.0, 2.0]), tj.constant([5.0, 7.0]))
    assert (float(total), float(top)) == (3.0, 7.0)
    assert seen == [(np.ndarray, np.ndarray)]
    eager = tj.numpy_function(stats, [tj.constant([1.0]), tj.constant([2.0])], [tj.float32] * 2)
    assert [float(t) for t in eager] == [1.0, 2.0] and all(t.dtype == tj.float32 for t in eager)


def test_numpy_function_is_not_differentiable():
    x = tj.constant([1.0, 2.0])
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.numpy_function(np.square, [x], tj.float32)
    assert tape.gradient(y, x) is None  # TF: no gradient through numpy_function

    @tj.function
    def f(x):
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = tj.numpy_function(np.square, [x], tj.TensorSpec([2], tj.float32))
        return tape.gradient(tj.sum(y), x, unconnected_gradients="zero")

    np.testing.assert_array_equal(f(x).numpy(), [0.0, 0.0])


def test_gradient_of_a_compiled_py_function_from_an_eager_tape():
    @tj.function
    def f(x):
        return tj.py_function(lambda t: tj.sin(t) * t, [x], tj.TensorSpec([3], tj.float32))

    values = np.array([0.5, 1.0, 2.0], np.float32)
    x = tj.constant(values)
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.sum(f(x) * 3.0)
    expected = 3.0 * (np.cos(values) * values + np.sin(values))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), expected, rtol=1e-5)


def test_py_function_gradient_reaches_a_variable_in_inp():
    v = tj.Variable([1.0, 2.0])

    @tj.function
    def f():
        with tj.GradientTape() as tape:
            y = tj.py_function(lambda t: tj.sum(t**3), [v], tj.TensorSpec([], tj.float32))
        return tape.gradient(y, v)

    np.testing.assert_allclose(f().numpy(), [3.0, 12.0])


def test_py_function_decorator_form():
    @tj.py_function(Tout=tj.TensorSpec([], tj.float32))
    def py_log_huber(x, m):
        return log_huber(x, m)

    assert float(py_log_huber(tj.constant(1.0), tj.constant(2.0))) == 1.0
    wrapped = tj.function(lambda x: py_log_huber(x, tj.constant(2.0)))
    np.testing.assert_allclose(float(wrapped(tj.constant(3.0))), huber_reference(3.0, 2.0)[0])


def test_a_result_of_another_shape_or_dtype_raises_naming_the_function():
    def wrong_shape(t):
        return tj.ones((2,))

    def wrong_dtype(a):
        return a.astype(np.float64)

    @tj.function
    def f(x):
        return tj.py_function(wrong_shape, [x], tj.TensorSpec([3], tj.float32))

    @tj.function
    def g(x):
        return tj.numpy_function(wrong_dtype, [x], tj.TensorSpec([3], tj.float32))

    x = tj.constant([1.0, 2.0, 3.0])
    with pytest.raises(errors.InvalidArgumentError) as info:
        f(x)
    message = str(info.value)
    assert "tj.py_function 'wrong_shape': output 0 has shape (2,)" in message
    assert "Tout declares shape (3,) and dtype float32" in message
    assert "Traceback" not in message  # tracejit's error, not jax's wrapped callback text
    with pytest.raises(errors.InvalidArgumentError, match="wrong_dtype.*dtype float64"):
        g(x)
    with pytest.raises(errors.InvalidArgumentError, match="wrong_dtype.*dtype float64"):
        tj.numpy_function(wrong_dtype, [x], tj.float32)  # eagerly the same check


def test_wrong_number_of_results_and_errors_raised_by_the_function():
    def two(t):
        return t, t

    def fails(t):
        raise ValueError("negative input")

    x = tj.constant([1.0])
    with pytest.raises(errors.InvalidArgumentError, match="Tout declares 3 outputs.*2 values"):
        tj.py_function(two, [x], [tj.float32] * 3)
    f = tj.function(lambda x: tj.py_function(fails, [x], tj.TensorSpec([1], tj.float32)))
    with pytest.raises(errors.InvalidArgumentError) as info:  # TF maps ValueError so, too
        f(x)
    message = str(info.value)
    assert "tj.py_function 'fails' raised ValueError" in message
    assert f"test_tf2_more.py:{line_of('negative input', fails)}" in message
    assert "negative input" in message


def test_tout_needs_full_shapes_inside_a_compiled_function():
    def body(x):
        return tj.py_function(lambda t: t, [x], Tout=tj.float32)  # MARK-tout

    f = tj.function(body)
    with pytest.raises(TypeError) as info:
        f(tj.constant([1.0]))
    message = str(info.value)
    assert "Tout must give each output's full shape" in message
    assert "tj.TensorSpec([], float32) for a scalar" in message
    assert f"test_tf2_more.py:{line_of('MARK-tout', body)}" in message


def test_saved_functions_refuse_py_function(tmp_path):
    @tj.function(input_signature=[tj.TensorSpec([2])])
    def f(x):
        return tj.py_function(lambda t: t * 2, [x], tj.TensorSpec([2], tj.float32))

    with pytest.raises(TypeError, match="cannot be saved: it runs Python code"):
        tj.saved.save(f, str(tmp_path / "model"))
    with pytest.raises(TypeError, match="cannot be exported.*no host callbacks"):
        f.get_concrete_function().export()


# 3. tj.init_scope ------------------------------------------------------------------------------
def test_init_scope_runs_eagerly_inside_a_trace():
    seen = []

    @tj.function
    def f(x):
        seen.append(tj.executing_eagerly())
        with tj.init_scope():
            seen.append(tj.executing_eagerly())  # TF's docs: eager inside init_scope
        return x

    f(tj.constant(1.0))
    assert seen == [False, True]
    assert tj.executing_eagerly()


def test_init_scope_creates_state_once():
    class Counter(tj.Module):
        def __init__(self):
            super().__init__()
            self.count = None

        @tj.function
        def __call__(self, step):
            if self.count is None:
                with tj.init_scope():
                    self.count = tj.Variable(tj.zeros(()))
                    assert isinstance(self.count.value(), tj.Tensor)  # a concrete value
            return self.count.assign_add(step).value()

    counter = Counter()
    assert [float(counter(tj.constant(2.0))) for _ in range(3)] == [2.0, 4.0, 6.0]
    assert counter.__call__.trace_count == 1
    assert len(counter.trainable_variables) == 1


def test_a_value_computed_once_under_init_scope_is_a_constant_of_the_trace():
    computed = []

    @tj.function
    def f(x):
        with tj.init_scope():
            table = tj.exp(tj.arange(4.0))  # runs now, once, on concrete tensors
            computed.append(type(table))
        return x * table

    x = tj.constant([1.0, 2.0, 3.0, 4.0])
    for _ in range(3):
        np.testing.assert_allclose(f(x).numpy(), [1, 2, 3, 4] * np.exp(np.arange(4.0)), 1e-6)
    assert computed == [tj.Tensor]
    ops = ops_of(f.get_concrete_function(x))
    assert "exp" not in ops and "arange" not in ops and ops == ["multiply"]


def test_init_scope_pauses_gradient_tapes():
    x = tj.constant(3.0)
    with tj.GradientTape(persistent=True) as tape:
        tape.watch(x)
        recorded = x * x
        with tj.init_scope():
            paused = x * x
    assert float(tape.gradient(recorded, x)) == 6.0
    assert tape.gradient(paused, x) is None


# 4. tj.device ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_device_results() -> dict[str, str]:
    flags = os.environ.get("XLA_FLAGS", "")
    env = {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2".strip(),
        "JAX_PLATFORMS": "cpu",
    }
    script = HERE / "device_checks.py"
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    results: dict[str, str] = {}
    for block in done.stdout.split("CHECK ")[1:]:
        name, _, rest = block.partition(" ")
        results[name] = rest.strip()
    if not results:
        pytest.fail(f"{script.name} reported nothing:\n{done.stdout}\n{done.stderr[-3000:]}")
    return results


def _device_checks() -> list[str]:
    sys.path.insert(0, str(HERE))
    import device_checks

    return list(device_checks.CHECKS)


@pytest.mark.parametrize("name", _device_checks())
def test_on_two_cpu_devices(two_device_results: dict[str, str], name: str) -> None:
    result = two_device_results.get(name, "missing from the script's output")
    assert result.startswith("ok"), f"{name}: {result}"


def test_device_names_here_and_the_error_for_unknown_ones():
    import jax

    with tj.device("/device:CPU:0") as placed:
        x = tj.constant([1.0])
    assert placed == jax.devices("cpu")[0] and x.device == placed
    with pytest.raises(ValueError) as info:
        with tj.device("gpu:3"):
            pass
    assert "there is no gpu device 3" in str(info.value)
    assert "Available devices: cpu:0" in str(info.value)
    with pytest.raises(ValueError, match="not a device name"):
        tj.device("warp-drive:0").__enter__()
    with pytest.raises(TypeError, match="device name"):
        tj.device(3).__enter__()


# 5. The tracing protocol -----------------------------------------------------------------------
class Fruit:
    flavor = tj.constant([0, 0])


class Apple(Fruit):
    flavor = tj.constant([1, 2])


class Mango(Fruit):
    flavor = tj.constant([3, 4])


class KeyedFruit:
    """TF's TraceType example, written with tracejit's protocol: one trace per fruit class."""

    def __init__(self, kind: type[Fruit]) -> None:
        self.kind = kind
        self.flavor = kind.flavor

    def __tracejit_trace_key__(self) -> Any:
        return self.kind


def test_objects_without_the_protocol_retrace_for_each_instance():
    @tj.function
    def mixed(a, b):
        return a.flavor + b.flavor

    np.testing.assert_array_equal(mixed(Apple(), Mango()).numpy(), [4, 6])
    mixed(Apple(), Mango())  # new instances: traced again, as in TF
    assert mixed.trace_count == 2


def test_the_trace_key_decides_when_to_retrace():
    @tj.function
    def mixed(a, b):
        return a.flavor + b.flavor

    np.testing.assert_array_equal(mixed(KeyedFruit(Apple), KeyedFruit(Mango)).numpy(), [4, 6])
    np.testing.assert_array_equal(mixed(KeyedFruit(Apple), KeyedFruit(Mango)).numpy(), [4, 6])
    assert mixed.trace_count == 1  # equal keys: no retrace
    np.testing.assert_array_equal(mixed(KeyedFruit(Mango), KeyedFruit(Mango)).numpy(), [6, 8])
    assert mixed.trace_count == 2  # a new key: a new trace
    assert "KeyedFruit with trace key" in tj.explain(mixed).__str__()


def test_the_protocol_keys_unhashable_objects_and_checks_the_key():
    class Config:
        __hash__ = None  # unhashable: without the protocol it could not be an argument

        def __init__(self, scale: float, log: list[str]) -> None:
            self.scale, self.log = scale, log

        def __tracejit_trace_key__(self) -> Any:
            return self.scale

    @tj.function
    def f(x, config):
        return x * config.scale

    assert float(f(tj.constant(2.0), Config(3.0, []))) == 6.0
    assert float(f(tj.constant(2.0), Config(3.0, ["other"]))) == 6.0
    assert f.trace_count == 1

    class BadKey:
        def __tracejit_trace_key__(self) -> Any:
            return ["not", "hashable"]

    with pytest.raises(TypeError, match="BadKey.__tracejit_trace_key__.*not hashable"):
        f(tj.constant(1.0), BadKey())


def test_classes_written_for_tf_tracing_protocol_work_too():
    class TypeOfFruit:
        def __init__(self, kind: type) -> None:
            self.kind = kind

        def __eq__(self, other: object) -> bool:
            return isinstance(other, TypeOfFruit) and other.kind is self.kind

        def __hash__(self) -> int:
            return hash(self.kind)

    class TfFruit:
        def __init__(self, kind: type[Fruit]) -> None:
            self.kind, self.flavor = kind, kind.flavor

        def __tf_tracing_type__(self, context: Any) -> TypeOfFruit:
            return TypeOfFruit(self.kind)

    f = tj.function(lambda a: a.flavor * 2)
    f(TfFruit(Apple))
    np.testing.assert_array_equal(f(TfFruit(Apple)).numpy(), [2, 4])
    assert f.trace_count == 1
    np.testing.assert_array_equal(f(TfFruit(Mango)).numpy(), [6, 8])
    assert f.trace_count == 2


# 6. docs/coming-from-tensorflow.md: every tracejit name in its tables exists -------------------
PAGE = HERE.parent / "docs" / "coming-from-tensorflow.md"
_CHECKED_NAME = re.compile(r"^(tj|f|cf|v|x|tape|module|ckpt|opt|strategy)((?:\.[A-Za-z_]\w*)+)")


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each markdown table of the page: (header cells, body rows of cells)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif current:
            tables.append((current[0], current[2:]))
            current = []
    return tables


def _samples() -> dict[str, Any]:
    """An object for each short name the tables use."""
    f = tj.function(lambda a: a * 2)
    return {
        "tj": tj,
        "f": f,
        "cf": f.get_concrete_function(tj.TensorSpec([2])),
        "x": tj.constant([1.0, 2.0]),
        "v": tj.Variable([1.0, 2.0]),
        "tape": tj.GradientTape(),
        "module": tj.Module(),
        "ckpt": tj.train.Checkpoint(),
        "opt": tj.optim.SGD(0.1),
        "strategy": tj.distribute.DataParallel(),
    }


def test_every_tracejit_name_in_the_tensorflow_page_exists():
    samples = _samples()
    tables = _tables(PAGE.read_text())
    assert len(tables) >= 6
    checked, missing = 0, []
    for header, rows in tables:
        assert header[0] == "TensorFlow" and header[1] in ("tracejit", "instead"), header
        for row in rows:
            assert len(row) == 3, row
            assert re.search(r"`[^`]+`", row[0]), f"no TF name in {row}"
            names = [
                m for span in re.findall(r"`([^`]+)`", row[1]) if (m := _CHECKED_NAME.match(span))
            ]
            if header[1] == "tracejit":
                assert names, f"no tracejit name to check in {row}"
            for match in names:
                obj = samples[match.group(1)]
                for part in match.group(2).strip(".").split("."):
                    if not hasattr(obj, part):
                        missing.append(match.group(0))
                        break
                    obj = getattr(obj, part)
                checked += 1
    assert not missing, f"names in {PAGE.name} that tracejit does not have: {missing}"
    assert checked > 200  # the tables are the whole correspondence, not a sample


def test_the_tensorflow_page_is_in_the_docs_nav():
    assert "coming-from-tensorflow.md" in (HERE.parent / "mkdocs.yml").read_text()
