"""Values never wrap or change type silently (issue 11, section 2): Python ints out of range,
bitwise operators, dtypes the backend cannot give, inputs no jax array can hold."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj


# Bitwise operators -------------------------------------------------------------------------------
def _operators(x, y):
    return x & y, x | y, x ^ y, ~x, x << 1, x >> 1, 7 & x, 1 | y, 5 ^ x, 1 << y, 64 >> y


@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_operators_on_int_tensors_are_bitwise(mode):
    x, y = np.array([6, 5, -8], np.int32), np.array([3, 2, 1], np.int32)
    fn = _operators if mode == "eager" else tj.function(_operators)
    got = fn(tj.constant(x), tj.constant(y))
    want = _operators(x, y)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.numpy(), w)


@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_operators_on_bool_tensors_stay_logical(mode):
    def logic(a, b):
        return a & b, a | b, a ^ b, ~a

    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    fn = logic if mode == "eager" else tj.function(logic)
    for g, w in zip(fn(tj.constant(a), tj.constant(b)), logic(a, b)):
        assert g.dtype == np.bool_
        np.testing.assert_array_equal(g.numpy(), w)


def test_bitwise_on_floats_is_refused_with_the_op_name():
    with pytest.raises(TypeError, match="bitwise_and"):
        tj.constant([1.0]) & tj.constant([2.0])


def test_numpy_aliases_are_the_same_ops():
    x = tj.constant([1, 2])
    np.testing.assert_array_equal(tj.invert(x).numpy(), [-2, -3])
    np.testing.assert_array_equal(tj.left_shift(x, 1).numpy(), [2, 4])
    np.testing.assert_array_equal(tj.right_shift(x, 1).numpy(), [0, 1])


def test_double_invert_simplifies_away():
    cf = tj.function(lambda x: ~~x).get_concrete_function(tj.TensorSpec((3,), "int32"))
    assert [n.op.name for n in cf.ir.nodes] == []
