"""Losses, numerically stable, each with ``reduction="mean"`` (default), ``"sum"`` or ``"none"``."""

from __future__ import annotations

from typing import Any

from tracejit.ops import elementwise as ew
from tracejit.ops.arguments import arg_aval
from tracejit.ops.creation import one_hot
from tracejit.ops.fused import softmax_cross_entropy_op
from tracejit.ops.reduction import mean, sum
from tracejit.types import is_integer


def _reduce(loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def softmax_cross_entropy(logits: Any, labels: Any, reduction: str = "mean") -> Any:
    """Cross-entropy between ``softmax(logits)`` and ``labels``: integer class ids (shape
    ``logits.shape[:-1]``) or one-hot / probability rows (shape of ``logits``).

    >>> import tracejit as tj
    >>> logits = tj.constant([[2.0, 0.0, 0.0]])
    >>> round(float(tj.nn.softmax_cross_entropy(logits, tj.constant([0]))), 4)
    0.2395
    """
    logits_aval, labels_aval = (
        arg_aval("softmax_cross_entropy", logits),
        arg_aval("softmax_cross_entropy", labels),
    )
    if is_integer(labels_aval.dtype):
        classes = logits_aval.shape[-1]
        if classes is None:
            raise ValueError(
                "softmax_cross_entropy with integer labels needs a known class dimension"
            )
        labels = one_hot(labels, classes, dtype=logits_aval.dtype)
    else:
        labels = ew.cast(labels, logits_aval.dtype)
    # One op whose backward is just softmax(logits) - labels.
    return _reduce(softmax_cross_entropy_op(logits, labels), reduction)


def sigmoid_binary_cross_entropy(logits: Any, labels: Any, reduction: str = "mean") -> Any:
    """Binary cross-entropy of ``sigmoid(logits)`` against 0/1 ``labels``, computed stably as
    ``max(x, 0) - x * z + log1p(exp(-|x|))``."""
    labels = ew.cast(labels, arg_aval("sigmoid_binary_cross_entropy", logits).dtype)
    loss = ew.add(
        ew.subtract(ew.maximum(logits, 0.0), ew.multiply(logits, labels)),
        ew.log1p(ew.exp(ew.negative(ew.abs(logits)))),
    )
    return _reduce(loss, reduction)


def mean_squared_error(predictions: Any, targets: Any, reduction: str = "mean") -> Any:
    """Elementwise ``(predictions - targets) ** 2``, then reduced."""
    return _reduce(ew.square(ew.subtract(predictions, targets)), reduction)
