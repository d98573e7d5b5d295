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


# Python ints that do not fit ------------------------------------------------------------------
BIG = 2**40


def _traced_operand(x):
    return tj.function(lambda t: t + BIG)(x)


def _traced_static(x):
    return tj.function(lambda t, k: t * k)(x, BIG)


def _traced_list(x):
    return tj.function(lambda t: t + tj.constant([1, BIG]))(x)


OVERFLOWS = {
    "constant": lambda x: tj.constant(BIG),
    "constant_2**31": lambda x: tj.constant(2**31),
    "constant_negative": lambda x: tj.constant(-(2**31) - 1),
    "constant_list": lambda x: tj.constant([1, BIG]),
    "constant_list_2**63": lambda x: tj.constant([1, 2**63]),  # numpy makes that float64
    "constant_list_2**70": lambda x: tj.constant([[1], [2**70]]),  # numpy makes that object
    "constant_uint8": lambda x: tj.constant([1, 300], dtype=tj.uint8),
    "constant_unsigned_negative": lambda x: tj.constant(-1, dtype=tj.uint32),
    "variable": lambda x: tj.Variable(BIG),
    "variable_assign": lambda x: tj.Variable(1).assign(BIG),
    "op_argument": lambda x: tj.add(x, BIG),
    "op_list_argument": lambda x: tj.add(x, [1, BIG]),
    "operator": lambda x: x + BIG,
    "traced_operand": _traced_operand,
    "traced_static_argument": _traced_static,
    "traced_list": _traced_list,
}


@pytest.mark.parametrize("case", sorted(OVERFLOWS))
def test_python_ints_out_of_range_raise_overflow_error(case):
    x = tj.constant([1, 2])
    with pytest.raises(OverflowError, match=r"Python int -?\d+ is out of range for u?int\d+"):
        OVERFLOWS[case](x)


def test_overflow_error_names_value_dtype_line_and_the_x64_flag():
    with pytest.raises(tj.errors.IntegerOverflowError) as info:
        tj.constant(BIG)
    text = str(info.value)
    assert str(BIG) in text and "int32" in text and "test_dtypes.py" in text
    assert 'jax.config.update("jax_enable_x64", True)' in text
    assert info.value.value == BIG and info.value.dtype == np.int32


def test_ints_in_range_and_ints_meant_as_floats_are_exact():
    assert tj.constant(2**31 - 1).numpy() == 2**31 - 1
    assert tj.constant(-(2**31)).numpy() == -(2**31)
    assert tj.constant(255, dtype=tj.uint8).numpy() == 255
    assert tj.constant(2**31, dtype=tj.float32).numpy() == np.float32(2**31)  # not via int32
    np.testing.assert_array_equal(tj.constant([1, BIG], dtype="float32").numpy(), [1, BIG])
    v = tj.Variable(1.0)
    v.assign(BIG)
    assert v.numpy() == np.float32(BIG)
    # A weak Python int against a narrow int tensor wraps in jax too (it fits int32): unchanged.
    assert (tj.constant(np.int8(1)) + 300).numpy() == np.int8(1) + np.int8(44)
