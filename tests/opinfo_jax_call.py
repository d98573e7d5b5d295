"""OpInfo rows for ``jax_call`` and ``jax_call_foldable`` (tracejit/ops/jax_call.py), for
tests/opinfo.py's table (``opinfo_jax_call.JAX_CALL_OPS``).

The rows wrap jax functions with ``tj.jax_function``; the value references are numpy formulas
written from the definitions (float64), the dtype references the wrapped jax functions themselves.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import tracejit as tj

Sample = tuple[tuple[Any, ...], dict[str, Any]]

logsumexp = tj.jax_function(jax.scipy.special.logsumexp)


def _sin_times_and_argmax(x: Any, y: Any) -> tuple[Any, Any]:
    return jnp.sin(x) * y, jnp.argmax(x, axis=-1)


sin_times_and_argmax = tj.jax_function(_sin_times_and_argmax)
softplus_folded = tj.jax_function(jax.nn.softplus, foldable=True)


def _as_tuple(fn: Any) -> Any:
    """A row's callable returns a tuple, as an op with multiple results does (the wrapper
    returns whatever pytree the function returns: here one array)."""

    def call(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return (fn(*args, **kwargs),)

    return call


def _np_logsumexp(x: Any, axis: int) -> Any:
    x = np.asarray(x, np.float64)
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def _np_sin_times_and_argmax(x: Any, y: Any) -> tuple[Any, Any]:
    x64 = np.asarray(x, np.float64)
    return np.sin(x64) * np.asarray(y, np.float64), np.argmax(x64, axis=-1).astype(np.int32)


def _logsumexp_samples(rng: np.random.Generator) -> list[Sample]:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    return [((x,), {"axis": 1}), ((x,), {"axis": 0}), ((x * 10,), {"axis": -1})]


def _pair_samples(rng: np.random.Generator) -> list[Sample]:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    return [
        ((x, rng.standard_normal((4,)).astype(np.float32)), {}),
        ((x, rng.standard_normal((3, 4)).astype(np.float32)), {}),
    ]


def _unary_samples(rng: np.random.Generator) -> list[Sample]:
    return [((rng.standard_normal((5,)).astype(np.float32) * 3,), {})]


def _rows() -> list[Any]:
    from opinfo import OpInfo

    return [
        OpInfo(
            "jax_call",
            _as_tuple(logsumexp),
            _logsumexp_samples,
            _as_tuple(_np_logsumexp),
            _as_tuple(jax.scipy.special.logsumexp),
            variant="logsumexp",
        ),
        OpInfo(
            "jax_call",
            sin_times_and_argmax,
            _pair_samples,
            _np_sin_times_and_argmax,
            _sin_times_and_argmax,
            variant="pair",
            # An unknown dim meets a known one in ``sin(x) * y``: jax's symbolic shapes cannot
            # prove they broadcast, so that trace needs known shapes (a documented limit).
            skip_unknown=lambda args, kwargs: args[1].ndim == 2,
        ),
        OpInfo(
            "jax_call_foldable",
            _as_tuple(softplus_folded),
            _unary_samples,
            _as_tuple(lambda x: np.logaddexp(0.0, np.asarray(x, np.float64))),
            _as_tuple(jax.nn.softplus),
        ),
    ]


def __getattr__(name: str) -> Any:
    if name == "JAX_CALL_OPS":  # built on first access, as opinfo_extra's rows are
        return _rows()
    raise AttributeError(name)
