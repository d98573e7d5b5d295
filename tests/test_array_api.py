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


def test_dtype_functions_follow_jax_numpy() -> None:
    import jax.numpy as jnp

    x = tj.ones((2,), dtype="int32")
    assert tj.result_type(x, tj.float32) == jnp.result_type(jnp.int32, jnp.float32)
    assert tj.result_type(x, 2.0) == jnp.result_type(jnp.int32, 2.0)  # weak Python float
    assert tj.can_cast(tj.int8, tj.int32) and not tj.can_cast(tj.float32, tj.int32)
    assert tj.isdtype(x.dtype, "integral") and not tj.isdtype(tj.float32, ("bool", "integral"))
    assert tj.finfo(tj.float32).eps == np.finfo(np.float32).eps
    assert tj.iinfo(x).max == np.iinfo(np.int32).max  # a tensor's dtype is accepted


def test_creation_functions() -> None:
    np.testing.assert_array_equal(tj.empty((2, 3)).numpy(), np.zeros((2, 3), np.float32))
    assert tj.empty_like(tj.ones((2,), dtype="int32")).dtype == np.int32
    for indexing in ("xy", "ij"):
        grids = tj.meshgrid(tj.arange(3), tj.arange(2), tj.arange(4), indexing=indexing)
        expected = np.meshgrid(np.arange(3), np.arange(2), np.arange(4), indexing=indexing)
        for got, want in zip(grids, expected):
            np.testing.assert_array_equal(got.numpy(), want)
        traced = tj.function(lambda a, b, how: tj.meshgrid(a, b, indexing=how))
        for got, want in zip(traced(tj.arange(3), tj.arange(2), indexing), expected):
            np.testing.assert_array_equal(got.numpy(), want[..., 0])


def test_asarray_and_from_dlpack() -> None:
    t = tj.constant([1.0, 2.0])
    assert tj.asarray(t) is t and tj.asarray(t, copy=True) is t  # immutable: nothing to copy
    assert tj.asarray([1, 2], dtype=tj.float32).dtype == np.float32
    with np.testing.assert_raises(ValueError):
        tj.asarray(t, dtype="int32", copy=False)  # a conversion is a copy
    v = tj.Variable([1.0, 2.0])
    snapshot = tj.asarray(v)
    v.assign([5.0, 5.0])
    np.testing.assert_array_equal(snapshot.numpy(), [1.0, 2.0])
    host = np.arange(4.0, dtype=np.float32)
    np.testing.assert_array_equal(tj.from_dlpack(host).numpy(), host)
    np.testing.assert_array_equal(tj.asarray(tj.from_dlpack(t)).numpy(), [1.0, 2.0])


def test_complex_accessors_match_jax_gradients() -> None:
    import jax
    import jax.numpy as jnp

    z = np.array([1.0 + 2.0j, -0.5 + 0.25j], np.complex64)
    for name in ("real", "imag"):
        fn = getattr(tj, name)
        zt = tj.constant(z)
        with tj.GradientTape() as tape:
            tape.watch(zt)
            y = fn(zt) * tj.constant([1.0, 3.0])
        ours = tape.gradient(y, zt, output_gradients=tj.ones((2,))).numpy()
        jnp_fn = getattr(jnp, name)
        _, pullback = jax.vjp(lambda w, f=jnp_fn: f(w) * jnp.array([1.0, 3.0]), z)
        ref = pullback(jnp.ones((2,)))[0]
        np.testing.assert_allclose(ours, np.asarray(ref), rtol=1e-6)


def _standardize_softmax(x):
    xp = x.__array_namespace__()  # written against the standard, not against tracejit
    z = (x - xp.mean(x)) / xp.std(x)
    e = xp.exp(z - xp.max(z))
    return e / xp.sum(e)


def test_the_array_namespace_idiom_runs_eagerly_traced_and_through_array_api_compat() -> None:
    import pytest

    x = np.array([1.0, 2.0, 4.0], np.float32)
    z = (x - x.mean()) / x.std()
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    t = tj.constant(x)
    assert t.__array_namespace__() is tj and t.to_device(t.device) is t
    np.testing.assert_allclose(_standardize_softmax(t).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(tj.function(_standardize_softmax)(t).numpy(), expected, rtol=1e-6)
    assert complex(tj.constant(1 + 2j)) == 1 + 2j
    np.testing.assert_array_equal(np.from_dlpack(t), x)  # DLPack export
    compat = pytest.importorskip("array_api_compat")
    assert compat.array_namespace(t) is tj
