"""OpInfo rows for ``tracejit.linalg`` (tracejit/linalg.py, tracejit/ops/linalg_solve.py,
tracejit/ops/decompositions.py).

Values are checked against numpy (in float64), dtypes and gradients against jax.numpy. Inputs
are well conditioned: symmetric positive-definite matrices for ``cholesky``, symmetric ones with
distinct eigenvalues for ``eigh``, diagonally dominant ones for ``inv``/``solve``/``det``.
Eigenvectors, singular vectors and QR factors are unique only up to signs, so their rows
normalize the signs (with tracejit ops on the tracejit side, numpy's / jax's on the references':
``sign`` has a zero gradient, so the gradient checks are unchanged) before comparing.
Compositions are rows of the entry they bind last, with the function's name as the variant.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

import tracejit as tj
from tracejit.ops.linalg_solve import diag_embed

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]
LOOSE = {"rtol": 1e-4, "atol": 1e-5}  # factorizations accumulate rounding error


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def spd(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Symmetric positive-definite matrices, eigenvalues well away from 0."""
    a = rng.standard_normal(shape)
    n = shape[-1]
    return (a @ np.swapaxes(a, -1, -2) / n + np.eye(n)).astype(np.float32)


def symmetric(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Symmetric matrices with well-separated eigenvalues (1, 2.5, 4, ...) in a random basis."""
    n = shape[-1]
    q, _ = np.linalg.qr(rng.standard_normal(shape))
    values = 1.0 + 1.5 * np.arange(n) - 0.3 * n
    return (q * values[..., None, :]) @ np.swapaxes(q, -1, -2)


def wellcond(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Diagonally dominant matrices (far from singular)."""
    return (rng.standard_normal(shape) + 3 * np.eye(shape[-1])).astype(np.float32)


def distinct_sv(rng: np.random.Generator, m: int, n: int, *batch: int) -> np.ndarray:
    """(..., m, n) matrices with singular values 3, 2, 1.3, ... (distinct, away from 0)."""
    k = min(m, n)
    u, _ = np.linalg.qr(rng.standard_normal((*batch, m, k)))
    v, _ = np.linalg.qr(rng.standard_normal((*batch, n, k)))
    s = 3.0 / (1.0 + 0.5 * np.arange(k))
    return ((u * s[..., None, :]) @ np.swapaxes(v, -1, -2)).astype(np.float32)


def _f64(xp: Any, x: Any) -> Any:
    return np.asarray(x, np.float64) if xp is np else x


# Sign normalization ------------------------------------------------------------------------------
def _signs_of_first_row(xp: Any, v: Any) -> Any:
    return xp.where(v[..., :1, :] < 0, -1.0, 1.0).astype(v.dtype)


def eigh_fn(xp: Any) -> Any:
    def fn(x: Any) -> tuple[Any, Any]:
        if xp is tj:
            w, v = tj.linalg.eigh(x)
            return w, v * tj.sign(v[..., :1, :])
        w, v = xp.linalg.eigh(_f64(xp, x))
        return w, v * _signs_of_first_row(xp, v)

    return fn


def svd_fn(xp: Any, full_matrices: bool) -> Any:
    def fn(x: Any) -> tuple[Any, Any, Any]:
        if xp is tj:
            u, s, vh = tj.linalg.svd(x, full_matrices=full_matrices)
            signs = tj.sign(u[..., :1, :])
            return u * signs, s, vh * tj.matrix_transpose(signs)
        u, s, vh = xp.linalg.svd(_f64(xp, x), full_matrices=full_matrices)
        signs = _signs_of_first_row(xp, u)
        return u * signs, s, vh * xp.swapaxes(signs, -1, -2)

    return fn


def qr_fn(xp: Any, mode: str) -> Any:
    def fn(x: Any) -> tuple[Any, Any]:
        if xp is tj:
            q, r = tj.linalg.qr(x, mode=mode)
            signs = tj.sign(tj.linalg.diagonal(r))
            return q * signs[..., None, :], r * signs[..., :, None]
        q, r = xp.linalg.qr(_f64(xp, x), mode=mode)
        diag = xp.diagonal(r, axis1=-2, axis2=-1)
        signs = xp.where(diag < 0, -1.0, 1.0).astype(r.dtype)
        return q * signs[..., None, :], r * signs[..., :, None]

    return fn


def slogdet_fn(xp: Any) -> Any:
    def fn(x: Any) -> tuple[Any, Any]:
        if xp is tj:
            return tuple(tj.linalg.slogdet(x))
        sign, logabsdet = xp.linalg.slogdet(_f64(xp, x))
        return sign, logabsdet

    return fn


def _np(name: str, **fixed: Any) -> Any:
    def ref(x: Any, *rest: Any, **kwargs: Any) -> Any:
        return getattr(np.linalg, name)(np.asarray(x, np.float64), *rest, **fixed, **kwargs)

    return ref


def _jnp(name: str, **fixed: Any) -> Any:
    def ref(*args: Any, **kwargs: Any) -> Any:
        return getattr(jnp.linalg, name)(*args, **fixed, **kwargs)

    return ref


# References that numpy spells differently --------------------------------------------------------
def _np_cholesky(x: Any, upper: bool = False) -> Any:
    lower = np.linalg.cholesky(np.asarray(x, np.float64))
    return np.swapaxes(lower, -1, -2) if upper else lower


def _np_solve(a: Any, b: Any) -> Any:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if b.ndim == 1:
        return np.linalg.solve(a, b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return np.linalg.solve(
        np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    )


def _np_pinv(x: Any, rtol: Any = None) -> Any:
    return np.linalg.pinv(np.asarray(x, np.float64), rtol=rtol)


def _np_matrix_rank(x: Any, rtol: Any = None) -> Any:
    return np.linalg.matrix_rank(x, rtol=rtol)  # the input's eps sets the default cut-off


def _np_svdvals(x: Any) -> Any:
    return np.linalg.svd(np.asarray(x, np.float64), compute_uv=False)


def _np_diagonal(x: Any, offset: int = 0) -> Any:
    return np.diagonal(x, offset=offset, axis1=-2, axis2=-1)


def _np_cross(x1: Any, x2: Any, axis: int = -1) -> Any:
    return np.cross(x1, x2, axis=axis)


def _np_diag_embed(v: Any, like: Any, offset: int = 0) -> Any:
    rows, cols = like.shape[-2:]
    out = np.zeros((*v.shape[:-1], rows, cols), v.dtype)
    i = np.arange(v.shape[-1]) + max(-offset, 0)
    out[..., i, i + offset] = v
    return out


def _jnp_diag_embed(v: Any, like: Any, offset: int = 0) -> Any:
    rows, cols = like.shape[-2:]  # only the template's shape: no gradient flows to it
    i = np.arange(v.shape[-1]) + max(-offset, 0)
    return jnp.zeros((*v.shape[:-1], rows, cols), v.dtype).at[..., i, i + offset].set(v)


def _vector_norm(xp: Any) -> Any:
    def ref(x: Any, **kwargs: Any) -> Any:
        return xp.linalg.vector_norm(_f64(xp, x), **kwargs)

    return ref


def _matrix_norm(xp: Any) -> Any:
    def ref(x: Any, **kwargs: Any) -> Any:
        return xp.linalg.matrix_norm(_f64(xp, x), **kwargs)

    return ref


def _matrix_power(xp: Any) -> Any:
    def ref(x: Any, n: int) -> Any:
        return xp.linalg.matrix_power(_f64(xp, x), n)

    return ref


def _trace(xp: Any) -> Any:
    def ref(x: Any, **kwargs: Any) -> Any:
        if xp is np:
            return np.trace(x, axis1=-2, axis2=-1, **kwargs)
        return jnp.linalg.trace(x, **kwargs)

    return ref


# The rows ----------------------------------------------------------------------------------------
def rows(OpInfo: type[OpInfo]) -> list[OpInfo]:  # noqa: N803 - a class
    """The rows; ``OpInfo`` comes from tests/opinfo.py."""
    la = tj.linalg

    def row(name: str, fn: Any, samples: Any, ref: Any, jax_ref: Any, **extra: Any) -> OpInfo:
        return OpInfo(name, fn, samples, ref, jax_ref, **{**LOOSE, **extra})

    table = [
        row(
            "cholesky",
            la.cholesky,
            lambda rng: [
                ((spd(rng, 3, 3),), {}),
                ((spd(rng, 2, 4, 4),), {}),
                ((spd(rng, 3, 3),), {"upper": True}),
            ],
            _np_cholesky,
            _jnp("cholesky"),
        ),
        row(
            "inv",
            la.inv,
            lambda rng: [((wellcond(rng, 3, 3),), {}), ((wellcond(rng, 2, 4, 4),), {})],
            _np("inv"),
            _jnp("inv"),
        ),
        row(
            "det",
            la.det,
            lambda rng: [((wellcond(rng, 3, 3),), {}), ((wellcond(rng, 2, 2, 2),), {})],
            _np("det"),
            _jnp("det"),
        ),
        row(
            "slogdet",
            slogdet_fn(tj),
            lambda rng: [
                ((wellcond(rng, 3, 3),), {}),
                ((-wellcond(rng, 3, 3),), {}),  # a negative determinant
                ((wellcond(rng, 2, 4, 4),), {}),
            ],
            slogdet_fn(np),
            slogdet_fn(jnp),
        ),
        row(
            "solve",
            la.solve,
            lambda rng: [
                ((wellcond(rng, 3, 3), f32(rng, 3)), {}),
                ((wellcond(rng, 2, 3, 3), f32(rng, 2, 3, 2)), {}),
                ((wellcond(rng, 3, 3), f32(rng, 2, 3, 4)), {}),  # batch dims broadcast
                ((wellcond(rng, 2, 3, 3), f32(rng, 3)), {}),
            ],
            _np_solve,
            _jnp("solve"),
        ),
        row(
            "eigh",
            eigh_fn(tj),
            lambda rng: [
                ((symmetric(rng, 3, 3).astype(np.float32),), {}),
                ((symmetric(rng, 2, 4, 4).astype(np.float32),), {}),
            ],
            eigh_fn(np),
            eigh_fn(jnp),
        ),
        row(
            "eigvalsh",
            la.eigvalsh,
            lambda rng: [
                ((symmetric(rng, 3, 3).astype(np.float32),), {}),
                ((symmetric(rng, 2, 4, 4).astype(np.float32),), {}),
            ],
            _np("eigvalsh"),
            _jnp("eigvalsh"),
        ),
        row(
            "svd",
            svd_fn(tj, False),
            lambda rng: [
                ((distinct_sv(rng, 4, 3),), {}),
                ((distinct_sv(rng, 3, 5),), {}),
                ((distinct_sv(rng, 3, 3, 2),), {}),
            ],
            svd_fn(np, False),
            svd_fn(jnp, False),
            variant="reduced",
        ),
        row(
            "svd",
            svd_fn(tj, True),
            lambda rng: [((distinct_sv(rng, 3, 3),), {}), ((distinct_sv(rng, 4, 4, 2),), {})],
            svd_fn(np, True),
            svd_fn(jnp, True),
            variant="full",
            skip_unknown=True,  # full_matrices=True needs known m and n for its gradient
        ),
        row(
            "svdvals",
            la.svdvals,
            lambda rng: [((distinct_sv(rng, 4, 3),), {}), ((distinct_sv(rng, 2, 5, 2),), {})],
            _np_svdvals,
            _jnp("svdvals"),
        ),
        row(
            "qr",
            qr_fn(tj, "reduced"),
            lambda rng: [
                ((wellcond(rng, 3, 3),), {}),
                ((f32(rng, 5, 3),), {}),
                ((f32(rng, 2, 4, 3),), {}),
            ],
            qr_fn(np, "reduced"),
            qr_fn(jnp, "reduced"),
            variant="reduced",
        ),
        row(
            "qr",
            qr_fn(tj, "complete"),
            lambda rng: [((wellcond(rng, 3, 3),), {})],
            qr_fn(np, "complete"),
            qr_fn(jnp, "complete"),
            variant="complete",
        ),
        row(
            "pinv",
            la.pinv,
            lambda rng: [
                ((distinct_sv(rng, 4, 3),), {}),
                ((distinct_sv(rng, 3, 5),), {}),
                ((distinct_sv(rng, 3, 3, 2),), {"rtol": 1e-3}),
            ],
            _np_pinv,
            _jnp("pinv"),
        ),
        row(
            "matrix_rank",
            la.matrix_rank,
            lambda rng: [
                ((distinct_sv(rng, 4, 3),), {}),
                ((np.outer(f32(rng, 4), f32(rng, 3)).astype(np.float32),), {}),  # rank 1
                ((distinct_sv(rng, 3, 3, 2),), {"rtol": 0.5}),  # s / max(s) > 0.5: two
            ],
            _np_matrix_rank,
            _jnp("matrix_rank"),
        ),
        row(
            "cross",
            la.cross,
            lambda rng: [
                ((f32(rng, 3), f32(rng, 3)), {}),
                ((f32(rng, 4, 3), f32(rng, 3)), {}),
                ((f32(rng, 3, 2), f32(rng, 3, 2)), {"axis": -2}),
            ],
            _np_cross,
            _jnp("cross"),
        ),
        row(
            "diagonal",
            la.diagonal,
            lambda rng: [
                ((f32(rng, 3, 4),), {}),
                ((f32(rng, 3, 4),), {"offset": 1}),
                ((f32(rng, 2, 4, 3),), {"offset": -1}),
                ((rng.integers(0, 9, (3, 3)).astype(np.int32),), {}),
            ],
            _np_diagonal,
            _jnp("diagonal"),
        ),
        row(
            "diag_embed",
            diag_embed,
            lambda rng: [
                ((f32(rng, 3), np.zeros((3, 3), np.float32)), {}),
                ((f32(rng, 2, 3), np.zeros((3, 4), np.float32)), {"offset": 1}),
                ((f32(rng, 2), np.zeros((3, 2), np.float32)), {"offset": -1}),
            ],
            _np_diag_embed,
            _jnp_diag_embed,
        ),
        # Compositions.
        row(
            "sqrt",
            la.vector_norm,
            lambda rng: [((f32(rng, 3, 4),), {}), ((f32(rng, 3, 4),), {"axis": 1})],
            _vector_norm(np),
            _vector_norm(jnp),
            variant="vector_norm-2",
        ),
        row(
            "sum",
            la.vector_norm,
            lambda rng: [((f32(rng, 3, 4),), {"ord": 1, "axis": (0, 1), "keepdims": True})],
            _vector_norm(np),
            _vector_norm(jnp),
            variant="vector_norm-1",
        ),
        row(
            "max",
            la.vector_norm,
            lambda rng: [((f32(rng, 3, 4),), {"ord": math.inf, "axis": -1})],
            _vector_norm(np),
            _vector_norm(jnp),
            variant="vector_norm-inf",
        ),
        row(
            "power",
            la.vector_norm,
            lambda rng: [((f32(rng, 5),), {"ord": 3}), ((f32(rng, 2, 3),), {"ord": 0.5})],
            _vector_norm(np),
            _vector_norm(jnp),
            variant="vector_norm-p",
        ),
        row(
            "sqrt",
            la.matrix_norm,
            lambda rng: [((f32(rng, 3, 4),), {}), ((f32(rng, 2, 3, 3),), {"keepdims": True})],
            _matrix_norm(np),
            _matrix_norm(jnp),
            variant="matrix_norm-fro",
        ),
        row(
            "sum",
            la.matrix_norm,
            lambda rng: [((distinct_sv(rng, 4, 3),), {"ord": "nuc"})],
            _matrix_norm(np),
            _matrix_norm(jnp),
            variant="matrix_norm-nuc",
        ),
        row(
            "max",
            la.matrix_norm,
            lambda rng: [((distinct_sv(rng, 3, 3, 2),), {"ord": 2})],
            _matrix_norm(np),
            _matrix_norm(jnp),
            variant="matrix_norm-2",
        ),
        row(
            "squeeze",
            la.matrix_norm,
            lambda rng: [
                ((f32(rng, 3, 4),), {"ord": 1}),
                ((f32(rng, 2, 3, 4),), {"ord": -math.inf}),
            ],
            _matrix_norm(np),
            _matrix_norm(jnp),
            variant="matrix_norm-1",
        ),
        row(
            "matmul",
            la.matrix_power,
            lambda rng: [((wellcond(rng, 3, 3) / 3, 3), {}), ((wellcond(rng, 2, 3, 3), -2), {})],
            _matrix_power(np),
            _matrix_power(jnp),
            variant="matrix_power",
        ),
        row(
            "sum",
            la.trace,
            lambda rng: [
                ((f32(rng, 3, 4),), {}),
                ((f32(rng, 2, 3, 3),), {"offset": 1}),
                ((rng.integers(0, 9, (3, 3)).astype(np.int8),), {}),  # small ints widen
            ],
            _trace(np),
            _trace(jnp),
            variant="trace",
        ),
        row(
            "multiply",
            la.outer,
            lambda rng: [((f32(rng, 3), f32(rng, 4)), {})],
            np.outer,
            jnp.outer,
            variant="outer",
        ),
    ]
    return table
