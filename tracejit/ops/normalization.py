"""Normalization ops: layer_norm, rms_norm, batch_norm (training and inference forms),
group_norm.

Each is one registry entry. The jax implementation computes the statistics in at least float32
(half-precision inputs are upcast, as flax does) and returns the promoted dtype of ``x`` and the
optional ``scale``/``offset``. The VJPs are written out with tracejit ops from the standard
closed forms (recomputing the statistics, which XLA fuses), so the backward IR is a dozen nodes
rather than a replay of the decomposition:

``x_hat = (x - mean) * inv``, ``inv = rsqrt(var + epsilon)``, ``g = ct * scale``,
``dx = inv * (g - mean(g) - x_hat * mean(g * x_hat))`` (means over the normalized axes),
``d_scale = sum(ct * x_hat)``, ``d_offset = sum(ct)`` (sums over the other axes).

``scale`` and ``offset`` have the shape of x's *parameter axes*: the normalized axes for
layer_norm/rms_norm, the feature axis for batch_norm, the channel axis for group_norm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.creation import ones_like
from tracejit.ops.elementwise import add, cast, divide, multiply, rsqrt, square, subtract
from tracejit.ops.infer import jax_dtype, normalize_axes, normalize_axis, shape_text
from tracejit.ops.jvp_rules import transpose_jvp
from tracejit.ops.like import cast_ct, reshape_like, takes_gradient
from tracejit.ops.reduction import mean
from tracejit.ops.reduction import sum as reduce_sum
from tracejit.ops.registry import OpDef, bind, defop
from tracejit.ops.shape import expand_dims, reshape
from tracejit.types import AVal, float32, is_floating

Axes = tuple[int, ...]


# Shared pieces -----------------------------------------------------------------------------------
def _others(axes: Axes, ndim: int) -> Axes:
    return tuple(a for a in range(ndim) if a not in axes)


def _compute_dtype(x: Any) -> Any:
    return jnp.promote_types(x.dtype, jnp.float32)


def _expand_param(p: Any, param_axes: Axes, ndim: int) -> Any:
    """A parameter of the shape of x's ``param_axes``, with size-1 dims at the other axes."""
    return jnp.expand_dims(p, _others(param_axes, ndim)) if p.ndim < ndim else p


def _affine(y: Any, params: Sequence[Any], scale: bool, offset: bool, param_axes: Axes) -> Any:
    rest = list(params)
    if scale:
        y = y * _expand_param(rest.pop(0), param_axes, y.ndim)
    if offset:
        y = y + _expand_param(rest.pop(0), param_axes, y.ndim)
    return y


def _result_dtype(x: Any, params: Sequence[Any]) -> Any:
    return jnp.result_type(x, *params)


def _check_input(name: str, x: AVal, minimum_rank: int = 1) -> None:
    if not is_floating(x.dtype):
        raise OpTypeError(name, f"needs a floating-point input, got {x.dtype}")
    if x.ndim < minimum_rank:
        raise ShapeError(
            name, f"needs an input of rank >= {minimum_rank}, got {shape_text(x.shape)}"
        )


def _check_params(
    name: str, x: AVal, params: Sequence[AVal], names: Sequence[str], axes: Axes
) -> None:
    want = tuple(x.shape[a] for a in axes)
    for what, p in zip(names, params, strict=True):
        fits = len(p.shape) == len(want) and all(
            d is None or w is None or d == w for d, w in zip(p.shape, want, strict=True)
        )
        if not fits:
            raise ShapeError(
                name,
                f"{what} must have shape {shape_text(want)} (x's axes {list(axes)} of "
                f"{shape_text(x.shape)}), got {shape_text(p.shape)}",
            )


def _param_names(scale: bool, offset: bool) -> list[str]:
    return (["scale"] if scale else []) + (["offset"] if offset else [])


