"""``tj.vmap``: the vectorizing map, as a transformation of tracejit's IR.

``tj.vmap(fn)(xs)`` works in three steps:

1. **trace** ``fn`` on per-example avals (each batched argument without its batch axis) into a
   graph, with a child ``GraphBuilder`` (so enclosing symbolic tensors, eager tensors and
   variables it uses are captured as they are in a control-flow body);
2. **batch**: ``batch_eval`` walks the graph's nodes with an env from each value to
   ``(object, batch axis or None)``. A node whose inputs are all unbatched is bound as it is; any
   other node goes to its op's registry batching rule (``OpDef.batch``, written with tracejit
   ops: see ``tracejit.ops.batching``), which binds the batched ops;
3. the outputs get their batch axis where ``out_axes`` says.

Step 2 binds through ``bind``, i.e. through whatever interpreter is current: eagerly the batched
ops run at once, one by one, through the eager interpreter (and a gradient tape outside records
them, so ``tj.grad`` of a vmapped function works); inside ``tj.function`` they are emitted into
the enclosing trace, so the batched program is printed, optimized and compiled with the rest.
Wrap the call in ``tj.function`` to compile it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

from tracejit.eager.tensor import Tensor, constant
from tracejit.eager.variable import Variable
from tracejit.errors import BatchingError, OpError
from tracejit.ir.graph import Graph, Node, Value
from tracejit.ir.source import replaying_at, user_location
from tracejit.ops.batching import materialize, to_front
from tracejit.ops.registry import bind
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.tracing import context
from tracejit.tracing.tracer import GraphBuilder
from tracejit.types import AVal

Entry = tuple[Any, "int | None"]  # an object (tensor, tracer, variable, number) and its batch axis


def _is_leaf(x: Any) -> bool:
    return isinstance(x, (TensorMethods, Variable))


# The batching walk -----------------------------------------------------------------------------
def batch_eval(graph: Graph, args: Sequence[Any], dims: Sequence[int | None]) -> list[Entry]:
    """Run ``graph`` on ``args`` whose batch axes are ``dims``; the outputs with theirs."""
    env: dict[Value, Entry] = dict(zip(graph.inputs, zip(args, dims)))
    env.update((value, (array, None)) for value, array in graph.consts)
    run_nodes(graph.nodes, env)
    return [env[v] for v in graph.outputs]


def run_nodes(nodes: Sequence[Node], env: dict[Value, Entry]) -> None:
    """The env loop of batching: each node bound as it is or through its op's batching rule."""
    for node in nodes:
        ins = [env[v] for v in node.inputs]
        objects = tuple(obj for obj, _ in ins)
        dims = tuple(d for _, d in ins)
        op = node.op
        with replaying_at(node.loc):  # the new nodes (and errors) get the user's line
            if all(d is None for d in dims):
                out: Any = bind(op, *objects, **node.params)
                out_dims: Any = tuple(None for _ in out) if op.multiple_results else None
            else:
                out, out_dims = _apply_rule(node, objects, dims)
        if op.multiple_results:
            env.update(zip(node.outputs, zip(out, out_dims)))
        else:
            env[node.outputs[0]] = (out, out_dims)


def _apply_rule(node: Node, objects: tuple[Any, ...], dims: tuple[int | None, ...]) -> Any:
    op = node.op
    if op.batch is None:
        why = f" ({op.not_batchable})" if op.not_batchable else ""
        raise BatchingError(
            op.name,
            f"tj.vmap has no batching rule for this op{why}; its operands here are batched "
            f"along axes {dims}. Move this op out of the mapped function, or give the op a "
            "rule (OpDef.batch, see tracejit/ops/batching.py)",
            node.loc,
        )
    try:
        return op.batch(objects, dims, **node.params)
    except BatchingError:
        raise
    except OpError as err:
        detail = f"while batching for tj.vmap: {err.detail}"
        raise type(err)(err.op, detail, err.loc or node.loc) from None


