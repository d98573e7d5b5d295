"""The batching rule of each op (``tj.vmap``), installed into the registry by ``install``.

The generic rules are in ``tracejit.ops.batching``; this module holds the rules particular to
one op (matmul, reshape, slice, ...) and the table saying which rule each op takes. The table is
one place rather than a keyword on every ``defop`` so that parallel work on the op files (JVP
rules) and this one do not collide; ``tests/test_vmap.py`` walks the registry and fails for an
op with neither a rule nor a stated reason.
"""

from __future__ import annotations

import math
from typing import Any

from tracejit.ops.arguments import arg_aval
from tracejit.ops.batching import (
    Dims,
    batch_size,
    elementwise,
    front,
    leading_dims,
    materialize,
    materialize_all,
    merged_batch,
    ndim,
    same_dim,
    sequential,
    to_front,
    via_jax_vmap,
    vmap_jax_callable,
    with_rank,
)
from tracejit.ops.registry import OpDef, all_ops, bind, get_op, set_batch_rule


def _op(name: str) -> OpDef:
    return get_op(name)


# Shape ops -------------------------------------------------------------------------------------
def _transpose(args: tuple[Any, ...], dims: Dims, *, axes: tuple[int, ...]) -> Any:
    x = to_front(args[0], dims[0])
    return bind(_op("transpose"), x, axes=(0, *[a + 1 for a in axes])), 0


def _reshape(args: tuple[Any, ...], dims: Dims, *, shape: tuple[int, ...]) -> Any:
    x = to_front(args[0], dims[0])
    size = arg_aval("vmap", x).shape[0]
    if size is None:
        if -1 in shape:
            return via_jax_vmap(_op("reshape"))(args, dims, shape=shape)
        size = -1
    return bind(_op("reshape"), x, shape=(size, *shape)), 0


def _broadcast_to(args: tuple[Any, ...], dims: Dims, *, shape: tuple[int | None, ...]) -> Any:
    x = with_rank(to_front(args[0], dims[0]), len(shape))
    return bind(_op("broadcast_to"), x, shape=(None, *shape)), 0


def _tile(args: tuple[Any, ...], dims: Dims, *, reps: tuple[int, ...]) -> Any:
    rank = max(len(reps), ndim(args[0]) - 1)
    x = with_rank(to_front(args[0], dims[0]), rank)
    reps = (1,) * (rank - len(reps)) + tuple(reps)
    return bind(_op("tile"), x, reps=(1, *reps)), 0


def _slice(args: tuple[Any, ...], dims: Dims, *, index: tuple[Any, ...]) -> Any:
    x = to_front(args[0], dims[0])
    return bind(_op("slice"), x, index=(("slice", None, None, None), *index)), 0


def _slice_add(args: tuple[Any, ...], dims: Dims, *, index: tuple[Any, ...]) -> Any:
    x, updates = args
    size = batch_size(args, dims)
    x = materialize(x, dims[0], size, to_front(updates, dims[1]))
    if dims[1] is not None:
        region = bind(_op("slice"), args[0] if dims[0] is None else x, index=index)
        rank = ndim(region) - (dims[0] is not None)
        updates = with_rank(to_front(updates, dims[1]), rank)
    return bind(_op("slice_add"), x, updates, index=(("slice", None, None, None), *index)), 0


def _take(args: tuple[Any, ...], dims: Dims, *, axis: int | None) -> Any:
    if axis is None or dims[1] is not None:
        return via_jax_vmap(_op("take"))(args, dims, axis=axis)
    x = to_front(args[0], dims[0])
    return bind(_op("take"), x, args[1], axis=axis + 1), 0


def _shape(args: tuple[Any, ...], dims: Dims, *, out_type: Any) -> Any:
    x = to_front(args[0], dims[0])
    full = bind(_op("shape"), x, out_type=out_type)
    return bind(_op("slice"), full, index=(("slice", 1, None, None),)), None


