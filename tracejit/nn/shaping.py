"""Layers without variables that reshape, combine or pool: Reshape, Permute, Concatenate, Add,
Subtract, Multiply, Average, Maximum, Minimum, GlobalAverage/MaxPooling1D/2D, Activation.
As in Keras, axis 0 is the batch axis and the shapes these layers take exclude it."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from tracejit.errors import ShapeError
from tracejit.ir.source import user_location
from tracejit.nn.base import ActivationLike, Layer, get_activation
from tracejit.ops import elementwise as ew
from tracejit.ops import reduction
from tracejit.ops.arguments import arg_aval
from tracejit.ops.infer import shape_text
from tracejit.ops.shape import concatenate, reshape, transpose

__all__ = [
    "Activation", "Add", "Average", "Concatenate", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Maximum", "Minimum",
    "Multiply", "Permute", "Reshape", "Subtract",
]  # fmt: skip


class Activation(Layer):
    """Applies an activation (a name such as ``"relu"``, or a callable) elementwise.

    >>> import tracejit as tj
    >>> tj.nn.Activation("relu")(tj.constant([-1.0, 2.0])).numpy()
    array([0., 2.], dtype=float32)
    """

    def __init__(self, activation: ActivationLike, name: str | None = None) -> None:
        super().__init__(name)
        self.activation = get_activation(activation)

    def call(self, x: Any) -> Any:
        return x if self.activation is None else self.activation(x)


class Reshape(Layer):
    """Reshape each example to ``target_shape`` (without the batch dim; one entry may be -1).

    >>> import tracejit as tj
    >>> tj.nn.Reshape((3, -1))(tj.ones((2, 12))).shape
    (2, 3, 4)
    """

    def __init__(self, target_shape: Sequence[int], name: str | None = None) -> None:
        super().__init__(name)
        target = tuple(target_shape)
        if not all(isinstance(d, int) and (d > 0 or d == -1) for d in target):
            raise ValueError(f"Reshape: target_shape must be positive ints or -1, got {target!r}")
        if target.count(-1) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got {target!r}")
        self.target_shape = target

    def call(self, x: Any) -> Any:
        shape = arg_aval(self._where(), x).shape
        rest = shape[1:]
        target = self.target_shape
        if all(d is not None for d in rest):
            size = math.prod(d for d in rest if d is not None)
            known = math.prod(d for d in target if d != -1)
            if (-1 in target and size % known) or (-1 not in target and size != known):
                raise ShapeError(
                    self._where(),
                    f"cannot reshape examples of shape {shape_text(rest)} ({size} elements) to "
                    f"{shape_text(target)}",
                    user_location(),
                )
            target = tuple(size // known if d == -1 else d for d in target)
        return reshape(x, (-1, *target))


class Permute(Layer):
    """Permute the non-batch axes: ``dims`` numbers them from 1, as Keras' ``Permute``.

    >>> import tracejit as tj
    >>> tj.nn.Permute((2, 1))(tj.ones((4, 3, 5))).shape
    (4, 5, 3)
    """

    def __init__(self, dims: Sequence[int], name: str | None = None) -> None:
        super().__init__(name)
        dims = tuple(dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                f"Permute: dims must be a permutation of 1..{len(dims)} (axis 0, the batch, "
                f"stays), got {dims!r}"
            )
        self.dims = dims

    def call(self, x: Any) -> Any:
        ndim = arg_aval(self._where(), x).ndim
        if ndim != len(self.dims) + 1:
            raise ShapeError(
                self._where(),
                f"permutes {len(self.dims)} non-batch axes, got an input of rank {ndim}",
                user_location(),
            )
        return transpose(x, (0, *self.dims))


class _Merge(Layer):
    """Combines a list of tensors (at least ``minimum``) into one."""

    minimum = 2

    def call(self, inputs: Any) -> Any:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self.minimum:
            got = f"{len(inputs)} tensors" if isinstance(inputs, (list, tuple)) else "one tensor"
            raise ValueError(
                f"{self._where()} is called on a list of at least {self.minimum} tensors, got {got}"
            )
        return self.merge(list(inputs))

    def merge(self, inputs: list[Any]) -> Any:
        raise NotImplementedError


def _fold(op: Callable[[Any, Any], Any], inputs: list[Any]) -> Any:
    return functools.reduce(op, inputs)


class Concatenate(_Merge):
    """Concatenate a list of tensors along ``axis`` (default the last).

    >>> import tracejit as tj
    >>> tj.nn.Concatenate()([tj.ones((2, 3)), tj.zeros((2, 1))]).shape
    (2, 4)
    """

    minimum = 1

    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        super().__init__(name)
        self.axis = axis

    def merge(self, inputs: list[Any]) -> Any:
        return concatenate(inputs, axis=self.axis)


class Add(_Merge):
    """The elementwise sum of a list of tensors (a residual connection: ``Add()([x, f(x)])``).

    >>> import tracejit as tj
    >>> tj.nn.Add()([tj.ones((2,)), tj.ones((2,)), tj.ones((2,))]).numpy()
    array([3., 3.], dtype=float32)
    """

    def merge(self, inputs: list[Any]) -> Any:
        return _fold(ew.add, inputs)


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two tensors)."""

    def merge(self, inputs: list[Any]) -> Any:
        if len(inputs) != 2:
            raise ValueError(f"{self._where()} takes exactly 2 tensors, got {len(inputs)}")
        return ew.subtract(inputs[0], inputs[1])


