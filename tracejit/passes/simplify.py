"""Algebraic simplification: one table of named local rules, each with its safety condition.

A rule sees a node (inputs already rewritten) and returns the value that replaces its output,
or None. Every rule also requires the replacement to have exactly the node's output aval (shape,
dtype, weak flag), so no rule can change broadcasting or dtype promotion.

Rules marked ``unsafe`` can change results in corner cases (NaN, inf, signed zeros) and run only
when ``tj.config.set_unsafe_rewrites(True)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tracejit import config
from tracejit.ir.graph import Graph, Node, Params, Value
from tracejit.passes.rewrite import RewriteContext, is_scalar_const, rewrite_and_clean

Rule = Callable[[RewriteContext, Node, dict[Value, Node]], "Value | None"]


@dataclasses.dataclass(frozen=True)
class SimplifyRule:
    name: str
    op: str
    rule: Rule
    safety: str
    unsafe: bool = False


def _right_identity(number: float) -> Rule:
    """``op(x, number) -> x``."""
    return lambda ctx, node, producers: (
        node.inputs[0] if is_scalar_const(ctx, node.inputs[1], number) else None
    )


def _either_identity(number: float) -> Rule:
    """``op(x, number)`` or ``op(number, x)`` -> x (commutative ops)."""

    def rule(ctx: RewriteContext, node: Node, producers: dict[Value, Node]) -> Value | None:
        x, y = node.inputs
        if is_scalar_const(ctx, y, number):
            return x
        return y if is_scalar_const(ctx, x, number) else None

    return rule


def _involution(ctx: RewriteContext, node: Node, producers: dict[Value, Node]) -> Value | None:
    """``f(f(x)) -> x`` for f = negative, logical_not, bitwise_invert."""
    inner = producers.get(node.inputs[0])
    return inner.inputs[0] if inner is not None and inner.op is node.op else None


def _identity_param(check: Callable[[Node], bool]) -> Rule:
    """The op does nothing for these params (cast to the same dtype, broadcast to the same
    shape, reshape to the same shape, identity transpose, a slice that takes everything)."""
    return lambda ctx, node, producers: node.inputs[0] if check(node) else None


def _transpose_of_transpose(
    ctx: RewriteContext, node: Node, producers: dict[Value, Node]
) -> Value | None:
    inner = producers.get(node.inputs[0])
    if inner is None or inner.op is not node.op:
        return None
    first, second = inner.params["axes"], node.params["axes"]
    composed = tuple(first[a] for a in second)
    if composed == tuple(range(len(composed))):
        return inner.inputs[0]
    return ctx.add_node(node.op, (inner.inputs[0],), Params({"axes": composed}), node.loc)[0]


def _reshape_of_reshape(
    ctx: RewriteContext, node: Node, producers: dict[Value, Node]
) -> Value | None:
    inner = producers.get(node.inputs[0])
    if inner is None or inner.op is not node.op:
        return None
    return ctx.add_node(node.op, (inner.inputs[0],), node.params, node.loc)[0]


def _times_zero(ctx: RewriteContext, node: Node, producers: dict[Value, Node]) -> Value | None:
    x, y = node.inputs
    zero = y if is_scalar_const(ctx, y, 0) else x if is_scalar_const(ctx, x, 0) else None
    if zero is None:
        return None
    from tracejit.ops.creation import FULL

    aval = node.outputs[0].aval
    if not aval.is_fully_known():
        return None
    return ctx.add_node(
        FULL, (), Params({"shape": aval.shape, "fill_value": 0, "dtype": aval.dtype}), node.loc
    )[0]


def _same_shape(node: Node) -> bool:
    return (
        node.inputs[0].aval.shape == node.outputs[0].aval.shape
        and None not in node.outputs[0].aval.shape
    )


def _takes_everything(node: Node) -> bool:
    index = node.params["index"]
    return all(part == ("slice", None, None, None) for part in index) and _same_shape(node)


RULES: tuple[SimplifyRule, ...] = (
    SimplifyRule(
        "add_zero", "add", _either_identity(0), "x + 0 -> x (may turn a +0.0 result into -0.0)"
    ),
    SimplifyRule("subtract_zero", "subtract", _right_identity(0), "x - 0 -> x: exact"),
    SimplifyRule("multiply_one", "multiply", _either_identity(1), "x * 1 -> x: exact"),
    SimplifyRule("divide_one", "divide", _right_identity(1), "x / 1 -> x: exact"),
    SimplifyRule("power_one", "power", _right_identity(1), "x ** 1 -> x: exact"),
    SimplifyRule("double_negative", "negative", _involution, "-(-x) -> x: exact"),
    SimplifyRule("double_not", "logical_not", _involution, "not not x -> x for bools: exact"),
    SimplifyRule("double_invert", "bitwise_invert", _involution, "~~x -> x: exact"),
    SimplifyRule(
        "transpose_of_transpose",
        "transpose",
        _transpose_of_transpose,
        "composes permutations: exact",
    ),
    SimplifyRule(
        "reshape_of_reshape", "reshape", _reshape_of_reshape, "only the last shape matters: exact"
    ),
    SimplifyRule(
        "identity_transpose",
        "transpose",
        _identity_param(lambda n: n.params["axes"] == tuple(range(len(n.params["axes"])))),
        "exact",
    ),
    SimplifyRule(
        "identity_reshape",
        "reshape",
        _identity_param(_same_shape),
        "reshape to the same known shape: exact",
    ),
    SimplifyRule(
        "identity_cast",
        "cast",
        _identity_param(lambda n: n.inputs[0].aval == n.outputs[0].aval),
        "cast to the same dtype: exact",
    ),
    SimplifyRule(
        "identity_broadcast",
        "broadcast_to",
        _identity_param(_same_shape),
        "broadcast to the same shape: exact",
    ),
    SimplifyRule(
        "neutral_slice", "slice", _identity_param(_takes_everything), "x[:, :] -> x: exact"
    ),
    SimplifyRule(
        "multiply_zero",
        "multiply",
        _times_zero,
        "x * 0 -> 0: wrong when x is NaN or inf",
        unsafe=True,
    ),
)


def simplify(graph: Graph) -> Graph:
    """Apply the rule table until no rule fires on a node (one forward sweep: rules see the
    already-simplified producers)."""
    by_op: dict[str, list[SimplifyRule]] = {}
    unsafe_ok = config.unsafe_rewrites()
    for rule in RULES:
        if unsafe_ok or not rule.unsafe:
            by_op.setdefault(rule.op, []).append(rule)

    def visit(ctx: RewriteContext, node: Node) -> tuple[Value, ...] | None:
        for rule in by_op.get(node.op.name, ()):
            replacement = rule.rule(ctx, node, ctx.producers)
            if replacement is not None and replacement.aval == node.outputs[0].aval:
                return (replacement,)
            if replacement is not None and ctx.nodes and replacement in ctx.nodes[-1].outputs:
                ctx.nodes.pop()  # the rule built a node it cannot use: the aval differs
        return None

    return rewrite_and_clean(graph, visit)  # rules leave their old producers dead
