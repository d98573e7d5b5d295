"""Learning-rate schedules: functions of the optimizer's step, with Keras' definitions.

A schedule is called with the step counter (``optimizer.iterations``, read at the start of
``apply_gradients``: 0 for the first update) and returns a float32 scalar tensor. It is built of
tracejit ops, so inside a compiled train step it becomes a few IR nodes computed from the
counter's state input: the step is a variable, not a constant of the trace, and stepping does not
retrace. Called with a Python int, it returns the rate at that step (to plot or check one).

>>> import tracejit as tj
>>> schedule = tj.optim.cosine_decay(0.0, 100, warmup_target=0.1, warmup_steps=10)
>>> [round(float(schedule(s)), 4) for s in (0, 5, 10, 60, 110, 500)]
[0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracejit.ops import elementwise as ew
from tracejit.ops import elementwise_math as em
from tracejit.ops.creation import full


class Schedule:
    """Base class of the built-in schedules: ``schedule(step) -> float32 scalar``. Any callable
    of the step works as a learning rate too; these add validation and a readable repr."""

    def __call__(self, step: Any) -> Any:
        raise NotImplementedError


def _float_step(step: Any) -> Any:
    return ew.cast(step, "float32")


def _number(where: str, name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where}: `{name}` must be a number, got {value!r}")
    if not math.isfinite(value) or (positive and value <= 0):
        kind = "a positive finite number" if positive else "a finite number"
        raise ValueError(f"{where}: `{name}` must be {kind}, got {value!r}")
    return float(value)


def _steps(where: str, name: str, value: Any, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{where}: `{name}` must be an integer {bound}, got {value!r}")
    return value


def _scalar(value: float) -> Any:
    return full((), value, "float32")


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase``, the
    exponent is ``floor(step / decay_steps)``."""

    initial_learning_rate: float
    decay_steps: int
    decay_rate: float
    staircase: bool = False

    def __post_init__(self) -> None:
        where = "exponential_decay"
        _number(where, "initial_learning_rate", self.initial_learning_rate)
        _steps(where, "decay_steps", self.decay_steps)
        _number(where, "decay_rate", self.decay_rate, positive=True)

    def __call__(self, step: Any) -> Any:
        p = ew.divide(_float_step(step), float(self.decay_steps))
        if self.staircase:
            p = em.floor(p)
        return ew.multiply(self.initial_learning_rate, ew.power(self.decay_rate, p))


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Cosine decay (Loshchilov & Hutter's SGDR without restarts), with an optional linear
    warmup, as Keras' ``CosineDecay``.

    Without ``warmup_target``: ``lr0 * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) +
    alpha)`` with ``s = min(step, decay_steps)``. With it: first a linear ramp from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps`` steps, then that decay
    from ``warmup_target`` over the next ``decay_steps`` steps (ending at
    ``alpha * warmup_target``)."""

    initial_learning_rate: float
    decay_steps: int
    alpha: float = 0.0
    warmup_target: float | None = None
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        where = "cosine_decay"
        _number(where, "initial_learning_rate", self.initial_learning_rate)
        _steps(where, "decay_steps", self.decay_steps)
        _number(where, "alpha", self.alpha)
        _steps(where, "warmup_steps", self.warmup_steps, allow_zero=True)
        if self.warmup_target is not None:
            _number(where, "warmup_target", self.warmup_target)
        elif self.warmup_steps:
            raise ValueError(
                f"cosine_decay: warmup_steps={self.warmup_steps} needs a `warmup_target` (the "
                "rate the warmup reaches)"
            )

    def _decayed(self, s: Any, decay_from: float) -> Any:
        fraction = ew.divide(s, float(self.decay_steps))
        cosine = ew.multiply(0.5, ew.add(1.0, ew.cos(ew.multiply(math.pi, fraction))))
        return ew.multiply(decay_from, ew.add(ew.multiply(1.0 - self.alpha, cosine), self.alpha))

    def __call__(self, step: Any) -> Any:
        s = _float_step(step)
        if self.warmup_target is None:
            return self._decayed(ew.minimum(s, float(self.decay_steps)), self.initial_learning_rate)
        warmup = float(self.warmup_steps)
        s = ew.minimum(s, float(self.decay_steps) + warmup)
        decayed = self._decayed(ew.subtract(s, warmup), self.warmup_target)
        if not self.warmup_steps:
            return decayed
        delta = self.warmup_target - self.initial_learning_rate
        ramp = ew.add(ew.multiply(delta, ew.divide(s, warmup)), self.initial_learning_rate)
        return ew.where(ew.less(s, warmup), ramp, decayed)


@dataclass(frozen=True)
class PiecewiseConstantDecay(Schedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``boundaries[0] < step <= boundaries[1]``, ..., ``values[-1]`` after the last boundary
    (Keras' convention: a boundary step still has the earlier value)."""

    boundaries: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        where = "piecewise_constant"
        object.__setattr__(self, "boundaries", _sequence(where, "boundaries", self.boundaries))
        object.__setattr__(self, "values", _sequence(where, "values", self.values))
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"piecewise_constant: `values` needs one more entry than `boundaries`; got "
                f"{len(self.boundaries)} boundaries and {len(self.values)} values"
            )
        if any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(
                f"piecewise_constant: `boundaries` must increase strictly, got {self.boundaries}"
            )

    def __call__(self, step: Any) -> Any:
        result = _scalar(self.values[0])
        for boundary, value in zip(self.boundaries, self.values[1:]):
            # An int boundary compares with the int step exactly (no float32 rounding).
            bound: Any = int(boundary) if float(boundary).is_integer() else boundary
            result = ew.where(ew.greater(step, bound), value, result)
        return result


