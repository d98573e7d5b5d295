"""Matrix decompositions of the ``tracejit.linalg`` extension (array API 2024.12), one registry
entry each: ``cholesky``, ``qr``, ``eigh``, ``eigvalsh``, ``svd`` and ``svdvals``.

The impls are jax.numpy's (``cholesky`` and ``eigh`` symmetrize their input, as jax does, so the
gradients are symmetric). The gradients are written with tracejit ops, for real inputs:

- ``cholesky`` (``A = L L^T``): ``sym(L^-T Phi(L^T ct_L) L^-1)``, ``Phi`` the lower triangle with
  the diagonal halved (Murray, 2016);
- ``qr`` (``m >= n``, reduced): with ``M = Q^T ct_Q - ct_R R^T`` and
  ``N = tril(M - M^T, -1) - M``, ``ct_A = (ct_Q + Q N) R^-T``;
- ``eigh``: ``sym(V (diag(ct_w) + F * (V^T ct_V)) V^T)``, ``F[i, j] = 1 / (w[j] - w[i])`` off the
  diagonal; ``eigvalsh``: ``V diag(ct_w) V^T``;
- ``svd`` (reduced, or square): Townsend's formula, ``F[i, j] = 1 / (s[j]^2 - s[i]^2)``;
  ``svdvals``: ``U diag(ct_s) V^T``.

Like jax's, the eigenvector and singular-vector gradients assume distinct eigen/singular values.
Triangular solves are ``solve`` (an LU of a triangular matrix is exact).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from tracejit.errors import OpError
from tracejit.ops.elementwise import add, divide, multiply, subtract
from tracejit.ops.jvp_rules import transpose_jvp
from tracejit.ops.like import cast_ct
from tracejit.ops.linalg import matmul
from tracejit.ops.linalg_solve import (
    SOLVE,
    check_matrix,
    diag_embed,
    diagonal_of,
    expand_last,
    float_dtype,
    gradient_error,
    mT,
    real_only,
)
from tracejit.ops.manipulation import tril
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal


def _sym(t: Any) -> Any:
    return multiply(0.5, add(t, mT(t)))


def _identity_like(square: Any) -> Any:
    """Identity matrices shaped like ``square`` (..., n, n), built without static sizes."""
    from tracejit.ops.creation import ones_like

    return diag_embed(ones_like(diagonal_of(square)), square)


def _right_solve_transposed(g: Any, r: Any) -> Any:
    """``g R^-T`` as ``(R^-1 g^T)^T``."""
    return mT(bind(SOLVE, r, mT(g)))


# cholesky ----------------------------------------------------------------------------------------
def _infer_cholesky(x: AVal, *, upper: bool) -> AVal:
    check_matrix("cholesky", x, square=True)
    dtype, weak = float_dtype("cholesky", jnp.linalg.cholesky, [x], {})
    return AVal(x.shape, dtype, weak)


def _cholesky(x: Any, *, upper: bool) -> Any:
    return jnp.linalg.cholesky(x, upper=upper)


def _cholesky_vjp(ct: Any, x: Any, *, out: Any, upper: bool) -> tuple[Any]:
    real_only("cholesky", x)
    lower, ct_lower = (mT(out), mT(ct)) if upper else (out, ct)
    p = matmul(mT(lower), ct_lower)
    phi = subtract(tril(p), multiply(0.5, diag_embed(diagonal_of(p), p)))
    lower_t = mT(lower)
    g = mT(bind(SOLVE, lower_t, mT(bind(SOLVE, lower_t, phi))))
    return (cast_ct(_sym(g), x),)


CHOLESKY = defop(
    "cholesky", _infer_cholesky, _cholesky, _cholesky_vjp, jvp=transpose_jvp("cholesky")
)


# qr ----------------------------------------------------------------------------------------------
def _infer_qr(x: AVal, *, mode: str) -> tuple[AVal, AVal]:
    check_matrix("qr", x)
    if mode not in ("reduced", "complete"):
        raise OpError("qr", f"mode must be 'reduced' or 'complete', got {mode!r}")
    dtype, weak = float_dtype("qr", lambda a: jnp.linalg.qr(a)[0], [x], {})
    *batch, m, n = x.shape
    k = m if mode == "complete" or m is None or n is None else min(m, n)
    if mode == "reduced" and (m is None or n is None) and m != n:
        k = None
    return AVal((*batch, m, k), dtype, weak), AVal((*batch, k, n), dtype, weak)


def _qr(x: Any, *, mode: str) -> tuple[Any, Any]:
    q, r = jnp.linalg.qr(x, mode=mode)
    return q, r


def _qr_vjp(cts: tuple[Any, Any], x: Any, *, out: Any, mode: str) -> tuple[Any]:
    real_only("qr", x)
    q, r = out
    ct_q, ct_r = cts
    m, n = q.shape[-2], r.shape[-1]
    if m is not None and n is not None and (m < n or (mode == "complete" and m != n)):
        raise gradient_error(
            "the gradient of qr is defined for m >= n (and mode='reduced' unless square); "
            f"got a {m} x {n} matrix in mode {mode!r}"
        )
    big_m = subtract(matmul(mT(q), ct_q), matmul(ct_r, mT(r)))
    big_n = subtract(tril(subtract(big_m, mT(big_m)), k=-1), big_m)
    g = add(ct_q, matmul(q, big_n))
    return (cast_ct(_right_solve_transposed(g, r), x),)


QR = defop("qr", _infer_qr, _qr, _qr_vjp, multiple_results=True, jvp=transpose_jvp("qr"))


# eigh, eigvalsh ----------------------------------------------------------------------------------
def _infer_eigh(x: AVal) -> tuple[AVal, AVal]:
    check_matrix("eigh", x, square=True)
    w, _ = float_dtype("eigh", lambda a: jnp.linalg.eigh(a)[0], [x], {})
    v, weak = float_dtype("eigh", lambda a: jnp.linalg.eigh(a)[1], [x], {})
    return AVal(x.shape[:-1], w, weak), AVal(x.shape, v, weak)


def _eigh(x: Any) -> tuple[Any, Any]:
    w, v = jnp.linalg.eigh(x)
    return w, v


def _reciprocal_gaps(values: Any, squared: bool) -> Any:
    """``F[..., i, j] = 1 / (v[j] - v[i])`` (of the squares when ``squared``), 0 on the
    diagonal."""
    if squared:
        values = multiply(values, values)
    gaps = subtract(expand_last(values, -2), expand_last(values, -1))
    eye = _identity_like(gaps)
    return divide(subtract(1.0, eye), add(gaps, eye))


def _eigh_vjp(cts: tuple[Any, Any], x: Any, *, out: Any) -> tuple[Any]:
    real_only("eigh", x)
    w, v = out
    ct_w, ct_v = cts
    inner = add(diag_embed(ct_w, v), multiply(_reciprocal_gaps(w, False), matmul(mT(v), ct_v)))
    return (cast_ct(_sym(matmul(matmul(v, inner), mT(v))), x),)


def _infer_eigvalsh(x: AVal) -> AVal:
    return _infer_eigh(x)[0]


def _eigvalsh(x: Any) -> Any:
    return jnp.linalg.eigvalsh(x)


def _eigvalsh_vjp(ct: Any, x: Any, *, out: Any) -> tuple[Any]:
    real_only("eigvalsh", x)
    _, v = bind(EIGH, x)
    return (cast_ct(matmul(multiply(v, expand_last(ct, -2)), mT(v)), x),)


EIGH = defop(
    "eigh", _infer_eigh, _eigh, _eigh_vjp, multiple_results=True, jvp=transpose_jvp("eigh")
)
EIGVALSH = defop(
    "eigvalsh", _infer_eigvalsh, _eigvalsh, _eigvalsh_vjp, jvp=transpose_jvp("eigvalsh")
)


# svd, svdvals ------------------------------------------------------------------------------------
def _svd_avals(x: AVal, full_matrices: bool) -> tuple[AVal, AVal, AVal]:
    check_matrix("svd", x)
    u, weak = float_dtype("svd", lambda a: jnp.linalg.svd(a)[0], [x], {})
    s, _ = float_dtype("svd", lambda a: jnp.linalg.svd(a)[1], [x], {})
    *batch, m, n = x.shape
    k = None if m is None or n is None else min(m, n)
    u_cols, v_rows = (m, n) if full_matrices else (k, k)
    return (
        AVal((*batch, m, u_cols), u, weak),
        AVal((*batch, k), s, weak),
        AVal((*batch, v_rows, n), u, weak),
    )


def _infer_svd(x: AVal, *, full_matrices: bool) -> tuple[AVal, AVal, AVal]:
    return _svd_avals(x, full_matrices)


def _svd(x: Any, *, full_matrices: bool) -> tuple[Any, Any, Any]:
    u, s, vh = jnp.linalg.svd(x, full_matrices=full_matrices)
    return u, s, vh


def _svd_vjp(cts: tuple[Any, Any, Any], x: Any, *, out: Any, full_matrices: bool) -> tuple[Any]:
    real_only("svd", x)
    u, s, vh = out
    ct_u, ct_s, ct_vh = cts
    m, n = u.shape[-2], vh.shape[-1]
    if full_matrices and (m is None or n is None or m != n):
        raise gradient_error(
            "svd(x, full_matrices=True) of a non-square matrix has no gradient (the extra "
            "singular vectors are not unique); pass full_matrices=False"
        )
    v, ct_v = mT(vh), mT(ct_vh)
    f = _reciprocal_gaps(s, True)
    s_row, s_col = expand_last(s, -2), expand_last(s, -1)  # scale columns / rows
    ut_ct_u, vt_ct_v = matmul(mT(u), ct_u), matmul(mT(v), ct_v)
    j_u = multiply(multiply(f, subtract(ut_ct_u, mT(ut_ct_u))), s_row)
    j_v = multiply(s_col, multiply(f, subtract(vt_ct_v, mT(vt_ct_v))))
    core = add(add(j_u, diag_embed(ct_s, ut_ct_u)), j_v)
    grad = matmul(matmul(u, core), vh)
    # The parts outside the spans of U and V (zero for square matrices).
    u_out = divide(subtract(ct_u, matmul(u, ut_ct_u)), s_row)
    v_out = divide(subtract(ct_v, matmul(v, vt_ct_v)), s_row)
    grad = add(add(grad, matmul(u_out, vh)), matmul(u, mT(v_out)))
    return (cast_ct(grad, x),)


def _infer_svdvals(x: AVal) -> AVal:
    return _svd_avals(x, False)[1]


def _svdvals(x: Any) -> Any:
    return jnp.linalg.svdvals(x)


def _svdvals_vjp(ct: Any, x: Any, *, out: Any) -> tuple[Any]:
    real_only("svdvals", x)
    u, _, vh = bind(SVD, x, full_matrices=False)
    return (cast_ct(matmul(multiply(u, expand_last(ct, -2)), vh), x),)


SVD = defop("svd", _infer_svd, _svd, _svd_vjp, multiple_results=True, jvp=transpose_jvp("svd"))
SVDVALS = defop("svdvals", _infer_svdvals, _svdvals, _svdvals_vjp, jvp=transpose_jvp("svdvals"))