def _count(x: Any, axes: Axes) -> Any:
    """How many elements ``axes`` of x hold: a Python float when known, else a run-time tensor."""
    dims = arg_aval("gradient", x).shape
    if None in (dims[a] for a in axes):
        return reduce_sum(ones_like(x, float32), axis=axes, keepdims=True)
    return float(math.prod(dims[a] for a in axes))  # type: ignore[misc]


def _param_cts(
    ct: Any, x_hat: Any, params: Sequence[Any], scale: bool, offset: bool, sum_axes: Axes
) -> list[Any]:
    cts: list[Any] = []
    if scale:
        cts.append(cast_ct(reduce_sum(multiply(ct, x_hat), axis=sum_axes), params[0]))
    if offset:
        cts.append(cast_ct(reduce_sum(ct, axis=sum_axes), params[-1]))
    return cts


def _scaled_ct(ct: Any, params: Sequence[Any], scale: bool, param_axes: Axes, ndim: int) -> Any:
    if not scale:
        return ct
    others = _others(param_axes, ndim)
    return multiply(ct, expand_dims(params[0], others) if others else params[0])


def _centered_dx(g: Any, x_hat: Any, inv: Any, axes: Axes) -> Any:
    """dx of ``x_hat = (x - mean) * inv`` for the cotangent ``g`` of x_hat."""
    inner = subtract(g, mean(g, axis=axes, keepdims=True))
    return multiply(
        inv, subtract(inner, multiply(x_hat, mean(multiply(g, x_hat), axis=axes, keepdims=True)))
    )


def _statistics(x: Any, axes: Axes, epsilon: float) -> tuple[Any, Any, Any, Any]:
    """(mean, centered x, inv, x_hat) in tracejit ops, in at least float32."""
    x32 = x if arg_aval("gradient", x).dtype.itemsize >= 4 else cast(x, float32)
    m = mean(x32, axis=axes, keepdims=True)
    xc = subtract(x32, m)
    inv = rsqrt(add(mean(square(xc), axis=axes, keepdims=True), epsilon))
    return m, xc, inv, multiply(xc, inv)


# layer_norm --------------------------------------------------------------------------------------
def _layer_norm(x: Any, *params: Any, axes: Axes, epsilon: float, scale: bool, offset: bool) -> Any:
    x32 = x.astype(_compute_dtype(x))
    m = jnp.mean(x32, axes, keepdims=True)
    var = jnp.mean(jnp.square(x32 - m), axes, keepdims=True)
    y = _affine((x32 - m) * jax.lax.rsqrt(var + epsilon), params, scale, offset, axes)
    return y.astype(_result_dtype(x, params))


def _infer_layer_norm(name: str, impl: Any) -> Any:
    def infer(
        x: AVal, *params: AVal, axes: Axes, epsilon: float, scale: bool, offset: bool
    ) -> AVal:
        _check_input(name, x)
        _check_params(name, x, params, _param_names(scale, offset), axes)
        kw = {"axes": axes, "epsilon": epsilon, "scale": scale, "offset": offset}
        dtype, weak = jax_dtype(name, impl, [x, *params], kw)
        return AVal(x.shape, dtype, weak)

    return infer


def _layer_norm_vjp(
    ct: Any, x: Any, *params: Any, out: Any, axes: Axes, epsilon: float, scale: bool, offset: bool
) -> list[Any]:
    ndim = len(arg_aval("gradient", x).shape)
    _, _, inv, x_hat = _statistics(x, axes, epsilon)
    others = _others(axes, ndim)
    cts = _param_cts(ct, x_hat, params, scale, offset, others)
    g = _scaled_ct(ct, params, scale, axes, ndim)
    dx = cast_ct(_centered_dx(g, x_hat, inv, axes), x) if takes_gradient(x) else None
    return [dx, *cts]


LAYER_NORM = defop(
    "layer_norm",
    _infer_layer_norm("layer_norm", _layer_norm),
    _layer_norm,
    _layer_norm_vjp,
    jvp=transpose_jvp("layer_norm"),
)


