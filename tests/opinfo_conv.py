"""OpInfo rows for the convolution and pooling ops (tracejit/ops/conv.py), gradient ops included.

The value references are plain numpy loops over kernel taps (each tap a strided slice of the
padded input), written from the definitions with TF's padding rule, so they share no code with
jax: SAME pads ``max((out - 1) * stride + extent - size, 0)`` with the odd one at the high end.
They compute in float64 and return the input's dtype. Gradient references scatter through the
same slices (transposes of the forward loops). The jax references (``jax_ref``: dtypes, and
differentiable programs for gradient checks) are jax.lax convolutions and reduce_windows, their
gradients taken with ``jax.vjp``/``jax.jvp``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.ops import conv

if TYPE_CHECKING:
    from opinfo import OpInfo

Pair = tuple[int, int]
Sample = tuple[tuple[Any, ...], dict[str, Any]]


# numpy references --------------------------------------------------------------------------------
def _pair(value: Any) -> Pair:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _pads(size: Pair, extent: Pair, strides: Pair, padding: str) -> list[tuple[int, int]]:
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    pads = []
    for n, e, s in zip(size, extent, strides, strict=True):
        total = max((-(-n // s) - 1) * s + e - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


class _Taps:
    """The geometry of sliding a (dilated) window over NHWC images: the padded input and, for
    each tap ``(a, b)`` of the window, the strided slice of it that the tap sees."""

    def __init__(
        self, shape: tuple[int, ...], window: Pair, strides: Any, padding: str, dilation: Any = 1
    ):
        self.window, self.strides, self.dilation = window, _pair(strides), _pair(dilation)
        extent = tuple((k - 1) * d + 1 for k, d in zip(window, self.dilation, strict=True))
        self.pads = _pads(shape[1:3], extent, self.strides, padding)  # type: ignore[arg-type]
        self.padded = tuple(n + lo + hi for n, (lo, hi) in zip(shape[1:3], self.pads, strict=True))
        self.out = tuple(
            (p - e) // s + 1 for p, e, s in zip(self.padded, extent, self.strides, strict=True)
        )
        self.size = shape[1:3]

    def pad(self, x: np.ndarray, fill: float = 0.0) -> np.ndarray:
        return np.pad(x, ((0, 0), *self.pads, (0, 0)), constant_values=fill)

    def crop(self, padded: np.ndarray) -> np.ndarray:
        (top, _), (left, _) = self.pads
        return padded[:, top : top + self.size[0], left : left + self.size[1]]

    def __iter__(self) -> Iterator[tuple[int, int, tuple[slice, ...]]]:
        for a in range(self.window[0]):
            for b in range(self.window[1]):
                rows, cols = (
                    slice(t * d, t * d + (o - 1) * s + 1, s)
                    for t, d, o, s in zip(
                        (a, b), self.dilation, self.out, self.strides, strict=True
                    )
                )
                yield a, b, (slice(None), rows, cols)


def np_conv2d(
    x: Any, kernel: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1
) -> Any:
    taps = _Taps(x.shape, kernel.shape[:2], strides, padding, dilation)
    padded = taps.pad(x.astype(np.float64))
    out = np.zeros((x.shape[0], *taps.out, kernel.shape[3]))
    for a, b, where in taps:
        out += padded[where] @ kernel[a, b].astype(np.float64)
    return out.astype(x.dtype)


def np_conv2d_input_grad(
    ct: Any, kernel: Any, x: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1
) -> Any:
    taps = _Taps(x.shape, kernel.shape[:2], strides, padding, dilation)
    grad = taps.pad(np.zeros(x.shape))
    for a, b, where in taps:
        grad[where] += ct.astype(np.float64) @ kernel[a, b].T.astype(np.float64)
    return taps.crop(grad).astype(x.dtype)


def np_conv2d_filter_grad(
    x: Any, ct: Any, kernel: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1
) -> Any:
    taps = _Taps(x.shape, kernel.shape[:2], strides, padding, dilation)
    padded = taps.pad(x.astype(np.float64))
    grad = np.zeros(kernel.shape)
    for a, b, where in taps:
        grad[a, b] = np.einsum("nhwi,nhwo->io", padded[where], ct.astype(np.float64))
    return grad.astype(kernel.dtype)


def _lowest(dtype: np.dtype) -> float:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _argmax_masks(x: np.ndarray, taps: _Taps) -> list[tuple[tuple[slice, ...], np.ndarray]]:
    """For each tap, where it holds its window's maximum (the first one, scanning the window
    row by row, on ties)."""
    padded = taps.pad(x.astype(np.float64), _lowest(x.dtype))
    best = np.max([padded[where] for _, _, where in taps], axis=0)
    taken = np.zeros(best.shape, bool)
    masks = []
    for _, _, where in taps:
        mask = (padded[where] == best) & ~taken
        taken |= mask
        masks.append((where, mask))
    return masks


def np_max_pool2d(x: Any, window: Any, strides: Any = None, padding: str = "VALID") -> Any:
    taps = _Taps(x.shape, _pair(window), strides or window, padding)
    padded = taps.pad(x.astype(np.float64), _lowest(x.dtype))
    return np.max([padded[where] for _, _, where in taps], axis=0).astype(x.dtype)


def np_max_pool2d_grad(
    x: Any, ct: Any, window: Any, strides: Any = None, padding: str = "VALID"
) -> Any:
    taps = _Taps(x.shape, _pair(window), strides or window, padding)
    grad = taps.pad(np.zeros(x.shape))
    for where, mask in _argmax_masks(x, taps):
        grad[where] += np.where(mask, ct, 0.0)
    return taps.crop(grad).astype(x.dtype)


def np_max_pool2d_jvp(
    x: Any, tangent: Any, window: Any, strides: Any = None, padding: str = "VALID"
) -> Any:
    taps = _Taps(x.shape, _pair(window), strides or window, padding)
    padded = taps.pad(tangent.astype(np.float64))
    return sum(np.where(mask, padded[where], 0.0) for where, mask in _argmax_masks(x, taps)).astype(
        x.dtype
    )


def _counts(shape: tuple[int, ...], taps: _Taps) -> np.ndarray:
    ones = taps.pad(np.ones((1, *shape[1:3], 1)))
    return sum(ones[where] for _, _, where in taps)  # type: ignore[return-value]


def np_avg_pool2d(x: Any, window: Any, strides: Any = None, padding: str = "VALID") -> Any:
    taps = _Taps(x.shape, _pair(window), strides or window, padding)
    padded = taps.pad(x.astype(np.float64))
    total = sum(padded[where] for _, _, where in taps)
    return (total / _counts(x.shape, taps)).astype(x.dtype)


def np_avg_pool2d_grad(
    ct: Any, x: Any, window: Any, strides: Any = None, padding: str = "VALID"
) -> Any:
    taps = _Taps(x.shape, _pair(window), strides or window, padding)
    share = ct.astype(np.float64) / _counts(x.shape, taps)
    grad = taps.pad(np.zeros(x.shape))
    for _, _, where in taps:
        grad[where] += share
    return taps.crop(grad).astype(x.dtype)


# jax references ----------------------------------------------------------------------------------
def jax_conv2d(
    x: Any, kernel: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1
) -> Any:
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        _pair(strides),
        padding,
        rhs_dilation=_pair(dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def jax_conv2d_input_grad(ct: Any, kernel: Any, x: Any, **params: Any) -> Any:
    return jax.vjp(lambda v: jax_conv2d(v, kernel, **params), x)[1](ct)[0]


def jax_conv2d_filter_grad(x: Any, ct: Any, kernel: Any, **params: Any) -> Any:
    return jax.vjp(lambda k: jax_conv2d(x, k, **params), kernel)[1](ct)[0]


def _reduce(x: Any, init: Any, reducer: Any, window: Any, strides: Any, padding: str) -> Any:
    dims, steps = (1, *_pair(window), 1), (1, *_pair(strides or window), 1)
    return jax.lax.reduce_window(x, np.array(init, x.dtype), reducer, dims, steps, padding)


def jax_max_pool2d(x: Any, window: Any, strides: Any = None, padding: str = "VALID") -> Any:
    x = jnp.asarray(x)
    return _reduce(x, _lowest(np.dtype(x.dtype)), jax.lax.max, window, strides, padding)


def jax_avg_pool2d(x: Any, window: Any, strides: Any = None, padding: str = "VALID") -> Any:
    x = jnp.asarray(x)
    counts = _reduce(jnp.ones_like(x), 0, jax.lax.add, window, strides, padding)
    return _reduce(x, 0, jax.lax.add, window, strides, padding) / counts


def jax_max_pool2d_grad(x: Any, ct: Any, *pool: Any, **params: Any) -> Any:
    return jax.vjp(lambda v: jax_max_pool2d(v, *pool, **params), x)[1](ct)[0]


def jax_max_pool2d_jvp(x: Any, tangent: Any, *pool: Any, **params: Any) -> Any:
    return jax.jvp(lambda v: jax_max_pool2d(v, *pool, **params), (x,), (tangent,))[1]


def jax_avg_pool2d_grad(ct: Any, x: Any, *pool: Any, **params: Any) -> Any:
    return jax.vjp(lambda v: jax_avg_pool2d(v, *pool, **params), x)[1](ct)[0]


# Samples -----------------------------------------------------------------------------------------
def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def f16(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float16)


def i32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(-50, 50, shape).astype(np.int32)


# (input shape, kernel shape, params): SAME/VALID, strides 1 and 2, dilation 2, 1x1 kernels.
CONV_CASES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((2, 5, 5, 3), (3, 3, 3, 4), {}),
    ((2, 6, 7, 2), (3, 2, 2, 3), {"strides": 2, "padding": "VALID"}),
    ((1, 7, 6, 2), (2, 3, 2, 2), {"strides": (1, 2), "dilation": 2}),
    ((2, 4, 4, 1), (1, 1, 1, 2), {"padding": "VALID"}),
    ((1, 8, 8, 2), (3, 3, 2, 1), {"strides": 2, "padding": "VALID", "dilation": (2, 1)}),
]
# (input shape, window, params)
POOL_CASES: list[tuple[tuple[int, ...], Any, dict[str, Any]]] = [
    ((2, 5, 5, 3), 2, {}),
    ((1, 6, 7, 2), (3, 2), {"strides": (2, 1), "padding": "SAME"}),
    ((2, 5, 4, 1), 3, {"strides": 2, "padding": "SAME"}),
    ((1, 4, 5, 2), 3, {"strides": 1}),
]


def _conv_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, *xs), f32(rng, *ks)), params) for xs, ks, params in CONV_CASES]


def _conv_grad_samples(which: str) -> Any:
    def samples(rng: np.random.Generator) -> list[Sample]:
        rows: list[Sample] = []
        for xs, ks, params in CONV_CASES:
            x, kernel = f32(rng, *xs), f32(rng, *ks)
            ct = f32(rng, *np_conv2d(x, kernel, **params).shape)
            rows.append(((ct, kernel, x) if which == "input" else (x, ct, kernel), params))
        return rows

    return samples


def _pool_samples(ints: bool) -> Any:
    def samples(rng: np.random.Generator) -> list[Sample]:
        rows: list[Sample] = [((f32(rng, *xs), w), params) for xs, w, params in POOL_CASES]
        rows.append(((f16(rng, 1, 4, 4, 2), 2), {"padding": "SAME"}))
        if ints:
            rows.append(((i32(rng, 1, 5, 5, 2), 2), {"padding": "SAME"}))
        return rows

    return samples


def _pool_pair_samples(order: str) -> Any:
    """(x, ct) / (ct, x) / (x, tangent) samples for the pooling gradient ops."""

    def samples(rng: np.random.Generator) -> list[Sample]:
        rows: list[Sample] = []
        for xs, window, params in POOL_CASES:
            x = f32(rng, *xs)
            other_shape = xs if order == "x_tangent" else np_max_pool2d(x, window, **params).shape
            other = f32(rng, *other_shape)
            rows.append(((other, x, window) if order == "ct_x" else (x, other, window), params))
        return rows

    return samples


_TOL = {"rtol": 1e-4, "atol": 1e-5}  # sums of up to ~50 float32 products


def conv_opinfos() -> list[OpInfo]:
    """The rows. Built on demand: tests/opinfo.py imports ``CONV_OPS`` at its end, and this
    module needs its ``OpInfo``, so neither module imports the other while loading."""
    from opinfo import OpInfo

    return [
        OpInfo("conv2d", conv.conv2d, _conv_samples, np_conv2d, jax_conv2d, **_TOL),
        OpInfo(
            "conv2d_input_grad",
            conv.conv2d_input_grad,
            _conv_grad_samples("input"),
            np_conv2d_input_grad,
            jax_conv2d_input_grad,
            **_TOL,
        ),
        OpInfo(
            "conv2d_filter_grad",
            conv.conv2d_filter_grad,
            _conv_grad_samples("filter"),
            np_conv2d_filter_grad,
            jax_conv2d_filter_grad,
            **_TOL,
        ),
        OpInfo(
            "max_pool2d", conv.max_pool2d, _pool_samples(ints=True), np_max_pool2d, jax_max_pool2d
        ),
        OpInfo(
            "max_pool2d_grad",
            conv.max_pool2d_grad,
            _pool_pair_samples("x_ct"),
            np_max_pool2d_grad,
            jax_max_pool2d_grad,
        ),
        OpInfo(
            "max_pool2d_jvp",
            conv.max_pool2d_jvp,
            _pool_pair_samples("x_tangent"),
            np_max_pool2d_jvp,
            jax_max_pool2d_jvp,
        ),
        OpInfo(
            "avg_pool2d",
            conv.avg_pool2d,
            _pool_samples(ints=False),
            np_avg_pool2d,
            jax_avg_pool2d,
            **_TOL,
        ),
        OpInfo(
            "avg_pool2d_grad",
            conv.avg_pool2d_grad,
            _pool_pair_samples("ct_x"),
            np_avg_pool2d_grad,
            jax_avg_pool2d_grad,
            **_TOL,
        ),
    ]


def __getattr__(name: str) -> Any:
    if name == "CONV_OPS":  # computed once, on first access (see conv_opinfos)
        globals()["CONV_OPS"] = rows = conv_opinfos()
        return rows
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
