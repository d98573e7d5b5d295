"""The discrete Fourier transforms of the ``tracejit.fft`` extension: one registry entry, ``fft``,
whose ``kind`` param is ``"fft"``, ``"ifft"`` (complex to complex), ``"rfft"`` (real to the
non-negative frequencies) or ``"irfft"`` (back to real), over ``axes`` with the signal
``lengths`` (each axis cut or zero-padded to its length first) and a ``norm``. The impls are
jax.numpy's ``fftn``, ``ifftn``, ``rfftn`` and ``irfftn``.

The gradient is the transform's linear transpose, as jax defines it (no conjugation for the
complex-to-complex transforms, whose matrices are symmetric): ``fft`` / ``ifft`` of the
cotangent with the same norm; for ``rfft``, the real part of the ``fft`` of the zero-padded
cotangent; for ``irfft``, ``conj(w * rfft(ct))`` with the weights ``w`` counting each
non-negative frequency once or twice (jax's rule). The cotangent is then cut or zero-padded back
to the input's lengths (``slice`` / ``slice_add``, whose own gradients are each other).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval
from tracejit.ops.elementwise import multiply
from tracejit.ops.elementwise_math import conj, real
from tracejit.ops.indexing import FULL_SLICE, SLICE, SLICE_ADD
from tracejit.ops.infer import jax_dtype, shape_text
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal

KINDS = ("fft", "ifft", "rfft", "irfft")
NORMS = ("backward", "ortho", "forward")
_IMPLS = {
    "fft": jnp.fft.fftn,
    "ifft": jnp.fft.ifftn,
    "rfft": jnp.fft.rfftn,
    "irfft": jnp.fft.irfftn,
}


def _fft(x: Any, *, kind: str, lengths: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Any:
    return _IMPLS[kind](x, s=lengths, axes=axes, norm=norm)


def _internal_lengths(kind: str, lengths: tuple[int, ...]) -> tuple[int, ...]:
    """The lengths the input is cut or padded to (irfft reads ``n // 2 + 1`` frequencies)."""
    if kind == "irfft":
        return (*lengths[:-1], lengths[-1] // 2 + 1)
    return lengths


def _infer_fft(
    x: AVal, *, kind: str, lengths: tuple[int, ...], axes: tuple[int, ...], norm: str
) -> AVal:
    if kind not in KINDS:
        raise OpError("fft", f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if norm not in NORMS:
        raise OpError(kind, f"norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
    if not axes or len(axes) != len(lengths) or len(set(axes)) != len(axes):
        raise OpError(kind, f"needs distinct axes, one length each; got {axes} and {lengths}")
    for axis, n in zip(axes, lengths, strict=True):
        if not 0 <= axis < x.ndim:
            raise OpError(kind, f"axis {axis} is out of range for a tensor of rank {x.ndim}")
        if n < 1:
            raise ShapeError(kind, f"the signal length must be at least 1, got {n}")
    if kind == "rfft" and x.dtype.kind == "c":
        raise OpTypeError(kind, f"expects a real tensor, got {x.dtype} (use fft for complex)")
    shape = list(x.shape)
    for axis, n in zip(axes, lengths, strict=True):
        shape[axis] = n
    if kind == "rfft":
        shape[axes[-1]] = lengths[-1] // 2 + 1
    params = {"kind": kind, "lengths": lengths, "axes": axes, "norm": norm}
    dtype, weak = jax_dtype(kind, _fft, [x], params)
    return AVal(tuple(shape), dtype, weak)


def _irfft_weights(n: int, axis: int, ndim: int, dtype: Any) -> np.ndarray:
    """1 for the zero (and, for even ``n``, the Nyquist) frequency, 2 for the others, shaped to
    broadcast along ``axis``."""
    count = n // 2 + 1
    weights = np.full(count, 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    return weights.astype(dtype).reshape((count,) + (1,) * (ndim - 1 - axis))


def _fft_vjp(
    ct: Any,
    x: Any,
    *,
    out: Any,
    kind: str,
    lengths: tuple[int, ...],
    axes: tuple[int, ...],
    norm: str,
) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    if kind in ("fft", "ifft"):
        g = bind(FFT, ct, kind=kind, lengths=lengths, axes=axes, norm=norm)
    elif kind == "rfft":
        g = real(bind(FFT, ct, kind="fft", lengths=lengths, axes=axes, norm=norm))
    else:
        total = math.prod(lengths)
        scale = {"backward": 1.0 / total, "ortho": 1.0 / math.sqrt(total), "forward": 1.0}[norm]
        y = bind(FFT, ct, kind="rfft", lengths=lengths, axes=axes, norm="backward")
        real_dtype = np.dtype(jnp.finfo(y.dtype).dtype)
        weights = _irfft_weights(lengths[-1], axes[-1], y.ndim, real_dtype) * scale
        g = conj(multiply(y, weights))
    if arg_aval(kind, x).dtype.kind != "c" and g.dtype.kind == "c":
        g = real(g)
    return (cast_ct(_resize_back(g, x, axes, _internal_lengths(kind, lengths)), x),)


def _resize_back(g: Any, x: Any, axes: tuple[int, ...], internal: tuple[int, ...]) -> Any:
    """The transpose of cutting / zero-padding ``x`` to ``internal`` along ``axes``: pad / cut
    the cotangent ``g`` back to ``x``'s lengths."""
    shape = arg_aval("fft", x).shape
    if any(shape[a] is None for a in axes):
        from tracejit.autodiff.tape import GradientError

        raise GradientError(
            f"the gradient of an fft needs the input's length along axes {axes}, unknown here "
            f"(shape {shape_text(shape)})"
        )
    cut = [FULL_SLICE] * len(shape)
    pad = [FULL_SLICE] * len(shape)
    for axis, n in zip(axes, internal, strict=True):
        if shape[axis] < n:  # x was padded: its cotangent is the leading part
            cut[axis] = ("slice", 0, shape[axis], None)
        elif shape[axis] > n:  # x was cut: the rest of it gets zeros
            pad[axis] = ("slice", 0, n, None)
    if any(entry != FULL_SLICE for entry in cut):
        g = bind(SLICE, g, index=_canonical(cut))
    if any(entry != FULL_SLICE for entry in pad):
        from tracejit.ops.creation import zeros_like

        g = bind(SLICE_ADD, zeros_like(x, dtype=g.dtype), g, index=_canonical(pad))
    return g


def _canonical(index: list[Any]) -> tuple[Any, ...]:
    """The index without its trailing full slices (the ``slice`` op's canonical params)."""
    while index and index[-1] == FULL_SLICE:
        index = index[:-1]
    return tuple(index)


FFT = defop("fft", _infer_fft, _fft, _fft_vjp, jvp=linear_jvp("fft"))
