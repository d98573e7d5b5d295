"""complex64 end to end: creation, elementwise math, reductions, abs/conj/real/imag, fft, the
Python conversions the array API standard specifies for complex tensors, and gradients of
real-valued functions of complex inputs (against jax.grad, whose convention tracejit follows)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj

Z = np.array([1 + 2j, -0.5 + 0.25j, 3 - 1j], np.complex64)


def test_creation() -> None:
    assert tj.constant(1 + 2j).dtype == tj.complex64
    assert tj.asarray(Z).dtype == tj.complex64
    assert tj.asarray([1j, 2]).dtype == tj.complex64
    assert tj.zeros((2,), dtype=tj.complex64).dtype == tj.complex64
    assert (tj.constant([1.0, 2.0]) + 1j).dtype == tj.complex64  # a weak Python complex


@pytest.mark.parametrize(
    "name", ["exp", "log", "sqrt", "sin", "cos", "tanh", "square", "negative", "conj", "sign"]
)
def test_elementwise_matches_jax(name: str) -> None:
    got = getattr(tj, name)(tj.constant(Z))
    want = getattr(jnp, name)(Z)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    traced = tj.function(getattr(tj, name))(tj.constant(Z))
    np.testing.assert_allclose(traced.numpy(), want, rtol=1e-5, atol=1e-6)


def test_parts_reductions_and_binary_ops() -> None:
    z = tj.constant(Z)
    assert tj.abs(z).dtype == tj.real(z).dtype == tj.imag(z).dtype == tj.float32
    np.testing.assert_allclose(tj.abs(z).numpy(), np.abs(Z), rtol=1e-6)
    np.testing.assert_allclose(tj.imag(z).numpy(), Z.imag)
    np.testing.assert_allclose(tj.sum(z).numpy(), Z.sum(), rtol=1e-6)
    np.testing.assert_allclose(tj.prod(z).numpy(), Z.prod(), rtol=1e-5)
    np.testing.assert_allclose(tj.mean(z).numpy(), Z.mean(), rtol=1e-6)
    np.testing.assert_allclose((z * z / (z + 1)).numpy(), Z * Z / (Z + 1), rtol=1e-5)
    np.testing.assert_allclose(tj.matmul(z, z).numpy(), Z @ Z, rtol=1e-5)
    np.testing.assert_allclose(tj.vecdot(z, z).numpy(), np.vdot(Z, Z), rtol=1e-5)
    np.testing.assert_allclose(tj.fft.fft(z).numpy(), np.fft.fft(Z), rtol=1e-5, atol=1e-5)


def test_python_conversions_follow_the_standard() -> None:
    z = tj.constant(1 + 2j)
    assert complex(z) == 1 + 2j
    assert complex(tj.constant(2.5)) == 2.5 + 0j
    with pytest.raises(TypeError, match=r"float\(\) of a complex64 tensor"):
        float(z)
    with pytest.raises(TypeError, match=r"int\(\) of a complex64 tensor"):
        int(z)
    assert bool(z) and not bool(tj.constant(0j))


def test_gradients_of_real_functions_of_complex_inputs_match_jax() -> None:
    def tj_f(z):  # noqa: ANN001, ANN202
        w = tj.exp(z) * tj.conj(z) + tj.sin(z) * z
        return tj.sum(tj.abs(w)) + tj.sum(tj.real(w * w)) + tj.sum(tj.imag(tj.fft.fft(z)))

    def jax_f(z):  # noqa: ANN001, ANN202
        w = jnp.exp(z) * jnp.conj(z) + jnp.sin(z) * z
        return jnp.sum(jnp.abs(w)) + jnp.sum(jnp.real(w * w)) + jnp.sum(jnp.imag(jnp.fft.fft(z)))

    z = tj.constant(Z)
    with tj.GradientTape() as tape:
        tape.watch(z)
        value = tj_f(z)
    got = tape.gradient(value, z)
    want = jax.grad(jax_f)(Z)
    assert got.dtype == tj.complex64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
    traced = tj.function(lambda x: tj.grad(tj_f)(x))(z)
    np.testing.assert_allclose(traced.numpy(), want, rtol=1e-4, atol=1e-5)
