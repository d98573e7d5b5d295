"""Registry entries of the ``tracejit.linalg`` extension (array API 2024.12) that are not matrix
decompositions: ``inv``, ``det``, ``slogdet``, ``solve``, ``pinv``, ``matrix_rank``, ``cross``,
``diagonal`` and ``diag_embed`` (a vector onto the diagonal of a matrix shaped like a template:
``diagonal``'s gradient, and the ``diag(v)`` of the decompositions' gradients).

Each impl is jax.numpy's function of the same name. Gradients are written with tracejit ops and
follow jax's convention (plain transposes, so ``inv``, ``det`` and ``solve`` are also right for
complex inputs): ``inv``: ``-P^T ct P^T`` with ``P = inv(A)``; ``det``: ``ct det(A) inv(A)^T``;
``slogdet``: ``ct_logabsdet inv(A)^T`` (real inputs); ``solve``: ``ct_B = solve(A^T, ct)``,
``ct_A = -ct_B X^T``; ``pinv``: the transpose of the derivative of the pseudo-inverse (Golub and
Pereyra), exact wherever the rank is locally constant; ``cross``: ``ct_a = b x ct``,
``ct_b = ct x a``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, ShapeError
from tracejit.ops.arguments import arg_aval
from tracejit.ops.elementwise import multiply, negative, subtract
from tracejit.ops.infer import broadcast_shapes, jax_dtype, normalize_axis, shape_text
from tracejit.ops.jvp_rules import bilinear_jvp, linear_jvp, transpose_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.linalg import matmul
from tracejit.ops.registry import bind, defop
from tracejit.ops.shape import EXPAND_DIMS, SQUEEZE, TRANSPOSE
from tracejit.types import AVal


# Shared pieces -----------------------------------------------------------------------------------
def mT(t: Any) -> Any:  # noqa: N802 - the standard's name for the matrix transpose
    """The transpose of the last two axes."""
    ndim = t.ndim
    return bind(TRANSPOSE, t, axes=(*range(ndim - 2), ndim - 1, ndim - 2))


def unbroadcast(ct: Any, x: Any) -> Any:
    from tracejit.autodiff.rules import unbroadcast as rule

    return rule(ct, x)


def expand_last(t: Any, *axes: int) -> Any:
    """``t`` with size-1 dims inserted at ``axes`` (negative, counted in the result)."""
    ndim = t.ndim + len(axes)
    return bind(EXPAND_DIMS, t, axes=tuple(a % ndim for a in axes))


def float_dtype(op: str, impl: Any, avals: list[AVal], params: dict[str, Any]) -> tuple[Any, bool]:
    """The result dtype jax gives (integer inputs promote to the default float, as in
    jax.numpy, both eagerly and traced: eager ops run the impl without asking ``infer``)."""
    return jax_dtype(op, impl, avals, params)


def check_matrix(op: str, x: AVal, square: bool = False) -> None:
    if x.ndim < 2:
        raise ShapeError(
            op, f"expects a (stack of) matrices of rank >= 2, got shape {shape_text(x.shape)}"
        )
    rows, cols = x.shape[-2:]
    if square and rows is not None and cols is not None and rows != cols:
        raise ShapeError(
            op, f"expects (a stack of) square matrices, got shape {shape_text(x.shape)}"
        )


def gradient_error(message: str) -> Exception:
    from tracejit.autodiff.tape import GradientError

    return GradientError(message)


def real_only(op: str, x: Any) -> None:
    """The gradients of the non-holomorphic decompositions are written for real inputs."""
    if arg_aval(op, x).dtype.kind == "c":
        raise gradient_error(
            f"the gradient of {op} is implemented for real inputs only, got a complex tensor"
        )


# inv, det, slogdet -------------------------------------------------------------------------------
def _infer_square(op: str, impl: Any) -> Any:
    def infer(x: AVal) -> AVal:
        check_matrix(op, x, square=True)
        dtype, weak = float_dtype(op, impl, [x], {})
        return AVal(x.shape, dtype, weak)

    return infer


def _inv_vjp(ct: Any, x: Any, *, out: Any) -> tuple[Any]:
    p_t = mT(out)
    return (cast_ct(negative(matmul(matmul(p_t, ct), p_t)), x),)


def _infer_det(x: AVal) -> AVal:
    check_matrix("det", x, square=True)
    dtype, weak = float_dtype("det", jnp.linalg.det, [x], {})
    return AVal(x.shape[:-2], dtype, weak)


def _det_vjp(ct: Any, x: Any, *, out: Any) -> tuple[Any]:
    scale = expand_last(multiply(ct, out), -1, -2)
    return (cast_ct(multiply(scale, mT(bind(INV, x))), x),)


def _infer_slogdet(x: AVal) -> tuple[AVal, AVal]:
    check_matrix("slogdet", x, square=True)
    dtype, weak = float_dtype("slogdet", lambda a: jnp.linalg.slogdet(a)[0], [x], {})
    real, _ = jax_dtype("slogdet", lambda a: jnp.linalg.slogdet(a)[1], [x], {})
    return AVal(x.shape[:-2], dtype, weak), AVal(x.shape[:-2], real, weak)


def _slogdet(x: Any) -> tuple[Any, Any]:
    sign, logabsdet = jnp.linalg.slogdet(x)
    return sign, logabsdet


def _slogdet_vjp(cts: tuple[Any, Any], x: Any, *, out: Any) -> tuple[Any]:
    real_only("slogdet", x)
    _, ct = cts  # the sign is piecewise constant: no gradient flows through it
    return (cast_ct(multiply(expand_last(ct, -1, -2), mT(bind(INV, x))), x),)


INV = defop(
    "inv", _infer_square("inv", jnp.linalg.inv), jnp.linalg.inv, _inv_vjp, jvp=transpose_jvp("inv")
)
DET = defop("det", _infer_det, jnp.linalg.det, _det_vjp, jvp=transpose_jvp("det"))
SLOGDET = defop(
    "slogdet",
    _infer_slogdet,
    _slogdet,
    _slogdet_vjp,
    multiple_results=True,
    jvp=transpose_jvp("slogdet"),
)


# solve -------------------------------------------------------------------------------------------
def _infer_solve(a: AVal, b: AVal) -> AVal:
    check_matrix("solve", a, square=True)
    dtype, weak = float_dtype("solve", jnp.linalg.solve, [a, b], {})
    m = a.shape[-1]
    if b.ndim == 0:
        raise ShapeError("solve", "x2 must be a vector (M,) or a stack of matrices (..., M, K)")
    if b.ndim == 1:  # one right-hand side, for every matrix of the stack
        if m is not None and b.shape[0] is not None and m != b.shape[0]:
            raise ShapeError(
                "solve",
                f"x1 {shape_text(a.shape)} needs a vector of length {m}, got {shape_text(b.shape)}",
            )
        return AVal(a.shape[:-1], dtype, weak)
    rows = b.shape[-2]
    if m is not None and rows is not None and m != rows:
        raise ShapeError(
            "solve",
            f"x1 {shape_text(a.shape)} and x2 {shape_text(b.shape)}: x2 must have {m} rows",
        )
    batch = broadcast_shapes("solve", a.shape[:-2], b.shape[:-2])
    return AVal((*batch, m, b.shape[-1]), dtype, weak)


def _solve_vjp(ct: Any, a: Any, b: Any, *, out: Any) -> tuple[Any, Any]:
    vector = arg_aval("solve", b).ndim == 1
    ct_mat = expand_last(ct, -1) if vector else ct
    x_mat = expand_last(out, -1) if vector else out
    ct_b = bind(SOLVE, mT(a), ct_mat)
    ct_a = unbroadcast(negative(matmul(ct_b, mT(x_mat))), a) if takes_gradient(a) else None
    if not takes_gradient(b):
        return ct_a, None
    if vector:
        ct_b = bind(SQUEEZE, ct_b, axes=(ct_b.ndim - 1,))
    return ct_a, unbroadcast(ct_b, b)


def _solve(a: Any, b: Any) -> Any:
    if b.ndim == 1 or b.shape[:-2] == a.shape[:-2]:
        return jnp.linalg.solve(a, b)
    batch = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return jnp.linalg.solve(
        jnp.broadcast_to(a, batch + a.shape[-2:]), jnp.broadcast_to(b, batch + b.shape[-2:])
    )


SOLVE = defop("solve", _infer_solve, _solve, _solve_vjp, jvp=transpose_jvp("solve"))


# pinv, matrix_rank -------------------------------------------------------------------------------
def _infer_pinv(x: AVal, *, rtol: float | None) -> AVal:
    check_matrix("pinv", x)
    dtype, weak = float_dtype("pinv", jnp.linalg.pinv, [x], {})
    return AVal((*x.shape[:-2], x.shape[-1], x.shape[-2]), dtype, weak)


def _pinv(x: Any, *, rtol: float | None) -> Any:
    return jnp.linalg.pinv(x, rtol=rtol)


def _pinv_vjp(ct: Any, x: Any, *, out: Any, rtol: float | None) -> tuple[Any]:
    p, p_t, ct_t = out, mT(out), mT(ct)
    first = negative(matmul(matmul(p_t, ct), p_t))
    # (I - A P) ct^T P P^T, and P^T P ct^T (I - P A), without forming the identities.
    z = matmul(ct_t, matmul(p, p_t))
    second = subtract(z, matmul(x, matmul(p, z)))
    w = matmul(matmul(p_t, p), ct_t)
    third = subtract(w, matmul(matmul(w, p), x))
    return (cast_ct(first + second + third, x),)


def _infer_matrix_rank(x: AVal, *, rtol: float | None) -> AVal:
    check_matrix("matrix_rank", x)
    float_dtype("matrix_rank", jnp.linalg.matrix_rank, [x], {})
    dtype, _ = jax_dtype("matrix_rank", jnp.linalg.matrix_rank, [x], {})
    return AVal(x.shape[:-2], dtype, False)


def _matrix_rank(x: Any, *, rtol: float | None) -> Any:
    # The standard's rtol is relative to the largest singular value (jax's matrix_rank takes it
    # as an absolute cut-off); by default max(M, N) * eps, as numpy.
    x = jnp.asarray(x)
    s = jnp.linalg.svdvals(x)
    if rtol is None:
        rtol = max(x.shape[-2:]) * float(jnp.finfo(s.dtype).eps)
    cutoff = rtol * jnp.max(s, axis=-1, keepdims=True, initial=0.0)
    return jnp.sum(s > cutoff, axis=-1).astype(jax.dtypes.canonicalize_dtype(jnp.int64))


PINV = defop("pinv", _infer_pinv, _pinv, _pinv_vjp, jvp=transpose_jvp("pinv"))
MATRIX_RANK = defop("matrix_rank", _infer_matrix_rank, _matrix_rank, differentiable=False)


# cross -------------------------------------------------------------------------------------------
def _infer_cross(x1: AVal, x2: AVal, *, axis: int) -> AVal:
    if x1.ndim == 0 or x2.ndim == 0:
        raise ShapeError("cross", "x1 and x2 must be at least 1-D")
    if not -min(x1.ndim, x2.ndim) <= axis < 0:
        raise OpError(
            "cross",
            f"axis {axis} must be in [-{min(x1.ndim, x2.ndim)}, -1] for shapes "
            f"{shape_text(x1.shape)} and {shape_text(x2.shape)}",
        )
    for x in (x1, x2):
        if x.shape[axis] not in (None, 3):
            raise ShapeError(
                "cross", f"axis {axis} must have size 3, got shape {shape_text(x.shape)}"
            )
    shape = broadcast_shapes("cross", x1.shape, x2.shape)
    dtype, weak = jax_dtype("cross", _cross, [x1, x2], {"axis": axis})
    return AVal(shape, dtype, weak)


def _cross(x1: Any, x2: Any, *, axis: int) -> Any:
    if x1.ndim > 0 and x1.shape[axis] == 1:  # jax.eval_shape on all-ones shapes
        return jnp.multiply(x1, x2)
    return jnp.linalg.cross(x1, x2, axis=axis)


def _cross_vjp(ct: Any, x1: Any, x2: Any, *, out: Any, axis: int) -> tuple[Any, Any]:
    d1 = unbroadcast(bind(CROSS, x2, ct, axis=axis), x1) if takes_gradient(x1) else None
    d2 = unbroadcast(bind(CROSS, ct, x1, axis=axis), x2) if takes_gradient(x2) else None
    return d1, d2


CROSS = defop("cross", _infer_cross, _cross, _cross_vjp, jvp=bilinear_jvp("cross"))


# diagonal, diag_embed ----------------------------------------------------------------------------
def diagonal_length(rows: int | None, cols: int | None, offset: int) -> int | None:
    if rows is None or cols is None:
        return None
    return max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))


def _infer_diagonal(x: AVal, *, offset: int) -> AVal:
    check_matrix("diagonal", x)
    length = diagonal_length(x.shape[-2], x.shape[-1], offset)
    return AVal((*x.shape[:-2], length), x.dtype, x.weak)


def _diagonal(x: Any, *, offset: int) -> Any:
    return jnp.linalg.diagonal(x, offset=offset)


def _diagonal_vjp(ct: Any, x: Any, *, out: Any, offset: int) -> tuple[Any]:
    return (cast_ct(bind(DIAG_EMBED, ct, x, offset=offset), x),)


def _infer_diag_embed(v: AVal, like: AVal, *, offset: int) -> AVal:
    check_matrix("diag_embed", like)
    if v.ndim == 0:
        raise ShapeError("diag_embed", "expects a (stack of) vectors")
    length = diagonal_length(like.shape[-2], like.shape[-1], offset)
    if None not in (length, v.shape[-1]) and length != v.shape[-1]:
        raise ShapeError(
            "diag_embed",
            f"offset {offset} diagonal of {shape_text(like.shape[-2:])} has {length} "
            f"elements, got a vector of {v.shape[-1]}",
        )
    return AVal((*v.shape[:-1], *like.shape[-2:]), v.dtype, v.weak)


def _diag_embed(v: Any, like: Any, *, offset: int) -> Any:
    rows, cols = like.shape[-2:]
    length = v.shape[-1]
    i = np.arange(length) + max(-offset, 0)
    j = np.arange(length) + max(offset, 0)
    return jnp.zeros((*v.shape[:-1], rows, cols), v.dtype).at[..., i, j].set(v)


def _diag_embed_vjp(ct: Any, v: Any, like: Any, *, out: Any, offset: int) -> tuple[Any, Any]:
    return cast_ct(bind(DIAGONAL, ct, offset=offset), v), None


DIAGONAL = defop("diagonal", _infer_diagonal, _diagonal, _diagonal_vjp, jvp=linear_jvp("diagonal"))
DIAG_EMBED = defop(
    "diag_embed", _infer_diag_embed, _diag_embed, _diag_embed_vjp, jvp=linear_jvp("diag_embed")
)


def diag_embed(v: Any, like: Any, offset: int = 0) -> Any:
    """``v`` (..., L) on the ``offset`` diagonal of zero matrices shaped like ``like``'s last two
    dims (``like`` is only a shape template)."""
    return bind(DIAG_EMBED, v, like, offset=int(offset))


def diagonal_of(x: Any, offset: int = 0) -> Any:
    return bind(DIAGONAL, x, offset=int(offset))


def normalized_axis(op: str, axis: int, ndim: int) -> int:
    return normalize_axis(op, axis, ndim)