# Tracing per-example functions and new bodies ----------------------------------------------------
def new_body(name: str, avals: Sequence[AVal], fn: Callable[[list[Any]], list[Any]]) -> Graph:
    """Trace ``fn`` (a list of tracers -> a list of values) into a nested graph with inputs of
    ``avals`` and no captures: the batched bodies of control-flow ops."""
    builder = GraphBuilder(name, parent=context.state.builder)
    tapes, context.state.tapes = context.state.tapes, ()
    try:
        with builder.active():
            outs = fn([builder.new_input(a) for a in avals])
            values = [builder.to_value(x, name, i) for i, x in enumerate(outs)]
    finally:
        context.state.tapes = tapes
    if builder.captures:  # pragma: no cover - the rules pass every value in as an input
        raise BatchingError(name, "a batched body captured a value of the enclosing trace")
    return builder.build(values)


def batched_aval(aval: AVal, size: int | None) -> AVal:
    return AVal((size, *aval.shape), aval.dtype, aval.weak)


# tj.vmap ---------------------------------------------------------------------------------------
def vmap(fn: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0) -> Callable[..., Any]:
    """Vectorize ``fn`` over a batch axis of its arguments (jax's ``vmap``; TF's
    ``vectorized_map``): ``vmap(f)(xs)`` is ``stack([f(x) for x in xs])``, computed by one
    batched program instead of a loop.

    ``in_axes`` is an int, None (not mapped), or a tuple with one entry per positional argument
    (each an int, None, or a nest matching that argument); keyword arguments are mapped along
    axis 0; ``out_axes`` is an int, None or a nest matching the outputs. ``fn`` is traced once
    per call on per-example shapes, and each op of its graph is replaced by the batched ops its
    registry batching rule gives. Eagerly the batched ops run at once; inside ``tj.function``
    they become part of the traced IR. It composes with ``tj.grad`` (per-example gradients)
    and with itself.

    >>> import tracejit as tj
    >>> xs = tj.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> tj.vmap(lambda x: x @ x)(xs).numpy()
    array([ 5., 25., 61.], dtype=float32)
    >>> tj.vmap(tj.grad(lambda x: (x ** 3).sum()))(xs).numpy()
    array([[  3.,  12.],
           [ 27.,  48.],
           [ 75., 108.]], dtype=float32)
    >>> tj.vmap(lambda x, w: x * w, in_axes=(0, None))(xs, tj.constant([10.0, 1.0])).numpy()
    array([[10.,  2.],
           [30.,  4.],
           [50.,  6.]], dtype=float32)
    """
    if not callable(fn):
        raise TypeError(f"tj.vmap needs a callable, got {type(fn).__name__}")

    @functools.wraps(fn)
    def batched(*args: Any, **kwargs: Any) -> Any:
        if not kwargs:
            return _call(fn, in_axes, out_axes, args)
        # Keyword arguments are mapped along axis 0, as jax.vmap maps them.
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        with_kwargs = functools.wraps(fn)(lambda *a: fn(*a[:-1], **a[-1]))
        return _call(with_kwargs, (*axes, 0), out_axes, (*args, kwargs))

    return batched


def vectorized_map(fn: Callable[..., Any], elems: Any) -> Any:
    """TF's ``tf.vectorized_map``: ``fn`` applied to each slice of ``elems`` (a tensor or a
    nest of tensors) along axis 0, batched as ``tj.vmap(fn)(elems)``.

    >>> import tracejit as tj
    >>> tj.vectorized_map(lambda x: x.sum(), tj.constant([[1, 2], [3, 4]])).numpy()
    array([3, 7], dtype=int32)
    """
    return vmap(fn)(elems)


def _fn_name(fn: Any) -> str:
    name = getattr(fn, "__name__", type(fn).__name__)
    return "lambda" if name == "<lambda>" else name


def _call(fn: Callable[..., Any], in_axes: Any, out_axes: Any, args: tuple[Any, ...]) -> Any:
    name = _fn_name(fn)
    leaves, trees, axes = _flat_arguments(name, args, in_axes)
    size = _batch_size(name, leaves, axes)
    builder = GraphBuilder(f"vmap_{name}", parent=context.state.builder)
    tapes, context.state.tapes = context.state.tapes, ()
    try:
        with builder.active():
            inner = [
                leaf if axis is None else builder.new_input(_example_aval(leaf, axis))
                for leaf, axis in zip(leaves, axes)
            ]
            rebuilt = _unflatten(trees, inner)
            result = fn(*rebuilt)
            out_leaves, out_tree = jax.tree_util.tree_flatten(result, is_leaf=_is_leaf)
            outputs = [_output_value(builder, name, leaf, i) for i, leaf in enumerate(out_leaves)]
    finally:
        context.state.tapes = tapes
    _check_no_assignments(builder, name)
    graph = builder.build(outputs)
    env = _initial_env(builder, graph, leaves, axes)
    run_nodes(graph.nodes, env)
    results = [env[v] for v in graph.outputs]
    placed = _place_outputs(name, results, out_tree, out_axes, size, leaves, axes)
    return jax.tree_util.tree_unflatten(out_tree, placed)


