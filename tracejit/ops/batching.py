"""Batching rules for ``tj.vmap``, written with tracejit ops (as the VJPs are).

A rule is ``rule(args, dims, **params) -> (outputs, out_dims)``: ``args`` are the op's operands
with a batch axis ``dims[i]`` each (None: not batched; at least one is batched when a rule is
called), ``outputs`` what the op returns (a tuple for multiple-result ops) and ``out_dims`` their
batch axes. Most ops share a few generic rules:

- ``elementwise``: batched operands get their batch axis in front and enough unit axes after it
  to line up with the per-example rank; unbatched ones broadcast as they are;
- ``front(axis_params)``: the batch axis moves to the front and the named axis params shift by
  one (reductions, sorts, concatenation, softmax...);
- ``leading_dims``: ops that already accept any leading dims (matmul-like, triangles);
- ``merged_batch``: ops with their own batch axis (conv, pooling) take the vmap batch merged
  into it;
- ``via_jax_vmap``: the op's jax implementation under ``jax.vmap``, bound as one ``jax_call``
  node (still IR, compiled and differentiated like any jax function). It is the rule of
  ``jax_call`` itself and of the ops whose batched form needs a gather or a scatter that no
  tracejit op expresses (searchsorted, nonzero, unique, index_add, ...), and the fallback of
  the generic rules for the operand layouts they do not cover.

Control-flow ops (cond, switch, while_loop, scan, custom_gradient, fused) batch their bodies;
their rules live in ``tracejit.batching.control`` (they trace new bodies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from tracejit.ops.arguments import arg_aval
from tracejit.ops.registry import OpDef, bind

Dims = tuple[int | None, ...]
Rule = Callable[..., tuple[Any, Any]]


# Helpers ---------------------------------------------------------------------------------------
def ndim(x: Any) -> int:
    return len(arg_aval("vmap", x).shape)


def batch_size(args: Sequence[Any], dims: Sequence[int | None]) -> int | None:
    """The batch size of the batched operands (None when it is unknown while tracing)."""
    for x, d in zip(args, dims):
        if d is not None:
            size = arg_aval("vmap", x).shape[d]
            if size is not None:
                return size
    return None


def to_front(x: Any, d: int | None) -> Any:
    """``x`` with its batch axis first (unchanged when unbatched or already there)."""
    if d is None or d == 0:
        return x
    from tracejit.ops.manipulation import moveaxis

    return moveaxis(x, d, 0)


def materialize(x: Any, d: int | None, size: int | None, like: Any = None) -> Any:
    """``x`` with a batch axis in front: an unbatched ``x`` is broadcast along a new one of
    ``size`` (or, when the size is unknown while tracing, of the front axis of ``like``)."""
    if d is not None:
        return to_front(x, d)
    from tracejit.ops.shape import broadcast_to, expand_dims

    aval = arg_aval("vmap", x)
    if size is None:
        if like is None:
            raise ValueError("vmap: the batch size is unknown and nothing to take it from")
        from tracejit.ops.shape_query import full_dims, shape

        zeros = full_dims("vmap", (shape(like)[0], *aval.shape), 0, aval.dtype)
        from tracejit.ops.like import broadcast_like

        return broadcast_like(expand_dims(x, 0), zeros)
    return broadcast_to(expand_dims(x, 0), (size, *aval.shape))


def materialize_all(args: Sequence[Any], dims: Sequence[int | None]) -> list[Any]:
    size = batch_size(args, dims)
    like = next(to_front(x, d) for x, d in zip(args, dims) if d is not None)
    return [materialize(x, d, size, like) for x, d in zip(args, dims)]


def with_rank(x: Any, rank: int) -> Any:
    """A front-batched ``x`` with unit axes after the batch axis up to per-example ``rank``."""
    missing = rank - (ndim(x) - 1)
    if missing <= 0:
        return x
    from tracejit.ops.shape import expand_dims

    return expand_dims(x, tuple(range(1, 1 + missing)))


def _shift(value: Any) -> Any:
    """An axis param of the per-example op as one of the batched op (batch axis in front)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value + 1 if value >= 0 else value
    if isinstance(value, tuple):
        return tuple(_shift(v) for v in value)
    return value


