"""Recurrent layers: ``SimpleRNN``, ``LSTM``, ``GRU`` (Keras' equations and weight layouts), run
over time with ``tj.scan``, and ``Bidirectional``.

Inputs are batch-major ``[batch, time, features]``. The input projection ``x @ kernel + bias``
of every step is one matmul before the scan; the scan carries the states and does only the
recurrent matmul per step. ``LSTM(units)`` builds its variables on the first call (from the
input's last dim); ``LSTM(input_dim, units)`` at once. Weights, as Keras lays them out:

- ``SimpleRNN``: ``kernel [in, u]``, ``recurrent_kernel [u, u]``, ``bias [u]``;
  ``h = activation(x W + h U + b)``.
- ``LSTM``: gates in the order i, f, c, o: ``kernel [in, 4u]``, ``recurrent_kernel [u, 4u]``,
  ``bias [4u]`` (the forget gate's starts at 1, ``unit_forget_bias``);
  ``z = x W + h U + b``, ``c = f * c + i * tanh(z_c)``, ``h = o * tanh(c)`` (i, f, o: sigmoid).
- ``GRU``: gates in the order z, r, h: ``kernel [in, 3u]``, ``recurrent_kernel [u, 3u]``;
  ``reset_after=True`` (Keras' default): ``bias [2, 3u]`` (input and recurrent biases) and
  ``h~ = tanh(x W_h + b_h + r * (h U_h + b'_h))``; ``reset_after=False``: ``bias [3u]`` and
  ``h~ = tanh(x W_h + b_h + (r * h) U_h)``; then ``h = z * h_prev + (1 - z) * h~``.

``mask`` (``[batch, time]``, True = a real step) carries the states through masked steps, whose
output repeats the previous one (zeros with ``zero_output_for_mask=True``), as in Keras.
``return_sequences`` gives every step's output ``[batch, time, u]`` (else the last one),
``return_state`` a list ``[output, *final_states]``; ``go_backwards`` reads the sequence from
the end (and returns the outputs in that order, as Keras does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracejit.errors import ShapeError
from tracejit.module import Module
from tracejit.nn import _weights
from tracejit.nn.base import shape_of
from tracejit.nn.layers import get_activation, unique_name
from tracejit.ops.arguments import arg_aval
from tracejit.ops.control import scan
from tracejit.ops.creation import zeros_like
from tracejit.ops.elementwise import add, cast, multiply, subtract, where
from tracejit.ops.linalg import matmul
from tracejit.ops.manipulation import flip
from tracejit.ops.shape import concatenate, expand_dims, split, transpose
from tracejit.random import Generator, get_global_generator
from tracejit.types import bool_

States = tuple[Any, ...]


def record_output_shape(layer: Module, result: Any) -> None:
    """What ``Module.summary`` shows: the first call's output shape(s), batch dim as None."""
    if layer.output_shape is None:
        shapes = [shape_of(r) for r in result] if isinstance(result, (list, tuple)) else None
        one = lambda s: (None, *s[1:])  # noqa: E731
        layer.output_shape = [one(s) for s in shapes] if shapes else one(shape_of(result))


def _sizes(layer: str, sizes: tuple[int, ...]) -> tuple[int | None, int]:
    """``(input_dim or None, units)`` from ``Layer(units)`` or ``Layer(input_dim, units)``."""
    if len(sizes) not in (1, 2) or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(
            f"{layer} takes its units ({layer}(units)) or its input size and units "
            f"({layer}(input_dim, units)) as positive ints, got {sizes!r}"
        )
    return (None, sizes[0]) if len(sizes) == 1 else (sizes[0], sizes[1])


