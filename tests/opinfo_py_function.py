"""OpInfo rows for ``py_function``, ``py_function_grad``, ``numpy_function`` and
``numpy_function_stateless`` (tracejit/autodiff/py_function.py), for tests/opinfo.py's table
(``opinfo_py_function.PY_FUNCTION_OPS``).

Eagerly the wrappers just run the Python function; traced, each is one callback op, so the
table's traced checks run the callbacks. The references are numpy formulas (float64) and
jax.numpy for dtypes. Tout needs full shapes while tracing, so no row traces with an unknown dim.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

import tracejit as tj

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def _spec(x: Any, shape: Any = None, dtype: Any = None) -> tj.TensorSpec:
    return tj.TensorSpec(x.shape if shape is None else shape, x.dtype if dtype is None else dtype)


def _sin_times_and_argmax(x: Any, y: Any) -> list[Any]:
    return [tj.sin(x) * y, tj.argmax(x, axis=-1)]


def py_pair(x: Any, y: Any) -> tuple[Any, ...]:
    index = tj.types.as_dtype("int64")  # jax's default integer: int32 unless x64 is on
    outs = tj.py_function(_sin_times_and_argmax, [x, y], [_spec(x), _spec(x, x.shape[:-1], index)])
    return tuple(outs)


def py_single(x: Any) -> tuple[Any, ...]:
    return (tj.py_function(lambda t: tj.exp(t) * 2.0, [x], _spec(x)),)


def _cube(t: Any) -> Any:
    return t * t * t


def py_gradient(x: Any, ct: Any) -> tuple[Any, ...]:
    """The gradient of ``sum(py_function(cube, x) * ct)``: traced, one ``py_function_grad``."""
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.py_function(_cube, [x], _spec(x))
        total = tj.sum(y * ct)
    return (tape.gradient(total, x),)


def numpy_sort(x: Any) -> tuple[Any, ...]:
    return (tj.numpy_function(lambda a: np.sort(a, axis=-1), [x], _spec(x)),)


def numpy_cumsum(x: Any) -> tuple[Any, ...]:
    return (tj.numpy_function(lambda a: np.cumsum(a, axis=0), [x], _spec(x), stateful=False),)


def _np_pair(x: Any, y: Any) -> tuple[Any, Any]:
    x64 = np.asarray(x, np.float64)
    return np.sin(x64) * np.asarray(y, np.float64), np.argmax(x64, axis=-1).astype(np.int32)


def _jnp_pair(x: Any, y: Any) -> tuple[Any, Any]:
    return jnp.sin(x) * y, jnp.argmax(x, axis=-1)


def _pair_samples(rng: np.random.Generator) -> list[Sample]:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    return [
        ((x, rng.standard_normal((4,)).astype(np.float32)), {}),
        ((x, rng.standard_normal((3, 4)).astype(np.float32)), {}),
    ]


def _unary_samples(rng: np.random.Generator) -> list[Sample]:
    return [((rng.standard_normal((3, 4)).astype(np.float32),), {})]


def _gradient_samples(rng: np.random.Generator) -> list[Sample]:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    return [((x, rng.standard_normal((3, 4)).astype(np.float32)), {})]


def _rows() -> list[Any]:
    from opinfo import OpInfo

    return [
        OpInfo(
            "py_function",
            py_pair,
            _pair_samples,
            _np_pair,
            _jnp_pair,
            variant="pair",
            skip_unknown=True,
        ),
        OpInfo(
            "py_function",
            py_single,
            _unary_samples,
            lambda x: (np.exp(np.asarray(x, np.float64)) * 2.0,),
            lambda x: (jnp.exp(x) * 2.0,),
            variant="single",
            skip_unknown=True,
        ),
        OpInfo(
            "py_function_grad",
            py_gradient,
            _gradient_samples,
            lambda x, ct: (3.0 * np.asarray(x, np.float64) ** 2 * ct,),
            lambda x, ct: (3.0 * x**2 * ct,),
            skip_unknown=True,
            # Eagerly the row is a tape inside a tape (the op exists only in traces), so an
            # outer tape sees a differentiable program where the op itself is not.
            skip_gradients="the op exists only in traces; eagerly the row is nested tapes",
        ),
        OpInfo(
            "numpy_function",
            numpy_sort,
            _unary_samples,
            lambda x: (np.sort(x, axis=-1),),
            skip_unknown=True,
        ),
        OpInfo(
            "numpy_function_stateless",
            numpy_cumsum,
            _unary_samples,
            lambda x: (np.cumsum(np.asarray(x, np.float64), axis=0),),
            lambda x: (jnp.cumsum(x, axis=0),),
            skip_unknown=True,
        ),
    ]


def __getattr__(name: str) -> Any:
    if name == "PY_FUNCTION_OPS":  # built on first access, as opinfo_extra's rows are
        return _rows()
    raise AttributeError(name)
