"""Functional gradients (``tj.grad``, ``tj.value_and_grad``), built on GradientTape; and
``tj.custom_gradient`` (defined in ``tracejit.autodiff.custom_gradient``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

from tracejit.autodiff.custom_gradient import custom_gradient
from tracejit.autodiff.tape import GradientError, GradientTape
from tracejit.eager.tensor import constant
from tracejit.eager.variable import Variable
from tracejit.ops.tensor_methods import TensorMethods, is_tensor_leaf


def _as_tensor_tree(tree: Any) -> Any:
    def convert(leaf: Any) -> Any:
        return leaf if isinstance(leaf, (TensorMethods, Variable)) else constant(leaf)

    return jax.tree_util.tree_map(convert, tree, is_leaf=is_tensor_leaf)


def value_and_grad(fn: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """``fn``'s value and its gradient with respect to the arguments at ``argnums`` (each may be
    a tensor or a pytree of tensors). ``fn`` must return a scalar.

    >>> import tracejit as tj
    >>> value, slope = tj.value_and_grad(lambda x: (x ** 3).sum())(tj.constant([1.0, 2.0]))
    >>> float(value), slope.numpy().tolist()
    (9.0, [3.0, 12.0])
    """
    single = isinstance(argnums, int)
    positions = (argnums,) if single else tuple(argnums)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        args = list(args)
        for i in positions:
            if i >= len(args):
                raise TypeError(
                    f"argnums={i} but {fn.__name__} got {len(args)} positional arguments"
                )
            args[i] = _as_tensor_tree(args[i])
        with GradientTape() as tape:
            for i in positions:
                tape.watch(args[i])
            value = fn(*args, **kwargs)
        if not isinstance(value, TensorMethods) or value.shape != ():
            shape = getattr(value, "shape", type(value).__name__)
            raise GradientError(
                f"{getattr(fn, '__name__', 'fn')} must return a scalar tensor to take its "
                f"gradient, got {shape}; reduce it (e.g. .sum() or .mean()) or use "
                "GradientTape.gradient with output_gradients"
            )
        grads = tape.gradient(value, [args[i] for i in positions], unconnected_gradients="zero")
        return value, grads[0] if single else tuple(grads)

    return wrapper


def grad(fn: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The gradient of scalar-valued ``fn`` with respect to the arguments at ``argnums``.

    >>> import tracejit as tj
    >>> float(tj.grad(lambda x: x * x)(tj.constant(3.0)))
    6.0
    """
    with_value = value_and_grad(fn, argnums)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return with_value(*args, **kwargs)[1]

    return wrapper


__all__ = ["custom_gradient", "grad", "value_and_grad"]
