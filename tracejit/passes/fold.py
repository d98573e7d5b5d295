"""Constant folding: a node whose inputs are all constants is evaluated at trace time with the
op's own ``impl`` — the callable that would run it at run time, so dtype and value are the same.

Random, stateful and non-foldable ops are never folded, nor are results larger than the size
cap (``tj.config.set_fold_limit``; huge constants would bloat the executable).
"""

from __future__ import annotations

import jax

from tracejit import config
from tracejit.host import holds_whole
from tracejit.ir.graph import Graph, Node, Value
from tracejit.passes.rewrite import RewriteContext, forward_rewrite


def _visit(ctx: RewriteContext, node: Node) -> tuple[Value, ...] | None:
    op = node.op
    if not (op.foldable and op.pure and not op.random and not op.subgraphs):
        return None
    arrays = [ctx.const_value(v) for v in node.inputs]
    if any(a is None or not holds_whole(a) for a in arrays):
        return None  # (a global array of several processes' devices is not folded here)
    limit = config.fold_limit()
    if any(out.aval.size is None or out.aval.size > limit for out in node.outputs):
        return None
    # This process's CPU: in a multi-process run jax.devices("cpu")[0] is process 0's.
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        result = op.impl(*arrays, **node.params)
    results = result if op.multiple_results else (result,)
    return tuple(ctx.add_const(out.aval, array) for out, array in zip(node.outputs, results))


def fold(graph: Graph) -> Graph:
    """Evaluate all-constant nodes at trace time."""
    return forward_rewrite(graph, _visit)