# rms_norm ----------------------------------------------------------------------------------------
def _rms_norm(x: Any, *params: Any, axes: Axes, epsilon: float, scale: bool, offset: bool) -> Any:
    x32 = x.astype(_compute_dtype(x))
    inv = jax.lax.rsqrt(jnp.mean(jnp.square(x32), axes, keepdims=True) + epsilon)
    return _affine(x32 * inv, params, scale, offset, axes).astype(_result_dtype(x, params))


def _rms_norm_vjp(
    ct: Any, x: Any, *params: Any, out: Any, axes: Axes, epsilon: float, scale: bool, offset: bool
) -> list[Any]:
    ndim = len(arg_aval("gradient", x).shape)
    x32 = x if arg_aval("gradient", x).dtype.itemsize >= 4 else cast(x, float32)
    inv = rsqrt(add(mean(square(x32), axis=axes, keepdims=True), epsilon))
    x_hat = multiply(x32, inv)
    cts = _param_cts(ct, x_hat, params, scale, offset, _others(axes, ndim))
    g = _scaled_ct(ct, params, scale, axes, ndim)
    dx = multiply(
        inv, subtract(g, multiply(x_hat, mean(multiply(g, x_hat), axis=axes, keepdims=True)))
    )
    return [cast_ct(dx, x) if takes_gradient(x) else None, *cts]


RMS_NORM = defop(
    "rms_norm",
    _infer_layer_norm("rms_norm", _rms_norm),
    _rms_norm,
    _rms_norm_vjp,
    jvp=transpose_jvp("rms_norm"),
)


# batch_norm --------------------------------------------------------------------------------------
def _batch_norm(
    x: Any, *params: Any, axes: Axes, epsilon: float, scale: bool, offset: bool
) -> tuple[Any, Any, Any]:
    x32 = x.astype(_compute_dtype(x))
    m = jnp.mean(x32, axes, keepdims=True)
    var = jnp.mean(jnp.square(x32 - m), axes, keepdims=True)
    features = _others(axes, x.ndim)
    y = _affine((x32 - m) * jax.lax.rsqrt(var + epsilon), params, scale, offset, features)
    dtype = _result_dtype(x, params)
    return y.astype(dtype), jnp.squeeze(m, axes).astype(dtype), jnp.squeeze(var, axes).astype(dtype)


def _infer_batch_norm(
    x: AVal, *params: AVal, axes: Axes, epsilon: float, scale: bool, offset: bool
) -> tuple[AVal, AVal, AVal]:
    _check_input("batch_norm", x, 2)
    features = _others(axes, x.ndim)
    _check_params("batch_norm", x, params, _param_names(scale, offset), features)
    kw = {"axes": axes, "epsilon": epsilon, "scale": scale, "offset": offset}
    dtype, weak = jax_dtype("batch_norm", lambda *a, **k: _batch_norm(*a, **k)[0], [x, *params], kw)
    stats = AVal(tuple(x.shape[a] for a in features), dtype, weak)
    return AVal(x.shape, dtype, weak), stats, stats


def _batch_norm_vjp(
    cts: tuple[Any, Any, Any],
    x: Any,
    *params: Any,
    out: Any,
    axes: Axes,
    epsilon: float,
    scale: bool,
    offset: bool,
) -> list[Any]:
    ct, ct_mean, ct_var = cts
    ndim = len(arg_aval("gradient", x).shape)
    _, xc, inv, x_hat = _statistics(x, axes, epsilon)
    features = _others(axes, ndim)
    param_cts = _param_cts(ct, x_hat, params, scale, offset, axes)
    if not takes_gradient(x):
        return [None, *param_cts]
    g = _scaled_ct(ct, params, scale, features, ndim)
    dx = _centered_dx(g, x_hat, inv, axes)
    # The batch statistics are outputs too: d mean/dx = 1/N, d var/dx = 2 (x - mean) / N.
    stats_ct = add(
        expand_dims(ct_mean, axes), multiply(multiply(2.0, expand_dims(ct_var, axes)), xc)
    )
    dx = add(dx, divide(stats_ct, _count(x, axes)))
    return [cast_ct(dx, x), *param_cts]


