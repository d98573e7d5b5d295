"""``tracejit.linalg``: the array API standard's linear algebra extension (2024.12), all 23
functions, eagerly and inside ``tj.function``, with gradients.

Registry entries (``tracejit/ops/linalg_solve.py``, ``tracejit/ops/decompositions.py``):
``cholesky``, ``cross``, ``det``, ``diagonal``, ``eigh``, ``eigvalsh``, ``inv``, ``matrix_rank``,
``pinv``, ``qr``, ``slogdet``, ``solve``, ``svd``, ``svdvals``. Compositions of entries,
documented as such: ``matrix_norm`` and ``vector_norm`` (``abs``, ``sum``, ``max``/``min``,
``sqrt``/``power``, and ``svdvals`` for the 2, -2 and nuclear norms), ``matrix_power`` (repeated
``matmul``, ``inv`` for negative powers), ``trace`` (``sum`` of ``diagonal``) and ``outer``
(``multiply`` of a column by a row). ``matmul``, ``matrix_transpose``, ``tensordot`` and
``vecdot`` are the main namespace's functions.

>>> import tracejit as tj
>>> a = tj.constant([[4.0, 2.0], [2.0, 3.0]])
>>> tj.linalg.cholesky(a).numpy().round(4)
array([[2.    , 0.    ],
       [1.    , 1.4142]], dtype=float32)
>>> tj.linalg.eigh(a).eigenvalues.numpy().round(4)
array([1.4384, 5.5616], dtype=float32)
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.contraction import tensordot, vecdot
from tracejit.ops.decompositions import CHOLESKY, EIGH, EIGVALSH, QR, SVD, SVDVALS
from tracejit.ops.elementwise import abs as _abs
from tracejit.ops.elementwise import cast, multiply, not_equal, power, sqrt
from tracejit.ops.elementwise_math import real
from tracejit.ops.infer import normalize_axes, shape_text
from tracejit.ops.linalg import matmul
from tracejit.ops.linalg_solve import (
    CROSS,
    DET,
    DIAGONAL,
    INV,
    MATRIX_RANK,
    PINV,
    SLOGDET,
    SOLVE,
    check_matrix,
    diag_embed,
    expand_last,
)
from tracejit.ops.manipulation import matrix_transpose
from tracejit.ops.reduction import max as _max
from tracejit.ops.reduction import min as _min
from tracejit.ops.reduction import sum as _sum
from tracejit.ops.registry import bind

__all__ = [
    "EighResult",
    "QRResult",
    "SVDResult",
    "SlogdetResult",
    "cholesky",
    "cross",
    "det",
    "diagonal",
    "eigh",
    "eigvalsh",
    "inv",
    "matmul",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "matrix_transpose",
    "outer",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "tensordot",
    "trace",
    "vecdot",
    "vector_norm",
]


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    U: Any
    S: Any
    Vh: Any


# Registry entries --------------------------------------------------------------------------------
@locates_errors
def cholesky(x: Any, /, *, upper: bool = False) -> Any:
    """The Cholesky factor of symmetric positive-definite matrices: lower ``L`` with
    ``x = L @ L.mT``, or upper ``U = L.mT`` with ``upper=True``."""
    return bind(CHOLESKY, x, upper=bool(upper))


@locates_errors
def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Cross products of the 3-vectors along ``axis`` (the other axes broadcast).

    >>> import tracejit as tj
    >>> tj.linalg.cross(tj.constant([1.0, 0.0, 0.0]), tj.constant([0.0, 1.0, 0.0])).numpy()
    array([0., 0., 1.], dtype=float32)
    """
    return bind(CROSS, x1, x2, axis=operator.index(axis))


@locates_errors
def det(x: Any, /) -> Any:
    """Determinants of (a stack of) square matrices."""
    return bind(DET, x)


@locates_errors
def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """The ``offset`` diagonal of each matrix (above the main one for ``offset > 0``).

    >>> import tracejit as tj
    >>> tj.linalg.diagonal(tj.constant([[1, 2], [3, 4]])).numpy()
    array([1, 4], dtype=int32)
    """
    return bind(DIAGONAL, x, offset=operator.index(offset))


