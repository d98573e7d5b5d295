"""Random-number ops. Each is a pure function of an explicit key (a uint32[2] threefry key), so
the graph says exactly where randomness comes from; stateful generators (``tj.random``) keep the
key in a Variable and advance it with ``random_split``. Flagged ``random`` so that constant
folding never evaluates them at trace time."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tracejit.errors import OpError
from tracejit.ops.infer import shape_text
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal, DType, bool_, int32, is_floating, uint32

_RANDOM = {"random": True, "differentiable": False, "foldable": False}


def _check_key(op: str, key: AVal) -> None:
    if key.shape != (2,) or key.dtype != uint32:
        raise OpError(op, f"expected a uint32 key of shape (2,), got {key}")


def _check_shape(op: str, shape: tuple[int, ...]) -> None:
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise OpError(op, f"shape {shape_text(shape)} must be non-negative integers")


def _infer_split(key: AVal) -> tuple[AVal, AVal]:
    _check_key("random_split", key)
    return key, key


def _split(key: Any) -> tuple[Any, Any]:
    new, sub = jax.random.split(key)
    return new, sub


def _sampler_infer(name: str, fixed_dtype: DType | None = None) -> Any:
    def infer(
        key: AVal, *, shape: tuple[int, ...], dtype: DType | None = None, **params: Any
    ) -> AVal:
        _check_key(name, key)
        _check_shape(name, shape)
        out_dtype = fixed_dtype or dtype
        if fixed_dtype is None and not is_floating(out_dtype):
            raise OpError(name, f"needs a floating dtype, got {out_dtype}")
        return AVal(shape, out_dtype, False)

    return infer


def _normal(key: Any, *, shape: tuple[int, ...], dtype: DType) -> Any:
    return jax.random.normal(key, shape, dtype)


def _uniform(
    key: Any, *, shape: tuple[int, ...], dtype: DType, minval: float, maxval: float
) -> Any:
    return jax.random.uniform(key, shape, dtype, minval, maxval)


def _truncated_normal(
    key: Any, *, shape: tuple[int, ...], dtype: DType, lower: float, upper: float
) -> Any:
    return jax.random.truncated_normal(key, lower, upper, shape, dtype)


def _bernoulli(key: Any, *, shape: tuple[int, ...], p: float) -> Any:
    return jax.random.bernoulli(key, p, shape)


def _infer_bernoulli_like(key: AVal, like: AVal, *, p: float) -> AVal:
    _check_key("random_bernoulli_like", key)
    return AVal(like.shape, bool_, False)


def _bernoulli_like(key: Any, like: Any, *, p: float) -> Any:
    return jax.random.bernoulli(key, p, like.shape)


def _infer_permutation(key: AVal, *, n: int) -> AVal:
    _check_key("random_permutation", key)
    if n < 0:
        raise OpError("random_permutation", f"n must be non-negative, got {n}")
    return AVal((n,), int32, False)


def _permutation(key: Any, *, n: int) -> Any:
    return jax.random.permutation(key, n).astype(jnp.int32)


RANDOM_SPLIT = defop("random_split", _infer_split, _split, multiple_results=True, **_RANDOM)
RANDOM_NORMAL = defop("random_normal", _sampler_infer("random_normal"), _normal, **_RANDOM)
RANDOM_UNIFORM = defop("random_uniform", _sampler_infer("random_uniform"), _uniform, **_RANDOM)
RANDOM_TRUNCATED_NORMAL = defop(
    "random_truncated_normal",
    _sampler_infer("random_truncated_normal"),
    _truncated_normal,
    **_RANDOM,
)
RANDOM_BERNOULLI = defop(
    "random_bernoulli", _sampler_infer("random_bernoulli", bool_), _bernoulli, **_RANDOM
)
RANDOM_BERNOULLI_LIKE = defop(
    "random_bernoulli_like", _infer_bernoulli_like, _bernoulli_like, **_RANDOM
)
RANDOM_PERMUTATION = defop("random_permutation", _infer_permutation, _permutation, **_RANDOM)


def split_key(key: Any) -> tuple[Any, Any]:
    """``(new_key, subkey)`` from a key."""
    return bind(RANDOM_SPLIT, key)


def normal(key: Any, shape: tuple[int, ...], dtype: DType) -> Any:
    return bind(RANDOM_NORMAL, key, shape=shape, dtype=dtype)


def uniform(key: Any, shape: tuple[int, ...], dtype: DType, minval: float, maxval: float) -> Any:
    return bind(RANDOM_UNIFORM, key, shape=shape, dtype=dtype, minval=minval, maxval=maxval)


def truncated_normal(
    key: Any, shape: tuple[int, ...], dtype: DType, lower: float, upper: float
) -> Any:
    return bind(RANDOM_TRUNCATED_NORMAL, key, shape=shape, dtype=dtype, lower=lower, upper=upper)


def bernoulli(key: Any, shape: tuple[int, ...], p: float) -> Any:
    return bind(RANDOM_BERNOULLI, key, shape=shape, p=p)


def bernoulli_like(key: Any, like: Any, p: float) -> Any:
    """Booleans of ``like``'s shape (which may have unknown dims while tracing)."""
    return bind(RANDOM_BERNOULLI_LIKE, key, like, p=p)


def permutation(key: Any, n: int) -> Any:
    return bind(RANDOM_PERMUTATION, key, n=n)
