"""Variables: eager semantics, lifting into compiled functions as state, donation, failed calls,
the first-trace creation rule, and variables in cache keys."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.eager.variable import VariableCreationError
from tracejit.errors import OpError


def test_eager_variable_api():
    v = tj.Variable([1.0, 2.0], name="w")
    assert v.shape == (2,) and v.dtype == np.float32 and v.name == "w" and v.trainable
    v.assign([3.0, 4.0])
    v.assign_add(tj.ones((2,)))
    v.assign_sub([0.5, 0.5])
    np.testing.assert_allclose(v.numpy(), [3.5, 4.5])
    np.testing.assert_allclose(v.value().numpy(), [3.5, 4.5])
    np.testing.assert_allclose((v * 2).numpy(), [7.0, 9.0])  # usable wherever a tensor is
    assert "tj.Variable 'w' shape=(2,) dtype=float32" in repr(v)


def test_assign_checks_shape_and_dtype():
    v = tj.Variable(tj.zeros((2, 3)), name="kernel")
    with pytest.raises(OpError, match=r"variable 'kernel' is f32\[2,3\].*got f32\[3,2\]"):
        v.assign(tj.zeros((3, 2)))
    with pytest.raises(OpError, match="got i32"):
        v.assign(tj.zeros((2, 3), dtype="int32"))
    np.testing.assert_array_equal(v.numpy(), np.zeros((2, 3)))


def test_assign_checks_inside_function_name_user_line():
    v = tj.Variable(tj.zeros((2,)), name="bias")

    @tj.function
    def bad():
        v.assign(tj.zeros((3,)))

    with pytest.raises(OpError, match=r"variable 'bias'.*\n  at test_variables.py:\d+ in bad"):
        bad()


def test_reads_and_writes_are_lifted_as_state():
    v = tj.Variable([1.0, 2.0], name="counter")

    @tj.function
    def bump(x):
        before = v.value()
        v.assign_add(x)
        after = v.value()  # a read after an assign sees the assigned value
        return before, after

    before, after = bump(tj.ones((2,)))
    np.testing.assert_allclose(before.numpy(), [1, 2])
    np.testing.assert_allclose(after.numpy(), [2, 3])
    np.testing.assert_allclose(v.numpy(), [2, 3])  # written back after the call
    bump(tj.ones((2,)))
    np.testing.assert_allclose(v.numpy(), [3, 4])
    assert bump.trace_count == 1
    text = bump.get_concrete_function(tj.ones((2,))).ir.format(source=False)
    assert "state %s0: f32[2] = variable counter" in text
    assert "assign %s0 <- %" in text


def test_eager_reads_between_calls_see_new_values():
    v = tj.Variable(0.0)
    step = tj.function(lambda: v.assign_add(1.0))
    for expected in (1.0, 2.0, 3.0):
        step()
        assert float(v) == expected


def test_donated_buffer_is_consumed():
    v = tj.Variable(tj.zeros((1000,)))
    step = tj.function(lambda: v.assign_add(1.0))
    step()
    old = v._value
    step()
    assert old.is_deleted()  # the update reused the old buffer
    np.testing.assert_allclose(v.numpy(), 2.0)


def test_exposed_buffer_is_not_donated():
    v = tj.Variable(tj.zeros((4,)))
    step = tj.function(lambda: v.assign_add(1.0))
    step()
    held = v.value()  # the user holds the current buffer
    step()
    np.testing.assert_allclose(held.numpy(), 1.0)
    np.testing.assert_allclose(v.numpy(), 2.0)


def test_failed_trace_leaves_variables_untouched():
    v = tj.Variable([1.0, 2.0])

    @tj.function
    def broken(x):
        v.assign(x * 10)
        return x + tj.ones((5,))  # shape error after the assign

    with pytest.raises(OpError):
        broken(tj.ones((2,)))
    np.testing.assert_allclose(v.numpy(), [1.0, 2.0])
    np.testing.assert_allclose((v + 1).numpy(), [2.0, 3.0])  # still usable


def test_failed_validation_leaves_variables_untouched():
    v = tj.Variable([1.0, 2.0])
    f = tj.function(lambda x: v.assign_add(x), input_signature=[tj.TensorSpec((2,))])
    f(tj.ones((2,)))
    with pytest.raises(TypeError):
        f(tj.ones((3,)))
    np.testing.assert_allclose(v.numpy(), [2.0, 3.0])


def test_variables_created_on_first_trace_only():
    class Lazy:
        def __init__(self):
            self.w = None

        @tj.function
        def __call__(self, x):
            if self.w is None:
                self.w = tj.Variable(tj.ones((x.shape[-1],)), name="lazy_w")
            return x * self.w

    layer = Lazy()
    np.testing.assert_allclose(layer(tj.ones((2, 3))).numpy(), np.ones((2, 3)))
    layer(tj.ones((4, 3)))  # retrace without creating: fine
    assert layer.w.numpy().tolist() == [1.0, 1.0, 1.0]

    @tj.function
    def creates_every_time(x):
        return x * tj.Variable(tj.ones(x.shape))

    # As in TF2: the first call already fails (the check trace creates another variable).
    with pytest.raises(VariableCreationError, match="may create variables on its first call only"):
        creates_every_time(tj.ones((2,)))


def test_variable_initial_value_from_inputs_is_an_error():
    @tj.function
    def f(x):
        return tj.Variable(x * 2)

    with pytest.raises(OpError, match="initial value depends on the function's inputs"):
        f(tj.ones((2,)))


def test_variables_are_keyed_by_identity():
    f = tj.function(lambda v, x: v * x)
    a, b = tj.Variable([1.0, 2.0]), tj.Variable([10.0, 20.0])
    np.testing.assert_allclose(f(a, tj.ones((2,))).numpy(), [1, 2])
    np.testing.assert_allclose(f(b, tj.ones((2,))).numpy(), [10, 20])
    assert f.trace_count == 2
    f(a, tj.ones((2,)))
    assert f.trace_count == 2


def test_variable_in_a_compiled_function_called_from_eager_loop():
    v = tj.Variable(1.0)

    @tj.function
    def double():
        v.assign(v * 2.0)
        return v.value()

    results = [float(double()) for _ in range(4)]
    assert results == [2.0, 4.0, 8.0, 16.0]


def test_random_generator_advances_inside_compiled_calls():
    g = tj.random.Generator(seed=3)

    @tj.function
    def noise():
        return g.normal((4,))

    a, b = noise().numpy(), noise().numpy()
    assert not np.allclose(a, b)
    g.reset(3)
    np.testing.assert_allclose(noise().numpy(), a)
    eager = tj.random.Generator(seed=3)
    np.testing.assert_allclose(eager.normal((4,)).numpy(), a)
    assert noise.trace_count == 1
