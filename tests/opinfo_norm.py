"""OpInfo rows for the normalization ops (tracejit/ops/normalization.py) and the fused sparse
softmax cross-entropy (tracejit/ops/fused.py).

References are written once over a numpy-like module: ``numpy`` in float64 for values, and
``jax.numpy`` (computing in the inputs' dtype promoted to float32, as the ops do) for dtypes and
for the ``jax.grad`` gradient checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

import tracejit as tj
from tracejit.ops.fused import sparse_softmax_cross_entropy_op

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def _prep(xp: Any, x: Any, *params: Any) -> tuple[Any, list[Any], Any]:
    """Inputs in the compute dtype, and the result dtype."""
    if xp is np:
        return np.asarray(x, np.float64), [np.asarray(p, np.float64) for p in params], np.float64
    dtype = jnp.result_type(x, *params)
    return jnp.asarray(x, jnp.promote_types(dtype, jnp.float32)), list(params), dtype


def _axes(x: Any, axis: Any) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % x.ndim for a in axes))


def _expand(xp: Any, p: Any, param_axes: tuple[int, ...], ndim: int) -> Any:
    return xp.expand_dims(p, tuple(a for a in range(ndim) if a not in param_axes))


def _affine(xp: Any, y: Any, scale: Any, offset: Any, param_axes: tuple[int, ...]) -> Any:
    if scale is not None:
        y = y * _expand(xp, scale, param_axes, y.ndim)
    if offset is not None:
        y = y + _expand(xp, offset, param_axes, y.ndim)
    return y


def layer_norm_ref(xp: Any) -> Any:
    def ref(
        x: Any, scale: Any = None, offset: Any = None, axis: Any = -1, epsilon: float = 1e-3
    ) -> Any:
        given = [p for p in (scale, offset) if p is not None]
        x, _, dtype = _prep(xp, x, *given)
        axes = _axes(x, axis)
        m = xp.mean(x, axis=axes, keepdims=True)
        var = xp.mean((x - m) ** 2, axis=axes, keepdims=True)
        return _affine(xp, (x - m) / xp.sqrt(var + epsilon), scale, offset, axes).astype(dtype)

    return ref


def rms_norm_ref(xp: Any) -> Any:
    def ref(x: Any, scale: Any = None, axis: Any = -1, epsilon: float = 1e-6) -> Any:
        x, _, dtype = _prep(xp, x, *([scale] if scale is not None else []))
        axes = _axes(x, axis)
        y = x / xp.sqrt(xp.mean(x * x, axis=axes, keepdims=True) + epsilon)
        return _affine(xp, y, scale, None, axes).astype(dtype)

    return ref


def batch_norm_ref(xp: Any) -> Any:
    def ref(
        x: Any,
        scale: Any = None,
        offset: Any = None,
        *,
        mean: Any = None,
        variance: Any = None,
        axis: int = -1,
        epsilon: float = 1e-3,
    ) -> Any:
        given = [p for p in (scale, offset, mean, variance) if p is not None]
        x, _, dtype = _prep(xp, x, *given)
        feature = axis % x.ndim
        axes = tuple(a for a in range(x.ndim) if a != feature)
        if mean is None:
            m = xp.mean(x, axis=axes, keepdims=True)
            var = xp.mean((x - m) ** 2, axis=axes, keepdims=True)
        else:
            m = _expand(xp, mean, (feature,), x.ndim)
            var = _expand(xp, variance, (feature,), x.ndim)
        y = _affine(xp, (x - m) / xp.sqrt(var + epsilon), scale, offset, (feature,)).astype(dtype)
        if mean is not None:
            return y
        return y, xp.squeeze(m, axes).astype(dtype), xp.squeeze(var, axes).astype(dtype)

    return ref


def group_norm_ref(xp: Any) -> Any:
    def ref(
        x: Any,
        groups: int,
        scale: Any = None,
        offset: Any = None,
        axis: int = -1,
        epsilon: float = 1e-3,
    ) -> Any:
        given = [p for p in (scale, offset) if p is not None]
        x, _, dtype = _prep(xp, x, *given)
        axis = axis % x.ndim
        shape = x.shape
        grouped = x.reshape(shape[:axis] + (groups, shape[axis] // groups) + shape[axis + 1 :])
        axes = tuple(a for a in range(1, x.ndim + 1) if a != axis)
        m = xp.mean(grouped, axis=axes, keepdims=True)
        var = xp.mean((grouped - m) ** 2, axis=axes, keepdims=True)
        y = ((grouped - m) / xp.sqrt(var + epsilon)).reshape(shape)
        return _affine(xp, y, scale, offset, (axis,)).astype(dtype)

    return ref


def sparse_sce_ref(xp: Any) -> Any:
    def ref(logits: Any, labels: Any) -> Any:
        logits = xp.asarray(logits, np.float64) if xp is np else jnp.asarray(logits)
        top = xp.max(logits, axis=-1, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(logits - top), axis=-1)) + top[..., 0]
        picked = xp.take_along_axis(logits, xp.asarray(labels)[..., None], axis=-1)[..., 0]
        return lse - picked

    return ref


def rows(OpInfo: type[OpInfo], f32: Any, f16: Any) -> list[OpInfo]:  # noqa: N803 - a class
    """The rows; ``OpInfo`` and the sample helpers come from tests/opinfo.py."""

    def layer_samples(rng: np.random.Generator) -> list[Sample]:
        return [
            ((f32(rng, 4, 6) * 2 + 1, f32(rng, 6), f32(rng, 6)), {}),
            ((f32(rng, 2, 3, 4), f32(rng, 3, 4)), {"axis": (1, 2), "epsilon": 1e-5}),
            ((f32(rng, 3, 4, 2),), {"axis": 1}),  # a middle axis, no scale or offset
            ((f16(rng, 3, 8), f32(rng, 8), f32(rng, 8)), {}),
        ]

    def rms_samples(rng: np.random.Generator) -> list[Sample]:
        return [
            ((f32(rng, 4, 6), f32(rng, 6)), {}),
            ((f32(rng, 2, 3, 4),), {"axis": (1, 2)}),
            ((f16(rng, 3, 8), f16(rng, 8)), {}),
        ]

    def batch_samples(rng: np.random.Generator) -> list[Sample]:
        return [
            ((f32(rng, 8, 3), f32(rng, 3), f32(rng, 3)), {}),
            ((f32(rng, 4, 3, 5), f32(rng, 3)), {"axis": 1, "epsilon": 1e-5}),  # channels first
            ((f32(rng, 6, 2, 2, 3),), {}),
        ]

    def inference_samples(rng: np.random.Generator) -> list[Sample]:
        var = lambda n: rng.uniform(0.5, 2.0, n).astype(np.float32)  # noqa: E731
        return [
            ((f32(rng, 5, 3), f32(rng, 3), f32(rng, 3)), {"mean": f32(rng, 3), "variance": var(3)}),
            ((f32(rng, 2, 4, 3),), {"mean": f32(rng, 4), "variance": var(4), "axis": 1}),
        ]

    def group_samples(rng: np.random.Generator) -> list[Sample]:
        return [
            ((f32(rng, 3, 5, 6), 3, f32(rng, 6), f32(rng, 6)), {}),
            ((f32(rng, 2, 4, 3, 3), 2, f32(rng, 4)), {"axis": 1, "epsilon": 1e-5}),
            ((f32(rng, 4, 8), 8), {}),  # one channel per group
        ]

    def sce_samples(rng: np.random.Generator) -> list[Sample]:
        labels = lambda *shape: rng.integers(0, 5, shape).astype(np.int32)  # noqa: E731
        return [
            ((f32(rng, 4, 5) * 3, labels(4)), {}),
            ((f32(rng, 2, 3, 5), labels(2, 3)), {}),
            ((f32(rng, 5), labels()), {}),
        ]

    return [
        OpInfo(
            "sparse_softmax_cross_entropy",
            sparse_softmax_cross_entropy_op,
            sce_samples,
            sparse_sce_ref(np),
            sparse_sce_ref(jnp),
            rtol=1e-5,
            atol=1e-6,
        ),
        OpInfo(
            "layer_norm",
            tj.nn.layer_norm,
            layer_samples,
            layer_norm_ref(np),
            layer_norm_ref(jnp),
            rtol=1e-4,
            atol=1e-5,
        ),
        OpInfo(
            "rms_norm",
            tj.nn.rms_norm,
            rms_samples,
            rms_norm_ref(np),
            rms_norm_ref(jnp),
            rtol=1e-4,
            atol=1e-5,
        ),
        OpInfo(
            "batch_norm",
            tj.nn.batch_norm,
            batch_samples,
            batch_norm_ref(np),
            batch_norm_ref(jnp),
            rtol=1e-4,
            atol=1e-5,
            skip_unknown=False,
        ),
        OpInfo(
            "batch_norm_inference",
            tj.nn.batch_norm,
            inference_samples,
            batch_norm_ref(np),
            batch_norm_ref(jnp),
            rtol=1e-4,
            atol=1e-5,
            variant="inference",
        ),
        OpInfo(
            "group_norm",
            tj.nn.group_norm,
            group_samples,
            group_norm_ref(np),
            group_norm_ref(jnp),
            rtol=1e-4,
            atol=1e-5,
        ),
    ]