def _full_dims(args: tuple[Any, ...], batch_dims: Dims, **params: Any) -> Any:
    # (The op has a param named ``dims``.) Each (source, axis) pair names a per-example axis:
    # skip the batch axis of that source.
    def moved(entry: Any) -> Any:
        if isinstance(entry, int):
            return entry
        source, axis = entry
        d = batch_dims[source]
        return (source, axis + 1 if d is not None and axis >= d else axis)

    new = {**params, "dims": tuple(moved(e) for e in params["dims"])}
    return bind(_op("full_dims"), *args, **new), None


def _arg_reduction(name: str) -> Any:
    """argmax/argmin reduce one axis, or all of them as numpy does (of the flattened input):
    then each example is flattened on its own."""

    def rule(args: tuple[Any, ...], dims: Dims, *, axes: tuple[int, ...], keepdims: bool) -> Any:
        x = to_front(args[0], dims[0])
        rank = ndim(x) - 1
        if len(axes) <= 1:
            return bind(_op(name), x, axes=tuple(a + 1 for a in axes), keepdims=keepdims), 0
        shape = arg_aval("vmap", x).shape
        inner = -1 if None in shape[1:] else math.prod(d or 0 for d in shape[1:])
        flat = bind(_op("reshape"), x, shape=(-1 if shape[0] is None else shape[0], inner))
        out = bind(_op(name), flat, axes=(1,), keepdims=False)
        if keepdims:
            out = bind(_op("expand_dims"), out, axes=tuple(range(1, 1 + rank)))
        return out, 0

    return rule


def _bernoulli_like(args: tuple[Any, ...], dims: Dims, **params: Any) -> Any:
    if dims[0] is not None:  # one key per example
        return via_jax_vmap(_op("random_bernoulli_like"))(args, dims, **params)
    return bind(_op("random_bernoulli_like"), *args, **params), dims[1]


# Like ops (shapes taken from a second operand, used by VJPs with unknown dims) ----------------
def _broadcast_like(args: tuple[Any, ...], dims: Dims) -> Any:
    x, like = materialize_all(args, dims)
    return bind(_op("broadcast_like"), with_rank(x, ndim(like) - 1), like), 0


def _sum_like(args: tuple[Any, ...], dims: Dims) -> Any:
    x, like = materialize_all(args, dims)
    added = (ndim(x) - 1) - (ndim(like) - 1)
    out = bind(_op("sum_like"), x, with_rank(like, ndim(x) - 1))
    if added > 0:
        out = bind(_op("squeeze"), out, axes=tuple(range(1, 1 + added)))
    return out, 0


# Contractions ----------------------------------------------------------------------------------
def _matmul(args: tuple[Any, ...], dims: Dims) -> Any:
    """numpy matmul broadcasts leading dims: batched operands get the batch in front and unit
    axes up to the higher rank; a batched vector becomes a one-row (one-column) matrix, the
    added axis squeezed from the result."""
    (x, y), (dx, dy) = args, dims
    rx, ry = ndim(x) - (dx is not None), ndim(y) - (dy is not None)
    if rx == 0 or ry == 0:
        return via_jax_vmap(_op("matmul"))(args, dims)
    squeeze: list[int] = []
    if dx is not None:
        x = to_front(x, dx)
        if rx == 1 and (dy is not None or ry > 2):  # (B, k) @ (k,) or (k, n) is right as is
            x, rx = bind(_op("expand_dims"), x, axes=(1,)), 2
            squeeze.append(-2)
    if dy is not None:
        y = to_front(y, dy)
        if ry == 1:
            y, ry = bind(_op("expand_dims"), y, axes=(2,)), 2
            squeeze.append(-1)
    rank = max(rx, ry)  # batched matrices line up their leading dims (vectors stay vectors)
    x = x if dx is None or rx == 1 else with_rank(x, rank)
    y = y if dy is None or ry == 1 else with_rank(y, rank)
    out = bind(_op("matmul"), x, y)
    if squeeze:
        r = ndim(out)
        out = bind(_op("squeeze"), out, axes=tuple(sorted(a % r for a in squeeze)))
    return out, 0


