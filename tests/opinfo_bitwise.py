"""OpInfo rows for the bitwise ops: integers of several widths and signs, bools (logical
behaviour for and/or/xor/invert), Python int operands (weakly typed) and broadcasting. Values
are checked against numpy, dtypes against jax.numpy; shift counts stay below the bit width
(numpy leaves larger shifts undefined).

Rows are built on first access (module ``__getattr__``), so this module and ``opinfo`` can
import each other in either order.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

import tracejit as tj


def _ints(rng: np.random.Generator, dtype: Any, *shape: int) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)


def _bools(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.random(shape) < 0.5


def _logic_samples(rng: np.random.Generator) -> list[Any]:
    return [
        ((_ints(rng, np.int32, 3, 4), _ints(rng, np.int32, 3, 4)), {}),
        ((_ints(rng, np.int32, 2, 1, 3), _ints(rng, np.int32, 4, 1)), {}),  # broadcasting
        ((_ints(rng, np.uint8, 5), _ints(rng, np.uint8, 5)), {}),
        ((_ints(rng, np.int8, 4), _ints(rng, np.int16, 4)), {}),  # promotes to int16
        ((_ints(rng, np.uint8, 4), 7), {}),  # a weak Python int keeps uint8
        ((6, _ints(rng, np.int32, 3)), {}),  # reflected operand order
        ((_bools(rng, 3, 4), _bools(rng, 3, 4)), {}),  # logical on bools
        ((_bools(rng, 3), True), {}),
    ]


def _invert_samples(rng: np.random.Generator) -> list[Any]:
    return [
        ((_ints(rng, np.int32, 3, 4),), {}),
        ((_ints(rng, np.uint8, 5),), {}),
        ((_ints(rng, np.int16, 2, 3),), {}),
        ((_bools(rng, 4),), {}),
    ]


def _shift_samples(rng: np.random.Generator) -> list[Any]:
    return [
        ((_ints(rng, np.int32, 3, 4), rng.integers(0, 32, (3, 4), dtype=np.int32)), {}),
        ((_ints(rng, np.uint8, 2, 3), rng.integers(0, 8, (3,), dtype=np.uint8)), {}),
        ((_ints(rng, np.int32, 5), 3), {}),
        ((_ints(rng, np.int8, 4), 2), {}),
    ]


def _rows() -> list[Any]:
    from opinfo import OpInfo

    def row(name: str, np_fn: Any, jnp_fn: Any, samples: Any) -> Any:
        return OpInfo(name, getattr(tj, name), samples, np_fn, jnp_fn, skip_unknown=False)

    return [
        row("bitwise_and", np.bitwise_and, jnp.bitwise_and, _logic_samples),
        row("bitwise_or", np.bitwise_or, jnp.bitwise_or, _logic_samples),
        row("bitwise_xor", np.bitwise_xor, jnp.bitwise_xor, _logic_samples),
        row("bitwise_invert", np.invert, jnp.bitwise_invert, _invert_samples),
        row("bitwise_left_shift", np.left_shift, jnp.left_shift, _shift_samples),
        row("bitwise_right_shift", np.right_shift, jnp.right_shift, _shift_samples),
    ]


_cache: list[Any] = []


def __getattr__(name: str) -> Any:
    if name == "BITWISE_OPS":
        if not _cache:
            _cache.extend(_rows())
        return _cache
    raise AttributeError(name)