class Multiply(_Merge):
    """The elementwise product of a list of tensors."""

    def merge(self, inputs: list[Any]) -> Any:
        return _fold(ew.multiply, inputs)


class Average(_Merge):
    """The elementwise mean of a list of tensors."""

    def merge(self, inputs: list[Any]) -> Any:
        return ew.divide(_fold(ew.add, inputs), float(len(inputs)))


class Maximum(_Merge):
    """The elementwise maximum of a list of tensors."""

    def merge(self, inputs: list[Any]) -> Any:
        return _fold(ew.maximum, inputs)


class Minimum(_Merge):
    """The elementwise minimum of a list of tensors."""

    def merge(self, inputs: list[Any]) -> Any:
        return _fold(ew.minimum, inputs)


class _GlobalPooling(Layer):
    """Reduces the spatial axes (all but batch and channels, channels last)."""

    spatial: int
    reduce: Callable[..., Any]

    def __init__(self, keepdims: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.keepdims = bool(keepdims)

    def call(self, x: Any) -> Any:
        ndim = arg_aval(self._where(), x).ndim
        if ndim != self.spatial + 2:
            raise ShapeError(
                self._where(),
                f"expects inputs of rank {self.spatial + 2} (batch, {self.spatial} spatial "
                f"axes, channels), got rank {ndim}",
                user_location(),
            )
        axes = tuple(range(1, self.spatial + 1))
        return type(self).reduce(x, axis=axes, keepdims=self.keepdims)


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean over the steps of ``[batch, steps, channels]`` -> ``[batch, channels]``.

    >>> import tracejit as tj
    >>> tj.nn.GlobalAveragePooling1D()(tj.ones((2, 5, 3))).shape
    (2, 3)
    """

    spatial = 1
    reduce = staticmethod(reduction.mean)


class GlobalAveragePooling2D(_GlobalPooling):
    """The mean over height and width of NHWC inputs -> ``[batch, channels]``."""

    spatial = 2
    reduce = staticmethod(reduction.mean)


class GlobalMaxPooling1D(_GlobalPooling):
    """The maximum over the steps of ``[batch, steps, channels]`` -> ``[batch, channels]``."""

    spatial = 1
    reduce = staticmethod(reduction.max)


class GlobalMaxPooling2D(_GlobalPooling):
    """The maximum over height and width of NHWC inputs -> ``[batch, channels]``."""

    spatial = 2
    reduce = staticmethod(reduction.max)
