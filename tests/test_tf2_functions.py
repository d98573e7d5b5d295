"""TF2's tf.function rules, as TF's guides and API docs state them: variables created on the
first call only, what a function may return, concrete functions and their signatures, and error
classes that the builtin ``except`` clauses TF code uses still catch."""

from __future__ import annotations

import inspect
import io

import jax
import numpy as np
import pytest

import tracejit as tj
from tracejit import errors


def line_of(marker: str, fn) -> int:
    source, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(source) if marker in line)


# Variables: created on the first call only ---------------------------------------------------
def test_unconditional_variable_creation_fails_on_the_first_call():
    calls = []

    def body(x):
        calls.append(1)
        v = tj.Variable(1.0)  # MARK-create
        return v + x

    f = tj.function(body)
    with pytest.raises(ValueError) as info:  # TF raises ValueError, on the first call
        f(tj.constant(1.0))
    assert isinstance(info.value, errors.TracejitError)
    message = str(info.value)
    assert "may create variables on its first call only" in message
    assert f"test_tf2_functions.py:{line_of('MARK-create', body)} in body" in message
    assert "v = tj.Variable(1.0)" in message
    assert len(calls) == 2  # traced twice, as TF does, to detect it
    assert f.trace_count == 0  # nothing was cached: the next call fails the same way
    with pytest.raises(ValueError, match="first call only"):
        f(tj.constant(1.0))


def test_lazy_creation_on_the_first_call_keeps_working():
    class Counter(tj.Module):
        def __init__(self):
            super().__init__()
            self.count = None

        @tj.function
        def __call__(self):
            if self.count is None:
                self.count = tj.Variable(0)
            return self.count.assign_add(1).value()

    counter = Counter()
    assert [int(counter()) for _ in range(3)] == [1, 2, 3]  # one variable, incremented
    assert counter.__call__.trace_count == 1
    assert len(counter.__call__.concrete_functions()[0].variables) == 1


def test_keras_style_lazy_layer_and_optimizer_slots_in_one_step():
    class LazyDense(tj.Module):  # builds its kernel from the first input's shape, as Keras does
        def __init__(self, units):
            super().__init__()
            self.units = units
            self.kernel = None

        def __call__(self, x):
            if self.kernel is None:
                self.kernel = tj.Variable(lambda: tj.ones((x.shape[-1], self.units)) * 0.5)
            return x @ self.kernel

    layer = LazyDense(2)
    opt = tj.optim.Adam(0.1)
    traces = []

    @tj.function
    def step(x):
        traces.append(1)
        with tj.GradientTape() as tape:
            loss = tj.sum(layer(x) ** 2)
        grads = tape.gradient(loss, [layer.kernel])
        opt.apply_gradients(zip(grads, [layer.kernel]))  # Adam's slots: made on the first call
        return loss

    x = tj.ones((4, 3))
    losses = [float(step(x)) for _ in range(3)]
    assert losses[2] < losses[1] < losses[0]
    assert step.trace_count == 1 and len(traces) == 2  # the first call traced twice, as TF
    assert layer.kernel.shape == (3, 2)
    assert len(opt.slot_variables()) == 2  # m and v, once


def test_variable_created_inside_a_branch_every_call_is_reported():
    def body(x, flag):
        if flag:
            return x + tj.Variable(2.0)  # MARK-branch
        return x

    f = tj.function(body)
    assert float(f(tj.constant(1.0), False)) == 1.0
    with pytest.raises(ValueError) as info:  # a later trace that creates one
        f(tj.constant(1.0), True)
    message = str(info.value)
    assert "while being traced again (trace 2)" in message
    assert f"test_tf2_functions.py:{line_of('MARK-branch', body)} in body" in message


# What a tj.function may return ------------------------------------------------------------------
def test_returning_an_arbitrary_object_is_a_type_error():
    @tj.function
    def f(x):
        return {"out": x, "junk": object()}

    with pytest.raises(
        TypeError, match=r"f returned <object object .*\(of type object\) at \['junk'\]"
    ):
        f(tj.ones(()))


def test_tensors_python_values_none_and_nests_may_be_returned():
    @tj.function
    def f(x):
        return x * 2, 3, "label", None, [1.5, {"k": x}]

    out = f(tj.ones((2,)))
    np.testing.assert_allclose(out[0].numpy(), [2.0, 2.0])
    assert out[1:4] == (3, "label", None)
    assert out[4][0] == 1.5
    np.testing.assert_allclose(out[4][1]["k"].numpy(), [1.0, 1.0])


