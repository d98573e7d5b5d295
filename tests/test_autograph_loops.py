"""AutoGraph loops stay loops (TF's tf.function guide, "Loops"): ``for i in tj.range(n)`` with a
Python int ``n`` is one graph loop node, as ``tf.range(n)`` is in TF; a plain Python loop that
unrolls into a large graph warns once, naming its line and the fix."""

from __future__ import annotations

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.autograph import LoopUnrollWarning

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32) + (X[:, 2] > 1).astype(np.int32)


def make_model():
    g = tj.random.Generator(0)
    return tj.nn.Sequential(
        [tj.nn.Dense(4, 8, activation="relu", generator=g), tj.nn.Dense(8, 3, generator=g)]
    )


def make_train(model, opt):
    def train(x, y, steps):
        total = 0.0  # a Python float accumulator: a loop-carried f32 tensor in the graph
        for _ in tj.range(steps):
            with tj.GradientTape() as tape:
                loss = tj.nn.softmax_cross_entropy(model(x), y)
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            total += loss
        return total

    return train


def top_level_ops(f, *args):
    return [node.op.name for node in f.get_concrete_function(*args).graph.get_operations()]


def test_training_loop_over_tj_range_is_one_loop_node_and_equals_eager():
    compiled_model, eager_model = make_model(), make_model()
    compiled = tj.function(make_train(compiled_model, tj.optim.Adam(0.05)))
    eager = make_train(eager_model, tj.optim.Adam(0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoopUnrollWarning)
        total = compiled(X, Y, 200)
    expected = eager(tj.constant(X), tj.constant(Y), 200)
    np.testing.assert_allclose(float(total), float(expected), rtol=1e-4)
    for v1, v2 in zip(compiled_model.variables, eager_model.variables):
        np.testing.assert_allclose(v1.numpy(), v2.numpy(), rtol=1e-3, atol=1e-5)
    graph = compiled.get_concrete_function(X, Y, 200).graph
    ops = [node.op.name for node in graph.get_operations()]
    assert len(ops) < 100 and ops.count("scan") == 1
    assert graph.node_count() < 300  # the body is traced once, not 200 times
    assert compiled.trace_count == 1


def test_python_float_accumulator_becomes_a_tensor():
    @tj.function
    def harmonic(n):
        total = 0.0
        for i in tj.range(1, n + 1):
            total += 1.0 / tj.cast(i, "float32")
        return total

    result = harmonic(50)
    assert isinstance(result, tj.Tensor) and result.dtype == np.float32
    np.testing.assert_allclose(float(result), sum(1.0 / k for k in range(1, 51)), rtol=1e-5)
    assert top_level_ops(harmonic, 50).count("scan") == 1


def test_loop_index_is_an_int32_tensor_and_steps_follow_range():
    @tj.function
    def indices(x):
        for i in tj.range(10, 1, -3):
            x = x * 10 + tj.cast(i, "float32")
        return x

    expected = 0.0
    for i in range(10, 1, -3):
        expected = expected * 10 + i
    np.testing.assert_allclose(float(indices(tj.constant(0.0))), expected)
    assert "scan" in top_level_ops(indices, tj.constant(0.0))


def test_empty_range_leaves_values_unchanged():
    @tj.function
    def g(x, n):
        for _ in tj.range(n):
            x = x + 1.0
        return x

    assert float(g(tj.constant(3.0), 0)) == 3.0
    assert float(g(tj.constant(3.0), 2)) == 5.0


def test_variables_assigned_in_the_body_are_loop_state():
    v = tj.Variable(1.0)
    counter = tj.Variable(0)

    @tj.function
    def grow(n):
        for i in tj.range(n):
            v.assign(v * 1.5 + tj.cast(i, "float32"))
            counter.assign_add(1)
        return v.read_value()

    expected = 1.0
    for i in range(7):
        expected = expected * 1.5 + i
    np.testing.assert_allclose(float(grow(7)), expected, rtol=1e-6)
    np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6)
    assert int(counter.numpy()) == 7
    assert top_level_ops(grow, 7).count("scan") == 1


def test_nested_tj_range_loops():
    @tj.function
    def table(n, m):
        total = tj.zeros(())
        for i in tj.range(n):
            for j in tj.range(m):
                total = total + tj.cast(i * 10 + j, "float32")
        return total

    expected = sum(i * 10 + j for i in range(4) for j in range(3))
    assert float(table(4, 3)) == expected
    cf = table.get_concrete_function(4, 3)
    assert [node.op.name for node in cf.graph.get_operations()].count("scan") == 1
    assert "scan" in str(cf.ir).split("scan", 1)[1]  # the inner loop is inside the outer body


def test_gradient_through_a_tj_range_loop():
    def power(x):
        y = x
        for _ in tj.range(3):
            y = y * x
        return y

    f = tj.function(power)
    x = tj.Variable(1.5)
    with tj.GradientTape() as tape:
        y = f(x)
    np.testing.assert_allclose(float(tape.gradient(y, x)), float(jax.grad(lambda a: a**4)(1.5)))
    np.testing.assert_allclose(float(y), 1.5**4, rtol=1e-6)