def _flat_arguments(
    name: str, args: tuple[Any, ...], in_axes: Any
) -> tuple[list[Any], list[Any], list[int | None]]:
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if isinstance(in_axes, tuple):
        if len(in_axes) != len(args):
            raise BatchingError(
                "vmap",
                f"{name}: in_axes has {len(in_axes)} entries but the function got "
                f"{len(args)} positional arguments; give one entry (an int, None or a nest) "
                "per argument",
                user_location(),
            )
        per_arg = in_axes
    elif in_axes is None or isinstance(in_axes, int):
        per_arg = (in_axes,) * len(args)
    else:
        raise BatchingError(
            "vmap",
            f"{name}: in_axes must be an int, None or a tuple, got {type(in_axes).__name__}",
            user_location(),
        )
    leaves: list[Any] = []
    trees: list[Any] = []
    axes: list[int | None] = []
    for position, (arg, axis) in enumerate(zip(args, per_arg)):
        arg_leaves, tree = jax.tree_util.tree_flatten(arg, is_leaf=_is_leaf)
        trees.append((tree, len(arg_leaves)))
        leaves += arg_leaves
        axes += _leaf_axes(name, position, arg, axis, tree, len(arg_leaves))
    converted = []
    for position, (leaf, axis) in enumerate(zip(leaves, axes)):
        if axis is not None:
            leaf = _as_tensor(name, leaf, position)
            rank = len(leaf.shape)
            if not -rank <= axis < rank:
                raise BatchingError(
                    "vmap",
                    f"{name}: in_axes {axis} is out of range for input leaf {position} of "
                    f"shape {tuple(leaf.shape)} (rank {rank})",
                    user_location(),
                )
            axes[position] = axis % rank
        converted.append(leaf)
    if all(a is None for a in axes):
        raise BatchingError(
            "vmap",
            f"{name}: no argument is mapped (every in_axes entry is None, or there are no "
            "tensor arguments); map at least one tensor argument",
            user_location(),
        )
    return converted, trees, axes


def _leaf_axes(
    name: str, position: int, arg: Any, axis: Any, tree: Any, n: int
) -> list[int | None]:
    if axis is None or isinstance(axis, int):
        return [axis] * n
    axis_leaves, axis_tree = jax.tree_util.tree_flatten(axis, is_leaf=lambda a: a is None)
    if axis_tree != tree or not all(a is None or isinstance(a, int) for a in axis_leaves):
        raise BatchingError(
            "vmap",
            f"{name}: in_axes entry {position} ({axis!r:.60}) does not match the structure of "
            f"argument {position}; give an int, None, or a nest of them shaped like the argument",
            user_location(),
        )
    return list(axis_leaves)


def _as_tensor(name: str, leaf: Any, position: int) -> Any:
    if isinstance(leaf, (TensorMethods, Variable)):
        return leaf
    if isinstance(leaf, (bool, int, float, complex)):
        raise BatchingError(
            "vmap",
            f"{name}: input leaf {position} is the Python number {leaf!r}, which has no axis to "
            "map over; give it in_axes None, or pass a tensor",
            user_location(),
        )
    return constant(leaf)


def _example_aval(leaf: Any, axis: int) -> AVal:
    aval = leaf.aval
    return AVal(aval.shape[:axis] + aval.shape[axis + 1 :], aval.dtype, aval.weak)


def _batch_size(name: str, leaves: list[Any], axes: list[int | None]) -> int | None:
    sizes = {
        i: leaf.aval.shape[a] for i, (leaf, a) in enumerate(zip(leaves, axes)) if a is not None
    }
    known = {s for s in sizes.values() if s is not None}
    if len(known) > 1:
        shown = ", ".join(f"leaf {i}: {s}" for i, s in sizes.items())
        raise BatchingError(
            "vmap",
            f"{name}: the mapped axes have different sizes ({shown}); every mapped input "
            "needs the same batch size",
            user_location(),
        )
    return next(iter(known), None)


