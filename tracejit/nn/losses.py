"""Losses, numerically stable, each with ``reduction="mean"`` (default), ``"sum"`` or ``"none"``."""

from __future__ import annotations

from typing import Any

from tracejit.ops import elementwise as ew
from tracejit.ops.arguments import arg_aval
from tracejit.ops.creation import one_hot
from tracejit.ops.fused import softmax_cross_entropy_op, sparse_softmax_cross_entropy_op
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


def softmax_cross_entropy(
    logits: Any, labels: Any, reduction: str = "mean", label_smoothing: float = 0.0
) -> Any:
    """Cross-entropy between ``softmax(logits)`` and ``labels``: integer class ids (shape
    ``logits.shape[:-1]``) or one-hot / probability rows (shape of ``logits``).

    ``label_smoothing`` (in [0, 1]) mixes the label rows with the uniform distribution, as
    Keras' ``CategoricalCrossentropy`` does: ``labels * (1 - s) + s / classes``.

    >>> import tracejit as tj
    >>> logits = tj.constant([[2.0, 0.0, 0.0]])
    >>> round(float(tj.nn.softmax_cross_entropy(logits, tj.constant([0]))), 4)
    0.2395
    >>> round(float(tj.nn.softmax_cross_entropy(logits, tj.constant([0]), label_smoothing=0.3)), 4)
    0.6395
    """
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"softmax_cross_entropy: label_smoothing must be a number in [0, 1], got "
            f"{label_smoothing!r}"
        )
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
    if label_smoothing:
        classes = logits_aval.shape[-1]
        if classes is None:
            raise ValueError("softmax_cross_entropy: label_smoothing needs a known class dimension")
        labels = ew.add(ew.multiply(labels, 1.0 - label_smoothing), label_smoothing / classes)
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


# Issue 13 losses. sparse_softmax_cross_entropy is one fused op; the others are compositions of
# public ops (their gradients come from those ops' VJPs). ``reduction="none"`` gives the
# elementwise loss, except kl_divergence and cosine_similarity, which reduce the last axis.
def sparse_softmax_cross_entropy(logits: Any, labels: Any, reduction: str = "mean") -> Any:
    """Cross-entropy of ``softmax(logits)`` against integer class ids ``labels`` (shape
    ``logits.shape[:-1]``), one op with the analytic backward ``softmax(logits) - one_hot``.

    >>> import tracejit as tj
    >>> logits = tj.constant([[2.0, 0.0, 0.0]])
    >>> round(float(tj.nn.sparse_softmax_cross_entropy(logits, tj.constant([0]))), 4)
    0.2395
    """
    return _reduce(sparse_softmax_cross_entropy_op(logits, labels), reduction)


def _smooth(labels: Any, label_smoothing: float) -> Any:
    # Keras' binary label smoothing: y * (1 - s) + 0.5 * s.
    if not label_smoothing:
        return labels
    return ew.add(ew.multiply(labels, 1.0 - label_smoothing), 0.5 * label_smoothing)


def binary_cross_entropy(
    predictions: Any,
    labels: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Any:
    """Binary cross-entropy of probabilities (or, with ``from_logits=True``, of logits) against
    0/1 ``labels``; probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does.

    >>> import tracejit as tj
    >>> round(float(tj.nn.binary_cross_entropy(tj.constant([0.8]), tj.constant([1.0]))), 4)
    0.2231
    """
    dtype = arg_aval("binary_cross_entropy", predictions).dtype
    labels = _smooth(ew.cast(labels, dtype), label_smoothing)
    if from_logits:
        return sigmoid_binary_cross_entropy(predictions, labels, reduction)
    p = ew.clip(predictions, 1e-7, 1.0 - 1e-7)
    loss = ew.negative(
        ew.add(
            ew.multiply(labels, ew.log(p)),
            ew.multiply(ew.subtract(1.0, labels), ew.log(ew.subtract(1.0, p))),
        )
    )
    return _reduce(loss, reduction)


def huber(predictions: Any, targets: Any, delta: float = 1.0, reduction: str = "mean") -> Any:
    """``0.5 e**2`` where ``|e| <= delta``, else ``delta * (|e| - 0.5 delta)``, ``e`` the error."""
    error = ew.abs(ew.subtract(predictions, targets))
    quadratic = ew.minimum(error, delta)
    linear = ew.subtract(error, quadratic)
    return _reduce(
        ew.add(ew.multiply(0.5, ew.square(quadratic)), ew.multiply(delta, linear)), reduction
    )


def mean_absolute_error(predictions: Any, targets: Any, reduction: str = "mean") -> Any:
    """Elementwise ``|predictions - targets|``, then reduced."""
    return _reduce(ew.abs(ew.subtract(predictions, targets)), reduction)


def hinge(predictions: Any, labels: Any, reduction: str = "mean") -> Any:
    """``max(1 - labels * predictions, 0)`` for labels in {-1, 1} (Keras converts 0/1 labels to
    -1/1 the same way: ``labels = 2 * labels - 1`` when they are 0/1)."""
    dtype = arg_aval("hinge", predictions).dtype
    labels = ew.cast(labels, dtype)
    is01 = ew.logical_or(ew.equal(labels, 0.0), ew.equal(labels, 1.0))
    from tracejit.ops.reduction import all as reduce_all

    signs = ew.where(reduce_all(is01), ew.subtract(ew.multiply(labels, 2.0), 1.0), labels)
    return _reduce(ew.maximum(ew.subtract(1.0, ew.multiply(signs, predictions)), 0.0), reduction)


def kl_divergence(predictions: Any, targets: Any, reduction: str = "mean") -> Any:
    """``sum(t * log(t / p), -1)`` with both clipped to ``[1e-7, 1]`` (Keras' KLDivergence)."""
    t = ew.clip(targets, 1e-7, 1.0)
    p = ew.clip(predictions, 1e-7, 1.0)
    return _reduce(sum(ew.multiply(t, ew.log(ew.divide(t, p))), axis=-1), reduction)


def cosine_similarity(
    predictions: Any, targets: Any, axis: int = -1, reduction: str = "mean"
) -> Any:
    """The loss ``-cos(predictions, targets)`` along ``axis`` (as Keras' CosineSimilarity: -1
    for identical directions), each vector l2-normalized with a 1e-12 floor on its norm."""

    def unit(v: Any) -> Any:
        norm = ew.sqrt(ew.maximum(sum(ew.square(v), axis=axis, keepdims=True), 1e-12))
        return ew.divide(v, norm)

    return _reduce(
        ew.negative(sum(ew.multiply(unit(predictions), unit(targets)), axis=axis)), reduction
    )
