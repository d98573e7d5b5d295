"""Several integer index arrays (``x[i, j]``) and the functional update ``x.at[index]``.

References are numpy (values) and jax (gradients, including its rules for repeated indices:
the last ``set`` wins, ``min``/``max`` ties share the cotangent equally). The table-driven tests
of tests/opinfo_indexing.py cover eager/traced/VJP for every mode; these cover the rest.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import IndexOutOfRangeError, IntegerOverflowError, OpError, OpTypeError

I32 = np.int32


def _tj(index: tuple) -> tuple:
    return tuple(tj.constant(i) if isinstance(i, np.ndarray) else i for i in index)


X = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
IDX = np.array([0, 2, 1], I32)
INDEXES = [
    (IDX, np.array([3, 0, 1], I32)),
    (IDX[:2], np.array([[1], [0]], I32)),
    (1, IDX, np.array([4, 0, 2], I32)),
    (IDX, slice(None), np.array([4, 0, 2], I32)),  # separated: the arrays' dims go first
    (slice(1, None), IDX, IDX),
    (0, slice(None), IDX),  # an int and an array separated by a slice: dims first, as numpy
    (Ellipsis, IDX, np.array([-1, 0, 2], I32)),
    (None, IDX[:2], IDX[:2]),
]


@pytest.mark.parametrize("index", INDEXES, ids=range(len(INDEXES)))
def test_several_index_arrays_follow_numpy_eagerly_and_traced(index):
    expected = X[index]
    got = tj.constant(X)[_tj(index)]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.numpy(), expected)
    arrays = [i for i in index if isinstance(i, np.ndarray)]

    @tj.function
    def f(x, *arrays):
        it = iter(arrays)
        return x[tuple(next(it) if isinstance(i, np.ndarray) else i for i in index)]

    np.testing.assert_array_equal(f(tj.constant(X), *map(tj.constant, arrays)).numpy(), expected)


def test_index_arrays_with_unknown_dims_keep_them_unknown():
    @tj.function(
        input_signature=[tj.TensorSpec((None, 4), tj.float32), tj.TensorSpec((None,), tj.int32)]
    )
    def f(x, i):
        return x[i, i]

    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    i = np.array([3, 1, 0], I32)
    np.testing.assert_array_equal(f(tj.constant(x), tj.constant(i)).numpy(), x[i, i])
    assert f.get_concrete_function().output_shapes == (None,)


def test_index_arrays_that_do_not_broadcast_raise_a_shape_error():
    with pytest.raises(OpError, match=r"\(2,\), \(3,\) cannot be broadcast"):
        tj.constant(X)[tj.constant(IDX[:2]), tj.constant(IDX)]


def test_a_known_out_of_range_index_array_raises_index_error():
    with pytest.raises(IndexOutOfRangeError, match="index 4 is out of range for axis 1 of size 4"):
        tj.constant(X)[tj.constant(IDX), tj.constant([0, 4, 1])]
    assert issubclass(IndexOutOfRangeError, IndexError)


def test_the_ir_shows_one_gather_index_node():
    @tj.function
    def f(x, i, j):
        return x[i, j]

    ir = str(f.get_concrete_function(tj.constant(X), tj.constant(IDX), tj.constant(IDX)).ir)
    assert "gather_index[index=((array,0),(array,1))]" in ir


# x.at[...] ---------------------------------------------------------------------------------------
MODES = ["set", "add", "multiply", "min", "max"]


@pytest.mark.parametrize("mode", MODES)
def test_at_gives_a_new_tensor_and_leaves_x_alone(mode):
    x = tj.constant([1.0, 2.0, 3.0, 4.0])
    out = getattr(x.at[tj.constant([0, 2, 0])], mode)(tj.constant([5.0, 0.5, 3.0]))
    expected = getattr(jnp.asarray([1.0, 2.0, 3.0, 4.0]).at[jnp.array([0, 2, 0])], mode)(
        jnp.array([5.0, 0.5, 3.0])
    )
    np.testing.assert_allclose(out.numpy(), expected)
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0, 3.0, 4.0])


def test_at_get_is_indexing():
    x = tj.constant(X)
    np.testing.assert_array_equal(x.at[1, ::2].get().numpy(), X[1, ::2])


def test_at_on_a_variable_returns_a_tensor_and_does_not_assign():
    v = tj.Variable([1.0, 2.0, 3.0])
    out = v.at[1].set(9.0)
    assert not isinstance(out, tj.Variable)
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0, 3.0])
    v.assign(out)
    np.testing.assert_array_equal(v.numpy(), [1.0, 9.0, 3.0])


def test_at_inside_a_function_is_one_scatter_index_node():
    @tj.function
    def f(x, i):
        return x.at[i].add(1.0)

    x, i = tj.zeros(4), tj.constant([1, 1, 3])
    np.testing.assert_array_equal(f(x, i).numpy(), [0.0, 2.0, 0.0, 1.0])
    ir = str(f.get_concrete_function(x, i).ir)
    assert "scatter_index[" in ir and "mode=add" in ir


def _grads(mode, x, index, values, **kwargs):
    xv, uv = tj.Variable(x), tj.Variable(values)
    with tj.GradientTape() as tape:
        out = getattr(xv.at[_tj(index)], mode)(uv, **kwargs)
        loss = tj.sum(out * out)
    return [g.numpy() for g in tape.gradient(loss, [xv, uv])]


def _jax_grads(mode, x, index, values, **kwargs):
    index = tuple(jnp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)

    def loss(a, b):
        out = getattr(a.at[index], mode)(b, **kwargs)
        return (out * out).sum()

    return jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(values))


def test_set_with_repeated_indices_gives_the_gradient_to_the_last_write_as_jax():
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    index, values = (np.array([0, 2, 0], I32),), np.array([2.0, 3.0, 4.0], np.float32)
    for got, want in zip(_grads("set", x, index, values), _jax_grads("set", x, index, values)):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_min_and_max_ties_share_the_gradient_as_jax(mode):
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    index, values = (np.array([0, 2, 2], I32),), np.array([1.0, 3.0, 3.0], np.float32)  # ties
    for got, want in zip(_grads(mode, x, index, values), _jax_grads(mode, x, index, values)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_multiply_differentiates_updates_only_with_unique_indices():
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    index, values = (np.array([0, 2], I32),), np.array([2.0, 3.0], np.float32)
    got = _grads("multiply", x, index, values, unique_indices=True)
    want = _jax_grads("multiply", x, index, values, unique_indices=True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    with pytest.raises(OpError, match="unique_indices=True"):
        _grads("multiply", x, index, values)


def test_writes_that_would_change_the_values_are_refused():
    with pytest.raises(
        OpTypeError, match="type float cannot be written into a tensor of dtype int32"
    ):
        tj.constant([1, 2]).at[0].set(1.5)
    with pytest.raises(OpTypeError, match="float32 cannot be written into a tensor of dtype int32"):
        tj.constant([1, 2]).at[0].set(tj.constant(1.5))
    with pytest.raises(IntegerOverflowError):
        tj.constant([1, 2], dtype=tj.int8).at[0].set(300)
    # Writes that need no wider dtype are fine: an int into a float tensor, a weak int into int8.
    np.testing.assert_array_equal(tj.constant([1.0, 2.0]).at[0].set(3).numpy(), [3.0, 2.0])
    np.testing.assert_array_equal(
        tj.constant([1, 2], dtype=tj.int8).at[1].add(5).numpy(), np.array([1, 7], np.int8)
    )


def test_updates_that_do_not_fit_the_region_raise():
    with pytest.raises(OpError, match=r"updates of shape \(3,\) do not broadcast"):
        tj.zeros((4, 2)).at[tj.constant([0, 1])].set(tj.ones(3))


def test_item_assignment_says_tensors_are_immutable_and_what_to_write():
    x = tj.constant([1.0, 2.0])
    with pytest.raises(TypeError, match=r"immutable: x\[0\] = value .* x.at\[index\].set"):
        x[0] = 5.0


# boolean masks -----------------------------------------------------------------------------------
MASKS = [X > 30, (X > 30)[:, :, 0], np.zeros((3, 4, 5), bool), [True, False, True]]


@pytest.mark.parametrize("mask", MASKS, ids=range(len(MASKS)))
def test_an_eager_boolean_mask_selects_as_numpy(mask):
    expected = X[np.asarray(mask)]
    for key in (mask, tj.constant(np.asarray(mask))):
        got = tj.constant(X)[key]
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.numpy(), expected)


def test_a_mask_combines_with_other_indices():
    mask = X[0, 0] > 1
    np.testing.assert_array_equal(tj.constant(X)[..., tj.constant(mask)].numpy(), X[..., mask])
    np.testing.assert_array_equal(tj.constant(X)[1, :, mask].numpy(), X[1, :, mask])


def test_a_mask_update_and_its_gradient():
    v = tj.Variable(X)
    np.testing.assert_array_equal(v.at[v > 30].set(0.0).numpy(), np.where(X > 30, 0.0, X))
    with tj.GradientTape() as tape:
        loss = tj.sum(v[v > 30] ** 2)
    np.testing.assert_array_equal(tape.gradient(loss, v).numpy(), np.where(X > 30, 2 * X, 0.0))


def test_a_mask_of_the_wrong_shape_raises_index_error():
    with pytest.raises(IndexOutOfRangeError, match=r"mask of shape \(4,\) does not match"):
        tj.constant(X)[np.ones(4, bool)]


@pytest.mark.parametrize(
    "index",
    [np.True_, np.False_, (np.True_, 1), (Ellipsis, np.True_), (0, np.False_, slice(None))],
    ids=range(5),
)
def test_a_0d_mask_is_a_new_axis_of_length_one_or_zero_as_numpy(index):
    expected = X[index]
    key = index if isinstance(index, tuple) else (index,)
    got = tj.constant(X)[tuple(tj.constant(k) if isinstance(k, np.bool_) else k for k in key)]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.numpy(), expected)