def test_break_in_a_tj_range_loop_is_a_bounded_while_loop():
    @tj.function
    def first_over(x, limit):
        total = tj.zeros(())
        for _ in tj.range(100):
            if total > limit:
                break
            total = total + x
        return total

    np.testing.assert_allclose(float(first_over(tj.constant(1.5), tj.constant(4.0))), 4.5)
    np.testing.assert_allclose(float(first_over(tj.constant(1.0), tj.constant(500.0))), 100.0)
    ops = top_level_ops(first_over, tj.constant(1.5), tj.constant(4.0))
    assert ops.count("while_loop") == 1 and "maximum_iterations=100" in str(
        first_over.get_concrete_function(tj.constant(1.5), tj.constant(4.0)).ir
    )
    x = tj.Variable(2.0)
    with tj.GradientTape() as tape:  # bounded by the trip count: differentiable (as in TF)
        y = first_over(x, tj.constant(5.0))
    assert float(y) == 6.0 and float(tape.gradient(y, x)) == 3.0  # three additions of x


def test_eager_tj_range_is_python_range():
    r = tj.range(2, 9, 3)
    assert isinstance(r, range) and list(r) == [2, 5, 8]
    total = 0
    for i in tj.range(4):
        assert isinstance(i, int)
        total += i
    assert total == 6


def test_unconverted_function_iterates_tj_range_in_python():
    @tj.function(autograph=False)
    def f(x):
        r = tj.range(3)
        assert len(r) == 3 and list(r) == [0, 1, 2] and r[1] == 1 and 2 in r
        for i in r:
            x = x + i
        return x

    assert float(f(tj.constant(0.0))) == 3.0
    assert top_level_ops(f, tj.constant(0.0)).count("scan") == 0


# The unroll warning ---------------------------------------------------------------------------
def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_unroll_warning_fires_once_naming_the_loop_line_and_the_fix():
    def long_loop(x):
        for _ in range(600):  # the loop line
            x = tj.sin(x) + 1.0
        return x

    f = tj.function(long_loop, optimize=False)
    with pytest.warns(LoopUnrollWarning) as record:
        f(tj.ones((2,)))
    ours = [w for w in record if issubclass(w.category, LoopUnrollWarning)]
    assert len(ours) == 1
    line = _line_of(long_loop, "# the loop line")
    assert ours[0].lineno == line and f":{line}" in str(ours[0].message)
    assert "tj.range" in str(ours[0].message) and "1000" in str(ours[0].message)
    assert issubclass(LoopUnrollWarning, tj.autograph.AutoGraphWarning)
    assert tj.errors.LoopUnrollWarning is LoopUnrollWarning
    with warnings.catch_warnings():  # once per loop line: a retrace does not warn again
        warnings.simplefilter("error", LoopUnrollWarning)
        f(tj.ones((3,)))
    np.testing.assert_allclose(
        f(tj.ones((2,))).numpy(), _reference_long_loop(np.ones(2, np.float32)), rtol=1e-5
    )


def _reference_long_loop(x):
    x = jnp.asarray(x)
    for _ in range(600):
        x = jnp.sin(x) + 1.0
    return np.asarray(x)


def test_short_loops_and_tj_range_loops_do_not_warn():
    def short(x):
        for _ in range(20):
            x = tj.sin(x) + 1.0
        return x

    def looped(x):
        for _ in tj.range(5000):
            x = tj.sin(x) + 1.0
        return x

    with warnings.catch_warnings():
        warnings.simplefilter("error", LoopUnrollWarning)
        tj.function(short)(tj.ones((2,)))
        tj.function(looped)(tj.ones((2,)))


def test_unroll_warning_threshold_is_configurable():
    def medium(x):
        for _ in range(30):  # 60 nodes
            x = tj.sin(x) + 1.0
        return x

    assert tj.config.unroll_warning_threshold() == 1000
    try:
        tj.config.set_unroll_warning_threshold(50)
        with pytest.warns(LoopUnrollWarning, match="more than 50 nodes"):
            tj.function(medium)(tj.ones((2,)))
        tj.config.set_unroll_warning_threshold(None)

        def medium_again(x):
            for _ in range(30):
                x = tj.sin(x) + 1.0
            return x

        with warnings.catch_warnings():
            warnings.simplefilter("error", LoopUnrollWarning)
            tj.function(medium_again)(tj.ones((2,)))
        with pytest.raises(ValueError, match="positive int or None"):
            tj.config.set_unroll_warning_threshold(0)
    finally:
        tj.config.set_unroll_warning_threshold(1000)


def test_python_while_loop_that_unrolls_warns_too():
    def spin(x):
        i = 0
        while i < 700:  # the while line
            x = tj.cos(x) * 2.0
            i += 1
        return x

    with pytest.warns(LoopUnrollWarning, match="condition a tensor") as record:
        tj.function(spin)(tj.ones(()))
    ours = [w for w in record if issubclass(w.category, LoopUnrollWarning)]
    assert [w.lineno for w in ours] == [_line_of(spin, "# the while line")]


def test_a_variable_as_an_initial_loop_value_is_carried_by_value():
    # TF converts a Variable among loop_vars to its value; the loop's result is a tensor
    @tj.function
    def power(x):
        return tj.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * x), (0, x))[1]

    @tj.function
    def power_for(x):
        y = x
        for _ in tj.range(3):
            y = y * x
        return y

    x = tj.Variable(2.0)
    assert float(power(x)) == 16.0 and float(power_for(x)) == 16.0
    assert float(x.numpy()) == 2.0