def _results(op: OpDef, out: Any, dim: int | None) -> tuple[Any, Any]:
    if op.multiple_results:
        return out, tuple(dim for _ in out)
    return out, dim


# The rules -------------------------------------------------------------------------------------
def elementwise(op: OpDef) -> Rule:
    """n-ary elementwise ops (numpy broadcasting): batched operands move their batch axis to the
    front and get unit axes up to the highest per-example rank."""

    def rule(args: tuple[Any, ...], dims: Dims, **params: Any) -> tuple[Any, Any]:
        rank = max(ndim(x) - (d is not None) for x, d in zip(args, dims))
        lined = [x if d is None else with_rank(to_front(x, d), rank) for x, d in zip(args, dims)]
        return _results(op, bind(op, *lined, **params), 0)

    return rule


def same_dim(op: OpDef) -> Rule:
    """Unary ops that keep their operand's layout (full_like, stop_gradient...): the batch axis
    stays where it is."""

    def rule(args: tuple[Any, ...], dims: Dims, **params: Any) -> tuple[Any, Any]:
        return _results(op, bind(op, *args, **params), dims[0])

    return rule


def front(op: OpDef, axis_params: tuple[str, ...] = (), *, all_batched: bool = False) -> Rule:
    """The batch axis moves to the front of every operand and the ``axis_params`` shift by one.
    With ``all_batched`` unbatched operands are broadcast along the batch (concatenate, stack,
    take_along_axis); otherwise only the first operand may be batched (the others, scales and
    offsets, broadcast against it from the right) and other layouts go through jax.vmap."""

    def rule(args: tuple[Any, ...], dims: Dims, **params: Any) -> tuple[Any, Any]:
        if any(params.get(k, 0) is None for k in axis_params):  # "all axes": flattens the batch
            return via_jax_vmap(op)(args, dims, **params)
        if all_batched:
            moved = materialize_all(args, dims)
        elif any(d is not None for d in dims[1:]):
            return via_jax_vmap(op)(args, dims, **params)
        else:
            moved = [to_front(args[0], dims[0]), *args[1:]]
        shifted = {k: _shift(v) if k in axis_params else v for k, v in params.items()}
        return _results(op, bind(op, *moved, **shifted), 0)

    return rule


def leading_dims(op: OpDef) -> Rule:
    """Ops that act on trailing axes and accept any leading ones, with all operands at the same
    rank (tril/triu, sum_like's ``x``...): every operand batched in front."""

    def rule(args: tuple[Any, ...], dims: Dims, **params: Any) -> tuple[Any, Any]:
        return _results(op, bind(op, *materialize_all(args, dims), **params), 0)

    return rule


def merged_batch(op: OpDef, shared: tuple[int, ...] = ()) -> Rule:
    """Ops with their own leading batch axis (NHWC conv and pooling): the vmap batch is merged
    into it (``(B, N, ...) -> (B*N, ...)``) and split out of the result. Operands at ``shared``
    (a conv's kernel) must be unbatched; otherwise the op goes through jax.vmap."""

    def rule(args: tuple[Any, ...], dims: Dims, **params: Any) -> tuple[Any, Any]:
        size = batch_size(args, dims)
        like = next(to_front(x, d) for x, d in zip(args, dims) if d is not None)
        fronted = [
            x if i in shared else materialize(x, d, size, like)
            for i, (x, d) in enumerate(zip(args, dims))
        ]
        shapes = [arg_aval("vmap", x).shape for i, x in enumerate(fronted) if i not in shared]
        n = shapes[0][1]
        unknown = (size is None and n is None) or any(None in s[2:] for s in shapes)
        if unknown or any(dims[i] is not None for i in shared):
            return via_jax_vmap(op)(args, dims, **params)
        from tracejit.ops.shape import reshape

        merged = [
            x if i in shared else reshape(x, (-1, *arg_aval("vmap", x).shape[2:]))
            for i, x in enumerate(fronted)
        ]
        out = bind(op, *merged, **params)
        lead = (-1, n) if size is None else (size, -1 if n is None else n)
        return reshape(out, (*lead, *arg_aval("vmap", out).shape[1:])), 0

    return rule


