"""Layers: Modules that create their variables at construction and are called on tensors."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tracejit.eager.variable import Variable
from tracejit.module import Module
from tracejit.ops import activations as more_activations
from tracejit.ops import nn as activations
from tracejit.ops.conv import avg_pool2d, conv2d, max_pool2d
from tracejit.ops.creation import zeros
from tracejit.ops.elementwise import cast, divide, multiply, tanh
from tracejit.ops.linalg import matmul
from tracejit.ops.shape import reshape
from tracejit.random import Generator, get_global_generator

Activation = Callable[[Any], Any] | str | None

_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": activations.relu,
    "sigmoid": activations.sigmoid,
    "softplus": activations.softplus,
    "gelu": activations.gelu,
    "softmax": activations.softmax,
    "tanh": tanh,
}
# The activations of tracejit/ops/activations.py, by their table's names (plus Keras' "swish").
_ACTIVATIONS.update(
    {name: getattr(more_activations, name) for name in more_activations.ACTIVATIONS}
)
_ACTIVATIONS["swish"] = more_activations.silu


def get_activation(activation: Activation) -> Callable[[Any], Any] | None:
    if activation is None or callable(activation):
        return activation
    try:
        return _ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(
            f"unknown activation {activation!r}; known: {', '.join(sorted(_ACTIVATIONS))}"
        ) from None


_layer_counts: dict[str, int] = {}


def unique_name(prefix: str) -> str:
    """``dense``, ``dense_1``, ``dense_2``... so variable names in the IR tell layers apart."""
    count = _layer_counts.get(prefix, 0)
    _layer_counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def glorot_uniform(
    generator: Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, name: str
) -> Variable:
    """A kernel variable drawn from U(-a, a), a = sqrt(6 / (fan_in + fan_out)). The draw is a
    callable, so a layer built inside a tj.function still initializes eagerly."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return Variable(lambda: generator.uniform(shape, -limit, limit), name=name)


class Dense(Module):
    """``activation(x @ kernel + bias)`` with kernel [in, out] (glorot-uniform) and bias [out].

    >>> import tracejit as tj
    >>> layer = tj.nn.Dense(4, 3, activation="relu", generator=tj.random.Generator(0))
    >>> layer(tj.ones((2, 4))).shape
    (2, 3)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: Activation = None,
        use_bias: bool = True,
        generator: Generator | None = None,
        name: str | None = None,
    ) -> None:
        self._name = name = name or unique_name("dense")
        generator = generator or get_global_generator()
        self.kernel = glorot_uniform(
            generator, (in_features, out_features), in_features, out_features, f"{name}/kernel"
        )
        self.bias = Variable(zeros((out_features,)), name=f"{name}/bias") if use_bias else None
        self.activation = get_activation(activation)

    def __call__(self, x: Any) -> Any:
        y = matmul(x, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y) if self.activation is not None else y


class Sequential(Module):
    """Layers applied in order; extra keyword arguments (``training=``) reach layers that
    accept them."""

    def __init__(self, layers: Sequence[Any], name: str | None = None) -> None:
        self._name = name
        self.layers = list(layers)

    def __call__(self, x: Any, training: bool = False) -> Any:
        for layer in self.layers:
            x = layer(x, training=training) if getattr(layer, "takes_training", False) else layer(x)
        return x


class Dropout(Module):
    """Zeroes each element with probability ``rate`` while training (scaling the rest by
    1 / (1 - rate)); the identity otherwise."""

    takes_training = True

    def __init__(self, rate: float, generator: Generator | None = None) -> None:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.generator = generator or get_global_generator()

    def __call__(self, x: Any, training: bool = False) -> Any:
        if not training or self.rate == 0.0:
            return x
        keep = self.generator.bernoulli_like(x, 1.0 - self.rate)
        return divide(multiply(x, cast(keep, x.dtype)), 1.0 - self.rate)


class Flatten(Module):
    """``[batch, d1, d2, ...] -> [batch, d1 * d2 * ...]``."""

    def __call__(self, x: Any) -> Any:
        rest = x.shape[1:]
        if any(d is None for d in rest):
            raise ValueError(f"Flatten needs known non-batch dims, got shape {x.shape}")
        return reshape(x, (-1, math.prod(rest)))


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class Conv2D(Module):
    """2-D convolution over NHWC inputs with a [kh, kw, in, out] kernel (glorot-uniform) and a
    bias [out], then ``activation``.

    >>> import tracejit as tj
    >>> conv = tj.nn.Conv2D(1, 4, 3, activation="relu", generator=tj.random.Generator(0))
    >>> conv(tj.ones((2, 8, 8, 1))).shape
    (2, 8, 8, 4)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "SAME",
        dilation: int | Sequence[int] = 1,
        activation: Activation = None,
        use_bias: bool = True,
        generator: Generator | None = None,
        name: str | None = None,
    ) -> None:
        self._name = name = name or unique_name("conv2d")
        kh, kw = _pair(kernel_size)
        generator = generator or get_global_generator()
        fan_in, fan_out = kh * kw * in_channels, kh * kw * out_channels
        shape = (kh, kw, in_channels, out_channels)
        self.kernel = glorot_uniform(generator, shape, fan_in, fan_out, f"{name}/kernel")
        self.bias = Variable(zeros((out_channels,)), name=f"{name}/bias") if use_bias else None
        self.strides, self.padding, self.dilation = _pair(strides), padding, _pair(dilation)
        self.activation = get_activation(activation)

    def __call__(self, x: Any) -> Any:
        y = conv2d(
            x, self.kernel, strides=self.strides, padding=self.padding, dilation=self.dilation
        )
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y) if self.activation is not None else y


class _Pool2D(Module):
    """Pooling over NHWC inputs with a ``window`` (strides default to the window)."""

    pool: Callable[..., Any]

    def __init__(
        self,
        window: int | Sequence[int] = 2,
        strides: int | Sequence[int] | None = None,
        padding: str = "VALID",
    ) -> None:
        self.window, self.strides, self.padding = window, strides, padding

    def __call__(self, x: Any) -> Any:
        return type(self).pool(x, self.window, strides=self.strides, padding=self.padding)


class MaxPool2D(_Pool2D):
    """Max pooling over NHWC inputs (strides default to the window)."""

    pool = staticmethod(max_pool2d)


class AvgPool2D(_Pool2D):
    """Average pooling over NHWC inputs (strides default to the window)."""

    pool = staticmethod(avg_pool2d)