# Error classes as TF users catch them ------------------------------------------------------------
def test_gradient_twice_on_a_non_persistent_tape_is_a_runtime_error():
    x = tj.constant(3.0)
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="non-persistent GradientTape"):
        tape.gradient(y, x)


def test_escaped_symbolic_tensor_is_a_type_error():
    leaked = []

    @tj.function
    def f(x):
        leaked.append(x * 2)
        return x

    f(tj.ones(()))
    with pytest.raises(TypeError, match="symbolic tensor from a trace that has finished"):
        tj.exp(leaked[0])

    @tj.function
    def g(x):
        return x + leaked[0]

    with pytest.raises(TypeError, match="symbolic tensor from another trace"):
        g(tj.ones(()))


def test_numpy_of_a_symbolic_tensor_is_an_attribute_error():
    @tj.function
    def f(x):
        try:
            return x.numpy()
        except AttributeError:  # how TF code tells a graph tensor from an eager one
            return x + 1

    assert float(f(tj.ones(()))) == 2.0

    @tj.function
    def g(x):
        return x.numpy()

    with pytest.raises(TypeError, match=r"\.numpy\(\) of a symbolic tensor"):
        g(tj.ones(()))


def test_signature_mismatch_is_both_type_and_value_error():
    f = tj.function(lambda x: x + 1, input_signature=[tj.TensorSpec([None], "float32")])
    for kind in (TypeError, ValueError):
        with pytest.raises(kind, match="does not match the input_signature"):
            f(tj.ones((2, 2)))
    cf = tj.function(lambda x: x + 1).get_concrete_function(tj.TensorSpec([2], "float32"))
    with pytest.raises(TypeError):
        cf(tj.ones((3,)))
    with pytest.raises(TypeError):  # a missing argument, as Python (and TF) say
        f()


class _Raising(io.StringIO):
    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def write(self, text):
        raise self.error


@pytest.mark.parametrize(
    "raised, expected",
    [
        (ValueError("bad value"), errors.InvalidArgumentError),
        (TypeError("bad type"), errors.InvalidArgumentError),
        (NotImplementedError("later"), errors.UnimplementedError),
        (IndexError("too far"), errors.OutOfRangeError),
        (KeyError("who"), errors.UnknownError),
    ],
)
def test_run_time_failures_raise_tf_errors_classes(raised, expected):
    def body(x):
        tj.print("x", x, file=_Raising(raised))
        return x + 1

    f = tj.function(body)
    with pytest.raises(expected) as info:
        f(tj.ones((2,)))
        jax.effects_barrier()
    assert isinstance(info.value, errors.ExecutionError) and isinstance(info.value, RuntimeError)
    assert (
        type(info.value).error_code
        == {
            errors.InvalidArgumentError: 3,
            errors.UnimplementedError: 12,
            errors.OutOfRangeError: 11,
            errors.UnknownError: 2,
        }[expected]
    )
    assert "body (defined at test_tf2_functions.py" in info.value.message
    assert type(raised).__name__ in str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8.0G", "ResourceExhausted"),
        ("INVALID_ARGUMENT: Executable expected shape f32[2]", "InvalidArgument"),
        ("INTERNAL: Generated function failed", "Internal"),
        ("UNIMPLEMENTED: no kernel", "Unimplemented"),
        ("FAILED_PRECONDITION: buffer deleted", "FailedPrecondition"),
        ("something without a status", "Execution"),
    ],
)
def test_xla_status_codes_map_to_the_family(text, expected):
    assert errors.execution_error_type(RuntimeError(text)).__name__ == expected + "Error"


# Concrete functions ---------------------------------------------------------------------------
def _scaled():
    @tj.function
    def scaled(a, b):
        return {"y": a * b, "b": b}

    return scaled


def test_get_concrete_function_binds_python_arguments():
    scaled = _scaled()
    cf = scaled.get_concrete_function(a=tj.TensorSpec([None], "float32"), b=2)
    out = cf(tj.constant([1.0, 2.0]))  # b is bound: left out, as in TF
    np.testing.assert_allclose(out["y"].numpy(), [2.0, 4.0])
    assert out["b"] == 2
    np.testing.assert_allclose(cf(tj.constant([1.0]), b=2)["y"].numpy(), [2.0])  # same: fine
    np.testing.assert_allclose(cf(tj.constant([3.0]), 2)["y"].numpy(), [6.0])
    with pytest.raises(TypeError, match="argument 'b' was bound to 2 .* got 3"):
        cf(tj.constant([1.0]), b=3)
    with pytest.raises(TypeError, match="missing required argument 'a'"):
        cf()
    with pytest.raises(TypeError, match="argument 'a'"):
        cf(tj.ones((2, 2)))
    assert scaled.trace_count == 1


