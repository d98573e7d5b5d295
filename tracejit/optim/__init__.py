"""Optimizers, learning-rate schedules and gradient clipping (Keras' definitions).

- Optimizers: ``SGD`` (momentum, Nesterov), ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``,
  ``Adadelta``, ``Adamax``, ``Nadam``, ``Lion``; each also takes ``weight_decay`` (decoupled)
  and one of ``clipnorm`` / ``global_clipnorm`` / ``clipvalue``.
- Schedules (a learning rate that is a function of the step): ``exponential_decay``,
  ``cosine_decay`` (with warmup), ``piecewise_constant``, ``polynomial_decay``,
  ``linear_warmup``; any callable of the step works too.
- Clipping functions: ``clip_by_norm``, ``clip_by_global_norm``, ``global_norm``.
- ``from_optax(tx)``: an optax gradient transformation as a tracejit optimizer.

A number learning rate is kept in a float32 variable (``opt.learning_rate = 0.01`` assigns it,
and compiled steps follow without retracing). Slot variables are created on first use, one set
per trained variable; the step counter ``iterations`` is a variable too, so everything works
eagerly and inside a compiled train step (where the updates are assigned to lifted state and a
schedule reads the counter's state input, so stepping does not retrace).
"""

from tracejit.optim.clipping import clip_by_global_norm, clip_by_norm, global_norm
from tracejit.optim.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    LearningRate,
    Lion,
    Nadam,
    Optimizer,
    RMSprop,
)
from tracejit.optim.schedules import (
    Schedule,
    cosine_decay,
    exponential_decay,
    linear_warmup,
    piecewise_constant,
    polynomial_decay,
)

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LearningRate",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "clip_by_global_norm",
    "clip_by_norm",
    "cosine_decay",
    "exponential_decay",
    "global_norm",
    "linear_warmup",
    "piecewise_constant",
    "polynomial_decay",
    "Optax",
    "from_optax",
]

from tracejit.optim.optax_adapter import Optax, from_optax  # noqa: E402 (issue 15)
