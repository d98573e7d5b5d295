"""Applying an op's forward-mode rule: its own JVP, or one derived from its VJP.

``op_jvp`` is what the forward accumulator calls after each op. In order:

1. the op's ``jvp`` rule from its registry entry (``tracejit.ops.jvp_rules`` has the convention);
2. for elementwise ops, the VJP applied to the tangent: an elementwise op's Jacobian is diagonal,
   so it is its own transpose, and one VJP call (with the input broadcast to the result's shape,
   so no cotangent gets summed) gives the tangent, at the VJP's cost;
3. for every other op with a VJP, ``transpose_vjp``: the VJP ``u -> J^T u`` is linear in the
   cotangent ``u``, and its own VJP is ``t -> J t``, the JVP. So the VJP is run on a zero
   cotangent under a tape watching it, and the tape's gradient seeded with the input tangents
   gives the output tangents. It is exact, and works for any op whose VJP is differentiable
   (all of them are: VJPs are written with tracejit ops). Its cost: one VJP evaluation plus the
   backward pass through it, so about 2-3x the op's VJP instead of the ~1x of a written JVP,
   and eagerly a tape recording the VJP's ops. Inside a ``tj.function`` most of the first
   evaluation is dead code (a linear VJP's backward pass does not need its forward values),
   which DCE removes, leaving about one transposed VJP;
4. an op with neither gets a clear error naming it.

Ops without a gradient (``differentiable=False``: comparisons, argmax, floor...) give no tangent,
as they give no cotangent: their outputs' tangents are zero (integer and bool outputs carry none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tracejit.autodiff.tape import GradientError, GradientTape, differentiable_dtype, op_vjp
from tracejit.ops.registry import OpDef


def op_jvp(
    op: OpDef,
    args: Sequence[Any],
    params: dict[str, Any],
    outputs: tuple[Any, ...],
    tangents: tuple[Any, ...],
) -> list[Any]:
    """One tangent (or None) per output of ``op`` applied to ``args``, given the inputs'
    tangents (None where zero)."""
    if op.jvp is not None:
        out = outputs if op.multiple_results else outputs[0]
        found = op.jvp(tangents, *args, out=out, **params)
        found = list(found) if op.multiple_results else [found]
        if len(found) != len(outputs):
            raise GradientError(
                f"the JVP rule of op '{op.name}' returned {len(found)} tangents for "
                f"{len(outputs)} outputs"
            )
    elif op.vjp is not None and op.elementwise and not op.multiple_results:
        found = [diagonal_jvp(op, args, params, outputs[0], tangents)]
    elif op.vjp is not None:
        found = transpose_vjp(op, args, params, outputs, tangents)
    else:
        raise GradientError(
            f"op '{op.name}' has no forward-mode rule (JVP) and no VJP to derive one from"
        )
    return [
        None if t is None or not differentiable_dtype(o) else fit(op, t, o)
        for t, o in zip(found, outputs)
    ]


def fit(op: OpDef, tangent: Any, like: Any) -> Any:
    """``tangent`` with the shape (broadcast) and dtype (cast) of the output ``like``."""
    from tracejit.eager.tensor import constant
    from tracejit.ops.elementwise import cast
    from tracejit.ops.tensor_methods import TensorMethods

    if not isinstance(tangent, TensorMethods):
        tangent = constant(tangent)
    if tangent.ndim > like.ndim:
        raise GradientError(
            f"the forward-mode rule of op '{op.name}' gave a tangent of shape "
            f"{tuple(tangent.shape)} for an output of shape {tuple(like.shape)}"
        )
    tangent = broadcast(tangent, like)
    return tangent if tangent.dtype == like.dtype else cast(tangent, like.dtype)


def broadcast(x: Any, like: Any) -> Any:
    """``x`` broadcast to the shape of ``like`` (static when the shapes are known)."""
    from tracejit.ops.like import broadcast_like
    from tracejit.ops.shape import broadcast_to

    if tuple(x.shape) == tuple(like.shape) and None not in tuple(like.shape):
        return x
    if None in tuple(like.shape) or None in tuple(x.shape):
        return broadcast_like(x, like)
    return broadcast_to(x, tuple(like.shape))


def diagonal_jvp(
    op: OpDef, args: Sequence[Any], params: dict[str, Any], out: Any, tangents: Sequence[Any]
) -> Any:
    """An elementwise op's tangent from its VJP: with input ``i`` broadcast to the result's
    shape, the VJP's cotangent for it is ``J_i ct`` (diagonal ``J_i``), so a tangent seed gives
    the tangent's term for that input."""
    from tracejit.ops.jvp_rules import add_tangents
    from tracejit.ops.tensor_methods import TensorMethods

    terms = []
    for i, t in enumerate(tangents):
        if t is None or not isinstance(args[i], TensorMethods):
            continue
        operands = list(args)
        operands[i] = broadcast(args[i], out)
        cts = op.vjp(fit(op, t, out), *operands, out=out, **params)
        if cts[i] is not None:
            terms.append(fit(op, cts[i], out))
    return add_tangents(terms)


