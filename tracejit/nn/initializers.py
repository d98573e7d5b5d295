"""Initializers: how a layer fills its new variables, chosen by name or given as a callable, as
in Keras (``Dense(16, kernel_initializer="he_normal")``).

An initializer is called as ``init(shape, dtype="float32", generator=None)`` and returns a
concrete tensor. It always computes eagerly -- also when a layer is built inside a
``tj.function`` (like TF's ``init_scope``) -- drawing from ``generator`` (the layer's, else the
initializer's own ``seed``, else ``tj.random``'s global generator).

``get(identifier)`` turns what a layer was given into an initializer: a name (``"he_normal"``
or ``"HeNormal"``), an :class:`Initializer`, or any callable ``f(shape, dtype=...)`` returning
an array (Keras' contract for custom initializers).

The variance-scaling family follows Keras' formulas: with ``n`` = fan_in, fan_out or their
mean (``mode``), ``"uniform"`` draws from U(-l, l) with ``l = sqrt(3 * scale / n)``,
``"untruncated_normal"`` from N(0, scale / n), and ``"truncated_normal"`` from a normal cut at
two standard deviations whose stddev is ``sqrt(scale / n) / 0.8796...`` (so the variance after
the cut is still ``scale / n``). Fans are computed as :func:`compute_fans` says.

>>> import tracejit as tj
>>> init = tj.nn.initializers.get("he_normal")
>>> init((64, 32), generator=tj.random.Generator(0)).shape
(64, 32)
>>> tj.nn.initializers.compute_fans((3, 3, 16, 32))  # a conv kernel: fans include the window
(144, 288)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tracejit.eager.tensor import Tensor
from tracejit.eager.tensor import constant as _constant
from tracejit.ops.creation import full as _full
from tracejit.ops.creation import ones as _ones
from tracejit.ops.creation import zeros as _zeros
from tracejit.random import Generator, get_global_generator
from tracejit.tracing import context
from tracejit.types import as_dtype, float32, is_floating

Shape = Sequence[int]

# The stddev of a unit normal truncated at +-2 standard deviations (Keras' constant).
_TRUNCATED_STDDEV = 0.87962566103423978


def compute_fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel of ``shape``, as Keras computes them: a vector's size
    for both; ``(in, out)`` for a dense kernel; for a convolution kernel ``(*window, in, out)``
    the window size times ``in`` and times ``out``.

    >>> import tracejit as tj
    >>> tj.nn.initializers.compute_fans((4, 3))
    (4, 3)
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer:
    """Base class: subclasses implement ``draw(generator, shape, dtype)``."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._own: Generator | None = None

    def __call__(
        self, shape: Shape, dtype: Any = float32, generator: Generator | None = None
    ) -> Tensor:
        shape = _checked_shape(type(self).__name__, shape)
        dtype = as_dtype(dtype)
        with context.paused_tracing():  # initial values are concrete, even while tracing
            return self.draw(self._generator(generator), shape, dtype)

    def _generator(self, given: Generator | None) -> Generator:
        if given is not None:
            return given
        if self.seed is not None:
            if self._own is None:
                self._own = Generator(self.seed, name=f"{type(self).__name__}_seed")
            return self._own
        return get_global_generator()

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_") and v is not None}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


def _checked_shape(where: str, shape: Any) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in dims):
        raise ValueError(f"{where}: a shape of non-negative ints is needed, got {shape!r}")
    return tuple(int(d) for d in dims)


def _floating(where: str, dtype: Any) -> None:
    if not is_floating(dtype):
        raise TypeError(f"{where} draws random floats; it cannot fill a {dtype} variable")


class Zeros(Initializer):
    """All zeros."""

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        return _zeros(shape, dtype)


class Ones(Initializer):
    """All ones."""

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        return _ones(shape, dtype)


