"""Normalization layers: LayerNormalization, RMSNormalization, GroupNormalization and
BatchNormalization (with moving statistics), as Keras defines them. Each builds its ``gamma`` /
``beta`` from its first input's shape (one op each: ``tj.nn.layer_norm`` and friends)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracejit.errors import ShapeError
from tracejit.ir.source import user_location
from tracejit.nn.base import Layer
from tracejit.nn.initializers import InitializerLike
from tracejit.ops.infer import shape_text
from tracejit.ops.normalization import batch_norm, group_norm, layer_norm, rms_norm

__all__ = ["BatchNormalization", "GroupNormalization", "LayerNormalization", "RMSNormalization"]


def _axes(where: str, axis: int | Sequence[int]) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{where}: axis must be an int or a sequence of ints, got {axis!r}")
    return axes


class _Affine(Layer):
    """A normalization with optional per-feature ``gamma`` (scale) and ``beta`` (center) over
    ``axis``, sized from the first input."""

    def __init__(
        self,
        axis: int | Sequence[int],
        epsilon: float,
        center: bool,
        scale: bool,
        beta_initializer: InitializerLike,
        gamma_initializer: InitializerLike,
        name: str | None,
    ) -> None:
        super().__init__(name)
        self.axis = _axes(type(self).__name__, axis)
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.gamma: Any = None
        self.beta: Any = None

    def build(self, input_shape: Any) -> None:
        sizes = {a: self.input_size(input_shape, a) for a in self.axis}
        ndim = len(input_shape)
        positions = sorted({a % ndim for a in self.axis})
        if len(positions) != len(self.axis):
            raise ValueError(f"{self._where()}: axis {self.axis} names an axis twice")
        shape = tuple(input_shape[a] for a in positions)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer)
        self.fix_input_dims(sizes, ndim=ndim)


class LayerNormalization(_Affine):
    """Normalize each example over ``axis`` (default the last) to zero mean and unit variance,
    then ``* gamma + beta`` (Keras' ``LayerNormalization``; epsilon 1e-3).

    >>> import tracejit as tj
    >>> norm = tj.nn.LayerNormalization()
    >>> norm(tj.constant([[1.0, 3.0]])).numpy().round(4)
    array([[-0.9995,  0.9995]], dtype=float32)
    >>> norm.gamma.shape, norm.beta.shape
    ((2,), (2,))
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: InitializerLike = "zeros",
        gamma_initializer: InitializerLike = "ones",
        name: str | None = None,
    ) -> None:
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, name)

    def call(self, x: Any) -> Any:
        return layer_norm(x, self.gamma, self.beta, axis=self.axis, epsilon=self.epsilon)


class RMSNormalization(_Affine):
    """``x / sqrt(mean(x ** 2, axis) + epsilon) * scale`` (Keras' ``RMSNormalization``; no
    centering, epsilon 1e-6); the scale variable is ``gamma``.

    >>> import tracejit as tj
    >>> tj.nn.RMSNormalization()(tj.constant([[3.0, 4.0]])).numpy().round(4)
    array([[0.8485, 1.1314]], dtype=float32)
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-6,
        scale: bool = True,
        gamma_initializer: InitializerLike = "ones",
        name: str | None = None,
    ) -> None:
        super().__init__(axis, epsilon, False, scale, "zeros", gamma_initializer, name)

    def call(self, x: Any) -> Any:
        return rms_norm(x, self.gamma, axis=self.axis, epsilon=self.epsilon)


class GroupNormalization(_Affine):
    """Split the channels (``axis``, default the last) into ``groups`` and normalize each
    example's group over its channels and all non-batch axes, then per-channel ``* gamma +
    beta`` (Keras' ``GroupNormalization``: groups 32, epsilon 1e-3).

    >>> import tracejit as tj
    >>> tj.nn.GroupNormalization(groups=2)(tj.constant([[1.0, 3.0, 5.0, 5.0]])).numpy().round(4)
    array([[-0.9995,  0.9995,  0.    ,  0.    ]], dtype=float32)
    """

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: InitializerLike = "zeros",
        gamma_initializer: InitializerLike = "ones",
        name: str | None = None,
    ) -> None:
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"GroupNormalization: groups must be a positive int, got {groups!r}")
        if not isinstance(axis, int):
            raise TypeError(f"GroupNormalization: axis must be one int, got {axis!r}")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, name)
        self.groups = groups

    def build(self, input_shape: Any) -> None:
        channels = self.input_size(input_shape, self.axis[0])
        if channels % self.groups:
            raise ShapeError(
                self._where(),
                f"{channels} channels (axis {self.axis[0]} of the input shape "
                f"{shape_text(input_shape)}) cannot be split into {self.groups} groups; the "
                "channel count must be a multiple of groups",
                user_location(),
            )
        super().build(input_shape)

    def call(self, x: Any) -> Any:
        return group_norm(
            x, self.groups, self.gamma, self.beta, axis=self.axis[0], epsilon=self.epsilon
        )


class BatchNormalization(_Affine):
    """Batch normalization over all axes but the feature ``axis`` (Keras' defaults: axis -1,
    momentum 0.99, epsilon 1e-3, center and scale).

    ``training=True`` normalizes with the batch's mean and (biased) variance and updates the
    non-trainable ``moving_mean`` / ``moving_variance`` as Keras does (``moving = moving *
    momentum + batch * (1 - momentum)``) -- inside a compiled train step too, where they are
    state the step writes back. ``training=False`` (the default, as in Keras) normalizes with
    the moving statistics. Only ``gamma`` and ``beta`` are trainable.

    >>> import tracejit as tj
    >>> bn = tj.nn.BatchNormalization(momentum=0.5, name="bn")
    >>> y = bn(tj.constant([[1.0], [3.0]]), training=True)
    >>> bn.moving_mean.numpy(), bn.moving_variance.numpy()
    (array([1.], dtype=float32), array([1.], dtype=float32))
    >>> [v.name for v in bn.trainable_variables]
    ['bn/gamma', 'bn/beta']
    """

    takes_training = True

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: InitializerLike = "zeros",
        gamma_initializer: InitializerLike = "ones",
        moving_mean_initializer: InitializerLike = "zeros",
        moving_variance_initializer: InitializerLike = "ones",
        name: str | None = None,
    ) -> None:
        if not isinstance(axis, int):
            raise TypeError(f"BatchNormalization: axis must be one int, got {axis!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum}")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, name)
        self.momentum = float(momentum)
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.moving_mean: Any = None
        self.moving_variance: Any = None

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        features = (self.input_size(input_shape, self.axis[0]),)
        self.moving_mean = self.add_weight(
            "moving_mean", features, self.moving_mean_initializer, trainable=False
        )
        self.moving_variance = self.add_weight(
            "moving_variance", features, self.moving_variance_initializer, trainable=False
        )

    def call(self, x: Any, training: bool = False) -> Any:
        axis = self.axis[0]
        if not training:
            return batch_norm(
                x, self.gamma, self.beta, mean=self.moving_mean,
                variance=self.moving_variance, axis=axis, epsilon=self.epsilon,
            )  # fmt: skip
        y, mean, variance = batch_norm(x, self.gamma, self.beta, axis=axis, epsilon=self.epsilon)
        keep = self.momentum
        self.moving_mean.assign(self.moving_mean * keep + mean * (1.0 - keep))
        self.moving_variance.assign(self.moving_variance * keep + variance * (1.0 - keep))
        return y
