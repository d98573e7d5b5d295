"""Loop-invariant code motion: pure computations in a loop body that depend only on the
loop's captured (invariant) operands and on constants are moved out of ``while_loop`` and
``scan`` bodies, computed once before the loop, and passed in as extra captured operands.

Body inputs line up with the loop node's operands (carried values, then scanned slices, then
captured values), so a captured body input stands for the operand at the same position.
"""

from __future__ import annotations

import dataclasses

from tracejit.ir.graph import Graph, Node, Params, Value
from tracejit.passes.rewrite import RewriteContext, forward_rewrite

_LOOPS = {"while_loop": "body", "scan": "body"}


def _invariant_nodes(body: Graph, first_captured: int) -> list[Node]:
    invariant: set[Value] = set(body.inputs[first_captured:]) | {v for v, _ in body.consts}
    found = []
    for node in body.nodes:
        op = node.op
        movable = op.pure and not op.random and not op.subgraphs and node.inputs
        if movable and all(v in invariant for v in node.inputs):
            found.append(node)
            invariant.update(node.outputs)
    return found


def _hoist_node(ctx: RewriteContext, node: Node) -> tuple[Value, ...] | None:
    key = _LOOPS.get(node.op.name)
    if key is None:
        return None
    params = node.params.as_dict()
    body: Graph = params[key]
    first_captured = params["n_carry"] + params.get("n_xs", 0)
    moved = _invariant_nodes(body, first_captured)
    if not moved:
        return None
    # Outside: recompute the moved nodes on the loop's operands and constants.
    outer: dict[Value, Value] = dict(zip(body.inputs, node.inputs))
    consts = dict(body.consts)
    for inner in moved:
        operands = []
        for v in inner.inputs:
            if v not in outer:
                outer[v] = ctx.add_const(v.aval, consts[v])
            operands.append(outer[v])
        outer.update(
            zip(inner.outputs, ctx.add_node(inner.op, tuple(operands), inner.params, inner.loc))
        )
    # Inside: the moved values become new captured inputs wherever the rest of the body uses them.
    moved_ids = {id(n) for n in moved}
    kept = [n for n in body.nodes if id(n) not in moved_ids]
    produced = {v for n in moved for v in n.outputs}
    used = [v for n in kept for v in n.inputs] + list(body.outputs)
    needed = list(dict.fromkeys(v for v in used if v in produced))
    fresh = {v: ctx.new_value(v.aval) for v in needed}
    new_body = dataclasses.replace(
        body,
        inputs=tuple(body.inputs) + tuple(fresh[v] for v in needed),
        nodes=tuple(
            dataclasses.replace(n, inputs=tuple(fresh.get(v, v) for v in n.inputs)) for n in kept
        ),
        outputs=tuple(fresh.get(v, v) for v in body.outputs),
        provenance=body.provenance + ("hoist",),
    )
    params[key] = new_body
    if "cond_body" in params:  # a while loop's condition takes the same operands (unused here)
        cond: Graph = params["cond_body"]
        extra = tuple(ctx.new_value(v.aval) for v in needed)
        params["cond_body"] = dataclasses.replace(cond, inputs=tuple(cond.inputs) + extra)
    operands = tuple(node.inputs) + tuple(outer[v] for v in needed)
    return ctx.add_node(node.op, operands, Params(params), node.loc)


def hoist(graph: Graph) -> Graph:
    """Move loop-invariant pure computations out of while_loop and scan bodies."""
    return forward_rewrite(graph, _hoist_node)
