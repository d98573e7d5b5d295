"""The optimizers, with Keras 3's update rules and options.

Slot variables (momenta, moments, accumulators) are created on first use, one set per trained
variable; the step counter ``iterations`` is a variable too, so everything works eagerly and
inside a compiled train step (where the updates are assigned to lifted state, and a learning-rate
schedule is computed from the counter's state input: no retrace per step).

Every optimizer takes the keyword options of :class:`Optimizer`: ``weight_decay`` (decoupled:
``w -= lr * weight_decay * w`` before the update, as Keras), and at most one of ``clipnorm``
(each gradient's own L2 norm), ``global_clipnorm`` (all gradients' joint norm) and
``clipvalue`` (each element to ``[-clipvalue, clipvalue]``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tracejit.autodiff.tape import GradientTape
from tracejit.eager.variable import Variable
from tracejit.errors import trims_tracebacks
from tracejit.ops import elementwise as ew
from tracejit.ops.arguments import arg_aval
from tracejit.ops.creation import full_like
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.optim.clipping import check_clip_threshold, clip_by_global_norm, clip_by_norm
from tracejit.tracing import context
from tracejit.types import DType, is_floating, shape_str

LearningRate = float | Callable[[Any], Any]
Coefficients = dict[str, Any]


def _check_number(
    where: str, name: str, value: Any, low: float, high: float, *, closed_high: bool = False
) -> float:
    """``value`` as a float if ``low <= value < high`` (``<= high`` with ``closed_high``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where}: `{name}` must be a number, got {value!r}")
    inside = low <= value <= high if closed_high else low <= value < high
    if not inside:
        bracket = "]" if closed_high else ")"
        raise ValueError(f"{where}: `{name}` must be in [{low:g}, {high:g}{bracket}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: subclasses name their slots (``_slot_names``), may give them a starting value
    (``_slot_initial``), compute the per-step scalars once (``_coefficients``) and define the
    per-variable ``_update``.

    Options (keyword-only, on every optimizer, as Keras defines them):

    - ``weight_decay``: decoupled weight decay, ``w -= lr * weight_decay * w`` before each
      update (``exclude_from_weight_decay`` exempts variables, e.g. biases);
    - ``clipnorm``: clip each gradient to this L2 norm (``clip_by_norm``);
    - ``global_clipnorm``: clip all gradients together to this global norm
      (``clip_by_global_norm``);
    - ``clipvalue``: clip each gradient element to ``[-clipvalue, clipvalue]``.

    At most one of the three clipping options may be set. Clipping applies to the gradients
    given to ``apply_gradients`` (the None ones left out), before weight decay and the update.
    """

    _slot_names: tuple[str, ...] = ()
    _slot_initial: dict[str, float] = {}

    def __init__(
        self,
        learning_rate: LearningRate,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        **unknown: Any,
    ) -> None:
        where = type(self).__name__
        if unknown:
            raise TypeError(
                f"{where}: unknown argument(s) {', '.join(sorted(unknown))}; the options every "
                "optimizer takes are weight_decay, clipnorm, clipvalue and global_clipnorm"
            )
        self._traced = False
        self.learning_rate = learning_rate
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = {k: v for k, v in clips.items() if v is not None}
        if len(given) > 1:
            raise ValueError(
                f"{where}: only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                + ", ".join(f"{k}={v!r}" for k, v in given.items())
            )
        for key, value in given.items():
            check_clip_threshold(where, key, value)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        if weight_decay is not None:
            weight_decay = _check_number(where, "weight_decay", weight_decay, 0.0, math.inf)
        self.weight_decay = weight_decay
        self.iterations = Variable(0, trainable=False, name="optimizer/iterations", dtype="int32")
        self._slots: dict[int, dict[str, Variable]] = {}
        self._no_decay_ids: set[int] = set()
        self._no_decay_names: tuple[str, ...] = ()

    @property
    def learning_rate(self) -> Any:
        """The learning rate: a float32 Variable when it was given as a number (setting
        ``opt.learning_rate = 0.01`` assigns it, so compiled steps see the new rate at their
        next call without retracing, and checkpoints keep it, as in Keras), else the schedule.

        (Kept in the instance dict under the same name, which this data property shadows, so
        that checkpoints name the variable ``<optimizer>/learning_rate``.)"""
        return self.__dict__["learning_rate"]

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        where = type(self).__name__
        value = _check_learning_rate(where, value)
        current = self.__dict__.get("learning_rate")
        if isinstance(value, float) and isinstance(current, Variable):
            current.assign(value)
            return
        if current is not None and self._traced:
            kind = "variable" if isinstance(current, Variable) else "schedule"
            raise TypeError(
                f"{where}: a tj.function has traced this optimizer's update with its learning-rate "
                f"{kind}, and its compiled step would go on using that; only a number can "
                "replace a number learning rate (it is assigned to the variable). Create a new "
                "optimizer to change to or from a schedule"
            )
        stored: Variable | Callable[[Any], Any]
        if isinstance(value, float):
            name = "optimizer/learning_rate"
            stored = Variable(value, trainable=False, name=name, dtype="float32")
        else:
            stored = value
        self.__dict__["learning_rate"] = stored

    def _lr(self) -> Any:
        rate = self.learning_rate
        if isinstance(rate, Variable):
            return rate.value()
        if callable(rate):
            rate = rate(self.iterations.value())
            shape = arg_aval("learning rate schedule", rate).shape
            if shape != ():
                raise ValueError(
                    f"{type(self).__name__}: the learning-rate schedule must return a scalar, "
                    f"got shape {shape_str(shape)}"
                )
            return ew.cast(rate, "float32")
        raise AssertionError("unreachable: the learning rate is a Variable or a callable")

    def slots(self, variable: Variable) -> dict[str, Variable]:
        """The slot variables of ``variable`` (created on first use)."""
        found = self._slots.get(id(variable))
        if found is None:
            # values a checkpoint restore kept for this variable's slots (it was built later)
            saved = self.__dict__.get("__deferred_slots__", {}).pop(id(variable), {})
            with context.paused_tracing():
                found = {
                    name: Variable(
                        saved[name]
                        if name in saved
                        else full_like(variable, self._slot_initial.get(name, 0.0)),
                        trainable=False,
                        name=f"{variable.name}/{name}",
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

    def _own_variables(self) -> list[Variable]:
        """Optimizer-wide state besides the step counter (Nadam's momentum product)."""
        return []

    @property
    def variables(self) -> list[Variable]:
        """The optimizer's own state: step counter, other optimizer-wide state, and slots (for
        checkpoints)."""
        own = [self.iterations, *self._own_variables()]
        if isinstance(self.learning_rate, Variable):
            own.insert(1, self.learning_rate)
        return [*own, *self.slot_variables()]

    def exclude_from_weight_decay(
        self, var_list: Iterable[Variable] | None = None, var_names: Iterable[str] | None = None
    ) -> None:
        """Exempt variables from ``weight_decay``: those in ``var_list``, and those whose name
        contains one of the strings ``var_names`` (``var_names=["bias"]`` for all biases)."""
        if var_list is not None:
            self._no_decay_ids = {id(v) for v in var_list}
        if var_names is not None:
            names = (var_names,) if isinstance(var_names, str) else tuple(var_names)
            self._no_decay_names = names

    def _decays(self, variable: Variable) -> bool:
        if id(variable) in self._no_decay_ids:
            return False
        return not any(part in variable.name for part in self._no_decay_names)

    @trims_tracebacks
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> None:
        """One update of each variable with its gradient (pairs with a None gradient are
        skipped, as in TF): clipping (if set), weight decay (if set), the optimizer's update,
        then the step counter advances."""
        given = list(grads_and_vars)
        where = f"{type(self).__name__}.apply_gradients"
        for item in given:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise TypeError(f"{where} expects (gradient, Variable) pairs, got {item!r}")
            if not isinstance(item[1], Variable):
                raise TypeError(
                    f"{where} expects (gradient, Variable) pairs, got {type(item[1]).__name__}"
                )
        pairs = [(g, v) for g, v in given if g is not None]
        skipped = [v.name for g, v in given if g is None]
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
        if context.state.builder is not None:
            self._traced = True
        variables = [v for _, v in pairs]
        grads = [_checked_gradient(where, g, v) for g, v in pairs]
        grads = self._clip(grads)
        step = ew.add(ew.cast(self.iterations.value(), "float32"), 1.0)
        shared = self._coefficients(self._lr(), step)
        by_dtype: dict[DType, Coefficients] = {}
        for grad, variable in zip(grads, variables):
            dtype = variable.dtype
            if dtype not in by_dtype:
                by_dtype[dtype] = {k: _as_dtype(c, dtype) for k, c in shared.items()}
            coefficients = by_dtype[dtype]
            if self.weight_decay and self._decays(variable):
                self._decay(variable, coefficients["lr"], self.weight_decay)
            self._update(variable, grad, self.slots(variable), coefficients)
        self.iterations.assign_add(1)

    @staticmethod
    def _decay(variable: Variable, lr: Any, weight_decay: float) -> None:
        """Keras' decoupled weight decay: ``w -= lr * weight_decay * w``."""
        rate = ew.multiply(lr, weight_decay)
        variable.assign_sub(ew.multiply(rate, variable))

    def _clip(self, grads: list[Any]) -> list[Any]:
        if self.clipnorm is not None:
            return [clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm is not None:
            return clip_by_global_norm(grads, self.global_clipnorm)[0]
        if self.clipvalue is not None:
            return [ew.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def minimize(self, loss_fn: Callable[[], Any], variables: Sequence[Variable]) -> Any:
        """Compute ``loss_fn()`` under a tape, apply its gradients; return the loss."""
        with GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, list(variables))
        self.apply_gradients(zip(grads, variables))
        return loss

    def _coefficients(self, lr: Any, step: Any) -> Coefficients:
        """The scalars shared by all variables this step (``lr`` at least); ``step`` is the
        1-based float32 step number."""
        return {"lr": lr, "step": step}

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        raise NotImplementedError


def _check_learning_rate(where: str, learning_rate: Any) -> LearningRate:
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise TypeError(
            f"{where}: `learning_rate` must be a number or a schedule (a callable of the step), "
            f"got {learning_rate!r}"
        )
    if not math.isfinite(learning_rate):
        raise ValueError(f"{where}: `learning_rate` must be finite, got {learning_rate!r}")
    return float(learning_rate)


def _checked_gradient(where: str, grad: Any, variable: Variable) -> Any:
    """The gradient, checked against its variable (a floating one of the same shape), in the
    variable's dtype (as Keras casts it)."""
    target = variable.aval
    if not is_floating(target.dtype):
        raise TypeError(
            f"{where}: optimizers update floating-point variables; '{variable.name}' is {target}"
        )
    aval = arg_aval(where, grad)
    same = len(aval.shape) == len(target.shape) and all(
        a is None or a == t for a, t in zip(aval.shape, target.shape)
    )
    if not same:  # (an unknown dimension of a traced gradient is checked at the assign)
        raise ValueError(
            f"{where}: the gradient of '{variable.name}' ({target}) has shape "
            f"{shape_str(aval.shape)}; it must have the variable's shape"
        )
    return grad if aval.dtype == target.dtype else ew.cast(grad, target.dtype)


def _as_dtype(value: Any, dtype: DType) -> Any:
    if isinstance(value, TensorMethods) and value.dtype != dtype:
        return ew.cast(value, dtype)
    return value


def _beta(where: str, name: str, value: Any) -> float:
    return _check_number(where, name, value, 0.0, 1.0)


def _eps(where: str, value: Any) -> float:
    return _check_number(where, "eps", value, 0.0, math.inf)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as Keras' SGD:
    ``velocity = momentum * velocity - lr * g``, then ``w += velocity`` (Nesterov:
    ``w += momentum * velocity - lr * g``). ``weight_decay=`` gives SGD with decoupled weight
    decay."""

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.momentum = _check_number("SGD", "momentum", momentum, 0.0, 1.0, closed_high=True)
        self.nesterov = bool(nesterov)
        self._slot_names = ("momentum",) if momentum else ()

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        lr = c["lr"]
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
    """Adam (Kingma & Ba), with Keras' epsilon placement ("epsilon hat"):
    ``w -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)``."""

    _slot_names = ("m", "v")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        where = type(self).__name__
        self.beta1, self.beta2 = _beta(where, "beta1", beta1), _beta(where, "beta2", beta2)
        self.eps = _eps(where, eps)

    def _coefficients(self, lr: Any, step: Any) -> Coefficients:
        correction = ew.divide(
            ew.sqrt(ew.subtract(1.0, ew.power(self.beta2, step))),
            ew.subtract(1.0, ew.power(self.beta1, step)),
        )
        return {"lr": lr, "lr_t": ew.multiply(lr, correction)}

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        m, v = slots["m"], slots["v"]
        b1, b2 = self.beta1, self.beta2
        m.assign(ew.add(ew.multiply(b1, m), ew.multiply(1.0 - b1, grad)))
        v.assign(ew.add(ew.multiply(b2, v), ew.multiply(1.0 - b2, ew.square(grad))))
        variable.assign_sub(ew.divide(ew.multiply(c["lr_t"], m), ew.add(ew.sqrt(v), self.eps)))


class AdamW(Adam):
    """Adam with decoupled weight decay (``w -= lr * weight_decay * w`` before each update;
    Keras' default ``weight_decay=0.004``)."""

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        weight_decay: float = 0.004,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, eps, weight_decay=weight_decay, **options)


class RMSprop(Optimizer):
    """RMSprop (Hinton), as Keras: ``velocity = rho * velocity + (1 - rho) * g**2``, then
    ``increment = lr * g / sqrt(velocity + eps)`` (eps inside the root; ``centered`` subtracts
    the square of a running mean gradient from ``velocity`` first); with ``momentum``,
    ``buffer = momentum * buffer + increment`` and ``w -= buffer``, else ``w -= increment``."""

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        eps: float = 1e-7,
        centered: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.rho = _beta("RMSprop", "rho", rho)
        self.momentum = _check_number("RMSprop", "momentum", momentum, 0.0, 1.0, closed_high=True)
        self.eps = _eps("RMSprop", eps)
        self.centered = bool(centered)
        names = ["velocity"]
        if self.momentum:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        self._slot_names = tuple(names)

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        rho = self.rho
        velocity = slots["velocity"]
        new_velocity = ew.add(ew.multiply(rho, velocity), ew.multiply(1.0 - rho, ew.square(grad)))
        velocity.assign(new_velocity)
        denominator = ew.add(new_velocity, self.eps)
        if self.centered:
            average = slots["average_gradient"]
            new_average = ew.add(ew.multiply(rho, average), ew.multiply(1.0 - rho, grad))
            average.assign(new_average)
            denominator = ew.subtract(denominator, ew.square(new_average))
        increment = ew.divide(ew.multiply(c["lr"], grad), ew.sqrt(denominator))
        if self.momentum:
            buffer = slots["momentum"]
            buffer.assign(ew.add(ew.multiply(self.momentum, buffer), increment))
            variable.assign_sub(buffer)
        else:
            variable.assign_sub(increment)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as Keras: ``accumulator += g**2`` (starting at
    ``initial_accumulator_value``), ``w -= lr * g / sqrt(accumulator + eps)``."""

    _slot_names = ("accumulator",)

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        initial_accumulator_value: float = 0.1,
        eps: float = 1e-7,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.initial_accumulator_value = _check_number(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0, math.inf
        )
        self.eps = _eps("Adagrad", eps)
        self._slot_initial = {"accumulator": self.initial_accumulator_value}

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        accumulator = slots["accumulator"]
        accumulator.assign(ew.add(accumulator, ew.square(grad)))
        variable.assign_sub(
            ew.divide(ew.multiply(c["lr"], grad), ew.sqrt(ew.add(accumulator, self.eps)))
        )


class Adadelta(Optimizer):
    """Adadelta (Zeiler), as Keras: running means of ``g**2`` and of the squared steps;
    ``delta = -sqrt(mean_delta2 + eps) / sqrt(mean_g2 + eps) * g``, ``w += lr * delta``
    (Keras' default ``learning_rate=0.001``; the paper's method is ``learning_rate=1.0``)."""

    _slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.95,
        eps: float = 1e-7,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.rho = _beta("Adadelta", "rho", rho)
        self.eps = _eps("Adadelta", eps)

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        rho = self.rho
        mean_g2, mean_d2 = slots["accumulated_grad"], slots["accumulated_delta_var"]
        mean_g2.assign(ew.add(ew.multiply(rho, mean_g2), ew.multiply(1.0 - rho, ew.square(grad))))
        rms_delta = ew.sqrt(ew.add(mean_d2, self.eps))
        delta = ew.negative(
            ew.divide(ew.multiply(rms_delta, grad), ew.sqrt(ew.add(mean_g2, self.eps)))
        )
        mean_d2.assign(ew.add(ew.multiply(rho, mean_d2), ew.multiply(1.0 - rho, ew.square(delta))))
        variable.assign_add(ew.multiply(c["lr"], delta))


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm), as Keras: ``m = beta1 * m + (1 - beta1) * g``,
    ``u = max(beta2 * u, |g|)``, ``w -= lr / (1 - beta1**t) * m / (u + eps)``.

    (optax's ``adamax`` puts eps inside the max, ``max(beta2 * u, |g| + eps)``: the two agree
    exactly for ``eps=0``.)"""

    _slot_names = ("m", "u")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.beta1, self.beta2 = _beta("Adamax", "beta1", beta1), _beta("Adamax", "beta2", beta2)
        self.eps = _eps("Adamax", eps)

    def _coefficients(self, lr: Any, step: Any) -> Coefficients:
        return {"lr": lr, "lr_t": ew.divide(lr, ew.subtract(1.0, ew.power(self.beta1, step)))}

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        m, u = slots["m"], slots["u"]
        m.assign(ew.add(ew.multiply(self.beta1, m), ew.multiply(1.0 - self.beta1, grad)))
        u.assign(ew.maximum(ew.multiply(self.beta2, u), ew.abs(grad)))
        variable.assign_sub(ew.divide(ew.multiply(c["lr_t"], m), ew.add(u, self.eps)))


class Nadam(Optimizer):
    """Nadam (Dozat: Adam with Nesterov momentum), as Keras, with its momentum schedule
    ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``:
    ``m_hat = mu_{t+1} * m / (1 - prod(mu_1..mu_{t+1})) + (1 - mu_t) * g / (1 - prod(mu_1..mu_t))``,
    ``v_hat = v / (1 - beta2**t)``, ``w -= lr * m_hat / (sqrt(v_hat) + eps)``.

    ``momentum_decay=1.0`` is Keras' Nadam; ``0.004`` is PyTorch's NAdam default;
    ``float("inf")`` makes the momentum constant (``mu_t = beta1``), which is optax's ``nadam``.
    The running product of the ``mu_t`` is optimizer state (``u_product``), as in Keras."""

    _slot_names = ("m", "v")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        momentum_decay: float = 1.0,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        self.beta1, self.beta2 = _beta("Nadam", "beta1", beta1), _beta("Nadam", "beta2", beta2)
        self.eps = _eps("Nadam", eps)
        if isinstance(momentum_decay, bool) or not isinstance(momentum_decay, (int, float)):
            raise TypeError(f"Nadam: `momentum_decay` must be a number, got {momentum_decay!r}")
        if not momentum_decay > 0:  # (inf allowed)
            raise ValueError(f"Nadam: `momentum_decay` must be > 0, got {momentum_decay!r}")
        self.momentum_decay = float(momentum_decay)
        self.u_product = Variable(1.0, trainable=False, name="optimizer/u_product")

    def _own_variables(self) -> list[Variable]:
        return [self.u_product]

    def _mu(self, step: Any) -> Any:
        exponent = ew.multiply(step, self.momentum_decay)
        return ew.multiply(self.beta1, ew.subtract(1.0, ew.multiply(0.5, ew.power(0.96, exponent))))

    def _coefficients(self, lr: Any, step: Any) -> Coefficients:
        mu_t, mu_next = self._mu(step), self._mu(ew.add(step, 1.0))
        product = ew.multiply(self.u_product.value(), mu_t)
        self.u_product.assign(product)
        return {
            "lr": lr,
            "m_scale": ew.divide(mu_next, ew.subtract(1.0, ew.multiply(product, mu_next))),
            "g_scale": ew.divide(ew.subtract(1.0, mu_t), ew.subtract(1.0, product)),
            "v_correction": ew.subtract(1.0, ew.power(self.beta2, step)),
        }

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        m, v = slots["m"], slots["v"]
        b1, b2 = self.beta1, self.beta2
        m.assign(ew.add(ew.multiply(b1, m), ew.multiply(1.0 - b1, grad)))
        v.assign(ew.add(ew.multiply(b2, v), ew.multiply(1.0 - b2, ew.square(grad))))
        m_hat = ew.add(ew.multiply(c["m_scale"], m), ew.multiply(c["g_scale"], grad))
        v_hat = ew.divide(v, c["v_correction"])
        variable.assign_sub(
            ew.divide(ew.multiply(c["lr"], m_hat), ew.add(ew.sqrt(v_hat), self.eps))
        )


class Lion(Optimizer):
    """Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms"), as Keras:
    ``w -= lr * sign(beta1 * m + (1 - beta1) * g)``, then ``m = beta2 * m + (1 - beta2) * g``.
    Its steps are ``lr`` per element: use a learning rate 3-10x smaller than Adam's."""

    _slot_names = ("momentum",)

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.99,
        **options: Any,
    ) -> None:
        super().__init__(learning_rate, **options)
        if isinstance(beta1, (int, float)) and not isinstance(beta1, bool) and beta1 == 0:
            raise ValueError("Lion: `beta1` must be in (0, 1]: with 0, Lion is signSGD")
        self.beta1 = _check_number("Lion", "beta1", beta1, 0.0, 1.0, closed_high=True)
        self.beta2 = _beta("Lion", "beta2", beta2)

    def _update(
        self, variable: Variable, grad: Any, slots: dict[str, Variable], c: Coefficients
    ) -> None:
        m = slots["momentum"]
        b1, b2 = self.beta1, self.beta2
        direction = ew.sign(ew.add(ew.multiply(b1, m), ew.multiply(1.0 - b1, grad)))
        variable.assign_sub(ew.multiply(c["lr"], direction))
        m.assign(ew.add(ew.multiply(b2, m), ew.multiply(1.0 - b2, grad)))