def test_structured_input_signature_and_outputs():
    scaled = _scaled()
    cf = scaled.get_concrete_function(tj.TensorSpec([None, 3], "float32"), 4)
    args, kwargs = cf.structured_input_signature
    assert args == (tj.TensorSpec((None, 3), "float32", name="a"), 4) and kwargs == {}
    assert args[0].name == "a"
    assert cf.output_shapes == {"y": (None, 3), "b": 4}
    assert cf.output_dtypes["y"] == np.dtype("float32")
    assert cf.structured_outputs["y"] == tj.TensorSpec((None, 3), "float32")


def test_keyword_only_parameters_in_structured_input_signature():
    @tj.function
    def f(x, *, scale=1.0):
        return x * scale

    cf = f.get_concrete_function(tj.TensorSpec([2], "int32"), scale=3)
    args, kwargs = cf.structured_input_signature
    assert args == (tj.TensorSpec((2,), "int32", name="x"),) and kwargs == {"scale": 3}
    np.testing.assert_array_equal(cf(tj.constant([1, 2])).numpy(), [3, 6])


def test_concrete_function_variables():
    w = tj.Variable([1.0, 2.0], name="w")
    step = tj.Variable(0, trainable=False, name="step")

    @tj.function
    def f(x):
        step.assign_add(1)
        return x * w

    cf = f.get_concrete_function(tj.TensorSpec([2], "float32"))
    assert {v.name for v in cf.variables} == {"w", "step"}
    assert [v.name for v in cf.trainable_variables] == ["w"]


def test_pretty_printed_concrete_signatures():
    scaled = _scaled()
    scaled.get_concrete_function(tj.TensorSpec([None], "float32"), 2)
    scaled(tj.ones((2, 2), dtype="int32"), 3)
    text = scaled.pretty_printed_concrete_signatures()
    assert text == (
        "scaled(a, b)\n"
        "  Args:\n"
        "    a: float32 Tensor, shape=(None,)\n"
        "    b: 2\n"
        "  Returns:\n"
        "    {'b': 2, 'y': float32 Tensor, shape=(None,)}\n"
        "\n"
        "scaled(a, b)\n"
        "  Args:\n"
        "    a: int32 Tensor, shape=(2, 2)\n"
        "    b: 3\n"
        "  Returns:\n"
        "    {'b': 3, 'y': int32 Tensor, shape=(2, 2)}"
    )


def test_graph_size_shows_python_unrolling():
    # TF's guide measures graph sizes to show that a Python loop unrolls into the graph and a
    # loop over a tensor range stays one loop node.
    def python_loop(x):
        for _ in range(20):
            x = tj.sin(x) + 1.0
        return x

    def tensor_loop(x, n):
        for _ in tj.range(n):
            x = tj.sin(x) + 1.0
        return x

    x = tj.ones((3,))
    unrolled = tj.function(python_loop, optimize=False).get_concrete_function(x).graph
    looped = tj.function(tensor_loop, optimize=False).get_concrete_function(x, tj.constant(20))
    assert len(unrolled.nodes) == len(unrolled.get_operations()) == 40
    assert [node.op.name for node in looped.graph.get_operations()] == ["while_loop"]
    assert looped.graph.node_count() < 10 < unrolled.node_count()
    np.testing.assert_allclose(
        looped(x, tj.constant(20)).numpy(), tj.function(python_loop)(x).numpy(), rtol=1e-6
    )


# tj.shape, tj.size, tj.rank -------------------------------------------------------------------
def test_shape_size_rank_eagerly():
    x = tj.ones((2, 3, 4))
    shape = tj.shape(x)
    assert shape.dtype == np.dtype("int32")
    np.testing.assert_array_equal(shape.numpy(), [2, 3, 4])
    assert tj.size(x).shape == () and int(tj.size(x)) == 24
    assert int(tj.rank(x)) == 3 and tj.rank(x).dtype == np.dtype("int32")
    assert int(tj.rank(2.0)) == 0 and int(tj.size(np.ones((5,)))) == 5
    np.testing.assert_array_equal(tj.shape(tj.Variable([1.0, 2.0])).numpy(), [2])


