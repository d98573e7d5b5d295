"""``Layer``: the base of tj.nn's layers, with Keras-style lazy building.

A layer may be given only its output size (``Dense(16)``, ``Conv2D(32, 3)``): its variables are
created on its first call, from that input's shape -- eagerly, or on the first trace of a
``tj.function`` (where creating variables is allowed, as in TF). Giving the input size too
(``Dense(4, 16)``) builds it at once.

Writing a layer (the contract the library's layers follow)::

    class Scale(tj.nn.Layer):
        def __init__(self, name=None):
            super().__init__(name or tj.nn.unique_name("scale"))
            self.scale = None                  # reserve the attribute (fixes variable order)

        def build(self, input_shape):          # once, with the first input's shape
            n = self.input_size(input_shape, -1)
            self.scale = self.add_weight("scale", (n,), "ones")
            self.fix_input_dims({-1: n})       # later calls must match (a clear error if not)

        def call(self, x):
            return x * self.scale

- ``build(input_shape)`` runs once, before the first ``call``: ``input_shape`` is a tuple with
  None for unknown dims (a list of them when the layer is called on a list or tuple). It must
  assign each variable to an attribute (``self.kernel = self.add_weight(...)``): attributes are
  what checkpoints (and their deferred restoration) name variables by.
- ``add_weight(name, shape, initializer="glorot_uniform", trainable=True, dtype="float32")``
  makes a Variable named ``<layer name>/<name>``, filled by the initializer (a name, an
  Initializer or a callable; see ``tj.nn.initializers``) from the layer's generator.
- ``fix_input_dims({axis: size}, ndim=None)`` records what later inputs must have; a call with
  another size raises ``ShapeError`` naming the layer and both sizes.
- ``call(inputs, *args, **kwargs)`` computes the output. Set ``takes_training = True`` on the
  class when ``call`` takes ``training=`` (``Sequential`` then passes it on).

After the first call ``layer.built`` is True and ``layer.output_shape`` is the output's shape
with the batch dim shown as None (what ``Module.summary`` prints).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from tracejit.eager.variable import Variable
from tracejit.errors import ShapeError
from tracejit.ir.source import user_location
from tracejit.module import Module
from tracejit.nn import initializers
from tracejit.ops import activations as more_activations
from tracejit.ops import nn as activations
from tracejit.ops.arguments import arg_aval
from tracejit.ops.elementwise import tanh
from tracejit.ops.infer import shape_text
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.random import Generator
from tracejit.types import float32

ActivationLike = Callable[[Any], Any] | str | None
Shape = tuple[int | None, ...]

_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": activations.relu,
    "sigmoid": activations.sigmoid,
    "softplus": activations.softplus,
    "gelu": activations.gelu,
    "softmax": activations.softmax,
    "log_softmax": activations.log_softmax,
    "tanh": tanh,
}
# The activations of tracejit/ops/activations.py, by their table's names (plus Keras' "swish").
_ACTIVATIONS.update(
    {name: getattr(more_activations, name) for name in more_activations.ACTIVATIONS}
)
_ACTIVATIONS["swish"] = more_activations.silu


def get_activation(activation: ActivationLike) -> Callable[[Any], Any] | None:
    """The function ``activation`` names (``"relu"``, ...; ``"linear"`` is None), or itself
    when it is callable or None."""
    if activation is None or callable(activation):
        return activation
    if activation == "linear":
        return None
    try:
        return _ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(
            f"unknown activation {activation!r}; known: {', '.join(sorted(_ACTIVATIONS))}, linear"
        ) from None


_layer_counts: dict[str, int] = {}


def unique_name(prefix: str) -> str:
    """``dense``, ``dense_1``, ``dense_2``... so variable names in the IR tell layers apart."""
    count = _layer_counts.get(prefix, 0)
    _layer_counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def snake_case(name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization``, ``MaxPool2D`` -> ``max_pool2d``
    (Keras' default layer names)."""
    words = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower()


def shape_of(inputs: Any) -> Any:
    """The static shape of a tensor-like input, a list of them for a list or tuple, None for
    anything else (a dict, None: a custom layer's ``build`` then gets None)."""
    if isinstance(inputs, (list, tuple)) and not _is_nested_numbers(inputs):
        return [shape_of(item) for item in inputs]
    if isinstance(inputs, (TensorMethods, bool, int, float, complex, np.ndarray, jax.Array)) or (
        isinstance(inputs, (list, tuple)) and inputs
    ):
        return arg_aval("layer input", inputs).shape
    return None