BATCH_NORM = defop(
    "batch_norm",
    _infer_batch_norm,
    _batch_norm,
    _batch_norm_vjp,
    multiple_results=True,
    jvp=transpose_jvp("batch_norm"),
)


def _batch_norm_inference(
    x: Any,
    mean_: Any,
    variance: Any,
    *params: Any,
    axes: Axes,
    epsilon: float,
    scale: bool,
    offset: bool,
) -> Any:
    features = _others(axes, x.ndim)
    dtype = _compute_dtype(x)
    inv = jax.lax.rsqrt(_expand_param(variance.astype(dtype), features, x.ndim) + epsilon)
    y = (x.astype(dtype) - _expand_param(mean_.astype(dtype), features, x.ndim)) * inv
    return _affine(y, params, scale, offset, features).astype(
        _result_dtype(x, (mean_, variance, *params))
    )


def _infer_batch_norm_inference(
    x: AVal,
    mean_: AVal,
    variance: AVal,
    *params: AVal,
    axes: Axes,
    epsilon: float,
    scale: bool,
    offset: bool,
) -> AVal:
    _check_input("batch_norm_inference", x, 1)
    names = ["mean", "variance", *_param_names(scale, offset)]
    _check_params(
        "batch_norm_inference", x, (mean_, variance, *params), names, _others(axes, x.ndim)
    )
    kw = {"axes": axes, "epsilon": epsilon, "scale": scale, "offset": offset}
    dtype, weak = jax_dtype(
        "batch_norm_inference", _batch_norm_inference, [x, mean_, variance, *params], kw
    )
    return AVal(x.shape, dtype, weak)


def _batch_norm_inference_vjp(
    ct: Any,
    x: Any,
    mean_: Any,
    variance: Any,
    *params: Any,
    out: Any,
    axes: Axes,
    epsilon: float,
    scale: bool,
    offset: bool,
) -> list[Any]:
    ndim = len(arg_aval("gradient", x).shape)
    features = _others(axes, ndim)

    def expand(t: Any) -> Any:
        return expand_dims(t, axes) if axes else t

    inv = rsqrt(add(expand(variance), epsilon))
    xc = subtract(x, expand(mean_))
    x_hat = multiply(xc, inv)
    param_cts = _param_cts(ct, x_hat, params, scale, offset, axes)
    g = _scaled_ct(ct, params, scale, features, ndim)
    d_x_hat = multiply(g, inv)  # ct of (x - mean) before scaling by inv
    d_mean = cast_ct(reduce_sum(d_x_hat, axis=axes), mean_)
    d_mean = None if d_mean is None else multiply(d_mean, -1.0)
    # x_hat = xc * (var + eps)^(-1/2): d/d var = -1/2 xc (var + eps)^(-3/2) = -1/2 x_hat inv^2.
    d_var = reduce_sum(multiply(multiply(g, x_hat), multiply(square(inv), -0.5)), axis=axes)
    dx = cast_ct(d_x_hat, x) if takes_gradient(x) else None
    return [dx, d_mean, cast_ct(d_var, variance), *param_cts]


BATCH_NORM_INFERENCE = defop(
    "batch_norm_inference",
    _infer_batch_norm_inference,
    _batch_norm_inference,
    _batch_norm_inference_vjp,
    jvp=transpose_jvp("batch_norm_inference"),
)


