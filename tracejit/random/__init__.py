"""Stateful random numbers: a ``Generator`` keeps its key in a Variable.

Each draw splits the key: one half becomes the generator's new state, the other feeds the
sampling op. Inside a ``tj.function`` the key is lifted state like any variable, so two calls of
a compiled dropout step give different masks, and the same seed reproduces a whole run.

>>> import tracejit as tj
>>> g = tj.random.Generator(seed=0)
>>> a, b = g.normal((2,)), g.normal((2,))
>>> bool((a != b).all())
True
>>> bool((tj.random.Generator(0).normal((2,)) == a).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from tracejit.eager.variable import Variable
from tracejit.errors import OpError
from tracejit.ops import random as ops
from tracejit.ops.arguments import arg_aval
from tracejit.types import float32, requested_dtype


def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


class Generator:
    """A random-number generator whose state is a (non-trainable) Variable."""

    def __init__(self, seed: int = 0, name: str = "generator") -> None:
        key = np.asarray(jax.random.key_data(jax.random.PRNGKey(int(seed))), dtype=np.uint32)
        self.state = Variable(key, trainable=False, name=f"{name}/state")

    def reset(self, seed: int) -> None:
        """Restart the sequence from ``seed``."""
        key = np.asarray(jax.random.key_data(jax.random.PRNGKey(int(seed))), dtype=np.uint32)
        self.state.assign(key)

    def next_key(self) -> Any:
        """A fresh key; the generator advances."""
        new_state, key = ops.split_key(self.state)
        self.state.assign(new_state)
        return key

    def normal(
        self,
        shape: int | Sequence[int],
        mean: float = 0.0,
        stddev: float = 1.0,
        dtype: Any = float32,
    ) -> Any:
        """Samples from a normal distribution."""
        sample = ops.normal(self.next_key(), _shape(shape), requested_dtype(dtype, "normal"))
        return sample * stddev + mean if (mean, stddev) != (0.0, 1.0) else sample

    def uniform(
        self,
        shape: int | Sequence[int],
        minval: float = 0.0,
        maxval: float = 1.0,
        dtype: Any = float32,
    ) -> Any:
        """Samples uniformly from ``[minval, maxval)``."""
        return ops.uniform(
            self.next_key(),
            _shape(shape),
            requested_dtype(dtype, "uniform"),
            float(minval),
            float(maxval),
        )

    def truncated_normal(
        self,
        shape: int | Sequence[int],
        mean: float = 0.0,
        stddev: float = 1.0,
        dtype: Any = float32,
    ) -> Any:
        """Normal samples, redrawn beyond two standard deviations (as TF does)."""
        sample = ops.truncated_normal(
            self.next_key(), _shape(shape), requested_dtype(dtype, "truncated_normal"), -2.0, 2.0
        )
        return sample * stddev + mean if (mean, stddev) != (0.0, 1.0) else sample

    def bernoulli(self, shape: int | Sequence[int], p: float = 0.5) -> Any:
        """Boolean samples, True with probability ``p``."""
        if not 0.0 <= p <= 1.0:
            raise OpError("bernoulli", f"p must be in [0, 1], got {p}")
        return ops.bernoulli(self.next_key(), _shape(shape), float(p))

    def bernoulli_like(self, x: Any, p: float = 0.5) -> Any:
        """Boolean samples of ``x``'s shape (unknown dims allowed), True with probability p."""
        if not 0.0 <= p <= 1.0:
            raise OpError("bernoulli", f"p must be in [0, 1], got {p}")
        return ops.bernoulli_like(self.next_key(), x, float(p))

    def permutation(self, x: Any) -> Any:
        """A random permutation of ``range(x)`` (int ``x``) or of a tensor's first axis."""
        if isinstance(x, (int, np.integer)):
            return ops.permutation(self.next_key(), int(x))
        first = arg_aval("permutation", x).shape[0]
        if first is None:
            raise OpError("permutation", "the first dimension must be known to permute it")
        from tracejit.ops.shape import take

        return take(x, ops.permutation(self.next_key(), first), axis=0)


_global: Generator | None = None


def get_global_generator() -> Generator:
    """The generator the module-level functions draw from (seed 0 until ``set_seed``)."""
    global _global
    if _global is None:
        _global = Generator(0, name="global_generator")
    return _global


def set_seed(seed: int) -> None:
    """Reset the global generator to ``seed``."""
    get_global_generator().reset(seed)


def normal(
    shape: int | Sequence[int], mean: float = 0.0, stddev: float = 1.0, dtype: Any = float32
) -> Any:
    return get_global_generator().normal(shape, mean, stddev, dtype)


def uniform(
    shape: int | Sequence[int], minval: float = 0.0, maxval: float = 1.0, dtype: Any = float32
) -> Any:
    return get_global_generator().uniform(shape, minval, maxval, dtype)


def truncated_normal(
    shape: int | Sequence[int], mean: float = 0.0, stddev: float = 1.0, dtype: Any = float32
) -> Any:
    return get_global_generator().truncated_normal(shape, mean, stddev, dtype)


def bernoulli(shape: int | Sequence[int], p: float = 0.5) -> Any:
    return get_global_generator().bernoulli(shape, p)


def permutation(x: Any) -> Any:
    return get_global_generator().permutation(x)

__all__ = [
    "Generator",
    "bernoulli",
    "get_global_generator",
    "normal",
    "permutation",
    "set_seed",
    "truncated_normal",
    "uniform",
]
