"""Core layers: Dense, Conv2D, pooling, Dropout, Flatten, Sequential.

Each takes just its output size (``Dense(16)``, ``Conv2D(32, 3)``) and builds its variables on
its first call, or its input size too (``Dense(4, 16)``, ``Conv2D(1, 32, 3)``) and builds at
once (see ``tj.nn.Layer``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tracejit.nn.base import (
    ActivationLike,
    Layer,
    get_activation,
    unique_name,
)
from tracejit.nn.initializers import InitializerLike
from tracejit.ops.arguments import arg_aval
from tracejit.ops.conv import avg_pool2d, conv2d, max_pool2d
from tracejit.ops.elementwise import cast, divide, multiply, not_equal
from tracejit.ops.indexing import take
from tracejit.ops.linalg import matmul
from tracejit.ops.shape import reshape
from tracejit.random import Generator, get_global_generator
from tracejit.types import is_integer

__all__ = [
    "AvgPool2D", "Conv2D", "Dense", "Dropout", "Embedding", "Flatten", "MaxPool2D", "Sequential",
    "SpatialDropout1D", "SpatialDropout2D", "get_activation", "unique_name",
]  # fmt: skip


def _positive(where: str, what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r}")
    return value


def _sizes(where: str, sizes: tuple[Any, ...], keyword: int | None, name: str) -> tuple[Any, Any]:
    """``(input size or None, output size)`` from ``Layer(out)``, ``Layer(in, out)`` or
    ``Layer(name=out)``."""
    if keyword is not None:
        sizes = (*sizes, keyword)
    if len(sizes) == 1:
        return None, _positive(where, name, sizes[0])
    if len(sizes) == 2:
        return _positive(where, "the input size", sizes[0]), _positive(where, name, sizes[1])
    raise TypeError(
        f"{where} takes its output size ({where}({name})) or its input and output sizes "
        f"({where}(in, {name})); got {len(sizes)} sizes {sizes!r} (pass the other options by "
        "keyword)"
    )


def _apply(layer: Any, y: Any) -> Any:
    if layer.bias is not None:
        y = y + layer.bias
    return layer.activation(y) if layer.activation is not None else y


class Dense(Layer):
    """``activation(x @ kernel + bias)``, kernel ``[in, units]``, bias ``[units]``.

    ``Dense(units)`` builds on its first call (``in`` is the input's last dim); ``Dense(in,
    units)`` at once. The kernel is drawn by ``kernel_initializer`` (Keras' default
    ``"glorot_uniform"``), the bias by ``bias_initializer`` (``"zeros"``), from ``generator``.

    >>> import tracejit as tj
    >>> layer = tj.nn.Dense(4, 3, activation="relu", generator=tj.random.Generator(0))
    >>> layer(tj.ones((2, 4))).shape
    (2, 3)
    >>> tj.nn.Dense(16)(tj.ones((2, 4))).shape
    (2, 16)
    """

    def __init__(
        self,
        *sizes: int,
        units: int | None = None,
        activation: ActivationLike = None,
        use_bias: bool = True,
        kernel_initializer: InitializerLike = "glorot_uniform",
        bias_initializer: InitializerLike = "zeros",
        generator: Generator | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or unique_name("dense"), generator)
        in_features, self.units = _sizes("Dense", sizes, units, "units")
        self.kernel: Any = None
        self.bias: Any = None
        self.activation = get_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        if in_features is not None:
            self.build((None, in_features))
            self.built = True

    def build(self, input_shape: Any) -> None:
        n = self.input_size(input_shape, -1)
        self.kernel = self.add_weight("kernel", (n, self.units), self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)
        self.fix_input_dims({-1: n})

    def call(self, x: Any) -> Any:
        return _apply(self, matmul(x, self.kernel))


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class Conv2D(Layer):
    """2-D convolution over NHWC inputs with a ``[kh, kw, in, filters]`` kernel and a bias
    ``[filters]``, then ``activation``.

    ``Conv2D(filters, kernel_size)`` builds on its first call (``in`` is the input's channel
    count); ``Conv2D(in, filters, kernel_size)`` at once. Initializers as ``Dense``.

    >>> import tracejit as tj
    >>> conv = tj.nn.Conv2D(1, 4, 3, activation="relu", generator=tj.random.Generator(0))
    >>> conv(tj.ones((2, 8, 8, 1))).shape
    (2, 8, 8, 4)
    >>> tj.nn.Conv2D(8, 3, padding="VALID")(tj.ones((2, 8, 8, 3))).shape
    (2, 6, 6, 8)
    """

    def __init__(
        self,
        *sizes: Any,
        filters: int | None = None,
        kernel_size: int | Sequence[int] | None = None,
        strides: int | Sequence[int] = 1,
        padding: str = "SAME",
        dilation: int | Sequence[int] = 1,
        activation: ActivationLike = None,
        use_bias: bool = True,
        kernel_initializer: InitializerLike = "glorot_uniform",
        bias_initializer: InitializerLike = "zeros",
        generator: Generator | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or unique_name("conv2d"), generator)
        if kernel_size is None:
            if not sizes:
                raise TypeError("Conv2D needs a kernel_size: Conv2D(filters, kernel_size)")
            *channels, kernel_size = sizes
            sizes = tuple(channels)
        in_channels, self.filters = _sizes("Conv2D", sizes, filters, "filters")
        self.kernel_size = _pair(kernel_size)
        self.kernel: Any = None
        self.bias: Any = None
        self.strides, self.padding, self.dilation = _pair(strides), padding, _pair(dilation)
        self.activation = get_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        if in_channels is not None:
            self.build((None, None, None, in_channels))
            self.built = True

    def build(self, input_shape: Any) -> None:
        channels = self.input_size(input_shape, -1)
        shape = (*self.kernel_size, channels, self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer)
        self.fix_input_dims({-1: channels}, ndim=4)

    def call(self, x: Any) -> Any:
        y = conv2d(
            x, self.kernel, strides=self.strides, padding=self.padding, dilation=self.dilation
        )
        return _apply(self, y)


class Sequential(Layer):
    """Layers applied in order; ``training=`` reaches the layers that take it. Lazy layers
    build on the first call (so call the model once, or trace a step, before reading
    ``trainable_variables``).

    >>> import tracejit as tj
    >>> model = tj.nn.Sequential([tj.nn.Dense(8, activation="relu"), tj.nn.Dense(2)])
    >>> model(tj.ones((4, 3))).shape
    (4, 2)
    >>> [v.shape for v in model.trainable_variables]
    [(3, 8), (8,), (8, 2), (2,)]
    """

    takes_training = True

    def __init__(self, layers: Sequence[Any] = (), name: str | None = None) -> None:
        super().__init__(name)
        self._name = name  # unnamed, it is shown as "Sequential" (its repr, its summary)
        self.layers = list(layers)

    def add(self, layer: Any) -> None:
        """Append a layer (as Keras' ``Sequential.add``)."""
        self.layers.append(layer)

    def call(self, x: Any, training: bool = False) -> Any:
        for layer in self.layers:
            x = layer(x, training=training) if getattr(layer, "takes_training", False) else layer(x)
        return x


class Dropout(Layer):
    """Zeroes each element with probability ``rate`` while training (scaling the rest by
    1 / (1 - rate)); the identity otherwise."""

    takes_training = True

    def __init__(
        self, rate: float, generator: Generator | None = None, name: str | None = None
    ) -> None:
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{type(self).__name__} rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.generator = generator or get_global_generator()

    def call(self, x: Any, training: bool = False) -> Any:
        if not training or self.rate == 0.0:
            return x
        keep = self.generator.bernoulli_like(self.noise_of(x), 1.0 - self.rate)
        return divide(multiply(x, cast(keep, x.dtype)), 1.0 - self.rate)

    def noise_of(self, x: Any) -> Any:
        """A tensor of the shape of the keep mask (x itself: one draw per element)."""
        return x


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps: one keep/drop draw per example and channel, shared over
    the other axes (Keras' ``SpatialDropout``), so correlated neighbours drop together."""

    ndim: int

    def noise_of(self, x: Any) -> Any:
        shape = arg_aval(type(self).__name__, x).shape
        if len(shape) != self.ndim:
            raise ValueError(
                f"{type(self).__name__} expects inputs with {self.ndim} dims (batch, ..., "
                f"channels), got shape {tuple(shape)}"
            )
        return x[(slice(None),) + (slice(0, 1),) * (self.ndim - 2)]


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of ``[batch, steps, channels]`` inputs while training.

    >>> import tracejit as tj
    >>> drop = tj.nn.SpatialDropout1D(0.5, generator=tj.random.Generator(0))
    >>> y = drop(tj.ones((1, 4, 3)), training=True).numpy()
    >>> bool(((y == 0).all(axis=1) | (y == 2).all(axis=1)).all())  # each channel: all or none
    True
    """

    ndim = 3


class SpatialDropout2D(_SpatialDropout):
    """Drops whole channels of NHWC inputs while training (one draw per example and channel)."""

    ndim = 4


class Embedding(Layer):
    """A lookup table ``[input_dim, output_dim]``: integer ids ``[...]`` -> vectors ``[...,
    output_dim]`` (a ``take`` whose gradient is a scatter-add into the rows used). Keras'
    defaults: ``embeddings_initializer="uniform"`` (U(-0.05, 0.05)).

    ``mask_zero=True`` says id 0 is padding: ``compute_mask(ids)`` then gives ``ids != 0`` (to
    pass to layers that take a ``mask``); ids must then be below ``input_dim`` still.

    >>> import tracejit as tj
    >>> emb = tj.nn.Embedding(10, 4)
    >>> emb(tj.constant([[1, 2, 0]])).shape
    (1, 3, 4)
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: InitializerLike = "uniform",
        mask_zero: bool = False,
        generator: Generator | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name, generator)
        self.input_dim = _positive("Embedding", "input_dim", input_dim)
        self.output_dim = _positive("Embedding", "output_dim", output_dim)
        self.mask_zero = bool(mask_zero)
        self.embeddings = self.add_weight(
            "embeddings", (self.input_dim, self.output_dim), embeddings_initializer
        )
        self.built = True

    def call(self, ids: Any) -> Any:
        dtype = arg_aval(self._where(), ids).dtype
        if not is_integer(dtype):
            raise TypeError(
                f"{self._where()} looks up integer ids, got a tensor of {dtype} (cast the ids "
                "to int32)"
            )
        return take(self.embeddings, ids, axis=0)

    def compute_mask(self, ids: Any) -> Any:
        """``ids != 0`` when ``mask_zero`` (True where there is a token), else None."""
        return not_equal(ids, 0) if self.mask_zero else None


class Flatten(Layer):
    """``[batch, d1, d2, ...] -> [batch, d1 * d2 * ...]``."""

    def call(self, x: Any) -> Any:
        rest = x.shape[1:]
        if any(d is None for d in rest):
            raise ValueError(f"Flatten needs known non-batch dims, got shape {x.shape}")
        return reshape(x, (-1, math.prod(rest)))


class _Pool2D(Layer):
    """Pooling over NHWC inputs with a ``window`` (strides default to the window)."""

    pool: Callable[..., Any]

    def __init__(
        self,
        window: int | Sequence[int] = 2,
        strides: int | Sequence[int] | None = None,
        padding: str = "VALID",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.window, self.strides, self.padding = window, strides, padding

    def call(self, x: Any) -> Any:
        return type(self).pool(x, self.window, strides=self.strides, padding=self.padding)


class MaxPool2D(_Pool2D):
    """Max pooling over NHWC inputs (strides default to the window)."""

    pool = staticmethod(max_pool2d)


class AvgPool2D(_Pool2D):
    """Average pooling over NHWC inputs (strides default to the window)."""

    pool = staticmethod(avg_pool2d)
