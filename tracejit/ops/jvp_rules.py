"""Forward-mode (JVP) rules: the convention, and the helpers the op families share.

A JVP rule sits in the op's registry entry beside its VJP (``defop(..., jvp=rule)``)::

    rule(tangents, *primals, out, **params) -> tangent of the result

``tangents`` holds one tangent per primal, None where it is zero (integer and bool inputs,
Python numbers, values the accumulator does not follow). ``out`` is the op's result (a tuple for
multiple-result ops), already computed, so ``exp``'s rule is ``t * out``. The rule returns the
result's tangent (one per result for multiple-result ops), None where it is zero. Rules are
written with tracejit ops, like VJPs: forward mode runs eagerly under an eager accumulator and
becomes IR nodes inside a ``tj.function``. The caller (``tracejit.autodiff.forward_rules``)
broadcasts a tangent to the result's shape and casts it to the result's dtype, so ``add``'s rule
is just ``tx + ty``.

The families:

- elementwise ops need no rule: their Jacobian is diagonal, hence its own transpose, so their VJP
  applied to the tangent (broadcast to the result's shape) is their JVP; the derivative table is
  written once, in the VJP. The most used binary ops have rules of their own, which skip the
  broadcasting (``add``, ``multiply``...).
- linear ops (reshape, transpose, slicing, concatenation, sum, mean, take...) apply themselves to
  the tangent: ``linear_jvp``; bilinear ones (matmul, dot, tensordot, conv) apply themselves to
  one tangent and the other primal: ``bilinear_jvp``.
- reductions where each input element feeds one output element (max, min, prod, logsumexp):
  ``reduction_jvp`` weighs the tangent by the VJP of a ones cotangent (the gradient of each
  output w.r.t. its elements) and reduces.
- ops with a symmetric Jacobian (softmax): ``symmetric_jvp``, the VJP applied to the tangent.
- everything else with a VJP: ``transpose_jvp`` (the VJP's transpose, by differentiating the VJP
  w.r.t. its cotangent); see ``tracejit.autodiff.forward_rules`` for its cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tracejit.ops.registry import OpDef, bind, get_op

Rule = Callable[..., Any]


def add_tangents(terms: Sequence[Any]) -> Any:
    """The sum of the tangents that are not None (None when all are)."""
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else bind(get_op("add"), total, term)
    return total


def zero_tangent(x: Any) -> Any:
    """Zeros standing for the tangent of primal ``x`` (a tensor, or 0.0 for a Python number)."""
    if isinstance(x, (bool, int, float, complex)):
        return 0.0
    from tracejit.ops.creation import zeros_like

    return zeros_like(x)


class _Lazy:
    """An op looked up by name on first use: rules are declared in the op's own ``defop``."""

    __slots__ = ("_name", "_op")

    def __init__(self, name: str) -> None:
        self._name, self._op = name, None

    @property
    def op(self) -> OpDef:
        if self._op is None:
            self._op = get_op(self._name)
        return self._op


def linear_jvp(name: str, positions: Sequence[int] | None = (0,)) -> Rule:
    """The JVP of an op that is linear (jointly) in the operands at ``positions`` (None: all of
    them), the others being indices or shape templates: the op applied to the tangents."""
    lazy = _Lazy(name)

    def jvp(tangents: Sequence[Any], *primals: Any, out: Any, **params: Any) -> Any:
        where = range(len(primals)) if positions is None else positions
        if all(tangents[i] is None for i in where):
            return None
        operands = list(primals)
        for i in where:
            operands[i] = zero_tangent(primals[i]) if tangents[i] is None else tangents[i]
        return bind(lazy.op, *operands, **params)

    jvp.__qualname__ = f"linear_jvp({name})"
    return jvp


def bilinear_jvp(name: str) -> Rule:
    """The JVP of ``op(x, y)``, linear in each of its two operands: ``op(tx, y) + op(x, ty)``."""
    lazy = _Lazy(name)

    def jvp(tangents: Sequence[Any], x: Any, y: Any, *rest: Any, out: Any, **params: Any) -> Any:
        tx, ty = tangents[0], tangents[1]
        return add_tangents(
            [
                None if tx is None else bind(lazy.op, tx, y, *rest, **params),
                None if ty is None else bind(lazy.op, x, ty, *rest, **params),
            ]
        )

    jvp.__qualname__ = f"bilinear_jvp({name})"
    return jvp


def reduction_jvp(vjp: Rule) -> Rule:
    """The JVP of a reduction ``op(x, axes, keepdims)`` whose every input element feeds exactly
    one output element: the VJP of a ones cotangent is each output's gradient w.r.t. its
    elements, so the tangent is ``sum(t * gradient)`` over the reduced axes."""

    def jvp(
        tangents: Sequence[Any], x: Any, *, out: Any, axes: tuple[int, ...], keepdims: bool
    ) -> Any:
        from tracejit.ops.creation import ones_like
        from tracejit.ops.elementwise import multiply
        from tracejit.ops.reduction import sum as reduce_sum

        (t,) = tangents
        if t is None:
            return None
        (gradient,) = vjp(ones_like(out), x, out=out, axes=axes, keepdims=keepdims)
        return reduce_sum(multiply(t, gradient), axis=axes, keepdims=keepdims)

    return jvp


def symmetric_jvp(vjp: Rule) -> Rule:
    """The JVP of a unary op whose Jacobian is symmetric (softmax): the VJP applied to the
    tangent."""

    def jvp(tangents: Sequence[Any], x: Any, *, out: Any, **params: Any) -> Any:
        (t,) = tangents
        return None if t is None else vjp(t, x, out=out, **params)[0]

    return jvp


def transpose_jvp(name: str) -> Rule:
    """Forward mode through the VJP, chosen on purpose for ops where writing the JVP out is not
    simpler (bodies with user gradients, fused ops, normalizations): see
    ``tracejit.autodiff.forward_rules.transpose_vjp``."""
    lazy = _Lazy(name)

    def jvp(tangents: Sequence[Any], *primals: Any, out: Any, **params: Any) -> Any:
        from tracejit.autodiff.forward_rules import transpose_vjp

        op = lazy.op
        outputs = tuple(out) if op.multiple_results else (out,)
        found = transpose_vjp(op, primals, params, outputs, tuple(tangents))
        return tuple(found) if op.multiple_results else found[0]

    jvp.__qualname__ = f"transpose_jvp({name})"
    jvp.transposes_vjp = True  # type: ignore[attr-defined]
    return jvp
