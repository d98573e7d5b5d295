"""The ``custom_gradient`` op: a forward body whose gradient is a second, user-written body.

``tj.custom_gradient`` inside a trace (see ``tracejit.autodiff.custom_gradient``) binds one node::

    %2: f32[], %3: f32[] = custom_gradient[body={clip_grad}, grad={clip_grad_grad}, ...] %0

- ``body`` is the forward function as a nested graph. Its inputs are the node's operands (the
  tensor arguments, then the enclosing values and variables it captured); its outputs are the
  user's outputs, then the final values of the variables it assigned (``n_assigned``), then the
  *residuals*: the forward values the gradient function closes over.
- ``grad`` is the gradient function as a nested graph. Its inputs are one cotangent per user
  output, then the residuals; its outputs are the gradients, ``grad_of[i]`` naming the operand
  each one belongs to (operands without an entry get no gradient).

Lowering (and eager evaluation) runs ``body``, as a ``jax.custom_vjp`` whose rule is ``grad``
(so jax differentiating the lowered graph, as ``cf.to_jax()`` allows, uses the user's rule).
The VJP rule evaluates ``grad`` on the cotangents and the residuals: the user's rule wins over
the body's own derivative however the gradient is computed (a tape inside the trace, an eager
tape through the compiled call, a control-flow body's VJP, a saved function). Cotangents that
reach the residuals themselves (higher-order gradients, where the gradient function's own ops
are differentiated) flow back through the forward body, as in TF (whose forward ops are
recorded) and ``jax.custom_vjp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.errors import OpError
from tracejit.ir.graph import Graph, evaluate
from tracejit.ops.jvp_rules import transpose_jvp
from tracejit.ops.registry import apply_bind, apply_impl, defop
from tracejit.types import AVal


def _compatible(given: AVal, declared: AVal) -> bool:
    if given.dtype != declared.dtype or len(given.shape) != len(declared.shape):
        return False
    return all(a is None or b is None or a == b for a, b in zip(given.shape, declared.shape))


def _infer(
    *avals: AVal,
    body: Graph,
    grad: Graph,
    n_outputs: int,
    n_assigned: int,
    grad_of: tuple[int, ...],
) -> tuple[AVal, ...]:
    """Checks that the node, its two bodies and ``grad_of`` fit together (a saved file is read
    through this rule, so nothing is trusted), then gives the body's outputs."""
    name = "custom_gradient"
    if not isinstance(body, Graph) or not isinstance(grad, Graph):
        raise OpError(name, "body and grad must be graphs")
    if len(avals) != len(body.inputs):
        raise OpError(name, f"has {len(avals)} operands but its body {len(body.inputs)} inputs")
    for i, (given, value) in enumerate(zip(avals, body.inputs)):
        if not _compatible(given, value.aval):
            raise OpError(name, f"operand {i} is {given} but the body's input is {value.aval}")
    n_residuals = len(body.outputs) - n_outputs - n_assigned
    if min(n_outputs, n_assigned, n_residuals) < 0:
        raise OpError(
            name,
            f"n_outputs={n_outputs}, n_assigned={n_assigned} do not fit a body "
            f"with {len(body.outputs)} outputs",
        )
    if len(grad.inputs) != n_outputs + n_residuals:
        raise OpError(
            name,
            f"the gradient body has {len(grad.inputs)} inputs; it needs one "
            f"cotangent per output ({n_outputs}) and the {n_residuals} residuals",
        )
    residuals = body.outputs[n_outputs + n_assigned :]
    for taken, residual in zip(grad.inputs[n_outputs:], residuals):
        if not _compatible(residual.aval, taken.aval):
            raise OpError(
                name,
                f"residual %{residual.id} is {residual.aval} but the gradient body takes "
                f"{taken.aval}",
            )
    if len(grad_of) != len(grad.outputs) or list(grad_of) != sorted(set(grad_of)):
        raise OpError(
            name,
            f"grad_of={grad_of} must name one distinct operand per gradient "
            f"({len(grad.outputs)}), in increasing order",
        )
    for index, value in zip(grad_of, grad.outputs):
        if not 0 <= index < len(avals):
            raise OpError(name, f"grad_of names operand {index} of {len(avals)}")
        if not _compatible(value.aval, avals[index]):
            raise OpError(
                name,
                f"the gradient of operand {index} is {value.aval} but the "
                f"operand is {avals[index]}",
            )
    return tuple(v.aval for v in body.outputs)