def _dot(args: tuple[Any, ...], dims: Dims) -> Any:
    """numpy dot contracts x's last axis with y's second-to-last (or only) axis; its result
    holds x's other axes, then y's: a batch in front of x stays in front, a batch of y lands
    after x's axes."""
    (x, y), (dx, dy) = args, dims
    rx, ry = ndim(x) - (dx is not None), ndim(y) - (dy is not None)
    if rx == 0 or ry == 0 or (dx is not None and dy is not None):
        return via_jax_vmap(_op("dot"))(args, dims)
    if dx is not None:
        return bind(_op("dot"), to_front(x, dx), y), 0
    y = to_front(y, dy)
    if ry == 1:  # (B, k) -> (k, B): contracted as a matrix, the batch is its last axis
        y = bind(_op("transpose"), y, axes=(1, 0))
    return bind(_op("dot"), x, y), rx - 1


def _tensordot(args: tuple[Any, ...], dims: Dims, *, axes: tuple[tuple[int, ...], ...]) -> Any:
    (x, y), (dx, dy) = args, dims
    ax, ay = axes
    if dx is not None and dy is not None:
        return via_jax_vmap(_op("tensordot"))(args, dims, axes=axes)
    if dx is not None:
        x = to_front(x, dx)
        return bind(_op("tensordot"), x, y, axes=(tuple(a + 1 for a in ax), ay)), 0
    y = to_front(y, dy)
    out = bind(_op("tensordot"), x, y, axes=(ax, tuple(a + 1 for a in ay)))
    return out, ndim(x) - len(ax)


def _dense(args: tuple[Any, ...], dims: Dims, *, activation: str) -> Any:
    if dims[1] is not None or dims[2] is not None or ndim(args[0]) - 1 < 1:
        return via_jax_vmap(_op("dense"))(args, dims, activation=activation)
    x = to_front(args[0], dims[0])
    return bind(_op("dense"), x, args[1], args[2], activation=activation), 0


# Effects and annotations -----------------------------------------------------------------------
def _print(args: tuple[Any, ...], dims: Dims, **params: Any) -> Any:
    # Each batched value prints whole, batch axis first (as a Python loop would print each row).
    moved = [to_front(x, d) for x, d in zip(args, dims)]
    return bind(_op("print"), *moved, **params), ()


def _shard(args: tuple[Any, ...], dims: Dims, *, spec: tuple[Any, ...], mesh: Any) -> Any:
    x = to_front(args[0], dims[0])
    return bind(_op("shard"), x, spec=(None, *spec), mesh=mesh), 0


def _jax_call(op: OpDef) -> Any:
    def rule(args: tuple[Any, ...], dims: Dims, *, fn: Any) -> Any:
        batched = vmap_jax_callable(_FlatCall(fn), str(fn), tuple(dims))
        outs = bind(op, *args, fn=batched)
        return tuple(outs), tuple(0 for _ in outs)

    return rule