class Constant(Initializer):
    """Every element ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = value

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        return _full(shape, self.value, dtype)


class RandomNormal(Initializer):
    """N(mean, stddev**2) (Keras' defaults: mean 0, stddev 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        _floating(type(self).__name__, dtype)
        return generator.normal(shape, self.mean, self.stddev, dtype)


class RandomUniform(Initializer):
    """U(minval, maxval) (Keras' defaults: -0.05, 0.05)."""

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        super().__init__(seed)
        if not minval < maxval:
            raise ValueError(f"RandomUniform: minval {minval} must be below maxval {maxval}")
        self.minval, self.maxval = float(minval), float(maxval)

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        _floating(type(self).__name__, dtype)
        return generator.uniform(shape, self.minval, self.maxval, dtype)


class TruncatedNormal(Initializer):
    """N(mean, stddev**2) with draws beyond two standard deviations redrawn (Keras' defaults:
    mean 0, stddev 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        _floating(type(self).__name__, dtype)
        return generator.truncated_normal(shape, self.mean, self.stddev, dtype)


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(Initializer):
    """Draws of variance ``scale / n``, ``n`` given by ``mode`` (``"fan_in"``, ``"fan_out"``,
    ``"fan_avg"``), from ``distribution`` (``"truncated_normal"``, ``"untruncated_normal"``,
    ``"uniform"``); the formulas are in the module's docstring."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        where = type(self).__name__
        if not scale > 0:
            raise ValueError(f"{where}: scale must be positive, got {scale}")
        if mode not in _MODES:
            raise ValueError(f"{where}: mode must be one of {', '.join(_MODES)}, got {mode!r}")
        if distribution == "normal":  # Keras' old name
            distribution = "truncated_normal"
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"{where}: distribution must be one of {', '.join(_DISTRIBUTIONS)}, got "
                f"{distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def variance(self, shape: Shape) -> float:
        """The variance of the draws for a kernel of ``shape``."""
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return self.scale / max(1.0, n)

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        _floating(type(self).__name__, dtype)
        variance = self.variance(shape)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return generator.uniform(shape, -limit, limit, dtype)
        if self.distribution == "untruncated_normal":
            return generator.normal(shape, 0.0, math.sqrt(variance), dtype)
        return generator.truncated_normal(
            shape, 0.0, math.sqrt(variance) / _TRUNCATED_STDDEV, dtype
        )

    def __repr__(self) -> str:
        if type(self) is VarianceScaling:
            return super().__repr__()
        return f"{type(self).__name__}({'' if self.seed is None else f'seed={self.seed}'})"


class GlorotUniform(VarianceScaling):
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio; Keras' default kernel)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_avg", "uniform", seed)


class GlorotNormal(VarianceScaling):
    """Truncated normal of variance 2 / (fan_in + fan_out)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)


class HeUniform(VarianceScaling):
    """U(-l, l), l = sqrt(6 / fan_in) (He et al.)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(2.0, "fan_in", "uniform", seed)


class HeNormal(VarianceScaling):
    """Truncated normal of variance 2 / fan_in (He et al., for ReLU networks)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(2.0, "fan_in", "truncated_normal", seed)


class LecunUniform(VarianceScaling):
    """U(-l, l), l = sqrt(3 / fan_in) (LeCun)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_in", "uniform", seed)


class LecunNormal(VarianceScaling):
    """Truncated normal of variance 1 / fan_in (LeCun; for SELU networks)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_in", "truncated_normal", seed)


class Orthogonal(Initializer):
    """A random orthogonal matrix times ``gain``: the kernel, flattened to ``[prod(shape[:-1]),
    shape[-1]]``, has orthonormal columns (or rows, when it is wide), as Keras' ``Orthogonal``
    (the Q of the QR decomposition of a normal draw, its signs fixed by R's diagonal)."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = float(gain)

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        _floating("Orthogonal", dtype)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of at least 2 dims, got {tuple(shape)}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        sample = np.asarray(generator.normal((max(rows, cols), min(rows, cols))), np.float64)
        q, r = np.linalg.qr(sample)
        q = q * np.sign(np.diag(r))  # a uniform (Haar) distribution over orthogonal matrices
        if rows < cols:
            q = q.T
        return _constant((self.gain * q).reshape(shape), dtype)


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = float(gain)

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape, got {tuple(shape)}")
        return _constant(self.gain * np.eye(*shape), dtype)


class _Function(Initializer):
    """A user's callable ``f(shape, dtype=...)`` as an initializer."""

    def __init__(self, function: Callable[..., Any]) -> None:
        super().__init__()
        self.function = function

    def draw(self, generator: Generator, shape: tuple[int, ...], dtype: Any) -> Tensor:
        value = _constant(self.function(shape, dtype=dtype))
        if tuple(value.shape) != shape:
            name = getattr(self.function, "__name__", repr(self.function))
            raise ValueError(
                f"the initializer {name} returned shape {tuple(value.shape)} for a variable of "
                f"shape {shape}"
            )
        return value if value.dtype == dtype else _constant(value, dtype)

    def __repr__(self) -> str:
        return getattr(self.function, "__name__", repr(self.function))


_CLASSES: dict[str, type[Initializer]] = {
    cls.__name__: cls
    for cls in (
        Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
        GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal,
        Identity,
    )
}  # fmt: skip


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_BY_NAME: dict[str, type[Initializer]] = {_snake(n): c for n, c in _CLASSES.items()}
_BY_NAME.update({"zero": Zeros, "one": Ones, "uniform": RandomUniform, "normal": RandomNormal})

# Keras' lower-case aliases: tj.nn.initializers.he_normal() as keras.initializers.he_normal().
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal = HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal
orthogonal, identity = Orthogonal, Identity

InitializerLike = Initializer | str | Callable[..., Any]


def get(identifier: InitializerLike) -> Initializer:
    """The initializer ``identifier`` names: a Keras name in snake or Camel case
    (``"glorot_uniform"``, ``"GlorotUniform"``, ``"zeros"``, ...), an :class:`Initializer`
    (returned as is), an Initializer class (instantiated with its defaults), or a callable
    ``f(shape, dtype=...)``.

    >>> import tracejit as tj
    >>> tj.nn.initializers.get("ones")((2,)).numpy()
    array([1., 1.], dtype=float32)
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"unknown initializer {identifier!r}; known: {', '.join(sorted(_BY_NAME))}"
            )
        return cls()
    if callable(identifier):
        return _Function(identifier)
    raise TypeError(
        f"an initializer is a name, an Initializer or a callable f(shape, dtype=...), got "
        f"{type(identifier).__name__}"
    )


__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
    "Initializer", "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal",
    "RandomUniform", "TruncatedNormal", "VarianceScaling", "Zeros", "compute_fans", "get",
    "constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity",
    "lecun_normal", "lecun_uniform", "ones", "orthogonal", "random_normal",
    "random_uniform", "truncated_normal", "variance_scaling", "zeros",
]  # fmt: skip