def test_shape_is_dynamic_where_the_static_shape_is_unknown():
    @tj.function(input_signature=[tj.TensorSpec([None, 3], "float32")])
    def f(x):
        return tj.shape(x), tj.size(x), tj.rank(x), tj.shape(x)[0] * 10

    for rows in (1, 5):
        shape, size, rank, scaled = f(tj.ones((rows, 3)))
        np.testing.assert_array_equal(shape.numpy(), [rows, 3])
        assert (int(size), int(rank), int(scaled)) == (rows * 3, 2, rows * 10)
    assert f.trace_count == 1
    ops = [node.op.name for node in f.get_concrete_function().ir_unoptimized.nodes]
    assert "shape" in ops


def test_shape_with_a_known_shape_is_a_constant_of_the_graph():
    @tj.function
    def f(x):
        return tj.shape(x)

    np.testing.assert_array_equal(f(tj.ones((4, 2))).numpy(), [4, 2])
    graph = f.get_concrete_function(tj.TensorSpec([4, 2])).ir_unoptimized
    assert [node.op.name for node in graph.nodes] == []


def test_shape_out_type():
    assert tj.shape(tj.ones((3,)), out_type="int32").dtype == np.dtype("int32")
    with pytest.raises(TypeError, match="out_type must be an integer dtype, got float32"):
        tj.shape(tj.ones((3,)), out_type="float32")


def test_creation_ops_take_run_time_dims_from_tj_shape():
    @tj.function(input_signature=[tj.TensorSpec([None, 3], "float32")])
    def f(x):
        column = tj.ones((tj.shape(x)[0], 1))
        counts = tj.zeros([2, tj.shape(x)[-2]], "int32")
        sevens = tj.full((tj.shape(x)[0],), 7)
        return x + column, counts, sevens

    for rows in (2, 5):
        shifted, counts, sevens = f(tj.ones((rows, 3)))
        np.testing.assert_allclose(shifted.numpy(), np.full((rows, 3), 2.0, np.float32))
        assert counts.dtype == np.dtype("int32") and counts.shape == (2, rows)
        np.testing.assert_array_equal(sevens.numpy(), np.full((rows,), 7, np.int32))
    assert f.trace_count == 1
    graph = f.get_concrete_function().ir
    assert [node.op.name for node in graph.nodes].count("full_dims") == 3
    assert graph.outputs[1].aval.shape == (2, None)


def test_unknown_dims_in_a_creation_shape_give_a_hint():
    @tj.function(input_signature=[tj.TensorSpec([None, 3], "float32")])
    def static_none(x):
        return tj.ones((x.shape[0], 1))

    with pytest.raises(TypeError, match=r"got \(None, 1\); .* tj.shape\(x\)\[i\]"):
        static_none(tj.ones((2, 3)))

    @tj.function(input_signature=[tj.TensorSpec([None, 3], "float32")])
    def arithmetic(x):
        return tj.ones((tj.shape(x)[0] * 2, 1))

    with pytest.raises(TypeError, match=r"shape\[0\] is a symbolic tensor computed by ops"):
        arithmetic(tj.ones((2, 3)))


def test_variable_numpy_inside_a_function_raises_instead_of_baking_the_value_in():
    v = tj.Variable(1.0, name="speed")

    @tj.function
    def f(x):
        return x * v.numpy()

    with pytest.raises(AttributeError, match="variable 'speed' inside a tj.function"):
        f(tj.ones(()))
    assert float(v.numpy()) == 1.0  # eagerly: fine


def test_function_type_annotates_specs_and_bound_defaults():
    @tj.function
    def f(a, b, *, c=1.0):
        return a * b * c

    cf = f.get_concrete_function(tj.TensorSpec([None]), 2, c=3.0)
    params = cf.function_type.parameters
    assert params["a"].annotation == tj.TensorSpec((None,), name="a")
    assert params["a"].default is inspect.Parameter.empty
    assert (params["b"].default, params["c"].default) == (2, 3.0)
    assert cf.function_type.return_annotation == tj.TensorSpec((None,))
    np.testing.assert_allclose(cf(tj.ones((2,))).numpy(), [6.0, 6.0])
