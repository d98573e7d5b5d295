"""``tracejit.fft``: the array API standard's Fourier transform extension (2024.12), all 14
functions, eagerly and inside ``tj.function``, with gradients.

``fft``, ``ifft``, ``fftn``, ``ifftn``, ``rfft``, ``irfft``, ``rfftn`` and ``irfftn`` bind the one
``fft`` registry entry (``tracejit/ops/fft.py``). Compositions, documented as such: ``hfft`` is
``irfft`` of the conjugate (with the norm's direction swapped), ``ihfft`` the conjugate of
``rfft``, as in numpy; ``fftshift`` / ``ifftshift`` are ``roll``; ``fftfreq`` / ``rfftfreq``
are constants computed from their Python arguments.

>>> import tracejit as tj
>>> tj.fft.fft(tj.constant([1.0, 0.0, 0.0, 0.0])).numpy()
array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j], dtype=complex64)
>>> tj.fft.irfft(tj.fft.rfft(tj.constant([1.0, 2.0, 3.0, 4.0]))).numpy().round(4)
array([1., 2., 3., 4.], dtype=float32)
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.elementwise_math import conj
from tracejit.ops.fft import FFT, NORMS
from tracejit.ops.infer import normalize_axis, shape_text
from tracejit.ops.manipulation import roll
from tracejit.ops.registry import bind
from tracejit.types import as_dtype

__all__ = [
    "fft",
    "fftfreq",
    "fftn",
    "fftshift",
    "hfft",
    "ifft",
    "ifftn",
    "ifftshift",
    "ihfft",
    "irfft",
    "irfftn",
    "rfft",
    "rfftfreq",
    "rfftn",
]

_SWAPPED = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _norm(op: str, norm: str) -> str:
    if norm not in NORMS:
        raise OpError(op, f"norm must be 'backward', 'ortho' or 'forward', got {norm!r:.40}")
    return norm


def _length(op: str, n: Any, what: str = "n") -> int:
    try:
        value = operator.index(n)
    except TypeError:
        raise OpTypeError(op, f"{what} must be an int, got {type(n).__name__}") from None
    if value < 1:
        raise ShapeError(op, f"{what} must be at least 1, got {value}")
    return value


def _known(op: str, shape: tuple[int | None, ...], axis: int, what: str) -> int:
    dim = shape[axis]
    if dim is None:
        raise ShapeError(
            op,
            f"the length of axis {axis} of {shape_text(shape)} is unknown while tracing; "
            f"pass {what}= to fix it",
        )
    return dim


def _one_axis(op: str, kind: str, x: Any, n: Any, axis: int, norm: str) -> Any:
    shape = arg_aval(op, x).shape
    if not shape:
        raise ShapeError(op, "expects a tensor of rank >= 1, got a 0-d tensor")
    axis = normalize_axis(op, operator.index(axis), len(shape))
    if n is None:
        length = _known(op, shape, axis, "n")
        if kind == "irfft":
            length = 2 * (length - 1)
            if length < 1:
                raise ShapeError(op, "a 1-element input needs n= (the output length)")
    else:
        length = _length(op, n)
    return bind(FFT, x, kind=kind, lengths=(length,), axes=(axis,), norm=_norm(op, norm))


def _many_axes(op: str, kind: str, x: Any, s: Any, axes: Any, norm: str) -> Any:
    shape = arg_aval(op, x).shape
    ndim = len(shape)
    if axes is None:
        count = ndim if s is None else len(s)
        if count > ndim:
            raise ShapeError(op, f"s has {count} lengths for a tensor of rank {ndim}")
        axes_t = tuple(range(ndim - count, ndim))
    else:
        axes_t = tuple(normalize_axis(op, operator.index(a), ndim) for a in axes)
    if not axes_t:
        raise ShapeError(op, "needs at least one axis to transform")
    if len(set(axes_t)) != len(axes_t):
        raise OpError(op, f"repeated axis in {tuple(axes)}")
    if s is None:
        lengths = [_known(op, shape, a, "s") for a in axes_t]
        if kind == "irfft":
            lengths[-1] = 2 * (lengths[-1] - 1)
            if lengths[-1] < 1:
                raise ShapeError(op, "a 1-element last axis needs s= (the output lengths)")
    else:
        if len(s) != len(axes_t):
            raise OpError(op, f"s {tuple(s)} and axes {axes_t} must have the same length")
        lengths = [_length(op, n, "s") for n in s]
    return bind(FFT, x, kind=kind, lengths=tuple(lengths), axes=axes_t, norm=_norm(op, norm))


@locates_errors
def fft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The 1-D discrete Fourier transform along ``axis`` (cut or zero-padded to ``n``)."""
    return _one_axis("fft", "fft", x, n, axis, norm)