def sequential(op: OpDef) -> Rule:
    """Ops that call back into Python (``py_function``...): the op once per example, in order,
    results stacked (what TF's ``vectorized_map`` falls back to for ops it cannot vectorize).
    Needs a batch size known while tracing."""

    def rule(args: tuple[Any, ...], dims: Dims, **params: Any) -> tuple[Any, Any]:
        from tracejit.errors import BatchingError
        from tracejit.ops.registry import get_op

        size = batch_size(args, dims)
        if size is None:
            raise BatchingError(
                op.name,
                "tj.vmap runs this op once per example, so it needs the batch size while "
                "tracing; trace with a known batch dim",
            )
        unstack, stack = get_op("unstack"), get_op("stack")
        columns = [None if d is None else bind(unstack, x, axis=d) for x, d in zip(args, dims)]
        rows = []
        for k in range(size):
            example = [x if c is None else c[k] for x, c in zip(args, columns)]
            out = bind(op, *example, **params)
            rows.append(tuple(out) if op.multiple_results else (out,))
        outs = tuple(bind(stack, *[r[j] for r in rows], axis=0) for j in range(len(rows[0])))
        return _results(op, outs if op.multiple_results else outs[0], 0)

    return rule


# jax.vmap of the op's implementation, as one jax_call node -----------------------------------
class _VmapOf:
    """``jax.vmap`` of a function of flat arrays returning a list of arrays (hashable, so
    the jax_call node is a CSE key)."""

    __slots__ = ("fn", "dims", "_hash")

    def __init__(self, fn: Any, dims: Dims) -> None:
        self.fn, self.dims = fn, dims
        self._hash = hash((fn, dims))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _VmapOf) and (self.fn, self.dims) == (other.fn, other.dims)

    def __call__(self, *leaves: Any) -> list[Any]:
        return jax.vmap(lambda *xs: list(self.fn(*xs)), in_axes=self.dims, out_axes=0)(*leaves)


class _Impl:
    """An op's jax implementation with its params bound, returning a list of arrays."""

    __slots__ = ("op", "params", "_hash")

    def __init__(self, op: OpDef, params: tuple[tuple[str, Any], ...]) -> None:
        self.op, self.params = op, params
        self._hash = hash((op, params))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Impl) and (self.op, self.params) == (other.op, other.params)

    def __call__(self, *arrays: Any) -> list[Any]:
        out = self.op.impl(*arrays, **dict(self.params))
        return list(out) if self.op.multiple_results else [out]


def vmap_jax_callable(fn: Any, name: str, dims: Dims) -> Any:
    """A jax_call param running ``fn`` (flat arrays -> list of arrays) under jax.vmap."""
    from tracejit.ops.jax_call import JaxCallable

    tree = jax.tree_util.tree_structure(tuple(range(len(dims))))
    return JaxCallable(_VmapOf(fn, dims), f"vmap({name})", (), tree)


def via_jax_vmap(op: OpDef) -> Rule:
    """The op's implementation under ``jax.vmap``, bound as one ``jax_call[vmap(NAME)]`` node;
    every output batched in front."""

    def rule(args: tuple[Any, ...], dims: Dims, **params: Any) -> tuple[Any, Any]:
        from tracejit.ops.jax_call import JAX_CALL

        fn = vmap_jax_callable(_Impl(op, tuple(sorted(params.items()))), op.name, tuple(dims))
        outs = bind(JAX_CALL, *args, fn=fn)
        if op.multiple_results:
            return tuple(outs), tuple(0 for _ in outs)
        return outs[0], 0

    return rule