def _is_nested_numbers(value: Any) -> bool:
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return isinstance(value, (bool, int, float, complex))


def _batchless(shape: Any) -> Any:
    if isinstance(shape, list):
        return [_batchless(s) for s in shape]
    if isinstance(shape, tuple) and shape and all(d is None or isinstance(d, int) for d in shape):
        return (None, *shape[1:])
    return shape


class Layer(Module):
    """Base class of layers that build their variables from their first input (see the module's
    docstring for the contract: ``build``, ``add_weight``, ``fix_input_dims``, ``call``).

    >>> import tracejit as tj
    >>> layer = tj.nn.Dense(3)
    >>> layer.built, layer.kernel
    (False, None)
    >>> layer(tj.ones((2, 5))).shape
    (2, 3)
    >>> layer.built, layer.kernel.shape
    (True, (5, 3))
    """

    takes_training = False
    output_shape: Any = None

    def __init__(self, name: str | None = None, generator: Generator | None = None) -> None:
        super().__init__(name or unique_name(snake_case(type(self).__name__)))
        self.built = False
        self.__generator__ = generator  # dunder: neither a child module nor checkpointed
        self.__fixed__: tuple[dict[int, int], int | None] = ({}, None)

    # The contract ------------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Create the variables for inputs of ``input_shape`` (layers without any: nothing)."""

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define call()")

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        shape = shape_of(inputs)
        if not self.built:
            self.build(shape)
            self.built = True
        self._check_input(shape)
        outputs = self.call(inputs, *args, **kwargs)
        if self.output_shape is None:
            self.output_shape = _batchless(shape_of(outputs))
        return outputs

    # Helpers for build -------------------------------------------------------------------------
    def add_weight(
        self,
        name: str,
        shape: tuple[int, ...],
        initializer: initializers.InitializerLike = "glorot_uniform",
        trainable: bool = True,
        dtype: Any = float32,
    ) -> Variable:
        """A new Variable ``<layer name>/<name>`` of ``shape``, filled by ``initializer``."""
        init = initializers.get(initializer)
        generator = self.__dict__.get("__generator__")  # None: the global generator
        return Variable(
            lambda: init(shape, dtype, generator), trainable=trainable, name=f"{self.name}/{name}"
        )

    def input_size(self, input_shape: Any, axis: int) -> int:
        """The size of ``axis`` of ``input_shape``; a clear error when it is unknown (None) or the
        input has too few dims to build from."""
        if not isinstance(input_shape, tuple):
            raise TypeError(
                f"{self._where()}: expects one tensor, got a list of {len(input_shape)}"
            )
        ndim = len(input_shape)
        if not -ndim <= axis < ndim:
            raise ShapeError(
                self._where(),
                f"needs an input with an axis {axis} to build from, got shape "
                f"{shape_text(input_shape)}",
                user_location(),
            )
        size = input_shape[axis]
        if size is None:
            raise ShapeError(
                self._where(),
                f"cannot build from an input of shape {shape_text(input_shape)}: axis {axis} is "
                "unknown, and it sets the size of the layer's variables (give it in the "
                "input_signature, or give the layer its input size)",
                user_location(),
            )
        return int(size)

    def fix_input_dims(self, dims: Mapping[int, int], ndim: int | None = None) -> None:
        """Later inputs must have ``dims`` (axis -> size) and, if given, ``ndim`` dims."""
        self.__fixed__ = (dict(dims), ndim)

    def _check_input(self, shape: Any) -> None:
        dims, ndim = self.__dict__.get("__fixed__", ({}, None))
        if not isinstance(shape, tuple) or not (dims or ndim):
            return
        if ndim is not None and len(shape) != ndim:
            raise ShapeError(
                self._where(),
                f"expects inputs with {ndim} dims, got shape {shape_text(shape)}",
                user_location(),
            )
        for axis, size in dims.items():
            got = shape[axis] if -len(shape) <= axis < len(shape) else "missing"
            if got is not None and got != size:
                raise ShapeError(
                    self._where(),
                    f"was built for inputs whose axis {axis} has size {size}, but is called on "
                    f"an input of shape {shape_text(shape)} (axis {axis}: {got}). A layer keeps "
                    "the sizes it was built with; use another layer for these inputs",
                    user_location(),
                )

    def _where(self) -> str:
        return f"{type(self).__name__} '{self.name}'"