def transpose_vjp(
    op: OpDef,
    args: Sequence[Any],
    params: dict[str, Any],
    outputs: tuple[Any, ...],
    tangents: tuple[Any, ...],
) -> list[Any]:
    """The op's JVP as the transpose of its VJP (see the module docstring for the cost)."""

    def vjp(cts: tuple[Any, ...]) -> Sequence[Any]:
        return op_vjp(op, tuple(args), params, outputs, cts)

    return transpose(vjp, outputs, tangents)


def transpose(
    vjp: Callable[[tuple[Any, ...]], Sequence[Any]],
    outputs: Sequence[Any],
    tangents: Sequence[Any],
) -> list[Any]:
    """Output tangents ``J t`` from a VJP closure ``u -> J^T u`` and input tangents ``t``:
    the gradient of ``<vjp(u), t>`` w.r.t. the cotangent ``u``. Used for ops without a JVP, and
    for the tape entries with only a closure (compiled calls, eager ``tj.custom_gradient``:
    the user's gradient function decides the tangent too, as in TF)."""
    from tracejit.ops.creation import zeros_like

    seeds = [zeros_like(o) if differentiable_dtype(o) else None for o in outputs]
    watched = [s for s in seeds if s is not None]
    if not watched:
        return [None] * len(outputs)
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(watched)
        cts = vjp(tuple(seeds))
    pairs = [(ct, t) for ct, t in zip(cts, tangents) if ct is not None and t is not None]
    if not pairs:
        return [None] * len(outputs)
    targets = [ct for ct, _ in pairs]
    directions = [_like(t, ct) for ct, t in pairs]
    found = iter(tape.gradient(targets, watched, output_gradients=directions))
    return [None if s is None else next(found) for s in seeds]


def _like(tangent: Any, ct: Any) -> Any:
    from tracejit.ops.elementwise import cast

    return tangent if tangent.dtype == ct.dtype else cast(tangent, ct.dtype)


def jvp_of_graph(
    graph: Any, primals: Sequence[Any], tangents: Sequence[Any]
) -> tuple[list[Any], list[Any]]:
    """Evaluate ``graph`` (a control-flow body) through ``bind`` with forward mode on: its
    outputs, and their tangents (zeros for float outputs the tangents do not reach, None for
    the others, so loop carries and branch outputs keep one structure)."""
    from tracejit.autodiff.forward import ForwardAccumulator
    from tracejit.ir.graph import evaluate
    from tracejit.ops.creation import zeros_like
    from tracejit.ops.debug import without_prints
    from tracejit.ops.registry import apply_bind

    pairs = [(p, t) for p, t in zip(primals, tangents) if t is not None]
    with ForwardAccumulator([p for p, _ in pairs], [t for _, t in pairs]) as acc:
        outs = evaluate(without_prints(graph), list(primals), apply_bind)
    found = acc.jvp(outs)
    out_tangents = [
        (zeros_like(o) if t is None else t) if differentiable_dtype(o) else None
        for o, t in zip(outs, found)
    ]
    return outs, out_tangents