def _unflatten(trees: list[Any], leaves: list[Any]) -> list[Any]:
    rebuilt, start = [], 0
    for tree, n in trees:
        rebuilt.append(jax.tree_util.tree_unflatten(tree, leaves[start : start + n]))
        start += n
    return rebuilt


def _output_value(builder: GraphBuilder, name: str, leaf: Any, i: int) -> Value:
    if not isinstance(leaf, (TensorMethods, Variable, bool, int, float, complex)):
        raise BatchingError(
            "vmap",
            f"{name} returned a {type(leaf).__name__} (output leaf {i}); a vmapped function "
            "returns tensors, numbers, or nests (tuples, lists, dicts) of them",
            user_location(),
        )
    return builder.to_value(leaf, f"vmap({name})", i)


def _check_no_assignments(builder: GraphBuilder, name: str) -> None:
    assigned = [v.name for v, _ in builder.nested_variables.values()]  # nothing is preset
    assigned += [
        v.name
        for v, before, after in zip(builder.variables, builder.state_inputs, builder.state_current)
        if before is not after
    ]
    if assigned:
        raise BatchingError(
            "vmap",
            f"{name} assigns variable(s) {', '.join(assigned)}; a vmapped function cannot "
            "change state (each example would write its own value). Return the new values "
            "and assign outside tj.vmap",
            user_location(),
        )


def _initial_env(
    builder: GraphBuilder, graph: Graph, leaves: list[Any], axes: list[int | None]
) -> dict[Value, Entry]:
    env: dict[Value, Entry] = {}
    batched = iter(v for v in graph.inputs[: len(builder.inputs)])
    for leaf, axis in zip(leaves, axes):
        if axis is not None:
            env[next(batched)] = (leaf, axis)
    for outer, inner in builder.captures.items():  # enclosing tracers and variables
        env[inner] = (builder.capture_sources[outer], None)
    # Constants: an eager tensor stays that tensor (a tape outside may watch it).
    owners = {value: owner for owner, value in builder._const_ids.values()}
    for value, array in graph.consts:
        owner = owners.get(value)
        env[value] = (owner if isinstance(owner, Tensor) else array, None)
    for variable, value in zip(builder.variables, graph.state):  # eager: read as it is
        env[value] = (variable, None)
    return env


def _place_outputs(
    name: str,
    results: list[Entry],
    out_tree: Any,
    out_axes: Any,
    size: int | None,
    leaves: list[Any],
    axes: list[int | None],
) -> list[Any]:
    if out_axes is None or isinstance(out_axes, int):
        per_leaf = [out_axes] * len(results)
    else:
        flat, tree = jax.tree_util.tree_flatten(out_axes, is_leaf=lambda a: a is None)
        if tree != out_tree:
            raise BatchingError(
                "vmap",
                f"{name}: out_axes {out_axes!r:.60} does not match the structure of the "
                "function's result",
                user_location(),
            )
        per_leaf = flat
    like = next(to_front(leaf, a) for leaf, a in zip(leaves, axes) if a is not None)
    placed = []
    for i, ((obj, d), axis) in enumerate(zip(results, per_leaf)):
        if axis is None:
            if d is not None:
                raise BatchingError(
                    "vmap",
                    f"{name}: out_axes is None for output leaf {i}, but that output depends on "
                    "the mapped inputs (it differs per example); give it an axis",
                    user_location(),
                )
            placed.append(obj.read_value() if isinstance(obj, Variable) else obj)
            continue
        if isinstance(obj, Variable):
            obj = obj.read_value()
        front = materialize(obj, d, size, like)
        rank = len(front.shape)
        if not -rank <= axis < rank:
            raise BatchingError(
                "vmap",
                f"{name}: out_axes {axis} is out of range for output leaf {i} (rank {rank} "
                "with the batch axis)",
                user_location(),
            )
        axis %= rank
        if axis:
            from tracejit.ops.manipulation import moveaxis

            front = moveaxis(front, 0, axis)
        placed.append(front)
    return placed


__all__ = ["batch_eval", "batched_aval", "new_body", "vectorized_map", "vmap"]
