"""Convolution and pooling over NHWC images: ``conv2d``, ``max_pool2d``, ``avg_pool2d``, and the
ops their gradients are made of.

Layouts and padding follow TF's ``tf.nn``: images are NHWC (batch, height, width, channels),
kernels HWIO (height, width, in_channels, out_channels). Strides, windows and dilations are ints or
``(height, width)`` pairs, kept as pairs in params. ``"VALID"`` uses only whole windows;
``"SAME"`` pads so that ``out = ceil(in / stride)``, the odd row or column going at the high end;
average pooling with ``"SAME"`` averages over the valid (unpadded) elements only.

The backward passes are ops of their own, implemented by letting jax transpose the forward
(``jax.linear_transpose`` for the linear ones, ``jax.vjp``/``jax.jvp`` for max pooling), so they
agree with ``jax.grad`` exactly. Their own VJPs close the family, so gradients of any order work:
conv2d and its two gradients are bilinear, hence each is the others' transpose; avg_pool2d_grad is
the transpose of the linear avg_pool2d; max_pool2d_grad (scatter to each window's argmax) and
max_pool2d_jvp (gather from it) are transposes of each other, and constant in ``x`` almost
everywhere, so they give ``x`` no cotangent.

A gradient op takes the tensor whose shape it produces as an operand and reads only its shape, so
unknown dims (the batch, or height and width in a fully convolutional net) stay unknown while
tracing and are fixed when the graph is compiled.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, locates_errors
from tracejit.ops.infer import shape_text
from tracejit.ops.jvp_rules import bilinear_jvp, linear_jvp, transpose_jvp
from tracejit.ops.registry import OpDef, bind, defop
from tracejit.tracing import context
from tracejit.types import AVal, Shape, is_floating, is_integer

Pair = tuple[int, int]
Dim = int | None
_LAYOUT = ("NHWC", "HWIO", "NHWC")  # jax dimension numbers: input, kernel, output


# Params -------------------------------------------------------------------------------------------
def _pair(op: str, name: str, value: Any) -> Pair:
    """An int or a pair of ints, each >= 1, as a pair of Python ints."""
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        pair = tuple(items)
    except TypeError:
        pair = ()
    if (
        len(pair) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
        and min(pair) >= 1
    ):
        return int(pair[0]), int(pair[1])
    raise OpError(op, f"{name} must be a positive int or a pair of them, got {value!r}")


def _padding(op: str, padding: Any) -> str:
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        return padding.upper()
    raise OpError(op, f'padding must be "SAME" or "VALID", got {padding!r}')


def _conv_params(op: str, strides: Any, padding: Any, dilation: Any) -> dict[str, Any]:
    return {
        "strides": _pair(op, "strides", strides),
        "padding": _padding(op, padding),
        "dilation": _pair(op, "dilation", dilation),
    }


def _pool_params(op: str, window: Any, strides: Any, padding: Any) -> dict[str, Any]:
    window = _pair(op, "window", window)
    strides = window if strides is None else _pair(op, "strides", strides)
    return {"window": window, "strides": strides, "padding": _padding(op, padding)}


def _bind(op: OpDef, *args: Any, **params: Any) -> Any:
    """``bind``, checking the inputs first when running eagerly: jax silently returns an empty
    result for a window larger than the input, where TF (and tracing, which infers) raise."""
    if context.state.builder is None:
        op.infer(*(arg_aval(op.name, a) for a in args), **params)
    return bind(op, *args, **params)


# Shape inference ----------------------------------------------------------------------------------
def _check_image(op: str, what: str, x: AVal) -> None:
    if x.ndim != 4:
        shape = shape_text(x.shape)
        raise ShapeError(
            op, f"{what} must be 4-D NHWC (batch, height, width, channels), got {shape}"
        )


def _check_dtype(op: str, x: AVal, *, ints: bool = False) -> None:
    if not (is_floating(x.dtype) or (ints and is_integer(x.dtype))):
        kinds = "a floating-point or integer" if ints else "a floating-point"
        raise OpTypeError(op, f"needs {kinds} input, got {x.dtype}")


def _same_dtype(op: str, first: AVal, second: AVal, names: str) -> None:
    if first.dtype != second.dtype:
        raise OpTypeError(
            op, f"{names} dtypes differ: {first.dtype} and {second.dtype}; cast one with tj.cast"
        )


def _merged(first: Shape, second: Shape) -> Shape | None:
    """Two shapes that must agree, known dims of either filling unknown dims of the other; None
    when they disagree."""
    if len(first) != len(second) or any(
        a is not None and b is not None and a != b for a, b in zip(first, second, strict=True)
    ):
        return None
    return tuple(b if a is None else a for a, b in zip(first, second, strict=True))


def _spatial(
    op: str, x: AVal, extent: tuple[Dim, Dim], strides: Pair, padding: str, what: str
) -> tuple[Dim, Dim]:
    """Output height and width of sliding a window of ``extent`` over ``x``'s height and width."""
    out: list[Dim] = []
    for size, span, stride in zip(x.shape[1:3], extent, strides, strict=True):
        if size is None or (padding == "VALID" and span is None):
            out.append(None)
        elif padding == "SAME":
            out.append(-(-size // stride))
        elif size < span:
            raise ShapeError(
                op,
                f"{what} is larger than the input's height and width {x.shape[1]}x{x.shape[2]} "
                f'(input {shape_text(x.shape)}) with VALID padding; use padding="SAME" or a '
                "smaller window",
            )
        else:
            out.append((size - span) // stride + 1)
    return out[0], out[1]


def _infer_conv2d(
    x: AVal, kernel: AVal, *, strides: Pair, padding: str, dilation: Pair, op: str = "conv2d"
) -> AVal:
    _check_image(op, "input", x)
    if kernel.ndim != 4:
        raise ShapeError(
            op,
            "kernel must be 4-D HWIO (height, width, in_channels, out_channels), "
            f"got {shape_text(kernel.shape)}",
        )
    _check_dtype(op, x)
    _same_dtype(op, x, kernel, "input and kernel")
    channels, in_channels = x.shape[3], kernel.shape[2]
    if channels is not None and in_channels is not None and channels != in_channels:
        raise ShapeError(
            op,
            f"kernel in-channels {in_channels} != input channels {channels}: input "
            f"{shape_text(x.shape)} (NHWC), kernel {shape_text(kernel.shape)} (HWIO)",
        )
    extent = tuple(
        None if k is None else (k - 1) * d + 1
        for k, d in zip(kernel.shape[:2], dilation, strict=True)
    )
    what = f"kernel {_size_text(kernel.shape[:2])}"
    if dilation != (1, 1):
        what += f" dilated by {dilation[0]}x{dilation[1]} to {_size_text(extent)}"
    height, width = _spatial(op, x, extent, strides, padding, what)  # type: ignore[arg-type]
    return AVal((x.shape[0], height, width, kernel.shape[3]), x.dtype, False)


def _size_text(dims: Sequence[Dim]) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def _check_ct(op: str, ct: AVal, expected: AVal, of: str) -> Shape:
    """The cotangent's shape, merged with the forward output's shape it must have."""
    _check_image(op, "cotangent", ct)
    _same_dtype(op, ct, expected, "cotangent and forward output")
    merged = _merged(ct.shape, expected.shape)
    if merged is None:
        raise ShapeError(
            op,
            f"cotangent shape {shape_text(ct.shape)} does not match the forward output shape "
            f"{shape_text(expected.shape)} of {of}",
        )
    return merged


def _either(first: Dim, second: Dim) -> Dim:
    return second if first is None else first


def _infer_conv2d_input_grad(ct: AVal, kernel: AVal, x: AVal, **params: Any) -> AVal:
    op = "conv2d_input_grad"
    out = _infer_conv2d(x, kernel, op=op, **params)
    merged = _check_ct(op, ct, out, f"input {shape_text(x.shape)}")
    shape = (merged[0], x.shape[1], x.shape[2], _either(x.shape[3], kernel.shape[2]))
    return AVal(shape, x.dtype, False)


def _infer_conv2d_filter_grad(x: AVal, ct: AVal, kernel: AVal, **params: Any) -> AVal:
    op = "conv2d_filter_grad"
    out = _infer_conv2d(x, kernel, op=op, **params)
    merged = _check_ct(op, ct, out, f"kernel {shape_text(kernel.shape)}")
    shape = (*kernel.shape[:2], _either(kernel.shape[2], x.shape[3]), merged[3])
    return AVal(shape, kernel.dtype, False)


def _pool_output(op: str, x: AVal, window: Pair, strides: Pair, padding: str, ints: bool) -> AVal:
    _check_image(op, "input", x)
    _check_dtype(op, x, ints=ints)
    height, width = _spatial(op, x, window, strides, padding, f"window {_size_text(window)}")
    return AVal((x.shape[0], height, width, x.shape[3]), x.dtype, False)


def _infer_max_pool2d(x: AVal, **params: Any) -> AVal:
    return _pool_output("max_pool2d", x, **params, ints=True)


def _infer_avg_pool2d(x: AVal, **params: Any) -> AVal:
    return _pool_output("avg_pool2d", x, **params, ints=False)


def _pool_grad_output(op: str, x: AVal, ct: AVal, params: dict[str, Any]) -> AVal:
    merged = _check_ct(
        op, ct, _pool_output(op, x, **params, ints=False), f"input {shape_text(x.shape)}"
    )
    return AVal((merged[0], *x.shape[1:]), x.dtype, False)


def _infer_max_pool2d_grad(x: AVal, ct: AVal, **params: Any) -> AVal:
    return _pool_grad_output("max_pool2d_grad", x, ct, params)


def _infer_avg_pool2d_grad(ct: AVal, x: AVal, **params: Any) -> AVal:
    return _pool_grad_output("avg_pool2d_grad", x, ct, params)


def _infer_max_pool2d_jvp(x: AVal, tangent: AVal, **params: Any) -> AVal:
    op = "max_pool2d_jvp"
    _check_image(op, "tangent", tangent)
    _same_dtype(op, x, tangent, "input and tangent")
    shape = _merged(x.shape, tangent.shape)
    if shape is None:
        raise ShapeError(
            op, f"tangent shape {shape_text(tangent.shape)} != input shape {shape_text(x.shape)}"
        )
    return _pool_output(op, AVal(shape, x.dtype, False), **params, ints=False)


# Implementations (jax) ----------------------------------------------------------------------------
def _conv2d(x: Any, kernel: Any, *, strides: Pair, padding: str, dilation: Pair) -> Any:
    return jax.lax.conv_general_dilated(
        x, kernel, strides, padding, rhs_dilation=dilation, dimension_numbers=_LAYOUT
    )


def _transpose(linear: Any, like: Any, ct: Any) -> Any:
    """The transpose of the linear function ``linear`` (whose input looks like ``like``) at
    ``ct``; jax transposes it abstractly, without running it."""
    struct = jax.ShapeDtypeStruct(like.shape, like.dtype)
    (result,) = jax.linear_transpose(linear, struct)(jnp.asarray(ct, like.dtype))
    return result


def _conv2d_input_grad(ct: Any, kernel: Any, x: Any, **params: Any) -> Any:
    return _transpose(lambda v: _conv2d(v, kernel, **params), x, ct)


def _conv2d_filter_grad(x: Any, ct: Any, kernel: Any, **params: Any) -> Any:
    return _transpose(lambda k: _conv2d(x, k, **params), kernel, ct)


def _window(x: Any, init: Any, reducer: Any, window: Pair, strides: Pair, padding: str) -> Any:
    return jax.lax.reduce_window(
        x, np.array(init, x.dtype), reducer, (1, *window, 1), (1, *strides, 1), padding
    )


def _lowest(dtype: Any) -> Any:
    return -np.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min


def _max_pool2d(x: Any, *, window: Pair, strides: Pair, padding: str) -> Any:
    # -inf (the identity of max) lets jax recognize the max monoid, which it knows how to
    # differentiate.
    return _window(x, _lowest(x.dtype), jax.lax.max, window, strides, padding)


def _avg_pool2d(x: Any, *, window: Pair, strides: Pair, padding: str) -> Any:
    total = _window(x, 0, jax.lax.add, window, strides, padding)
    if padding == "VALID":
        return total / np.array(window[0] * window[1], x.dtype)
    # SAME: divide by how many elements of each window lie inside the input (a constant).
    ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
    return total / _window(ones, 0, jax.lax.add, window, strides, padding)


def _max_pool2d_grad(x: Any, ct: Any, **params: Any) -> Any:
    _, pullback = jax.vjp(functools.partial(_max_pool2d, **params), x)
    (result,) = pullback(jnp.asarray(ct, x.dtype))
    return result


def _max_pool2d_jvp(x: Any, tangent: Any, **params: Any) -> Any:
    pool = functools.partial(_max_pool2d, **params)
    return jax.jvp(pool, (x,), (jnp.asarray(tangent, x.dtype),))[1]


def _avg_pool2d_grad(ct: Any, x: Any, **params: Any) -> Any:
    return _transpose(functools.partial(_avg_pool2d, **params), x, ct)


# VJP rules: ``vjp(ct, *primals, out, **params)``, written with the ops of this module ----------
def _conv2d_vjp(ct: Any, x: Any, kernel: Any, *, out: Any, **params: Any) -> tuple[Any, ...]:
    return conv2d_input_grad(ct, kernel, x, **params), conv2d_filter_grad(x, ct, kernel, **params)


def _conv2d_input_grad_vjp(
    g: Any, ct: Any, kernel: Any, x: Any, *, out: Any, **params: Any
) -> tuple[Any, ...]:
    # input_grad(ct, kernel) is bilinear: conv2d(., kernel) transposed.
    return conv2d(g, kernel, **params), conv2d_filter_grad(g, ct, kernel, **params), None


def _conv2d_filter_grad_vjp(
    g: Any, x: Any, ct: Any, kernel: Any, *, out: Any, **params: Any
) -> tuple[Any, ...]:
    return conv2d_input_grad(ct, g, x, **params), conv2d(x, g, **params), None


def _max_pool2d_vjp(ct: Any, x: Any, *, out: Any, **params: Any) -> tuple[Any]:
    return (max_pool2d_grad(x, ct, **params),)


def _max_pool2d_grad_vjp(g: Any, x: Any, ct: Any, *, out: Any, **params: Any) -> tuple[Any, ...]:
    return None, max_pool2d_jvp(x, g, **params)


def _max_pool2d_jvp_vjp(g: Any, x: Any, tangent: Any, *, out: Any, **params: Any) -> tuple:
    return None, max_pool2d_grad(x, g, **params)


def _avg_pool2d_vjp(ct: Any, x: Any, *, out: Any, **params: Any) -> tuple[Any]:
    return (avg_pool2d_grad(ct, x, **params),)


def _avg_pool2d_grad_vjp(g: Any, ct: Any, x: Any, *, out: Any, **params: Any) -> tuple[Any, ...]:
    return avg_pool2d(g, **params), None


def _max_pool2d_jvp_rule(tangents: Any, x: Any, *, out: Any, **params: Any) -> Any:
    (t,) = tangents
    return None if t is None else bind(MAX_POOL2D_JVP, x, t, **params)


CONV2D = defop("conv2d", _infer_conv2d, _conv2d, _conv2d_vjp, jvp=bilinear_jvp("conv2d"))
CONV2D_INPUT_GRAD = defop(
    "conv2d_input_grad",
    _infer_conv2d_input_grad,
    _conv2d_input_grad,
    _conv2d_input_grad_vjp,
    jvp=bilinear_jvp("conv2d_input_grad"),
)
CONV2D_FILTER_GRAD = defop(
    "conv2d_filter_grad",
    _infer_conv2d_filter_grad,
    _conv2d_filter_grad,
    _conv2d_filter_grad_vjp,
    jvp=bilinear_jvp("conv2d_filter_grad"),
)
MAX_POOL2D = defop(
    "max_pool2d", _infer_max_pool2d, _max_pool2d, _max_pool2d_vjp, jvp=_max_pool2d_jvp_rule
)
MAX_POOL2D_GRAD = defop(
    "max_pool2d_grad",
    _infer_max_pool2d_grad,
    _max_pool2d_grad,
    _max_pool2d_grad_vjp,
    jvp=transpose_jvp("max_pool2d_grad"),
)
MAX_POOL2D_JVP = defop(
    "max_pool2d_jvp",
    _infer_max_pool2d_jvp,
    _max_pool2d_jvp,
    _max_pool2d_jvp_vjp,
    jvp=linear_jvp("max_pool2d_jvp", (1,)),
)
AVG_POOL2D = defop(
    "avg_pool2d", _infer_avg_pool2d, _avg_pool2d, _avg_pool2d_vjp, jvp=linear_jvp("avg_pool2d")
)
AVG_POOL2D_GRAD = defop(
    "avg_pool2d_grad",
    _infer_avg_pool2d_grad,
    _avg_pool2d_grad,
    _avg_pool2d_grad_vjp,
    jvp=linear_jvp("avg_pool2d_grad"),
)


# Public functions ---------------------------------------------------------------------------------
@locates_errors
def conv2d(x: Any, kernel: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1) -> Any:
    """2-D convolution (cross-correlation, as in every deep-learning library) of NHWC images
    ``x`` with an HWIO ``kernel`` of shape ``[height, width, in_channels, out_channels]``.

    Args:
        x: images of shape ``[batch, height, width, in_channels]``.
        kernel: filters of shape ``[kernel_height, kernel_width, in_channels, out_channels]``.
        strides: step between windows, an int or a ``(height, width)`` pair.
        padding: ``"SAME"`` (output size ``ceil(in / stride)``) or ``"VALID"`` (whole windows).
        dilation: spacing between kernel taps (atrous convolution), an int or a pair.

    Returns:
        ``[batch, out_height, out_width, out_channels]``, the dtype of ``x``.

    >>> import tracejit as tj
    >>> x = tj.ones((1, 4, 4, 2))
    >>> y = tj.nn.conv2d(x, tj.ones((3, 3, 2, 5)), strides=2, padding="VALID")
    >>> y.shape, float(y[0, 0, 0, 0])
    ((1, 1, 1, 5), 18.0)
    """
    return _bind(CONV2D, x, kernel, **_conv_params("conv2d", strides, padding, dilation))


@locates_errors
def max_pool2d(x: Any, window: Any, strides: Any = None, padding: str = "VALID") -> Any:
    """Maximum over ``window``-sized patches of NHWC images, channel by channel.

    Args:
        x: images of shape ``[batch, height, width, channels]`` (floats or integers).
        window: the patch size, an int or a ``(height, width)`` pair.
        strides: step between patches, an int or a pair; defaults to ``window``.
        padding: ``"VALID"`` (whole patches) or ``"SAME"`` (output size ``ceil(in / stride)``;
            padding never wins the maximum).

    >>> import tracejit as tj
    >>> x = tj.reshape(tj.arange(16.0), (1, 4, 4, 1))
    >>> tj.nn.max_pool2d(x, 2)[0, :, :, 0].numpy()
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    params = _pool_params("max_pool2d", window, strides, padding)
    return _bind(MAX_POOL2D, x, **params)


@locates_errors
def avg_pool2d(x: Any, window: Any, strides: Any = None, padding: str = "VALID") -> Any:
    """Mean over ``window``-sized patches of NHWC float images, channel by channel. With
    ``"SAME"`` padding each mean is over the patch's elements inside the image (as in TF).

    >>> import tracejit as tj
    >>> x = tj.reshape(tj.arange(9.0), (1, 3, 3, 1))
    >>> tj.nn.avg_pool2d(x, 2, strides=2, padding="SAME")[0, :, :, 0].numpy()
    array([[2. , 3.5],
           [6.5, 8. ]], dtype=float32)
    """
    params = _pool_params("avg_pool2d", window, strides, padding)
    return _bind(AVG_POOL2D, x, **params)


# The gradient ops, public so that tests and custom gradients can call them.
@locates_errors
def conv2d_input_grad(
    ct: Any, kernel: Any, x: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1
) -> Any:
    """The cotangent of ``conv2d``'s input ``x`` given the output's ``ct`` (the transposed
    convolution). Only the shape of ``x`` is read."""
    params = _conv_params("conv2d_input_grad", strides, padding, dilation)
    return _bind(CONV2D_INPUT_GRAD, ct, kernel, x, **params)


@locates_errors
def conv2d_filter_grad(
    x: Any, ct: Any, kernel: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1
) -> Any:
    """The cotangent of ``conv2d``'s ``kernel`` given the output's ``ct``. Only the shape of
    ``kernel`` is read."""
    params = _conv_params("conv2d_filter_grad", strides, padding, dilation)
    return _bind(CONV2D_FILTER_GRAD, x, ct, kernel, **params)


@locates_errors
def max_pool2d_grad(
    x: Any, ct: Any, window: Any, strides: Any = None, padding: str = "VALID"
) -> Any:
    """The cotangent of ``max_pool2d``'s input: each window's ``ct`` goes to its maximum."""
    params = _pool_params("max_pool2d_grad", window, strides, padding)
    return _bind(MAX_POOL2D_GRAD, x, ct, **params)


@locates_errors
def max_pool2d_jvp(
    x: Any, tangent: Any, window: Any, strides: Any = None, padding: str = "VALID"
) -> Any:
    """Forward-mode derivative of ``max_pool2d`` at ``x``: ``tangent`` at each window's maximum
    (the transpose of ``max_pool2d_grad``, used for second-order gradients)."""
    params = _pool_params("max_pool2d_jvp", window, strides, padding)
    return _bind(MAX_POOL2D_JVP, x, tangent, **params)


@locates_errors
def avg_pool2d_grad(
    ct: Any, x: Any, window: Any, strides: Any = None, padding: str = "VALID"
) -> Any:
    """The cotangent of ``avg_pool2d``'s input: each window's ``ct`` spread evenly over the
    elements it averaged. Only the shape of ``x`` is read."""
    params = _pool_params("avg_pool2d_grad", window, strides, padding)
    return _bind(AVG_POOL2D_GRAD, ct, x, **params)
