"""Optimizers: SGD (with momentum, Nesterov), Adam and AdamW.

Slot variables (momentum, moments) are created on first use, one set per trained variable; the
step counter ``iterations`` is a variable too, so everything works eagerly and inside a compiled
train step (where the updates are assigned to lifted state). The learning rate is a float or a
schedule: a function of the step (an int32 tensor) returning the rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tracejit.autodiff.tape import GradientTape
from tracejit.eager.variable import Variable
from tracejit.ops import elementwise as ew
from tracejit.ops.creation import zeros_like
from tracejit.tracing import context

LearningRate = float | Callable[[Any], Any]


class Optimizer:
    """Base class: subclasses name their slots (``_slot_names``) and define ``_update``."""

    _slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: LearningRate) -> None:
        self.learning_rate = learning_rate
        self.iterations = Variable(0, trainable=False, name="optimizer/iterations", dtype="int32")
        self._slots: dict[int, dict[str, Variable]] = {}

    def _lr(self) -> Any:
        if callable(self.learning_rate):
            return ew.cast(self.learning_rate(self.iterations.value()), "float32")
        return self.learning_rate

    def slots(self, variable: Variable) -> dict[str, Variable]:
        """The slot variables of ``variable`` (created on first use)."""
        found = self._slots.get(id(variable))
        if found is None:
            with context.paused_tracing():
                found = {
                    name: Variable(
                        zeros_like(variable), trainable=False, name=f"{variable.name}/{name}"
                    )
                    for name in self._slot_names
                }
            for slot in found.values():
                builder = context.state.builder
                if builder is not None:
                    builder.note_variable_created(slot)
            self._slots[id(variable)] = found
        return found

    def slot_variables(self) -> list[Variable]:
        return [v for slots in self._slots.values() for v in slots.values()]

    @property
    def variables(self) -> list[Variable]:
        """The optimizer's own state: step counter and slots (for checkpoints)."""
        return [self.iterations, *self.slot_variables()]

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> None:
        """One update of each variable with its gradient (pairs with a None gradient are
        skipped, as in TF)."""
        given = list(grads_and_vars)
        pairs = [(g, v) for g, v in given if g is not None]
        skipped = [getattr(v, "name", "?") for g, v in given if g is None]
        if pairs and skipped and not self.__dict__.get("_warned_none"):
            self._warned_none = True  # once per optimizer, as TF's warning
            warnings.warn(
                f"Gradients do not exist for variables {skipped} when minimizing the loss: they "
                "were not updated. Is the loss connected to them?",
                UserWarning,
                stacklevel=2,
            )
        if not pairs:
            raise ValueError(
                "apply_gradients got no gradients (all None): is the loss connected "
                "to the variables?"
            )
        lr = self._lr()
        step = ew.add(ew.cast(self.iterations.value(), "float32"), 1.0)
        for grad, variable in pairs:
            if not isinstance(variable, Variable):
                raise TypeError(
                    "apply_gradients expects (gradient, Variable) pairs, got "
                    f"{type(variable).__name__}"
                )
            self._update(variable, grad, self.slots(variable), lr, step)
        self.iterations.assign_add(1)

    def minimize(self, loss_fn: Callable[[], Any], variables: Sequence[Variable]) -> Any:
        """Compute ``loss_fn()`` under a tape, apply its gradients; return the loss."""
        with GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, list(variables))
        self.apply_gradients(zip(grads, variables))
        return loss

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], lr: Any, step: Any
    ) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as TF's SGD."""

    def __init__(
        self, learning_rate: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False
    ) -> None:
        super().__init__(learning_rate)
        self.momentum = momentum
        self.nesterov = nesterov
        self._slot_names = ("momentum",) if momentum else ()

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], lr: Any, step: Any
    ) -> None:
        if not self.momentum:
            variable.assign_sub(ew.multiply(lr, grad))
            return
        velocity = slots["momentum"]
        new_velocity = ew.subtract(ew.multiply(self.momentum, velocity), ew.multiply(lr, grad))
        velocity.assign(new_velocity)
        if self.nesterov:
            variable.assign_add(
                ew.subtract(ew.multiply(self.momentum, new_velocity), ew.multiply(lr, grad))
            )
        else:
            variable.assign_add(new_velocity)


class Adam(Optimizer):
    """Adam (Kingma & Ba), with TF's epsilon placement: ``lr_t * m / (sqrt(v) + eps)``."""

    _slot_names = ("m", "v")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _decay(self, variable: Variable, lr: Any) -> None:
        """Hook for decoupled weight decay (AdamW)."""

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], lr: Any, step: Any
    ) -> None:
        m, v = slots["m"], slots["v"]
        b1, b2 = self.beta1, self.beta2
        m.assign(ew.add(ew.multiply(b1, m), ew.multiply(1.0 - b1, grad)))
        v.assign(ew.add(ew.multiply(b2, v), ew.multiply(1.0 - b2, ew.square(grad))))
        correction = ew.divide(
            ew.sqrt(ew.subtract(1.0, ew.power(b2, step))), ew.subtract(1.0, ew.power(b1, step))
        )
        lr_t = ew.multiply(lr, correction)
        self._decay(variable, lr)
        variable.assign_sub(ew.divide(ew.multiply(lr_t, m), ew.add(ew.sqrt(v), self.eps)))


class AdamW(Adam):
    """Adam with decoupled weight decay: ``w -= lr * weight_decay * w`` before each update."""

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        weight_decay: float = 0.004,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, eps)
        self.weight_decay = weight_decay

    def _decay(self, variable: Variable, lr: Any) -> None:
        variable.assign_sub(ew.multiply(ew.multiply(lr, self.weight_decay), variable))


from tracejit.optim.optax_adapter import Optax, from_optax  # noqa: E402, F401 (issue 15)