@locates_errors
def ifft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The 1-D inverse discrete Fourier transform along ``axis``."""
    return _one_axis("ifft", "ifft", x, n, axis, norm)


@locates_errors
def fftn(
    x: Any,
    /,
    *,
    s: Sequence[int] | None = None,
    axes: Sequence[int] | None = None,
    norm: str = "backward",
) -> Any:
    """The n-D discrete Fourier transform over ``axes`` (default: the last ``len(s)`` axes, or
    all of them)."""
    return _many_axes("fftn", "fft", x, s, axes, norm)


@locates_errors
def ifftn(
    x: Any,
    /,
    *,
    s: Sequence[int] | None = None,
    axes: Sequence[int] | None = None,
    norm: str = "backward",
) -> Any:
    """The n-D inverse discrete Fourier transform."""
    return _many_axes("ifftn", "ifft", x, s, axes, norm)


@locates_errors
def rfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The 1-D Fourier transform of a real signal: the ``n // 2 + 1`` non-negative
    frequencies."""
    return _one_axis("rfft", "rfft", x, n, axis, norm)


@locates_errors
def irfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The inverse of ``rfft``: a real signal of length ``n`` (default ``2 * (m - 1)``)."""
    return _one_axis("irfft", "irfft", x, n, axis, norm)


@locates_errors
def rfftn(
    x: Any,
    /,
    *,
    s: Sequence[int] | None = None,
    axes: Sequence[int] | None = None,
    norm: str = "backward",
) -> Any:
    """The n-D Fourier transform of a real signal (half of the last axis's frequencies)."""
    return _many_axes("rfftn", "rfft", x, s, axes, norm)


@locates_errors
def irfftn(
    x: Any,
    /,
    *,
    s: Sequence[int] | None = None,
    axes: Sequence[int] | None = None,
    norm: str = "backward",
) -> Any:
    """The inverse of ``rfftn``."""
    return _many_axes("irfftn", "irfft", x, s, axes, norm)


@locates_errors
def hfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The Fourier transform of a signal with Hermitian symmetry (given by its non-negative
    half): ``irfft(conj(x))`` with the norm's direction swapped, a real result."""
    norm = _norm("hfft", norm)
    return _one_axis("hfft", "irfft", conj(x), n, axis, _SWAPPED[norm])


@locates_errors
def ihfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The inverse of ``hfft``: ``conj(rfft(x))`` with the norm's direction swapped."""
    norm = _norm("ihfft", norm)
    return conj(_one_axis("ihfft", "rfft", x, n, axis, _SWAPPED[norm]))


def _frequencies(op: str, n: Any, d: Any, dtype: Any, device: Any, half: bool) -> Any:
    from tracejit.eager.tensor import asarray

    count = _length(op, n)
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        raise OpTypeError(op, f"d must be a Python number, got {type(d).__name__}")
    dtype = as_dtype("float32" if dtype is None else dtype)
    if dtype.kind != "f":
        raise OpTypeError(op, f"dtype must be a real floating-point dtype, got {dtype}")
    if half:
        values = np.arange(count // 2 + 1) / (count * d)
    else:
        values = np.fft.fftfreq(count, d)
    return asarray(values.astype(dtype), device=device)


def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of an ``n``-point ``fft`` with sample spacing ``d``: ``[0, 1, ...,
    -2, -1] / (d * n)`` (float32 unless ``dtype`` says otherwise).

    >>> import tracejit as tj
    >>> tj.fft.fftfreq(4).numpy()
    array([ 0.  ,  0.25, -0.5 , -0.25], dtype=float32)
    """
    return _frequencies("fftfreq", n, d, dtype, device, half=False)


def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of an ``n``-point ``rfft``: ``[0, 1, ..., n // 2] / (d * n)``."""
    return _frequencies("rfftfreq", n, d, dtype, device, half=True)


def _shift(op: str, x: Any, axes: Any, sign: int) -> Any:
    shape = arg_aval(op, x).shape
    if axes is None:
        axes = tuple(range(len(shape)))
    elif isinstance(axes, int):
        axes = (axes,)
    axes = tuple(normalize_axis(op, operator.index(a), len(shape)) for a in axes)
    if not axes:
        return x
    # ifftshift undoes fftshift: a roll by -(n // 2) (not by n // 2 when n is odd).
    shifts = tuple(sign * (_known(op, shape, a, "axes") // 2) for a in axes)
    return roll(x, shifts, axis=axes)


@locates_errors
def fftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
    """The zero frequency moved to the middle of ``axes`` (default all): a ``roll`` by
    ``n // 2``.

    >>> import tracejit as tj
    >>> tj.fft.fftshift(tj.fft.fftfreq(4)).numpy()
    array([-0.5 , -0.25,  0.  ,  0.25], dtype=float32)
    """
    return _shift("fftshift", x, axes, 1)


@locates_errors
def ifftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
    """The inverse of ``fftshift``: a ``roll`` by ``-(n // 2)``."""
    return _shift("ifftshift", x, axes, -1)
