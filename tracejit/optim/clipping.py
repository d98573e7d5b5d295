"""Gradient clipping as composite functions of tracejit ops (as TF's ``tf.clip_by_norm``,
``tf.clip_by_global_norm``, ``tf.linalg.global_norm``).

They run eagerly and inside a ``tj.function`` alike, and are differentiable: the zero-norm case
takes the "two-``where``" path so its gradient is finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tracejit.ops import elementwise as ew
from tracejit.ops import reduction
from tracejit.ops.arguments import arg_aval
from tracejit.types import is_floating


def check_clip_threshold(where: str, name: str, value: Any) -> float:
    """``value`` as a float if it is a positive finite number; else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where}: `{name}` must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where}: `{name}` must be a positive finite number, got {value!r}")
    return float(value)


def _threshold(where: str, name: str, value: Any) -> Any:
    """A Python threshold is checked here; a tensor one (maybe symbolic) is used as given."""
    if isinstance(value, (bool, int, float)):
        return check_clip_threshold(where, name, value)
    return value


def _floating(where: str, t: Any, what: str) -> None:
    dtype = arg_aval(where, t).dtype
    if not is_floating(dtype):
        raise TypeError(f"{where}: {what} must be floating-point, got dtype {dtype}")


def clip_by_norm(t: Any, clip_norm: Any, axes: int | Sequence[int] | None = None) -> Any:
    """``t`` rescaled so that its L2 norm (over ``axes``; all of them by default) is at most
    ``clip_norm``: ``t * clip_norm / max(norm(t), clip_norm)``. A tensor whose norm is within
    the bound is returned unchanged (up to rounding).

    >>> import tracejit as tj
    >>> tj.optim.clip_by_norm(tj.constant([3.0, 4.0]), 1.0).numpy()
    array([0.6, 0.8], dtype=float32)
    """
    clip_norm = _threshold("clip_by_norm", "clip_norm", clip_norm)
    _floating("clip_by_norm", t, "t")
    axis = None if axes is None else (axes if isinstance(axes, int) else tuple(axes))
    l2sum = reduction.sum(ew.square(t), axis=axis, keepdims=True)
    positive = ew.greater(l2sum, 0)
    # sqrt(0) has an infinite derivative: take the root of 1 where the sum is 0.
    l2norm = ew.where(positive, ew.sqrt(ew.where(positive, l2sum, 1.0)), l2sum)
    return ew.divide(ew.multiply(t, clip_norm), ew.maximum(l2norm, clip_norm))


def global_norm(t_list: Sequence[Any]) -> Any:
    """The L2 norm of all the tensors of ``t_list`` together, ``sqrt(sum(sum(t**2)))``;
    None entries are ignored.

    >>> import tracejit as tj
    >>> float(tj.optim.global_norm([tj.constant([3.0]), None, tj.constant([[4.0]])]))
    5.0
    """
    tensors = _tensor_list("global_norm", t_list)
    present = [t for t in tensors if t is not None]
    if not present:
        raise ValueError("global_norm: t_list holds no tensors (all entries are None)")
    total: Any = None
    for t in present:
        _floating("global_norm", t, "every tensor of t_list")
        part = reduction.sum(ew.square(t))
        total = part if total is None else ew.add(total, part)
    return ew.sqrt(total)


def clip_by_global_norm(
    t_list: Sequence[Any], clip_norm: Any, use_norm: Any = None
) -> tuple[list[Any], Any]:
    """Rescale the tensors of ``t_list`` together so that their global norm is at most
    ``clip_norm`` (each ``t * clip_norm / max(global_norm, clip_norm)``), as TF's
    ``tf.clip_by_global_norm``. Returns ``(clipped_list, global_norm)``; None entries stay None.
    ``use_norm`` gives the global norm if it is already known. A non-finite global norm makes
    every entry NaN, as in TF, so that a diverged step is visible rather than silently scaled.

    >>> import tracejit as tj
    >>> clipped, norm = tj.optim.clip_by_global_norm([tj.constant([3.0]), tj.constant([4.0])], 1.0)
    >>> [c.numpy() for c in clipped], float(norm)
    ([array([0.6], dtype=float32), array([0.8], dtype=float32)], 5.0)
    """
    clip_norm = _threshold("clip_by_global_norm", "clip_norm", clip_norm)
    tensors = _tensor_list("clip_by_global_norm", t_list)
    norm = global_norm(tensors) if use_norm is None else use_norm
    # clip_norm * min(1/norm, 1/clip_norm); adding (norm - norm) turns an inf/nan norm into nan.
    inverse = 1.0 / clip_norm if isinstance(clip_norm, float) else ew.divide(1.0, clip_norm)
    scale = ew.multiply(clip_norm, ew.minimum(ew.divide(1.0, norm), inverse))
    scale = ew.add(scale, ew.subtract(norm, norm))
    clipped = [None if t is None else ew.multiply(t, _as_dtype_of(scale, t)) for t in tensors]
    return clipped, norm


def _as_dtype_of(scale: Any, t: Any) -> Any:
    dtype = arg_aval("clip_by_global_norm", t).dtype
    return scale if arg_aval("clip_by_global_norm", scale).dtype == dtype else ew.cast(scale, dtype)


def _tensor_list(where: str, t_list: Any) -> list[Any]:
    if not isinstance(t_list, (list, tuple)):
        raise TypeError(
            f"{where}: t_list must be a list or tuple of tensors, got {type(t_list).__name__}"
        )
    return list(t_list)
