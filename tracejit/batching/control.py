"""Batching rules of the ops with nested graphs: their bodies are batched into new bodies.

- ``cond``/``switch`` with an unbatched predicate: one node whose branches are the batched
  branches (every output batched in front); with a batched predicate every branch runs on the
  whole batch and ``where`` picks each example's result (jax's rule);
- ``while_loop``: the carry is batched; an unbatched condition keeps the loop as it is, a
  batched one runs while *any* example goes on and freezes the finished ones (jax's rule);
- ``scan``: carries batched in front, each ``xs`` batched along axis 1 (so every step's slice
  has the batch in front), ``ys`` come out batched along axis 1;
- ``custom_gradient``: both the forward body and the user's gradient body are batched, so the
  user's rule still decides the gradient of every example;
- ``fused``: its elementwise body is batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tracejit.batching.vmap import Entry, batch_eval, batched_aval, new_body
from tracejit.errors import BatchingError
from tracejit.ir.graph import Graph
from tracejit.ops.batching import Dims, batch_size, materialize, to_front, with_rank
from tracejit.ops.registry import OpDef, all_ops, bind, get_op, set_batch_rule
from tracejit.types import AVal


def _fronted(args: Sequence[Any], dims: Dims) -> tuple[list[Any], list[int | None]]:
    """Operands with their batch axis in front; their dims (0 or None)."""
    return [to_front(x, d) for x, d in zip(args, dims)], [None if d is None else 0 for d in dims]


def _avals(graph: Graph, dims: Sequence[int | None], size: int | None) -> list[AVal]:
    return [v.aval if d is None else batched_aval(v.aval, size) for v, d in zip(graph.inputs, dims)]


def _all_front(entries: list[Entry], size: int | None, like: Any) -> list[Any]:
    return [materialize(obj, d, size, like) for obj, d in entries]


def _batched_body(name: str, graph: Graph, dims: Sequence[int | None], size: int | None) -> Graph:
    """``graph`` batched along ``dims`` (0 or None per input), every output batched in front."""

    def run(inputs: list[Any]) -> list[Any]:
        like = next(x for x, d in zip(inputs, dims) if d is not None)
        return _all_front(batch_eval(graph, inputs, dims), size, like)

    return new_body(name, _avals(graph, dims, size), run)


def _like(args: Sequence[Any], dims: Sequence[int | None]) -> Any:
    return next(x for x, d in zip(args, dims) if d is not None)


# cond and switch -------------------------------------------------------------------------------
def _select(pred: Any, branches: list[list[Entry]], graph: Graph, size: Any, like: Any) -> Any:
    """Each output from the branch ``pred`` (front-batched int or bool per example) picks."""
    from tracejit.ops.elementwise import cast, equal, where

    outs = []
    for i, value in enumerate(graph.outputs):
        rank = len(value.aval.shape)
        candidates = [materialize(*b[i], size, like) for b in branches]
        if len(branches) == 2 and pred.dtype == bool:
            chosen = where(with_rank(pred, rank), candidates[0], candidates[1])
        else:
            chosen = candidates[-1]
            for k in range(len(candidates) - 2, -1, -1):
                chosen = where(with_rank(equal(pred, k), rank), candidates[k], chosen)
        outs.append(chosen if chosen.dtype == value.aval.dtype else cast(chosen, value.aval.dtype))
    return tuple(outs), tuple(0 for _ in outs)


def _cond(args: tuple[Any, ...], dims: Dims, *, true_body: Graph, false_body: Graph) -> Any:
    size = batch_size(args, dims)
    operands, inner = _fronted(args[1:], dims[1:])
    if dims[0] is None:
        if all(d is None for d in inner):  # pragma: no cover - then nothing is batched
            raise BatchingError("cond", "nothing to batch")
        true_b = _batched_body("true_branch", true_body, inner, size)
        false_b = _batched_body("false_branch", false_body, inner, size)
        outs = bind(get_op("cond"), args[0], *operands, true_body=true_b, false_body=false_b)
        return tuple(outs), tuple(0 for _ in outs)
    pred = to_front(args[0], dims[0])
    like = _like([pred, *operands], [0, *inner])
    branches = [batch_eval(b, operands, inner) for b in (true_body, false_body)]
    return _select(pred, branches, true_body, size, like)


def _switch(args: tuple[Any, ...], dims: Dims, *, branches: tuple[Graph, ...]) -> Any:
    from tracejit.ops.elementwise import clip

    size = batch_size(args, dims)
    operands, inner = _fronted(args[1:], dims[1:])
    if dims[0] is None:
        new = tuple(_batched_body(f"branch_{i}", b, inner, size) for i, b in enumerate(branches))
        outs = bind(get_op("switch"), args[0], *operands, branches=new)
        return tuple(outs), tuple(0 for _ in outs)
    index = clip(to_front(args[0], dims[0]), 0, len(branches) - 1)  # as lax.switch clamps
    like = _like([index, *operands], [0, *inner])
    results = [batch_eval(b, operands, inner) for b in branches]
    return _select(index, results, branches[0], size, like)


# Loops -----------------------------------------------------------------------------------------
def _while(
    args: tuple[Any, ...],
    dims: Dims,
    *,
    cond_body: Graph,
    body: Graph,
    n_carry: int,
    maximum_iterations: int | None,
) -> Any:
    from tracejit.ops.elementwise import where
    from tracejit.ops.reduction import any as reduce_any

    size = batch_size(args, dims)
    operands, inner = _fronted(args, dims)
    like = _like(operands, inner)
    carry = [materialize(x, d, size, like) for x, d in zip(operands[:n_carry], inner[:n_carry])]
    operands = carry + operands[n_carry:]
    inner = [0 if i < n_carry else d for i, d in enumerate(inner)]
    avals = _avals(body, inner, size)
    pred_dim: list[int | None] = []

    def test(inputs: list[Any]) -> list[Any]:
        ((pred, d),) = batch_eval(cond_body, inputs, inner)
        pred_dim.append(d)
        return [pred]

    cond_b = new_body("cond", avals, test)
    if pred_dim[0] is None:  # every example stops at the same step
        body_b = _batched_body("body", body, inner, size)
    else:

        def any_going(inputs: list[Any]) -> list[Any]:
            ((pred, d),) = batch_eval(cond_body, inputs, inner)
            return [reduce_any(to_front(pred, d), axis=0)]

        def step(inputs: list[Any]) -> list[Any]:
            ((pred, d),) = batch_eval(cond_body, inputs, inner)
            going = to_front(pred, d)
            new = _all_front(batch_eval(body, inputs, inner), size, inputs[0])
            return [
                where(with_rank(going, len(v.aval.shape)), n, old)
                for n, old, v in zip(new, inputs[:n_carry], body.outputs)
            ]

        cond_b = new_body("cond", avals, any_going)
        body_b = new_body("body", avals, step)
    outs = bind(
        get_op("while_loop"),
        *operands,
        cond_body=cond_b,
        body=body_b,
        n_carry=n_carry,
        maximum_iterations=maximum_iterations,
    )
    return tuple(outs), tuple(0 for _ in outs)


def _scan(
    args: tuple[Any, ...],
    dims: Dims,
    *,
    body: Graph,
    n_carry: int,
    n_xs: int,
    length: int | None,
    reverse: bool,
) -> Any:
    from tracejit.ops.manipulation import moveaxis

    size = batch_size(args, dims)
    operands, inner = _fronted(args, dims)
    like = _like(operands, inner)
    carry = [materialize(x, d, size, like) for x, d in zip(operands[:n_carry], inner[:n_carry])]
    xs = [
        x if d is None else moveaxis(x, 0, 1)  # the scan axis first, then the batch
        for x, d in zip(operands[n_carry : n_carry + n_xs], inner[n_carry : n_carry + n_xs])
    ]
    consts = operands[n_carry + n_xs :]
    inner = [0 if i < n_carry else d for i, d in enumerate(inner)]
    body_b = _batched_body("body", body, inner, size)
    outs = bind(
        get_op("scan"),
        *carry,
        *xs,
        *consts,
        body=body_b,
        n_carry=n_carry,
        n_xs=n_xs,
        length=length,
        reverse=reverse,
    )
    return tuple(outs), tuple(0 if i < n_carry else 1 for i in range(len(outs)))


# Bodies with a gradient, fused regions ----------------------------------------------------------
def _custom_gradient(
    args: tuple[Any, ...],
    dims: Dims,
    *,
    body: Graph,
    grad: Graph,
    n_outputs: int,
    n_assigned: int,
    grad_of: tuple[int, ...],
) -> Any:
    if n_assigned:
        raise BatchingError(
            "custom_gradient",
            "a custom-gradient function that assigns variables cannot be batched by tj.vmap",
        )
    size = batch_size(args, dims)
    like = _like(args, dims)
    # Every operand batched, so each gets a per-example gradient of its own shape.
    operands = [materialize(x, d, size, like) for x, d in zip(args, dims)]
    zeros = [0] * len(operands)
    body_b = _batched_body("body", body, zeros, size)
    grad_b = _batched_body("grad", grad, [0] * len(grad.inputs), size)
    outs = bind(
        get_op("custom_gradient"),
        *operands,
        body=body_b,
        grad=grad_b,
        n_outputs=n_outputs,
        n_assigned=n_assigned,
        grad_of=grad_of,
    )
    return tuple(outs), tuple(0 for _ in outs)


def _fused(args: tuple[Any, ...], dims: Dims, *, body: Graph) -> Any:
    size = batch_size(args, dims)
    operands, inner = _fronted(args, dims)
    outs = bind(get_op("fused"), *operands, body=_batched_body("fused", body, inner, size))
    return tuple(outs), tuple(0 for _ in outs)


_RULES: dict[str, Callable[..., Any]] = {
    "cond": _cond,
    "switch": _switch,
    "while_loop": _while,
    "scan": _scan,
    "custom_gradient": _custom_gradient,
    "fused": _fused,
}


def install() -> None:
    ops: dict[str, OpDef] = all_ops()
    for name, rule in _RULES.items():
        set_batch_rule(ops[name], rule)
