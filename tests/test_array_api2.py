"""Focused tests of the array API manipulation, statistics, sorting, linear algebra and set
functions (their values, dtypes and gradients are checked by the OpInfo rows in
tests/opinfo_array_api2.py): the clear errors for data-dependent sizes and unknown dims, the
named-tuple results, ``x.mT``, and eager/traced agreement where ``size=`` pads the results."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import OpError, ShapeError


def _traced(fn, *specs):  # noqa: ANN001, ANN202 - small local helper
    return tj.function(fn, input_signature=list(specs))


def test_nonzero_while_tracing_needs_size_and_names_the_line() -> None:
    f = tj.function(lambda x: tj.nonzero(x))
    with pytest.raises(ShapeError, match=r"pass size=N") as info:
        f(tj.constant([0, 1, 2]))
    assert "test_array_api2.py" in str(info.value)
    x = np.array([[0, 3], [4, 0]], np.int32)
    eager = tj.nonzero(tj.constant(x))  # eagerly the size comes from the values
    np.testing.assert_array_equal(np.stack([t.numpy() for t in eager]), np.stack(np.nonzero(x)))
    traced = tj.function(lambda x: tj.nonzero(x, size=3, fill_value=-1))(tj.constant(x))
    expected = jnp.nonzero(x, size=3, fill_value=-1)
    for got, want in zip(traced, expected, strict=True):
        np.testing.assert_array_equal(got.numpy(), np.asarray(want))


@pytest.mark.parametrize("name", ["unique_values", "unique_counts", "unique_inverse", "unique_all"])
def test_unique_while_tracing_needs_size(name: str) -> None:
    fn = getattr(tj, name)
    with pytest.raises(ShapeError, match=re.escape(name) + r".*pass size=N"):
        tj.function(lambda x: fn(x))(tj.constant([1, 1, 2]))


def test_unique_results_are_named_tuples() -> None:
    x = tj.constant([[3, 1], [3, 2]])
    result = tj.unique_all(x)
    assert result.values.numpy().tolist() == [1, 2, 3]
    assert result.indices.numpy().tolist() == [1, 3, 0]
    assert result.inverse_indices.shape == (2, 2)
    assert result.counts.numpy().tolist() == [1, 1, 2]
    counts = tj.function(lambda x: tj.unique_counts(x, size=4))(x)
    assert counts.values.numpy().tolist() == [1, 2, 3, 1]  # padded with the smallest value
    assert counts.counts.numpy().tolist() == [1, 1, 2, 0]
    assert tj.unique_inverse(x).inverse_indices.numpy().tolist() == [[2, 0], [2, 1]]


def test_unstack_of_an_unknown_axis_is_refused() -> None:
    f = _traced(lambda x: tj.unstack(x), tj.TensorSpec((None, 3), tj.float32))
    with pytest.raises(ShapeError, match=r"unknown while tracing"):
        f.get_concrete_function()
    g = _traced(lambda x: tj.unstack(x, axis=1), tj.TensorSpec((None, 3), tj.float32))
    assert len(g.get_concrete_function().output_avals) == 3


def test_repeat_counts_must_be_known_while_tracing() -> None:
    f = tj.function(lambda x, r: tj.repeat(x, r))
    with pytest.raises(OpError, match=r"repeats must be known while tracing"):
        f(tj.constant([1.0, 2.0]), tj.constant([1, 2]))
    # An eager tensor of counts is fine (closed over as a constant).
    counts = tj.constant([1, 2])
    out = tj.function(lambda x: tj.repeat(x, counts))(tj.constant([1.0, 2.0]))
    assert out.numpy().tolist() == [1.0, 2.0, 2.0]


def test_cumulative_axis_none_needs_a_vector() -> None:
    with pytest.raises(OpError, match=r"axis=None is only allowed for a 1-D tensor"):
        tj.cumulative_sum(tj.ones((2, 3)))


def test_cumulative_prod_of_small_ints_widens_as_the_standard_says() -> None:
    x = tj.asarray([200, 2], dtype=tj.uint8)
    out = tj.cumulative_prod(x)
    assert out.dtype == np.uint32 and out.numpy().tolist() == [200, 400]


def test_mT_and_shape_errors_name_the_shapes() -> None:
    assert tj.ones((4, 2, 3)).mT.shape == (4, 3, 2)
    with pytest.raises(ShapeError, match=r"sizes 3 and 4 differ"):
        tj.tensordot(tj.ones((2, 3)), tj.ones((4, 2)), axes=1)
    with pytest.raises(ShapeError, match=r"differ in length \(3 and 4\)"):
        tj.vecdot(tj.ones((2, 3)), tj.ones((2, 4)))
    with pytest.raises(ShapeError, match=r"must have the rank of x"):
        tj.take_along_axis(tj.ones((2, 3)), tj.constant([0, 1]), axis=1)


def test_sort_gradient_goes_back_to_where_each_value_came_from() -> None:
    x = tj.constant([3.0, 1.0, 2.0])
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.sum(tj.sort(x, descending=True) * tj.constant([1.0, 10.0, 100.0]))
    assert tape.gradient(y, x).numpy().tolist() == [1.0, 100.0, 10.0]
