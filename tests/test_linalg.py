"""Focused tests of tracejit.linalg (values, dtypes and gradients of every function are checked
by the OpInfo rows in tests/opinfo_linalg.py): named-tuple results, the standard's shapes for
full / complete factorizations, located errors, the clear gradient refusals, traced agreement
with unknown dims, and complex inputs of the holomorphic functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.autodiff.tape import GradientError
from tracejit.errors import OpTypeError, ShapeError

la = tj.linalg
RNG = np.random.default_rng(12)
A = (RNG.standard_normal((4, 3)) + np.eye(4, 3) * 3).astype(np.float32)
SPD = (A.T @ A).astype(np.float32)


def test_all_23_functions_are_there() -> None:
    names = """cholesky cross det diagonal eigh eigvalsh inv matmul matrix_norm matrix_power
    matrix_rank matrix_transpose outer pinv qr slogdet solve svd svdvals tensordot trace vecdot
    vector_norm""".split()
    assert len(names) == 23
    assert all(callable(getattr(la, name)) for name in names)
    assert la.matmul is tj.matmul and la.tensordot is tj.tensordot


def test_named_tuple_results() -> None:
    x = tj.constant(SPD)
    assert type(la.eigh(x)).__name__ == "EighResult" and la.eigh(x).eigenvectors.shape == (3, 3)
    assert la.qr(x).R.shape == (3, 3)
    assert la.slogdet(x).sign.numpy() == 1.0
    u, s, vh = la.svd(tj.constant(A))
    assert (u.shape, s.shape, vh.shape) == ((4, 4), (3,), (3, 3))  # full_matrices=True
    traced = tj.function(lambda m: la.svd(m, full_matrices=False))(tj.constant(A))
    assert type(traced).__name__ == "SVDResult" and traced.U.shape == (4, 3)


def test_complete_qr_and_full_svd_reconstruct() -> None:
    q, r = la.qr(tj.constant(A), mode="complete")
    assert q.shape == (4, 4) and r.shape == (4, 3)
    np.testing.assert_allclose((q @ r).numpy(), A, atol=1e-5)
    np.testing.assert_allclose((q.mT @ q).numpy(), np.eye(4), atol=1e-5)
    u, s, vh = la.svd(tj.constant(A))
    np.testing.assert_allclose(u[:, :3].numpy() * s.numpy() @ vh.numpy(), A, atol=1e-5)


def test_errors_name_the_function_and_the_line() -> None:
    with pytest.raises(ShapeError, match=r"inv.*square.*\(4, 3\)") as info:
        la.inv(tj.constant(A))
    assert "test_linalg.py" in str(info.value)
    ints = tj.constant([[1, 2], [3, 4]])  # integers promote to float32, as in jax.numpy
    assert la.det(ints).dtype == tj.float32 == tj.function(la.det)(ints).dtype
    with pytest.raises(OpTypeError, match="floating-point"):
        la.vector_norm(ints)
    with pytest.raises(ShapeError, match="size 3"):
        la.cross(tj.ones((4,)), tj.ones((4,)))
    with pytest.raises(ShapeError, match="rows"):
        la.solve(tj.constant(SPD), tj.ones((4, 2)))


def test_gradients_that_do_not_exist_are_refused_clearly() -> None:
    x = tj.constant(A)
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.sum(la.svd(x).U)
    with pytest.raises(GradientError, match="full_matrices=False"):
        tape.gradient(y, x)


def test_matrix_power_zero_is_the_identity_with_unknown_dims() -> None:
    f = tj.function(lambda m: la.matrix_power(m, 0), input_signature=[tj.TensorSpec((None, 3, 3))])
    np.testing.assert_array_equal(
        f(tj.ones((2, 3, 3))).numpy(), np.broadcast_to(np.eye(3), (2, 3, 3))
    )


def test_traced_gradient_with_unknown_batch_dims_matches_jax() -> None:
    batch = np.stack([SPD, SPD + np.eye(3, dtype=np.float32)])

    def loss(m):  # noqa: ANN001, ANN202
        return tj.sum(la.cholesky(m)) + tj.sum(la.eigvalsh(m) ** 2) + tj.sum(la.inv(m))

    @tj.function(input_signature=[tj.TensorSpec((None, 3, 3))])
    def grad(m):  # noqa: ANN001, ANN202
        with tj.GradientTape() as tape:
            tape.watch(m)
            value = loss(m)
        return tape.gradient(value, m)

    def jax_loss(m):  # noqa: ANN001, ANN202
        lin = jnp.linalg
        return jnp.sum(lin.cholesky(m)) + jnp.sum(lin.eigvalsh(m) ** 2) + jnp.sum(lin.inv(m))

    np.testing.assert_allclose(
        grad(tj.constant(batch)).numpy(), jax.grad(jax_loss)(batch), rtol=1e-4, atol=1e-5
    )


def test_holomorphic_functions_take_complex_inputs_and_gradients() -> None:
    m = (RNG.standard_normal((3, 3)) + 1j * RNG.standard_normal((3, 3)) + 3 * np.eye(3)).astype(
        np.complex64
    )
    np.testing.assert_allclose(
        la.inv(tj.constant(m)).numpy(), np.linalg.inv(m), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(la.det(tj.constant(m)).numpy(), np.linalg.det(m), rtol=1e-4)
    re, im = tj.constant(m.real), tj.constant(m.imag)
    with tj.GradientTape() as tape:
        tape.watch([re, im])
        value = tj.real(la.det(re + im * 1j)) + tj.imag(tj.sum(la.inv(re + im * 1j)))
    got = tape.gradient(value, [re, im])

    def f(r, i):  # noqa: ANN001, ANN202
        z = r + 1j * i
        return jnp.real(jnp.linalg.det(z)) + jnp.imag(jnp.sum(jnp.linalg.inv(z)))

    expected = jax.grad(f, argnums=(0, 1))(m.real, m.imag)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-4, atol=1e-5)


def test_norms_keepdims_and_orders() -> None:
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    for ord_ in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        got = la.matrix_norm(tj.constant(x), ord=ord_, keepdims=True)
        np.testing.assert_allclose(
            got.numpy(), np.linalg.matrix_norm(x, ord=ord_, keepdims=True), rtol=1e-5
        )
    for ord_ in (0, 1, 2, 3.5, np.inf, -np.inf):
        got = la.vector_norm(tj.constant(x), axis=(0, 2), ord=ord_)
        np.testing.assert_allclose(
            got.numpy(), np.linalg.vector_norm(x, axis=(0, 2), ord=ord_), rtol=1e-5
        )


def test_matrix_rank_rtol_is_relative_to_the_largest_singular_value() -> None:
    x = np.diag([3.0, 2.0, 1.0]).astype(np.float32)
    assert int(la.matrix_rank(tj.constant(x), rtol=0.5)) == 2  # 1 / 3 < 0.5
    assert int(la.matrix_rank(tj.constant(x))) == 3
