"""jax functions as tracejit ops: ``tj.jax_function`` and the ``jax_call`` op.

``tj.jax_function(fn)`` wraps any jax-traceable function (``jax.scipy``, ``jax.nn``, the user's
own jax code) so it can be called on tracejit tensors. Eagerly it runs ``fn``; while tracing it
becomes one ``jax_call[fn=NAME]`` node whose output avals come from ``jax.eval_shape`` and which
lowers by calling ``fn`` inside the graph's ``jax.jit`` (no host round-trip).

The callable travels in the node's params as a ``JaxCallable``: a small hashable value (the
function, its static keyword arguments and the structure of its positional arguments) that
prints as the function's name, so CSE merges two identical calls and the printed IR says which
function a node runs. Inputs are the leaves of the positional arguments (pytrees of tensors);
outputs are the leaves of ``fn``'s result (any pytree of arrays), rebuilt by the wrapper.

Gradients come from ``jax.vjp``: the VJP rule binds a second ``jax_call`` whose callable is the
pullback of ``fn`` (``vjp(NAME)``), so it runs eagerly under a tape, becomes IR when traced, and
is itself differentiable (its own VJP is the pullback of the pullback).

The op is opaque and pure (CSE and DCE apply) and never folded: ``jax_function(fn,
foldable=True)`` binds the twin op ``jax_call_foldable``, which the fold pass may evaluate when all
inputs are constants. ``tj.saved.save`` refuses both (the code is Python, not data);
``tj.saved.export`` serializes them through ``jax.export``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError, OpTypeError
from tracejit.ir.printer import format_param
from tracejit.ir.source import user_location
from tracejit.ops.arguments import arg_aval
from tracejit.ops.jvp_rules import transpose_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.registry import OpDef, bind, defop
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.types import AVal, as_dtype

_SIMPLE = (bool, int, float, str, type(None), np.dtype)


def _is_tensor(x: Any) -> bool:
    return isinstance(x, TensorMethods)


class JaxCallable:
    """A jax function as an op param: hashable, compared by value, printed as its name.

    ``fn`` is called as ``fn(*args, **kwargs)`` where ``args`` is ``in_tree`` rebuilt from the
    node's inputs and ``kwargs`` are the static keyword arguments.
    """

    __slots__ = ("fn", "name", "kwargs", "in_tree", "_hash")

    def __init__(
        self, fn: Callable[..., Any], name: str, kwargs: tuple[tuple[str, Any], ...], in_tree: Any
    ) -> None:
        self.fn, self.name, self.kwargs, self.in_tree = fn, name, kwargs, in_tree
        self._hash = hash((fn, name, kwargs, in_tree))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, JaxCallable)
            and self.fn == other.fn
            and self.name == other.name
            and self.kwargs == other.kwargs
            and self.in_tree == other.in_tree
        )

    def __str__(self) -> str:
        if not self.kwargs:
            return self.name
        shown = ", ".join(
            f"{k}={format_param(v) if isinstance(v, (*_SIMPLE, tuple)) else type(v).__name__}"
            for k, v in self.kwargs
        )
        return f"{self.name}({shown})"

    __repr__ = __str__

    def call(self, leaves: Sequence[Any]) -> Any:
        """``fn`` on the positional arguments rebuilt from ``leaves``."""
        args = jax.tree_util.tree_unflatten(self.in_tree, list(leaves))
        return self.fn(*args, **dict(self.kwargs))

    def signature(self, avals: tuple[AVal, ...]) -> tuple[Any, tuple[AVal, ...]]:
        """``(out_tree, out_avals)`` of ``fn`` on inputs of these avals (cached)."""
        return _signature(self, avals)


@functools.lru_cache(maxsize=4096)
def _signature(fn: JaxCallable, avals: tuple[AVal, ...]) -> tuple[Any, tuple[AVal, ...]]:
    if isinstance(fn.fn, _Pullback):
        # A cotangent has its primal's aval. Said directly rather than traced, so unknown dims
        # stay tied to the primals' (jax would see the cts' unknown dims as unrelated symbols).
        wrt = [a.strong() for a, w in zip(avals, fn.fn.wrt) if w]
        return jax.tree_util.tree_structure(list(range(len(wrt)))), tuple(wrt)
    structs = _structs(avals)
    try:
        out = jax.eval_shape(lambda *leaves: fn.call(leaves), *structs)
    except Exception as err:  # noqa: BLE001 - whatever jax or the function raised, named
        given = ", ".join(str(a) for a in avals) or "no inputs"
        unknown = any(None in a.shape for a in avals)
        hint = (
            " (some input dims are unknown: they were given to jax as independent symbolic "
            "dims; trace with known shapes if the function needs them equal or concrete)"
            if unknown
            else ""
        )
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OpError(
            "jax_call", f"{fn} failed on inputs {given}{hint}: {type(err).__name__}: {message}"
        ) from None
    out_tree = jax.tree_util.tree_structure(out)
    out_avals = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0]:
        if not isinstance(leaf, jax.ShapeDtypeStruct):  # pragma: no cover - eval_shape gives these
            raise OpTypeError("jax_call", f"{fn} returned a {type(leaf).__name__} at {path}")
        shape = tuple(d if isinstance(d, int) else None for d in leaf.shape)
        out_avals.append(AVal(shape, as_dtype(leaf.dtype), bool(leaf.weak_type)))
    return out_tree, tuple(out_avals)


def _structs(avals: tuple[AVal, ...]) -> list[jax.ShapeDtypeStruct]:
    """Abstract inputs for ``jax.eval_shape``; each unknown dim becomes its own symbolic dim."""
    n_unknown = sum(d is None for a in avals for d in a.shape)
    symbols = iter(
        jax.export.symbolic_shape(", ".join(f"d{i}" for i in range(n_unknown))) if n_unknown else ()
    )
    return [
        jax.ShapeDtypeStruct(
            tuple(next(symbols) if d is None else d for d in a.shape), a.dtype, weak_type=a.weak
        )
        for a in avals
    ]


# The op ------------------------------------------------------------------------------------------
def _infer(*avals: AVal, fn: Any) -> tuple[AVal, ...]:
    if not isinstance(fn, JaxCallable):
        raise OpTypeError("jax_call", f"param fn must be a wrapped jax function, got {fn!r:.60}")
    return fn.signature(tuple(avals))[1]


def _impl(*arrays: Any, fn: JaxCallable) -> tuple[Any, ...]:
    out = jax.tree_util.tree_leaves(fn.call(arrays))
    return tuple(jnp.asarray(o) for o in out)


class _Pullback:
    """The backward of ``forward`` as a jax function: ``(*primals, *cts) -> cts of primals``.

    Only inputs marked in ``wrt`` are differentiated and only outputs marked in ``out_mask``
    (floating or complex) take cotangents, so integer values never meet jax's float0.
    """

    __slots__ = ("forward", "wrt", "out_mask", "_hash")

    def __init__(self, forward: JaxCallable, wrt: tuple[bool, ...], out_mask: tuple[bool, ...]):
        self.forward, self.wrt, self.out_mask = forward, wrt, out_mask
        self._hash = hash((forward, wrt, out_mask))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Pullback)
            and self.forward == other.forward
            and self.wrt == other.wrt
            and self.out_mask == other.out_mask
        )

    def __call__(self, *primals_and_cts: Any) -> list[Any]:
        n = len(self.wrt)
        primals, cts = list(primals_and_cts[:n]), primals_and_cts[n:]
        positions = [i for i, w in enumerate(self.wrt) if w]

        def differentiated(*values: Any) -> list[Any]:
            full = list(primals)
            for i, value in zip(positions, values):
                full[i] = value
            outs = jax.tree_util.tree_leaves(self.forward.call(full))
            return [jnp.asarray(o) for o, m in zip(outs, self.out_mask) if m]

        outs, pullback = jax.vjp(differentiated, *(primals[i] for i in positions))
        seeds = [jnp.asarray(c, o.dtype) for c, o in zip(cts, outs)]
        return list(pullback(seeds))


def _make_vjp(op_name: str) -> Callable[..., Any]:
    def vjp(cts: tuple[Any, ...], *args: Any, out: tuple[Any, ...], fn: JaxCallable) -> list[Any]:
        wrt = tuple(takes_gradient(a) for a in args)
        if not any(wrt):
            return [None] * len(args)
        out_mask = tuple(_inexact(arg_aval("jax_call", o).dtype) for o in out)
        kept = [c for c, m in zip(cts, out_mask) if m]
        n = len(args) + len(kept)
        backward = JaxCallable(
            _Pullback(fn, wrt, out_mask),
            f"vjp({fn})",
            (),
            jax.tree_util.tree_structure(tuple(range(n))),
        )
        grads = iter(bind(_OPS[op_name], *args, *kept, fn=backward))
        return [cast_ct(next(grads), a) if w else None for a, w in zip(args, wrt)]

    return vjp


def _inexact(dtype: np.dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.inexact))


_OPS: dict[str, OpDef] = {}
JAX_CALL = defop(
    "jax_call",
    _infer,
    _impl,
    _make_vjp("jax_call"),
    multiple_results=True,
    foldable=False,
    jvp=transpose_jvp("jax_call"),
)
JAX_CALL_FOLDABLE = defop(
    "jax_call_foldable",
    _infer,
    _impl,
    _make_vjp("jax_call_foldable"),
    multiple_results=True,
    jvp=transpose_jvp("jax_call_foldable"),
)
_OPS.update(jax_call=JAX_CALL, jax_call_foldable=JAX_CALL_FOLDABLE)


# The public wrapper ------------------------------------------------------------------------------
def _default_name(fn: Callable[..., Any]) -> str:
    inner = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(inner, "__name__", type(inner).__name__)
    return "lambda" if name == "<lambda>" else name


class JaxFunction:
    """A jax function callable on tracejit tensors (see ``jax_function``)."""

    def __init__(self, fn: Callable[..., Any], name: str | None, foldable: bool) -> None:
        if not callable(fn):
            raise TypeError(f"tj.jax_function needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or _default_name(fn)
        self.foldable = foldable
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<tj.jax_function {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves, in_tree = jax.tree_util.tree_flatten(args, is_leaf=_is_tensor)
        avals = []
        for position, leaf in enumerate(leaves):
            avals.append(self._leaf_aval(leaf, position))
        callable_ = JaxCallable(self.fn, self.name, self._static(kwargs), in_tree)
        try:
            out_tree, _ = callable_.signature(tuple(avals))
        except OpError as err:
            raise type(err)(err.op, err.detail, user_location()) from None
        op = JAX_CALL_FOLDABLE if self.foldable else JAX_CALL
        outs = bind(op, *leaves, fn=callable_)
        return jax.tree_util.tree_unflatten(out_tree, list(outs))

    def _leaf_aval(self, leaf: Any, position: int) -> AVal:
        if _is_tensor(leaf) or isinstance(leaf, (bool, int, float, complex, np.generic)):
            return arg_aval("jax_call", leaf)
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            return arg_aval("jax_call", leaf)
        raise OpTypeError(
            "jax_call",
            f"{self.name}: positional argument leaf {position} is a {type(leaf).__name__}; "
            "positional arguments are tensors, arrays or numbers (or tuples, lists and dicts of "
            "them); pass other values as keyword arguments, which are static",
            user_location(),
        )

    def _static(self, kwargs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        for key, value in kwargs.items():
            if any(_is_tensor(v) for v in jax.tree_util.tree_leaves(value, is_leaf=_is_tensor)):
                raise OpTypeError(
                    "jax_call",
                    f"{self.name}: keyword argument {key} holds a tensor; keyword arguments are "
                    "static (baked into the op), so pass tensors positionally",
                    user_location(),
                )
            try:
                hash(value)
            except TypeError:
                raise OpTypeError(
                    "jax_call",
                    f"{self.name}: keyword argument {key}={value!r:.40} is a "
                    f"{type(value).__name__}, which is not hashable; keyword arguments are "
                    "static and must be hashable (numbers, strings, tuples); pass arrays "
                    "positionally",
                    user_location(),
                ) from None
        return tuple(sorted(kwargs.items()))


def jax_function(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, foldable: bool = False
) -> Any:
    """Wrap a jax function so it runs on tracejit tensors, eagerly and inside ``tj.function``.

    Positional arguments are tensors, arrays or numbers (or pytrees of them: tuples, lists,
    dicts); keyword arguments are static (hashable, part of the op). ``fn`` must be pure and
    jax-traceable; it may return any pytree of arrays. Eagerly the wrapper runs ``fn``; traced it
    is one ``jax_call`` node, lowered by calling ``fn`` in the compiled program. Gradients come
    from ``jax.vjp``. ``foldable=True`` lets constant folding evaluate it at trace time when all
    its inputs are constants. Functions using it can be exported with ``tj.saved.export`` but not
    saved with ``tj.saved.save`` (the function is Python code, not data).

    >>> import jax
    >>> import tracejit as tj
    >>> logsumexp = tj.jax_function(jax.scipy.special.logsumexp)
    >>> logsumexp(tj.constant([[0.0, 0.0], [1.0, 1.0]]), axis=1).numpy().round(4)
    array([0.6931, 1.6931], dtype=float32)
    >>> @tj.jax_function
    ... def sin_cos(x):
    ...     return jax.numpy.sin(x), jax.numpy.cos(x)
    >>> s, c = sin_cos(tj.constant(0.0))
    >>> float(s), float(c)
    (0.0, 1.0)
    """
    if fn is None:
        return lambda f: JaxFunction(f, name, foldable)
    return JaxFunction(fn, name, foldable)


__all__ = ["JAX_CALL", "JAX_CALL_FOLDABLE", "JaxCallable", "JaxFunction", "jax_function"]
