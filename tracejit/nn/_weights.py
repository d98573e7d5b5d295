"""Variable initializers of the sequence layers (attention.py, recurrent.py), as Keras draws
them: glorot-uniform kernels, orthogonal recurrent kernels, zero (or given) biases.

Each draw is a callable handed to ``Variable``, so a layer built inside a ``tj.function`` still
initializes eagerly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tracejit.eager.variable import Variable
from tracejit.random import Generator


def glorot_uniform(
    generator: Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, name: str
) -> Variable:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return Variable(lambda: generator.uniform(shape, -limit, limit), name=name)


def orthogonal(generator: Generator, rows: int, columns: int, name: str) -> Variable:
    """A ``[rows, columns]`` matrix with orthonormal rows or columns (the Q of the QR
    decomposition of a standard-normal draw, signs fixed by R's diagonal, as Keras does)."""

    def draw() -> Any:
        flat = np.asarray(generator.normal((max(rows, columns), min(rows, columns))).numpy())
        q, r = np.linalg.qr(flat.astype(np.float64))
        q = q * np.sign(np.diag(r))
        return (q if rows >= columns else q.T).astype(np.float32)

    return Variable(draw, name=name)


def constant(values: Any, name: str) -> Variable:
    return Variable(np.asarray(values, np.float32), name=name)