# group_norm --------------------------------------------------------------------------------------
def _grouped_shape(shape: Sequence[int | None], axis: int, groups: int) -> tuple[int, ...]:
    """x's shape with the channel axis split into (groups, channels // groups); -1 for the one
    dim that may be unknown."""
    dims = [-1 if d is None else d for d in shape]
    return (*dims[:axis], groups, dims[axis] // groups, *dims[axis + 1 :])


def _group_axes(ndim: int, axis: int) -> Axes:
    """The axes of the grouped shape that group_norm averages over: all but batch and group."""
    return tuple(a for a in range(1, ndim + 1) if a != axis)


def _group_norm(
    x: Any, *params: Any, groups: int, axis: int, epsilon: float, scale: bool, offset: bool
) -> Any:
    x32 = x.astype(_compute_dtype(x))
    grouped = x32.reshape(_grouped_shape(x.shape, axis, groups))
    axes = _group_axes(x.ndim, axis)
    m = jnp.mean(grouped, axes, keepdims=True)
    var = jnp.mean(jnp.square(grouped - m), axes, keepdims=True)
    y = ((grouped - m) * jax.lax.rsqrt(var + epsilon)).reshape(x.shape)
    return _affine(y, params, scale, offset, (axis,)).astype(_result_dtype(x, params))


def _infer_group_norm(
    x: AVal, *params: AVal, groups: int, axis: int, epsilon: float, scale: bool, offset: bool
) -> AVal:
    _check_input("group_norm", x, 2)
    channels = x.shape[axis]
    if axis == 0:
        raise OpError("group_norm", "axis 0 is the batch axis; the channel axis must be another")
    if channels is None or channels % groups:
        raise ShapeError(
            "group_norm",
            f"the channel axis {axis} of {shape_text(x.shape)} must be known and divisible by "
            f"groups={groups}",
        )
    if sum(d is None for d in x.shape) > 1:
        raise ShapeError("group_norm", f"needs at most one unknown dim, got {shape_text(x.shape)}")
    _check_params("group_norm", x, params, _param_names(scale, offset), (axis,))
    kw = {"groups": groups, "axis": axis, "epsilon": epsilon, "scale": scale, "offset": offset}
    dtype, weak = jax_dtype("group_norm", _group_norm_dtype, [x, *params], kw)
    return AVal(x.shape, dtype, weak)


def _group_norm_dtype(x: Any, *params: Any, **kw: Any) -> Any:
    return jnp.zeros((), _result_dtype(x, params))  # _group_norm itself needs the real shapes


def _group_norm_vjp(
    ct: Any,
    x: Any,
    *params: Any,
    out: Any,
    groups: int,
    axis: int,
    epsilon: float,
    scale: bool,
    offset: bool,
) -> list[Any]:
    shape = arg_aval("gradient", x).shape
    ndim = len(shape)
    grouped_shape = _grouped_shape(shape, axis, groups)
    axes = _group_axes(ndim, axis)
    _, _, inv, x_hat = _statistics(reshape(x, grouped_shape), axes, epsilon)
    x_hat_full = reshape_like(x_hat, x)
    param_cts = _param_cts(ct, x_hat_full, params, scale, offset, _others((axis,), ndim))
    if not takes_gradient(x):
        return [None, *param_cts]
    g = reshape(_scaled_ct(ct, params, scale, (axis,), ndim), grouped_shape)
    return [cast_ct(reshape_like(_centered_dx(g, x_hat, inv, axes), x), x), *param_cts]


GROUP_NORM = defop(
    "group_norm", _infer_group_norm, _group_norm, _group_norm_vjp, jvp=transpose_jvp("group_norm")
)


# Public functions --------------------------------------------------------------------------------
def _bind_affine(
    op: OpDef, x: Any, extra: Sequence[Any], scale: Any, offset: Any, **params: Any
) -> Any:
    given = [p for p in (scale, offset) if p is not None]
    return bind(op, x, *extra, *given, scale=scale is not None, offset=offset is not None, **params)


def _axes(name: str, x: Any, axis: int | Sequence[int]) -> Axes:
    return normalize_axes(name, axis, arg_aval(name, x).ndim)


@locates_errors
def layer_norm(
    x: Any,
    scale: Any = None,
    offset: Any = None,
    axis: int | Sequence[int] = -1,
    epsilon: float = 1e-3,
) -> Any:
    """Normalize ``x`` to zero mean and unit variance over ``axis`` (an int or a tuple), then
    ``* scale + offset`` (both optional, of the shape of x's normalized axes). ``epsilon``
    defaults to Keras' ``LayerNormalization``'s 1e-3.

    >>> import tracejit as tj
    >>> tj.nn.layer_norm(tj.constant([[1.0, 3.0]])).numpy().round(4)
    array([[-0.9995,  0.9995]], dtype=float32)
    """
    axes = _axes("layer_norm", x, axis)
    return _bind_affine(LAYER_NORM, x, (), scale, offset, axes=axes, epsilon=float(epsilon))


@locates_errors
def rms_norm(
    x: Any, scale: Any = None, axis: int | Sequence[int] = -1, epsilon: float = 1e-6
) -> Any:
    """``x / sqrt(mean(x ** 2, axis) + epsilon) * scale`` (root-mean-square normalization, no
    centering; ``scale`` optional, of the shape of x's normalized axes).

    >>> import tracejit as tj
    >>> tj.nn.rms_norm(tj.constant([3.0, 4.0])).numpy().round(4)
    array([0.8485, 1.1314], dtype=float32)
    """
    axes = _axes("rms_norm", x, axis)
    return _bind_affine(RMS_NORM, x, (), scale, None, axes=axes, epsilon=float(epsilon))


@locates_errors
def batch_norm(
    x: Any,
    scale: Any = None,
    offset: Any = None,
    *,
    mean: Any = None,
    variance: Any = None,
    axis: int = -1,
    epsilon: float = 1e-3,
) -> Any:
    """Batch normalization over all axes but the feature ``axis``.

    Training form (``mean`` and ``variance`` not given): normalizes with the batch statistics
    and returns ``(y, batch_mean, batch_variance)`` (the biased variance, as Keras uses); all
    three are differentiable. Inference form (both given, of shape ``(features,)``): returns
    ``(x - mean) / sqrt(variance + epsilon) * scale + offset``.

    >>> import tracejit as tj
    >>> y, m, v = tj.nn.batch_norm(tj.constant([[1.0], [3.0]]))
    >>> m.numpy(), v.numpy()
    (array([2.], dtype=float32), array([1.], dtype=float32))
    """
    ndim = arg_aval("batch_norm", x).ndim
    features = normalize_axis("batch_norm", axis, ndim)
    axes = tuple(a for a in range(ndim) if a != features)
    if (mean is None) != (variance is None):
        raise OpError("batch_norm", "give both mean and variance (inference form) or neither")
    if mean is None:
        return _bind_affine(BATCH_NORM, x, (), scale, offset, axes=axes, epsilon=float(epsilon))
    return _bind_affine(
        BATCH_NORM_INFERENCE, x, (mean, variance), scale, offset, axes=axes, epsilon=float(epsilon)
    )


@locates_errors
def group_norm(
    x: Any,
    groups: int,
    scale: Any = None,
    offset: Any = None,
    axis: int = -1,
    epsilon: float = 1e-3,
) -> Any:
    """Group normalization: the channels (``axis``) are split into ``groups`` groups, and each
    example's group is normalized over its channels and all non-batch axes; then per-channel
    ``* scale + offset``. Axis 0 is the batch axis.

    >>> import tracejit as tj
    >>> tj.nn.group_norm(tj.constant([[1.0, 3.0, 5.0, 5.0]]), 2).numpy().round(4)
    array([[-0.9995,  0.9995,  0.    ,  0.    ]], dtype=float32)
    """
    ndim = arg_aval("group_norm", x).ndim
    if not isinstance(groups, int) or groups < 1:
        raise OpError("group_norm", f"groups must be a positive int, got {groups!r}")
    return _bind_affine(
        GROUP_NORM,
        x,
        (),
        scale,
        offset,
        groups=groups,
        axis=normalize_axis("group_norm", axis, ndim),
        epsilon=float(epsilon),
    )