def _sequence(where: str, name: str, items: Any) -> tuple[float, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise TypeError(f"{where}: `{name}` must be a non-empty list of numbers, got {items!r}")
    return tuple(_number(where, f"{name}[{i}]", v) for i, v in enumerate(items))


@dataclass(frozen=True)
class PolynomialDecay(Schedule):
    """``(lr0 - end) * (1 - s / decay_steps) ** power + end`` with ``s = min(step,
    decay_steps)``; with ``cycle``, ``decay_steps`` is instead stretched to the first multiple
    of it that is ``>= step`` (so the rate restarts from higher values)."""

    initial_learning_rate: float
    decay_steps: int
    end_learning_rate: float = 0.0001
    power: float = 1.0
    cycle: bool = False

    def __post_init__(self) -> None:
        where = "polynomial_decay"
        _number(where, "initial_learning_rate", self.initial_learning_rate)
        _steps(where, "decay_steps", self.decay_steps)
        _number(where, "end_learning_rate", self.end_learning_rate)
        _number(where, "power", self.power)

    def __call__(self, step: Any) -> Any:
        s = _float_step(step)
        decay_steps: Any = float(self.decay_steps)
        if self.cycle:
            multiplier = ew.where(ew.equal(s, 0.0), 1.0, em.ceil(ew.divide(s, decay_steps)))
            decay_steps = ew.multiply(decay_steps, multiplier)
        else:
            s = ew.minimum(s, decay_steps)
        remaining = ew.subtract(1.0, ew.divide(s, decay_steps))
        span = self.initial_learning_rate - self.end_learning_rate
        return ew.add(ew.multiply(span, ew.power(remaining, self.power)), self.end_learning_rate)


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """A linear ramp from ``initial_learning_rate`` (step 0) to the rate ``after`` starts from
    (reached at ``warmup_steps``), then ``after`` — a number or a schedule, which is then called
    with ``step - warmup_steps`` (so its own step 0 is the end of the warmup)."""

    warmup_steps: int
    after: float | Callable[[Any], Any]
    initial_learning_rate: float = 0.0

    def __post_init__(self) -> None:
        where = "linear_warmup"
        _steps(where, "warmup_steps", self.warmup_steps)
        _number(where, "initial_learning_rate", self.initial_learning_rate)
        if not callable(self.after):
            _number(where, "after", self.after)

    def __call__(self, step: Any) -> Any:
        s = _float_step(step)
        warmup = float(self.warmup_steps)
        if callable(self.after):
            target = ew.cast(self.after(0), "float32")
            later = ew.cast(
                self.after(ew.maximum(ew.subtract(step, self.warmup_steps), 0)), "float32"
            )
        else:
            target = later = float(self.after)
        delta = ew.subtract(target, self.initial_learning_rate)
        ramp = ew.add(ew.multiply(delta, ew.divide(s, warmup)), self.initial_learning_rate)
        return ew.where(ew.less(s, warmup), ramp, later)


def exponential_decay(
    initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> ExponentialDecay:
    """Exponential decay: ``initial_learning_rate * decay_rate ** (step / decay_steps)``
    (``floor`` of the exponent with ``staircase``), as Keras' ``ExponentialDecay``.

    >>> import tracejit as tj
    >>> s = tj.optim.exponential_decay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    >>> [round(float(s(step)), 4) for step in (0, 9, 10, 25)]
    [0.1, 0.1, 0.05, 0.025]
    """
    return ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase)


def cosine_decay(
    initial_learning_rate: float,
    decay_steps: int,
    alpha: float = 0.0,
    warmup_target: float | None = None,
    warmup_steps: int = 0,
) -> CosineDecay:
    """Cosine decay to ``alpha`` times the starting rate over ``decay_steps``, after an optional
    linear warmup from ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``
    (Keras' ``CosineDecay``; see :class:`CosineDecay`)."""
    return CosineDecay(initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps)


def piecewise_constant(
    boundaries: Sequence[float], values: Sequence[float]
) -> PiecewiseConstantDecay:
    """A rate constant between boundaries: ``values[i]`` for ``boundaries[i-1] < step <=
    boundaries[i]`` (Keras' ``PiecewiseConstantDecay``).

    >>> import tracejit as tj
    >>> s = tj.optim.piecewise_constant([10, 20], [0.1, 0.01, 0.001])
    >>> [round(float(s(step)), 6) for step in (10, 11, 21)]
    [0.1, 0.01, 0.001]
    """
    return PiecewiseConstantDecay(tuple(boundaries), tuple(values))


def polynomial_decay(
    initial_learning_rate: float,
    decay_steps: int,
    end_learning_rate: float = 0.0001,
    power: float = 1.0,
    cycle: bool = False,
) -> PolynomialDecay:
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate`` over
    ``decay_steps`` (Keras' ``PolynomialDecay``; see :class:`PolynomialDecay`)."""
    return PolynomialDecay(initial_learning_rate, decay_steps, end_learning_rate, power, cycle)


def linear_warmup(
    warmup_steps: int,
    after: float | Callable[[Any], Any],
    initial_learning_rate: float = 0.0,
) -> LinearWarmup:
    """Ramp linearly from ``initial_learning_rate`` to ``after`` (a rate, or a schedule's rate
    at its step 0) over ``warmup_steps``, then follow ``after``, shifted to start there.

    >>> import tracejit as tj
    >>> s = tj.optim.linear_warmup(4, tj.optim.exponential_decay(0.1, 1, 0.5))
    >>> [round(float(s(step)), 4) for step in (0, 2, 4, 5, 6)]
    [0.0, 0.05, 0.1, 0.05, 0.025]
    """
    return LinearWarmup(warmup_steps, after, initial_learning_rate)