class _RNN(Module):
    """What SimpleRNN, LSTM and GRU share: building, the scan over time, masks, outputs."""

    prefix = "rnn"
    gates = 1  # how many blocks of ``units`` columns the kernels have

    def __init__(
        self,
        *sizes: int,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        zero_output_for_mask: bool = False,
        generator: Generator | None = None,
        name: str | None = None,
        **options: Any,
    ) -> None:
        self._name = name or unique_name(self.prefix)
        self.input_dim, self.units = _sizes(type(self).__name__, sizes)
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards, self.zero_output_for_mask = go_backwards, zero_output_for_mask
        self.__generator__ = generator or get_global_generator()  # dunder: not a child
        self.__options__ = dict(options)
        self.kernel: Any = None  # Variables once built
        self.recurrent_kernel: Any = None
        self.bias: Any = None
        if self.input_dim is not None:
            self._build(self.input_dim)

    def clone(self, **changes: Any) -> _RNN:
        """A new layer of the same configuration (fresh variables), with ``changes``."""
        options = {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "zero_output_for_mask": self.zero_output_for_mask,
            "generator": self.__generator__,
            **self.__options__,
            **changes,
        }
        sizes = (self.units,) if self.input_dim is None else (self.input_dim, self.units)
        return type(self)(*sizes, **options)

    # Subclasses: variables, the input projection, one step.
    def _build(self, input_dim: int) -> None:
        self.input_dim = input_dim
        width = self.gates * self.units
        generator = self.__generator__
        self.kernel = _weights.glorot_uniform(
            generator, (input_dim, width), input_dim, width, f"{self._name}/kernel"
        )
        self.recurrent_kernel = _weights.orthogonal(
            generator, self.units, width, f"{self._name}/recurrent_kernel"
        )
        if self.__options__.get("use_bias", True):
            self.bias = _weights.constant(self._initial_bias(), f"{self._name}/bias")

    def _initial_bias(self) -> Any:
        return [0.0] * (self.gates * self.units)

    def _project(self, x: Any) -> Any:
        projected = matmul(x, self.kernel)
        return projected + self.bias if self.bias is not None else projected

    def _step(self, states: States, x: Any) -> States:
        raise NotImplementedError

    def _state_count(self) -> int:
        return 1

    # The run over time.
    def __call__(self, x: Any, mask: Any = None, initial_state: Any = None) -> Any:
        shape = arg_aval(self.name, x).shape
        if len(shape) != 3:
            raise ShapeError(
                self.name, f"expects inputs [batch, time, features], got shape {shape}"
            )
        if self.kernel is None:
            if shape[-1] is None:
                raise ShapeError(self.name, f"needs a known feature dim to build, got {shape}")
            self._build(shape[-1])
        if shape[-1] is not None and shape[-1] != self.input_dim:
            raise ShapeError(
                self.name,
                f"was built for {self.input_dim} input features, got inputs of shape {shape}",
            )
        steps = transpose(self._project(x), (1, 0, 2))  # [time, batch, gates * units]
        states = self._initial_states(steps, initial_state)
        keep = None
        if mask is not None:
            keep = expand_dims(transpose(cast(mask, bool_), (1, 0)), -1)  # [time, batch, 1]
        if self.go_backwards:
            steps = flip(steps, axis=0)
            keep = flip(keep, axis=0) if keep is not None else None
        final, outputs = scan(
            self._masked_step, states, (steps, keep) if keep is not None else steps
        )
        output = transpose(outputs, (1, 0, 2)) if self.return_sequences else final[0]
        result = [output, *final] if self.return_state else output
        record_output_shape(self, result)
        return result

    def _initial_states(self, steps: Any, initial_state: Any) -> States:
        count = self._state_count()
        if initial_state is None:
            zero = zeros_like(steps[0, :, : self.units])
            return tuple(zero for _ in range(count))
        given = (
            tuple(initial_state) if isinstance(initial_state, (list, tuple)) else (initial_state,)
        )
        if len(given) != count:
            raise ValueError(
                f"{self.name}: initial_state needs {count} tensors [batch, {self.units}], "
                f"got {len(given)}"
            )
        return given

    def _masked_step(self, states: States, inputs: Any) -> tuple[States, Any]:
        if not isinstance(inputs, tuple):
            new = self._step(states, inputs)
            return new, new[0]
        x, keep = inputs
        new = tuple(where(keep, n, old) for n, old in zip(self._step(states, x), states))
        output = where(keep, new[0], 0.0) if self.zero_output_for_mask else new[0]
        return new, output


class SimpleRNN(_RNN):
    """A fully connected RNN: ``h = activation(x W + h U + b)`` (default tanh).

    >>> import tracejit as tj
    >>> rnn = tj.nn.SimpleRNN(3, 5, generator=tj.random.Generator(0))
    >>> rnn(tj.ones((2, 7, 3))).shape
    (2, 5)
    """

    prefix = "simple_rnn"

    def __init__(
        self, *sizes: int, activation: Any = "tanh", use_bias: bool = True, **options: Any
    ) -> None:
        self.activation = get_activation(activation) or (lambda z: z)
        super().__init__(*sizes, activation=activation, use_bias=use_bias, **options)

    def _step(self, states: States, x: Any) -> States:
        return (self.activation(add(x, matmul(states[0], self.recurrent_kernel))),)


