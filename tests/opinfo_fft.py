"""OpInfo rows for ``tracejit.fft`` (tracejit/fft.py, tracejit/ops/fft.py).

The table's tests give cotangents to real outputs only, so each row returns a real tensor: a
complex result as ``stack([real, imag])``. Complex inputs are given as two real arrays (the real
and imaginary parts, joined as ``re + 1j * im``), so the gradient checks reach them too. Values
are checked against numpy.fft, dtypes and gradients against jax.numpy.fft.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

import tracejit as tj

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _split(xp: Any, y: Any) -> Any:
    if y.dtype.kind != "c":
        return y
    return xp.stack([xp.real(y), xp.imag(y)])


def _call(xp: Any, name: str) -> Any:
    """The row's function over ``xp`` (tracejit, numpy or jax.numpy), taking a real input or
    the real and imaginary parts of a complex one."""
    module = {tj: tj.fft, np: np.fft, jnp: jnp.fft}[xp]

    def fn(re: Any, im: Any = None, **kwargs: Any) -> Any:
        if xp is np:
            re = np.asarray(re, np.float64)
        x = re if im is None else re + (np.asarray(im, np.float64) if xp is np else im) * 1j
        return _split(xp, getattr(module, name)(x, **kwargs))

    return fn


def _row(OpInfo: Any, op: str, name: str, samples: Any, **extra: Any) -> Any:  # noqa: N803
    return OpInfo(
        op,
        _call(tj, name),
        samples,
        _call(np, name),
        _call(jnp, name),
        rtol=1e-4,
        atol=1e-5,
        variant=name + extra.pop("suffix", ""),
        **extra,
    )


def rows(OpInfo: type[OpInfo]) -> list[OpInfo]:  # noqa: N803 - a class
    """The rows; ``OpInfo`` comes from tests/opinfo.py."""

    def along_last(*shape: int, complex_input: bool = False, **kwargs: Any) -> Any:
        def samples(rng: np.random.Generator) -> list[Sample]:
            parts = (f32(rng, *shape), f32(rng, *shape)) if complex_input else (f32(rng, *shape),)
            return [(parts, kwargs)]

        return samples

    def skip_axis0(args: Any, kwargs: dict[str, Any]) -> bool:
        """Whether axis 0 is transformed (its length must be known): the n-D functions and the
        shifts default to all axes, the 1-D ones to the last."""
        axes = kwargs.get("axes", kwargs.get("axis", None))
        axes = (axes,) if isinstance(axes, int) else axes
        return axes is None or any(a % args[0].ndim == 0 for a in axes)

    def skip_axis0_1d(args: Any, kwargs: dict[str, Any]) -> bool:
        return kwargs.get("axis", -1) % args[0].ndim == 0

    def several(*cases: Any) -> Any:
        def samples(rng: np.random.Generator) -> list[Sample]:
            return [s for case in cases for s in case(rng)]

        return samples

    c2c = several(
        along_last(3, 8),
        along_last(3, 8, complex_input=True, n=6),  # cut
        along_last(2, 5, complex_input=True, n=8, norm="ortho"),  # zero-padded
        along_last(4, 3, axis=0, norm="forward"),
    )
    nd = several(
        along_last(2, 4, 6, complex_input=True),
        along_last(3, 4, 5, s=(3, 6), axes=(-1, 1)),
        along_last(2, 3, 4, complex_input=True, axes=(1, 2), norm="ortho"),
    )
    real_1d = several(
        along_last(3, 8),
        along_last(2, 8, n=7, norm="forward"),
        along_last(2, 5, n=8, norm="ortho"),
    )
    inverse_real = several(
        along_last(3, 5, complex_input=True),
        along_last(2, 5, complex_input=True, n=9, norm="ortho"),
        along_last(2, 6, complex_input=True, n=6, norm="forward"),
    )
    inverse_real_nd = several(
        along_last(2, 4, 3, complex_input=True),
        along_last(3, 4, 4, complex_input=True, s=(4, 5), axes=(1, 2), norm="ortho"),
    )
    shifts = several(along_last(5, 4), along_last(3, 6, axes=(1,)), along_last(3, 4, axes=0))
    return [
        _row(OpInfo, "fft", "fft", c2c, skip_unknown=skip_axis0_1d),
        _row(OpInfo, "fft", "ifft", c2c, skip_unknown=skip_axis0_1d),
        _row(OpInfo, "fft", "fftn", nd, skip_unknown=skip_axis0),
        _row(OpInfo, "fft", "ifftn", nd, skip_unknown=skip_axis0),
        _row(OpInfo, "fft", "rfft", real_1d),
        _row(OpInfo, "fft", "irfft", inverse_real),
        _row(
            OpInfo,
            "fft",
            "rfftn",
            several(along_last(2, 4, 6), along_last(3, 4, 5, s=(3, 6), axes=(1, 2))),
            skip_unknown=skip_axis0,
        ),
        _row(OpInfo, "fft", "irfftn", inverse_real_nd, skip_unknown=skip_axis0),
        _row(OpInfo, "fft", "hfft", inverse_real),
        _row(OpInfo, "conj", "ihfft", real_1d),
        _row(OpInfo, "roll", "fftshift", shifts, skip_unknown=skip_axis0),
        _row(OpInfo, "roll", "ifftshift", shifts, skip_unknown=skip_axis0),
    ]