@locates_errors
def eigh(x: Any, /) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices."""
    return EighResult(*bind(EIGH, x))


@locates_errors
def eigvalsh(x: Any, /) -> Any:
    """Eigenvalues (ascending) of symmetric matrices."""
    return bind(EIGVALSH, x)


@locates_errors
def inv(x: Any, /) -> Any:
    """Inverses of (a stack of) square matrices."""
    return bind(INV, x)


@locates_errors
def matrix_rank(x: Any, /, *, rtol: float | Any | None = None) -> Any:
    """The number of singular values above ``rtol * max(singular values)`` (default
    ``max(M, N) * eps``)."""
    return bind(MATRIX_RANK, x, rtol=_rtol("matrix_rank", rtol))


@locates_errors
def pinv(x: Any, /, *, rtol: float | Any | None = None) -> Any:
    """The Moore-Penrose pseudo-inverse (singular values under ``rtol * max`` count as 0)."""
    return bind(PINV, x, rtol=_rtol("pinv", rtol))


def _rtol(op: str, rtol: Any) -> float | None:
    if rtol is None:
        return None
    if hasattr(rtol, "shape") and tuple(rtol.shape) != ():
        raise OpTypeError(op, "rtol must be a Python float or a 0-d tensor")
    try:
        return float(rtol)
    except TypeError:
        raise OpTypeError(op, f"rtol must be a number, got {type(rtol).__name__}") from None


@locates_errors
def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    """The QR decomposition ``x = Q @ R`` (``mode='reduced'`` or ``'complete'``)."""
    return QRResult(*bind(QR, x, mode=mode))


@locates_errors
def slogdet(x: Any, /) -> SlogdetResult:
    """The sign and the natural log of the absolute value of the determinant."""
    return SlogdetResult(*bind(SLOGDET, x))


@locates_errors
def solve(x1: Any, x2: Any, /) -> Any:
    """The solution ``X`` of ``x1 @ X = x2`` (``x2`` a vector ``(M,)`` or matrices
    ``(..., M, K)``; batch dims broadcast).

    >>> import tracejit as tj
    >>> tj.linalg.solve(tj.constant([[2.0, 0.0], [0.0, 4.0]]), tj.constant([2.0, 2.0])).numpy()
    array([1. , 0.5], dtype=float32)
    """
    return bind(SOLVE, x1, x2)


@locates_errors
def svd(x: Any, /, *, full_matrices: bool = True) -> SVDResult:
    """The singular value decomposition ``x = U @ diag(S) @ Vh`` (singular values
    descending)."""
    return SVDResult(*bind(SVD, x, full_matrices=bool(full_matrices)))


@locates_errors
def svdvals(x: Any, /) -> Any:
    """The singular values, descending."""
    return bind(SVDVALS, x)


# Compositions ------------------------------------------------------------------------------------
@locates_errors
def matrix_power(x: Any, n: int, /) -> Any:
    """``x`` multiplied by itself ``n`` times (``n < 0``: the inverse's power; ``n = 0``: the
    identity), by repeated squaring with ``matmul``."""
    check_matrix("matrix_power", arg_aval("matrix_power", x), square=True)
    try:
        n = operator.index(n)
    except TypeError:
        raise OpTypeError("matrix_power", f"n must be an int, got {type(n).__name__}") from None
    if n == 0:
        from tracejit.ops.creation import ones_like

        return diag_embed(ones_like(bind(DIAGONAL, x, offset=0)), x)
    base = bind(INV, x) if n < 0 else x
    result = None
    n = builtins.abs(n)
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


@locates_errors
def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """Sums of the ``offset`` diagonal of each matrix (``dtype`` as ``sum``'s)."""
    from tracejit.ops.reduction import sum as reduce_sum

    diag = bind(DIAGONAL, x, offset=operator.index(offset))
    return reduce_sum(diag, axis=-1, dtype=dtype)


@locates_errors
def outer(x1: Any, x2: Any, /) -> Any:
    """The outer product of two vectors.

    >>> import tracejit as tj
    >>> tj.linalg.outer(tj.constant([1, 2]), tj.constant([3, 4, 5])).numpy()
    array([[ 3,  4,  5],
           [ 6,  8, 10]], dtype=int32)
    """
    a1, a2 = arg_aval("outer", x1), arg_aval("outer", x2)
    if a1.ndim != 1 or a2.ndim != 1:
        raise ShapeError(
            "outer",
            f"expects two vectors, got shapes {shape_text(a1.shape)} and {shape_text(a2.shape)}",
        )
    return multiply(expand_last(_tensor(x1), -1), x2)


def _tensor(x: Any) -> Any:
    from tracejit.eager.tensor import convert_to_tensor

    return x if hasattr(x, "aval") else convert_to_tensor(x)


def _float_input(op: str, x: Any) -> Any:
    dtype = arg_aval(op, x).dtype
    if dtype.kind not in "fc":
        raise OpTypeError(op, f"expects a floating-point tensor, got {dtype}; cast it first")
    return _tensor(x)


@locates_errors
def vector_norm(
    x: Any,
    /,
    *,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    ord: float = 2,  # noqa: A002 - the standard's name
) -> Any:
    """The ``ord``-norm of the vectors along ``axis`` (None: all of ``x`` as one vector):
    ``sum(|x|**ord)**(1/ord)``, the largest / smallest ``|x|`` for ``inf`` / ``-inf``, the count
    of nonzeros for 0.

    >>> import tracejit as tj
    >>> tj.linalg.vector_norm(tj.constant([3.0, 4.0])).numpy()
    array(5., dtype=float32)
    """
    x = _float_input("vector_norm", x)
    axes = normalize_axes("vector_norm", axis, x.ndim)
    size = _abs(x)
    if ord == math.inf:
        return _max(size, axis=axes, keepdims=keepdims)
    if ord == -math.inf:
        return _min(size, axis=axes, keepdims=keepdims)
    if ord == 0:
        return cast(_sum(not_equal(x, 0), axis=axes, keepdims=keepdims), size.dtype)
    if ord == 1:
        return _sum(size, axis=axes, keepdims=keepdims)
    if ord == 2:
        squares = real(multiply(x, _conj(x))) if x.dtype.kind == "c" else multiply(x, x)
        return sqrt(_sum(squares, axis=axes, keepdims=keepdims))
    if not isinstance(ord, (int, float)) or isinstance(ord, bool):
        raise OpTypeError("vector_norm", f"ord must be a number, got {ord!r:.40}")
    return power(_sum(power(size, float(ord)), axis=axes, keepdims=keepdims), 1.0 / ord)


def _conj(x: Any) -> Any:
    from tracejit.ops.elementwise_math import conj

    return conj(x)


@locates_errors
def matrix_norm(
    x: Any,
    /,
    *,
    keepdims: bool = False,
    ord: float | str | None = "fro",  # noqa: A002 - the standard's name
) -> Any:
    """The ``ord``-norm of each matrix: ``'fro'`` (Frobenius), ``'nuc'`` (sum of the singular
    values), 2 / -2 (largest / smallest singular value), 1 / -1 (largest / smallest column sum of
    ``|x|``), ``inf`` / ``-inf`` (largest / smallest row sum)."""
    x = _float_input("matrix_norm", x)
    check_matrix("matrix_norm", x.aval)
    axes = (x.ndim - 2, x.ndim - 1)
    if ord in ("fro", None):
        return vector_norm(x, axis=axes, keepdims=keepdims)
    if ord in ("nuc", 2, -2):
        values = bind(SVDVALS, x)
        if ord == "nuc":
            result = _sum(values, axis=-1)
        else:
            result = (_max if ord == 2 else _min)(values, axis=-1)
        return expand_last(result, -1, -2) if keepdims else result
    if ord in (1, -1, math.inf, -math.inf):
        along, across = (-2, -1) if ord in (1, -1) else (-1, -2)
        sums = _sum(_abs(x), axis=x.ndim + along, keepdims=True)
        pick = _max if ord > 0 else _min
        result = pick(sums, axis=x.ndim + across, keepdims=True)
        return result if keepdims else _squeeze_result(result)
    raise OpError(
        "matrix_norm", f"ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, got {ord!r:.40}"
    )


def _squeeze_result(t: Any) -> Any:
    from tracejit.ops.shape import SQUEEZE

    return bind(SQUEEZE, t, axes=(t.ndim - 2, t.ndim - 1))