def _impl(
    *arrays: Any,
    body: Graph,
    grad: Graph,
    n_outputs: int,
    n_assigned: int,
    grad_of: tuple[int, ...],
) -> tuple[Any, ...]:
    """Run ``body``, as a ``jax.custom_vjp`` whose backward rule is ``grad``: jax's own
    autodiff of a lowered graph (``cf.to_jax()`` under ``jax.grad``) then uses the user's rule
    too, not the body's derivative."""

    @jax.custom_vjp
    def run(*xs: Any) -> tuple[Any, ...]:
        return tuple(evaluate(body, xs, apply_impl))

    def forward(*xs: Any) -> tuple[tuple[Any, ...], Any]:
        outs = tuple(evaluate(body, xs, apply_impl))
        return outs, (xs, outs)

    def backward(saved: Any, cts: tuple[Any, ...]) -> tuple[Any, ...]:
        xs, outs = saved
        seeds = [
            jnp.zeros(o.shape, o.dtype) if c.dtype == jax.dtypes.float0 else c
            for c, o in zip(cts[:n_outputs], outs)
        ]
        grads = [_zero_cotangent(x) for x in xs]
        residuals = list(outs[n_outputs + n_assigned :])
        for index, g in zip(grad_of, evaluate(grad, [*seeds, *residuals], apply_impl)):
            if jnp.issubdtype(xs[index].dtype, jnp.inexact):
                grads[index] = g
        return tuple(grads)

    run.defvjp(forward, backward)
    return run(*arrays)


def _zero_cotangent(x: Any) -> Any:
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros(x.shape, x.dtype)
    return np.zeros(x.shape, jax.dtypes.float0)  # jax's cotangent type of integer inputs


def _vjp(
    cts: Sequence[Any],
    *operands: Any,
    out: Sequence[Any],
    body: Graph,
    grad: Graph,
    n_outputs: int,
    n_assigned: int,
    grad_of: tuple[int, ...],
) -> list[Any]:
    from tracejit.autodiff.tape import differentiable_dtype
    from tracejit.ops.creation import zeros_like

    grads: list[Any] = [None] * len(operands)
    user_cts = list(cts[:n_outputs])
    residuals = list(out[n_outputs + n_assigned :])
    if any(c is not None for c in user_cts):
        seeds = [zeros_like(o) if c is None else c for c, o in zip(user_cts, out)]
        for index, g in zip(grad_of, evaluate(grad, [*seeds, *residuals], apply_bind)):
            grads[index] = g
    residual_cts = list(cts[n_outputs + n_assigned :])
    if any(c is not None for c in residual_cts):
        extra = _through_body(body, operands, n_outputs + n_assigned, residual_cts)
        grads = [a if b is None else b if a is None else a + b for a, b in zip(grads, extra)]
    return [g if differentiable_dtype(x) else None for g, x in zip(grads, operands)]


def _through_body(
    body: Graph, operands: Sequence[Any], first: int, residual_cts: Sequence[Any]
) -> list[Any]:
    """Cotangents of the operands from cotangents of the residuals: the forward body replayed
    under a tape and differentiated as written (only higher-order gradients get here)."""
    from tracejit.autodiff.tape import GradientTape
    from tracejit.ops.creation import zeros_like
    from tracejit.ops.debug import without_prints

    sources = list(operands)
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([s for s in sources if hasattr(s, "aval")])
        outs = evaluate(without_prints(body), sources, apply_bind)[first:]
    seeds = [zeros_like(o) if c is None else c for c, o in zip(residual_cts, outs)]
    return list(tape.gradient(outs, sources, output_gradients=seeds))


CUSTOM_GRADIENT = defop(
    "custom_gradient",
    _infer,
    _impl,
    _vjp,
    subgraphs=True,
    multiple_results=True,
    none_cotangents=True,
    doc="A forward body differentiated by a user-written gradient body (tj.custom_gradient).",
    jvp=transpose_jvp("custom_gradient"),
)
