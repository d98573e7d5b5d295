"""Pattern fusion: small multi-node idioms become one op.

- ``add(matmul(x, w), b)`` -> ``dense[activation=none](x, w, b)``, then ``relu/sigmoid/tanh`` of
  that -> ``dense[activation=relu]``;
- ``log(softmax(x))`` -> ``log_softmax(x)`` (numerically stable: no log of an underflowed 0);
- ``-sum(labels * log_softmax(logits, -1), -1)`` -> ``softmax_cross_entropy(logits, labels)``;
- ``softmax(q @ k^T * scale [+ bias]) @ v`` -> ``dot_product_attention`` (attention_pattern.py),
  and a transpose of a transpose -> one transpose (or none: the rewrite's layout changes cancel).

A pattern fires only when the intermediate values have no other users (or the rewrite would
compute them twice).
"""

from __future__ import annotations

from collections import Counter

from tracejit.errors import OpError
from tracejit.ir.graph import Graph, Node, Params, Value
from tracejit.ops.fused import DENSE, SOFTMAX_CROSS_ENTROPY
from tracejit.ops.nn import LOG_SOFTMAX
from tracejit.ops.shape import TRANSPOSE
from tracejit.passes.attention_pattern import fuse_attention
from tracejit.passes.rewrite import RewriteContext, rewrite_and_clean

# The ops the patterns make: the pass report counts them (``fuse_patterns ... 1 dense``).
MADE_OPS = frozenset({"dense", "log_softmax", "softmax_cross_entropy", "dot_product_attention"})
_FUSIBLE_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}


def fuse_patterns(graph: Graph) -> Graph:
    """Rewrite dense layers, log-softmax and softmax cross-entropy idioms into single ops."""
    uses: Counter[Value] = Counter(v for node in graph.nodes for v in node.inputs)
    uses.update(graph.outputs)
    uses.update(graph.state_outputs)

    def emit(ctx: RewriteContext, node: Node, op, inputs, params) -> tuple[Value, ...]:  # noqa: ANN001
        try:
            outs = ctx.add_node(op, tuple(inputs), Params(params), node.loc)
        except OpError:  # e.g. a "bias" that does not broadcast like one
            return ()
        if outs[0].aval != node.outputs[0].aval:
            ctx.nodes.pop()
            return ()
        uses[outs[0]] = uses[node.outputs[0]]
        return outs

    def visit(ctx: RewriteContext, node: Node) -> tuple[Value, ...] | None:
        def single(value: Value, op: str) -> Node | None:
            """The producer of ``value`` if it is an ``op`` node and nothing else reads it."""
            found = ctx.producers.get(value)
            return found if found is not None and found.op.name == op and uses[value] == 1 else None

        name = node.op.name
        result: tuple[Value, ...] = ()
        if name == "add":
            for a, b in (node.inputs, node.inputs[::-1]):
                mm = single(a, "matmul")
                if mm is not None and b.aval.ndim == 1 and mm.inputs[1].aval.ndim == 2:
                    result = emit(ctx, node, DENSE, (*mm.inputs, b), {"activation": "none"})
                    break
        elif name in _FUSIBLE_ACTIVATIONS:
            inner = single(node.inputs[0], "dense")
            if inner is not None and inner.params["activation"] == "none":
                params = {"activation": _FUSIBLE_ACTIVATIONS[name]}
                result = emit(ctx, node, DENSE, inner.inputs, params)
        elif name == "log":
            inner = single(node.inputs[0], "softmax")
            if inner is not None:
                result = emit(ctx, node, LOG_SOFTMAX, inner.inputs, inner.params)
        elif name == "negative":
            result = _cross_entropy(ctx, node, single, emit)
        elif name == "matmul":
            result = fuse_attention(ctx, node, single)
            if result:
                uses[result[0]] = uses[node.outputs[0]]
        elif name == "transpose":  # e.g. the attention rewrite's output transpose, undone
            inner = single(node.inputs[0], "transpose")
            if inner is not None:
                axes = tuple(inner.params["axes"][a] for a in node.params["axes"])
                if axes == tuple(range(len(axes))):
                    uses[inner.inputs[0]] += uses[node.outputs[0]]
                    return (inner.inputs[0],)
                result = emit(ctx, node, TRANSPOSE, inner.inputs, {"axes": axes})
        return result or None

    return rewrite_and_clean(graph, visit)  # the replaced intermediates are now dead


def _cross_entropy(ctx, node, single, emit):  # noqa: ANN001, ANN202 - local helper of visit
    reduced = single(node.inputs[0], "sum")
    if reduced is None or reduced.params["keepdims"]:
        return ()
    product = single(reduced.inputs[0], "multiply")
    if product is None or reduced.params["axes"] != (product.outputs[0].aval.ndim - 1,):
        return ()
    for labels, log_probs in (product.inputs, product.inputs[::-1]):
        inner = single(log_probs, "log_softmax")
        if (
            inner is not None
            and inner.params["axis"] == log_probs.aval.ndim - 1
            and labels.aval.shape == log_probs.aval.shape
        ):
            return emit(ctx, node, SOFTMAX_CROSS_ENTROPY, (inner.inputs[0], labels), {})
    return ()
