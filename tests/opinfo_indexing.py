"""OpInfo rows for numpy's advanced indexing with several integer arrays (``gather_index``) and
the functional update ``x.at[index].set/add/multiply/min/max`` (``scatter_index``). Values are
checked against numpy (``np.add.at`` and friends for the updates), dtypes against jax.numpy.

Samples of ``set``/``min``/``max`` use unique indices: with a repeated index numpy and XLA
do not promise which update wins (``add`` and ``multiply`` samples repeat indices on purpose).

Rows are built on first access (module ``__getattr__``), so this module and ``opinfo`` can
import each other in either order.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

I32 = np.int32


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _gather_samples(rng: np.random.Generator) -> list[Any]:
    i, j = np.array([0, 2, 1], I32), np.array([[1], [0]], I32)
    return [
        ((_f32(rng, 3, 4), (i, np.array([3, 0, 1], I32))), {}),  # pairs of coordinates
        ((_f32(rng, 3, 4, 5), (i[:2], j)), {}),  # broadcast to (2, 2), trailing dim kept
        ((_f32(rng, 3, 4, 5), (1, i, np.array([4, 0, 2], I32))), {}),  # an int joins them
        ((_f32(rng, 3, 4, 5), (i, slice(None), np.array([4, 0, 2], I32))), {}),  # dims first
        ((_f32(rng, 3, 4, 5), (slice(1, None), i, i)), {}),  # dims where the arrays are
        ((_f32(rng, 4, 3, 2), (0, slice(None), i[:1])), {}),  # one array moved to the front
        ((_f32(rng, 3, 4), (Ellipsis, i, np.array([-1, 0, 2], I32))), {}),  # negative index
    ]


def _getitem(x: Any, index: Any) -> Any:
    return x[index]


def _np_getitem(x: Any, index: Any) -> Any:
    return np.asarray(x)[index]


def _jnp_getitem(x: Any, index: Any) -> Any:
    return jnp.asarray(x)[index]


def _unique_samples(rng: np.random.Generator) -> list[Any]:
    return [
        ((_f32(rng, 5), (np.array([0, 3, 1], I32),), _f32(rng, 3)), {}),
        ((_f32(rng, 4, 3), (np.array([0, 2], I32), np.array([1, 1], I32)), _f32(rng, 2)), {}),
        ((_f32(rng, 4, 3), (1, slice(None, None, 2)), _f32(rng, 2)), {}),  # basic index
        ((_f32(rng, 3, 4), (np.array([2, 0], I32),), _f32(rng, 4)), {}),  # a row each, broadcast
        ((_f32(rng, 3, 4), (slice(None), 1), 0.5), {}),  # a Python float
    ]


def _repeated_samples(rng: np.random.Generator) -> list[Any]:
    return _unique_samples(rng) + [
        ((_f32(rng, 5), (np.array([0, 3, 0, 0], I32),), _f32(rng, 4)), {}),
        ((_f32(rng, 4, 3), (np.array([1, 1], I32), np.array([2, 2], I32)), _f32(rng, 2)), {}),
    ]


def _updater(mode: str) -> Any:
    def update(x: Any, index: Any, values: Any) -> Any:
        return getattr(x.at[index], mode)(values)

    update.__name__ = f"at_{mode}"
    return update


_NP_UFUNC = {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum}


def _np_updater(mode: str) -> Any:
    def update(x: Any, index: Any, values: Any) -> Any:
        out = np.array(x)
        if mode == "set":
            out[index] = values
        else:
            _NP_UFUNC[mode].at(out, index, np.asarray(values, out.dtype))
        return out

    return update


def _jnp_updater(mode: str) -> Any:
    def update(x: Any, index: Any, values: Any) -> Any:
        return getattr(jnp.asarray(x).at[index], mode)(values)

    return update


def _rows() -> list[Any]:
    from opinfo import OpInfo

    rows = [
        OpInfo(
            "gather_index",
            _getitem,
            _gather_samples,
            _np_getitem,
            _jnp_getitem,
            variant="getitem",
        )
    ]
    for mode in ("set", "add", "multiply", "min", "max"):
        samples = _repeated_samples if mode in ("add", "multiply") else _unique_samples
        rows.append(
            OpInfo(
                "scatter_index",
                _updater(mode),
                samples,
                _np_updater(mode),
                _jnp_updater(mode),
                variant=mode,
                skip_gradients=(
                    "the gradient with respect to the updates needs unique_indices=True "
                    "(jax refuses it too); tests/test_advanced_indexing.py covers it"
                    if mode == "multiply"
                    else ""
                ),
            )
        )
    return rows


_cache: list[Any] = []


def __getattr__(name: str) -> Any:
    if name == "INDEXING_OPS":
        if not _cache:
            _cache.extend(_rows())
        return _cache
    raise AttributeError(name)