class LSTM(_RNN):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), Keras' gate layout (i, f, c, o).

    >>> import tracejit as tj
    >>> lstm = tj.nn.LSTM(3, 4, return_sequences=True, return_state=True,
    ...                   generator=tj.random.Generator(0))
    >>> [t.shape for t in lstm(tj.ones((2, 6, 3)))]
    [(2, 6, 4), (2, 4), (2, 4)]
    """

    prefix = "lstm"
    gates = 4

    def __init__(
        self,
        *sizes: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
        **options: Any,
    ) -> None:
        self.activation = get_activation(activation) or (lambda z: z)
        self.recurrent_activation = get_activation(recurrent_activation) or (lambda z: z)
        super().__init__(
            *sizes,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            unit_forget_bias=unit_forget_bias,
            **options,
        )

    def _initial_bias(self) -> Any:
        u = self.units
        forget = 1.0 if self.__options__.get("unit_forget_bias", True) else 0.0
        return [0.0] * u + [forget] * u + [0.0] * (2 * u)

    def _state_count(self) -> int:
        return 2

    def _step(self, states: States, x: Any) -> States:
        h, c = states
        i, f, g, o = split(add(x, matmul(h, self.recurrent_kernel)), 4, axis=-1)
        gate = self.recurrent_activation
        c = add(multiply(gate(f), c), multiply(gate(i), self.activation(g)))
        return multiply(gate(o), self.activation(c)), c


class GRU(_RNN):
    """Gated recurrent unit (Cho et al. 2014), Keras' gate layout (z, r, h) and ``reset_after``.

    >>> import tracejit as tj
    >>> gru = tj.nn.GRU(3, 4, generator=tj.random.Generator(0))
    >>> gru.bias.shape, gru(tj.ones((2, 6, 3))).shape
    ((2, 12), (2, 4))
    """

    prefix = "gru"
    gates = 3

    def __init__(
        self,
        *sizes: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        reset_after: bool = True,
        **options: Any,
    ) -> None:
        self.activation = get_activation(activation) or (lambda z: z)
        self.recurrent_activation = get_activation(recurrent_activation) or (lambda z: z)
        self.reset_after = reset_after
        super().__init__(
            *sizes,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            reset_after=reset_after,
            **options,
        )

    def _initial_bias(self) -> Any:
        width = 3 * self.units
        return [[0.0] * width] * 2 if self.reset_after else [0.0] * width

    def _project(self, x: Any) -> Any:
        projected = matmul(x, self.kernel)
        if self.bias is None:
            return projected
        return projected + (self.bias[0] if self.reset_after else self.bias)

    def _step(self, states: States, x: Any) -> States:
        (h,) = states
        gate, u = self.recurrent_activation, self.units
        x_z, x_r, x_h = split(x, 3, axis=-1)
        if self.reset_after:
            recurrent = matmul(h, self.recurrent_kernel)
            if self.bias is not None:
                recurrent = recurrent + self.bias[1]
            h_z, h_r, h_h = split(recurrent, 3, axis=-1)
            z, r = gate(add(x_z, h_z)), gate(add(x_r, h_r))
            candidate = self.activation(add(x_h, multiply(r, h_h)))
        else:
            h_z, h_r = split(matmul(h, self.recurrent_kernel[:, : 2 * u]), 2, axis=-1)
            z, r = gate(add(x_z, h_z)), gate(add(x_r, h_r))
            candidate = self.activation(
                add(x_h, matmul(multiply(r, h), self.recurrent_kernel[:, 2 * u :]))
            )
        return (add(multiply(z, h), multiply(subtract(1.0, z), candidate)),)


_MERGES: dict[str, Callable[[Any, Any], Any]] = {
    "concat": lambda a, b: concatenate([a, b], axis=-1),
    "sum": add,
    "mul": multiply,
    "ave": lambda a, b: multiply(add(a, b), 0.5),
}


class Bidirectional(Module):
    """Runs an RNN layer forward and a copy of it backward over the sequence and merges the two
    outputs (``merge_mode``: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"``, or None
    for the pair). The backward outputs are put back in time order before merging. With
    ``return_state`` it returns ``[output, *forward_states, *backward_states]``.

    >>> import tracejit as tj
    >>> bi = tj.nn.Bidirectional(tj.nn.GRU(3, 4, generator=tj.random.Generator(0)))
    >>> bi(tj.ones((2, 6, 3))).shape
    (2, 8)
    """

    def __init__(
        self,
        layer: _RNN,
        merge_mode: str | None = "concat",
        backward_layer: _RNN | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(layer, _RNN):
            raise TypeError(
                f"Bidirectional wraps a SimpleRNN, LSTM or GRU, got {type(layer).__name__}"
            )
        if merge_mode is not None and merge_mode not in _MERGES:
            raise ValueError(
                f"Bidirectional: merge_mode must be one of {', '.join(_MERGES)} or None, got "
                f"{merge_mode!r}"
            )
        self._name = name or unique_name(f"bidirectional_{layer.prefix}")
        self.forward_layer = layer
        self.backward_layer = backward_layer or layer.clone(go_backwards=not layer.go_backwards)
        if self.backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("Bidirectional: backward_layer must read in the other direction")
        self.merge_mode = merge_mode

    def __call__(self, x: Any, mask: Any = None, initial_state: Any = None) -> Any:
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        forward = self.forward_layer(x, mask=mask, initial_state=forward_state)
        backward = self.backward_layer(x, mask=mask, initial_state=backward_state)
        states: list[Any] = []
        if self.forward_layer.return_state:
            forward, *forward_states = forward
            backward, *backward_states = backward
            states = forward_states + backward_states
        if self.forward_layer.return_sequences:
            backward = flip(backward, axis=1)
        output = (
            [forward, backward]
            if self.merge_mode is None
            else _MERGES[self.merge_mode](forward, backward)
        )
        result = [output, *states] if states else output
        record_output_shape(self, result)
        return result
