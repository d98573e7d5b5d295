"""The array API standard's main namespace as tracejit provides it so far: the constants, and the
elementwise math functions used eagerly and inside ``tj.function`` agreeing with numpy."""

from __future__ import annotations

import math

import numpy as np

import tracejit as tj


def test_constants_are_the_standards_python_floats() -> None:
    assert tj.e == math.e and tj.pi == math.pi and tj.inf == math.inf
    assert math.isnan(tj.nan) and tj.newaxis is None
    x = tj.constant([1.0, 2.0])
    assert x[tj.newaxis].shape == (1, 2)


def test_a_generic_function_runs_eagerly_and_traced() -> None:
    def softplus_stable(x):  # noqa: ANN001, ANN202 - written as array-API-generic code would be
        return tj.where(tj.isfinite(x), tj.log1p(tj.exp(-tj.abs(x))) + tj.maximum(x, 0.0), x)

    data = np.array([-3.0, 0.0, 2.0, np.inf], np.float32)
    want = np.where(np.isfinite(data), np.log1p(np.exp(-np.abs(data))) + np.maximum(data, 0), data)
    eager = softplus_stable(tj.constant(data)).numpy()
    traced = tj.function(softplus_stable)(tj.constant(data)).numpy()
    np.testing.assert_allclose(eager, want, rtol=1e-6)
    np.testing.assert_array_equal(traced, eager)


def test_inverse_functions_round_trip_traced() -> None:
    @tj.function
    def round_trip(x):  # noqa: ANN001, ANN202
        return tj.asin(tj.sin(x)), tj.atanh(tj.tanh(x)), tj.log2(2.0**x), tj.floor(x) + 0.5

    x = np.array([-0.5, 0.1, 0.7], np.float32)
    a, b, c, d = (t.numpy() for t in round_trip(tj.constant(x)))
    np.testing.assert_allclose(a, x, rtol=1e-5)
    np.testing.assert_allclose(b, x, rtol=1e-4)
    np.testing.assert_allclose(c, x, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(d, np.floor(x) + 0.5)