class _FlatCall:
    """A ``JaxCallable``'s function of flat leaves returning flat leaves (for jax.vmap)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __hash__(self) -> int:
        return hash(("flat", self.fn))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FlatCall) and self.fn == other.fn

    def __call__(self, *leaves: Any) -> list[Any]:
        import jax

        return jax.tree_util.tree_leaves(self.fn.call(leaves))


# The table -------------------------------------------------------------------------------------
_FRONT: dict[str, tuple[str, ...]] = {  # op -> the params that are axes of the per-example operand
    **dict.fromkeys(("sum", "mean", "max", "min", "prod", "all", "any", "logsumexp"), ("axes",)),
    **dict.fromkeys(("flip", "expand_dims", "squeeze", "roll"), ("axes",)),
    **dict.fromkeys(("layer_norm", "rms_norm"), ("axes",)),
    **dict.fromkeys(
        ("softmax", "log_softmax", "cumulative_sum", "cumulative_prod", "sort", "argsort"),
        ("axis",),
    ),
    **dict.fromkeys(("unstack", "split", "repeat", "one_hot"), ("axis",)),
}
# Every operand batched in front, the axis params shifted:
_FRONT_ALL: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("concatenate", "stack", "take_along_axis", "along_axis_add", "split_like"), ("axis",)
    ),
    # batch_norm's scale, offset (and running stats) have the shape of x's kept axes
    **dict.fromkeys(("batch_norm", "batch_norm_inference"), ("axes",)),
    **dict.fromkeys(("reshape_like", "softmax_cross_entropy", "sparse_softmax_cross_entropy"), ()),
}
_SAME_DIM = ("full_like",)
_LEADING = ("tril", "triu")
# tracejit.linalg / tracejit.fft (issue 12): these take (..., M, N) stacks, or absolute axes,
# so jax's own vmap of the impl batches them.
_LINALG_FFT = (
    "cholesky",
    "cross",
    "det",
    "diagonal",
    "diag_embed",
    "eigh",
    "eigvalsh",
    "inv",
    "matrix_rank",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "fft",
    "dot_product_attention",  # (q, k, v, mask, bias): one jax.vmap keeps every layout right
)
_MERGED = {  # op -> operands that must be unbatched (kernels)
    "conv2d": (1,),
    "conv2d_input_grad": (1,),
    "max_pool2d": (),
    "avg_pool2d": (),
    "max_pool2d_grad": (),
    "avg_pool2d_grad": (),
    "max_pool2d_jvp": (),
}
# Ops whose batched form needs a gather/scatter (or a per-example grouping) that no tracejit op
# expresses directly: their jax implementation under jax.vmap, as one jax_call node.
_VIA_JAX = (
    "gather_index",
    "scatter_index",
    "searchsorted",
    "nonzero",
    "unique",
    "index_add",
    "group_norm",
    "conv2d_filter_grad",
    "random_normal",
    "random_uniform",
    "random_truncated_normal",
    "random_bernoulli",
    "random_permutation",
    "random_split",
)
_SPECIAL = {
    "transpose": _transpose,
    "reshape": _reshape,
    "broadcast_to": _broadcast_to,
    "tile": _tile,
    "slice": _slice,
    "slice_add": _slice_add,
    "take": _take,
    "shape": _shape,
    "full_dims": _full_dims,
    "broadcast_like": _broadcast_like,
    "sum_like": _sum_like,
    "matmul": _matmul,
    "dot": _dot,
    "tensordot": _tensordot,
    "dense": _dense,
    "print": _print,
    "argmax": _arg_reduction("argmax"),
    "argmin": _arg_reduction("argmin"),
    "random_bernoulli_like": _bernoulli_like,
    "shard": _shard,
}
# Python callbacks: called once per example, in order (jax cannot vmap an ordered callback).
_SEQUENTIAL = ("py_function", "py_function_grad", "numpy_function", "numpy_function_stateless")
_NO_OPERANDS = ("full", "arange", "eye", "linspace")


def install() -> None:
    """Give every registered op its batching rule (control-flow rules come from
    ``tracejit.batching.control``)."""
    ops = all_ops()
    for op in ops.values():
        if op.elementwise and op.batch is None and not op.not_batchable:
            set_batch_rule(op, elementwise(op))
    for name, axes in _FRONT.items():
        set_batch_rule(ops[name], front(ops[name], axes))
    for name, axes in _FRONT_ALL.items():
        set_batch_rule(ops[name], front(ops[name], axes, all_batched=True))
    for name in _SAME_DIM:
        set_batch_rule(ops[name], same_dim(ops[name]))
    for name in _LEADING:
        set_batch_rule(ops[name], leading_dims(ops[name]))
    for name, shared in _MERGED.items():
        set_batch_rule(ops[name], merged_batch(ops[name], shared))
    for name in _VIA_JAX + _LINALG_FFT:
        set_batch_rule(ops[name], via_jax_vmap(ops[name]))
    for name in _SEQUENTIAL:
        set_batch_rule(ops[name], sequential(ops[name]))
    for name, rule in _SPECIAL.items():
        set_batch_rule(ops[name], rule)
    for name in ("jax_call", "jax_call_foldable"):
        set_batch_rule(ops[name], _jax_call(ops[name]))
    for name in _NO_OPERANDS:
        set_batch_rule(ops[name], None, "takes no tensor operands, so its result is never batched")
