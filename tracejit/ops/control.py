"""Control flow: ``cond``, ``switch``, ``while_loop``, ``fori_loop`` and ``scan``.

Eagerly (or with a condition that is a Python value) they run as Python. While tracing, each
body is traced into a nested graph held in the node's params (printed indented under it) and the
node is lowered to ``jax.lax.cond`` / ``switch`` / ``while_loop`` / ``scan``. Values of the
enclosing trace used in a body are captured as extra operands; variables assigned in a body are
extra outputs (branches) or extra loop-carried values (loops). Gradients: cond, switch and scan
have VJP rules; a while_loop is differentiable when ``maximum_iterations`` is given (it is then
replayed as a masked scan), as in TF.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from tracejit.errors import OpError
from tracejit.ir.graph import Graph, evaluate
from tracejit.ops.registry import apply_bind, apply_impl, defop
from tracejit.types import AVal, bool_, is_integer

GraphTuple = tuple[Graph, ...]

# Lowering helpers ------------------------------------------------------------------------------


def _strong(values: Sequence[Any], avals: Sequence[AVal]) -> tuple[Any, ...]:
    """Outputs with exactly the declared dtype and no weak type (jax's loops and branches need
    identical types on every path)."""
    return tuple(jax.lax.convert_element_type(v, a.dtype) for v, a in zip(values, avals))


def _replay(body: Graph) -> Graph:
    """A body as gradient rules re-run it: without its prints (they ran in the forward pass)."""
    from tracejit.ops.debug import without_prints

    return without_prints(body)


def _run(body: Graph, args: Sequence[Any]) -> tuple[Any, ...]:
    return _strong(evaluate(body, args, apply_impl), [v.aval for v in body.outputs])


# cond / switch ---------------------------------------------------------------------------------


def _check_predicate(op: str, pred: AVal, integer: bool = False) -> None:
    ok = pred.shape == () and (is_integer(pred.dtype) if integer else pred.dtype == bool_)
    if not ok:
        wanted = "an integer scalar index" if integer else "a bool scalar predicate"
        raise OpError(op, f"needs {wanted}, got {pred}")


def _infer_cond(pred: AVal, *args: AVal, true_body: Graph, false_body: Graph) -> tuple[AVal, ...]:
    _check_predicate("cond", pred)
    return tuple(v.aval.strong() for v in true_body.outputs)


def _cond(pred: Any, *args: Any, true_body: Graph, false_body: Graph) -> tuple[Any, ...]:
    return jax.lax.cond(pred, lambda a: _run(true_body, a), lambda a: _run(false_body, a), args)


def _infer_switch(index: AVal, *args: AVal, branches: GraphTuple) -> tuple[AVal, ...]:
    _check_predicate("switch", index, integer=True)
    return tuple(v.aval.strong() for v in branches[0].outputs)


def _switch(index: Any, *args: Any, branches: GraphTuple) -> tuple[Any, ...]:
    fns = [lambda a, b=b: _run(b, a) for b in branches]
    return jax.lax.switch(index, fns, args)


def _branch_vjp(body: Graph, n_args: int) -> Callable[..., Any]:
    """A Python function ``(*args, *cts) -> cts of args`` differentiating one branch body."""

    def vjp(*args_and_cts: Any) -> list[Any]:
        from tracejit.autodiff.tape import GradientTape
        from tracejit.ops.registry import apply_bind

        args, cts = list(args_and_cts[:n_args]), list(args_and_cts[n_args:])
        with GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(args)
            outs = evaluate(_replay(body), args, apply_bind)
        return tape.gradient(outs, args, output_gradients=cts, unconnected_gradients="zero")

    return vjp


def _cond_vjp(
    ct: Sequence[Any], pred: Any, *args: Any, out: Any, true_body: Graph, false_body: Graph
) -> list[Any]:
    n = len(args)
    grads = cond(pred, _branch_vjp(true_body, n), _branch_vjp(false_body, n), *args, *ct)
    return [None, *_drop_integer_grads(grads, args)]


def _switch_vjp(
    ct: Sequence[Any], index: Any, *args: Any, out: Any, branches: GraphTuple
) -> list[Any]:
    n = len(args)
    grads = switch(index, [_branch_vjp(b, n) for b in branches], *args, *ct)
    return [None, *_drop_integer_grads(grads, args)]


def _drop_integer_grads(grads: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    from tracejit.autodiff.tape import differentiable_dtype

    return [g if differentiable_dtype(a) else None for g, a in zip(grads, args)]


# Forward mode: each body is re-run with forward mode on (``jvp_of_graph``) inside the same
# control flow, carrying the primal values and their tangents together. The primal is computed a
# second time there (the node's own outputs came from the first run); in exchange nothing is
# transposed, and a while_loop needs no maximum_iterations.
def _float_positions(values: Sequence[Any]) -> list[int]:
    from tracejit.autodiff.tape import differentiable_dtype

    return [i for i, v in enumerate(values) if differentiable_dtype(v)]


def _filled(tangents: Sequence[Any], values: Sequence[Any], positions: Sequence[int]) -> list[Any]:
    """The tangents at ``positions``, zeros where None (loops and branches need tensors)."""
    from tracejit.ops.creation import zeros_like

    return [zeros_like(values[i]) if tangents[i] is None else tangents[i] for i in positions]


def _placed(found: Sequence[Any], positions: Sequence[int], n: int) -> list[Any]:
    result: list[Any] = [None] * n
    for i, t in zip(positions, found):
        result[i] = t
    return result


def _branch_jvp(body: Graph, n_args: int, positions: list[int], outs: list[int]) -> Any:
    """A branch function ``(*args, *tangents at positions) -> tangents of the float outputs``."""

    def branch(*operands: Any) -> list[Any]:
        from tracejit.autodiff.forward_rules import jvp_of_graph

        args = list(operands[:n_args])
        _, found = jvp_of_graph(body, args, _placed(operands[n_args:], positions, n_args))
        return [found[j] for j in outs]

    return branch


def _cond_jvp(
    tangents: Sequence[Any], pred: Any, *args: Any, out: Any, true_body: Graph, false_body: Graph
) -> list[Any]:
    positions, outs = _float_positions(args), _float_positions(out)
    seeds = _filled(tangents[1:], args, positions)
    n = len(args)
    branches = [_branch_jvp(b, n, positions, outs) for b in (true_body, false_body)]
    found = cond(pred, branches[0], branches[1], *args, *seeds)
    return _placed(found, outs, len(out))


def _switch_jvp(
    tangents: Sequence[Any], index: Any, *args: Any, out: Any, branches: GraphTuple
) -> list[Any]:
    positions, outs = _float_positions(args), _float_positions(out)
    seeds = _filled(tangents[1:], args, positions)
    found = switch(
        index, [_branch_jvp(b, len(args), positions, outs) for b in branches], *args, *seeds
    )
    return _placed(found, outs, len(out))


COND = defop(
    "cond",
    _infer_cond,
    _cond,
    _cond_vjp,
    jvp=_cond_jvp,
    subgraphs=True,
    multiple_results=True,
)
SWITCH = defop(
    "switch",
    _infer_switch,
    _switch,
    _switch_vjp,
    jvp=_switch_jvp,
    subgraphs=True,
    multiple_results=True,
)


# while_loop ------------------------------------------------------------------------------------


def _infer_while(
    *args: AVal, cond_body: Graph, body: Graph, n_carry: int, maximum_iterations: int | None
) -> tuple[AVal, ...]:
    return tuple(a.strong() for a in args[:n_carry])


def _while(
    *args: Any, cond_body: Graph, body: Graph, n_carry: int, maximum_iterations: int | None
) -> tuple[Any, ...]:
    carry, consts = args[:n_carry], args[n_carry:]
    avals = [v.aval for v in body.outputs]

    def keep_going(state: tuple[Any, tuple[Any, ...]]) -> Any:
        i, values = state
        ok = evaluate(cond_body, (*values, *consts), apply_impl)[0]
        return ok if maximum_iterations is None else jnp.logical_and(ok, i < maximum_iterations)

    def step(state: tuple[Any, tuple[Any, ...]]) -> tuple[Any, tuple[Any, ...]]:
        i, values = state
        return i + 1, _run(body, (*values, *consts))

    _, final = jax.lax.while_loop(keep_going, step, (jnp.int32(0), _strong(carry, avals)))
    return final


def _while_vjp(
    ct: Sequence[Any],
    *args: Any,
    out: Any,
    cond_body: Graph,
    body: Graph,
    n_carry: int,
    maximum_iterations: int | None,
) -> Sequence[Any]:
    if maximum_iterations is None:
        from tracejit.autodiff.tape import GradientError

        raise GradientError(
            "while_loop: gradients need a bound on the number of iterations (the loop must be "
            "replayed backwards). Pass maximum_iterations=N to tj.while_loop, or use tj.scan / "
            "tj.fori_loop with Python bounds"
        )
    from tracejit.ops.fused import decomposition_vjp

    def as_masked_scan(*operands: Any) -> list[Any]:
        return list(_masked_scan(operands, cond_body, body, n_carry, maximum_iterations))

    return decomposition_vjp(as_masked_scan)(ct, *args, out=out)


def _masked_scan(
    operands: Sequence[Any], cond_body: Graph, body: Graph, n_carry: int, steps: int
) -> Sequence[Any]:
    """The loop as a scan of ``steps`` iterations that stop changing the carry once the
    condition fails: the same result, and differentiable."""
    from tracejit.ops.elementwise import logical_and, where
    from tracejit.ops.registry import apply_bind

    carry, consts = list(operands[:n_carry]), list(operands[n_carry:])

    def step(state: tuple[Any, list[Any]], _: Any) -> tuple[Any, None]:
        active, values = state
        active = logical_and(
            active, evaluate(_replay(cond_body), [*values, *consts], apply_bind)[0]
        )
        new = evaluate(_replay(body), [*values, *consts], apply_bind)
        return (active, [where(active, n, v) for n, v in zip(new, values)]), None

    (_, final), _ = scan(step, (True, carry), None, length=steps)
    return final


def _while_jvp(
    tangents: Sequence[Any],
    *args: Any,
    out: Any,
    cond_body: Graph,
    body: Graph,
    n_carry: int,
    maximum_iterations: int | None,
) -> list[Any]:
    """The loop again, carrying the float carries' tangents beside the carries."""
    from tracejit.autodiff.forward_rules import jvp_of_graph

    carry, consts = list(args[:n_carry]), list(args[n_carry:])
    positions = _float_positions(carry)
    const_tangents = list(tangents[n_carry:])

    def keep_going(*state: Any) -> Any:
        return evaluate(_replay(cond_body), [*state[:n_carry], *consts], apply_bind)[0]

    def step(*state: Any) -> list[Any]:
        values = list(state[:n_carry])
        carried = _placed(state[n_carry:], positions, n_carry)
        outs, found = jvp_of_graph(body, [*values, *consts], [*carried, *const_tangents])
        return [*outs, *(found[i] for i in positions)]

    init = [*carry, *_filled(tangents[:n_carry], carry, positions)]
    final = while_loop(keep_going, step, init, maximum_iterations=maximum_iterations)
    return _placed(list(final)[n_carry:], positions, n_carry)


WHILE_LOOP = defop(
    "while_loop",
    _infer_while,
    _while,
    _while_vjp,
    jvp=_while_jvp,
    subgraphs=True,
    multiple_results=True,
)


# scan ------------------------------------------------------------------------------------------


def _infer_scan(
    *args: AVal, body: Graph, n_carry: int, n_xs: int, length: int | None, reverse: bool
) -> tuple[AVal, ...]:
    outs = [v.aval.strong() for v in body.outputs]
    ys = [AVal((length, *a.shape), a.dtype) for a in outs[n_carry:]]
    return tuple(outs[:n_carry] + ys)


def _scan(
    *args: Any, body: Graph, n_carry: int, n_xs: int, length: int | None, reverse: bool
) -> tuple[Any, ...]:
    carry, xs, consts = args[:n_carry], args[n_carry : n_carry + n_xs], args[n_carry + n_xs :]

    def step(
        c: tuple[Any, ...], x: tuple[Any, ...] | None
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        out = _run(body, (*c, *(x or ()), *consts))
        return out[:n_carry], out[n_carry:]

    avals = [v.aval for v in body.outputs[:n_carry]]
    final, ys = jax.lax.scan(
        step, _strong(carry, avals), xs if n_xs else None, length=length, reverse=reverse
    )
    return (*final, *ys)


def _scan_vjp(
    ct: Sequence[Any],
    *args: Any,
    out: Any,
    body: Graph,
    n_carry: int,
    n_xs: int,
    length: int | None,
    reverse: bool,
) -> list[Any]:
    """Replay the carries forward, then run the body's VJP in a reverse scan."""
    from tracejit.autodiff.tape import GradientTape, differentiable_dtype
    from tracejit.ops.creation import zeros_like
    from tracejit.ops.registry import apply_bind

    carry, xs, consts = (
        list(args[:n_carry]),
        list(args[n_carry : n_carry + n_xs]),
        list(args[n_carry + n_xs :]),
    )

    def forward(c: list[Any], x: list[Any]) -> tuple[list[Any], list[Any]]:
        return evaluate(_replay(body), [*c, *(x or []), *consts], apply_bind)[:n_carry], c

    _, carries_in = scan(forward, carry, xs or None, length=length, reverse=reverse)

    def backward(
        acc: tuple[list[Any], list[Any]], inputs: tuple[list[Any], list[Any], list[Any]]
    ) -> tuple[Any, list[Any]]:
        ct_carry, ct_consts = acc
        c_in, x, ct_y = inputs
        sources = [*c_in, *(x or []), *consts]
        with GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(sources)
            outs = evaluate(_replay(body), sources, apply_bind)
        grads = tape.gradient(
            outs, sources, output_gradients=[*ct_carry, *ct_y], unconnected_gradients="zero"
        )
        g_carry, g_x, g_consts = (
            grads[:n_carry],
            grads[n_carry : n_carry + n_xs],
            grads[n_carry + n_xs :],
        )
        return (g_carry, [a + b for a, b in zip(ct_consts, g_consts)]), g_x

    ct_carry, ct_ys = list(ct[:n_carry]), list(ct[n_carry:])
    init = (ct_carry, [zeros_like(c) for c in consts])
    (ct_carry0, ct_consts), ct_xs = scan(
        backward, init, (carries_in, xs, ct_ys), length=length, reverse=not reverse
    )
    grads = [*ct_carry0, *(ct_xs or []), *ct_consts]
    return [g if differentiable_dtype(a) else None for g, a in zip(grads, args)]


def _scan_jvp(
    tangents: Sequence[Any],
    *args: Any,
    out: Any,
    body: Graph,
    n_carry: int,
    n_xs: int,
    length: int | None,
    reverse: bool,
) -> list[Any]:
    """The scan again, carrying the float carries' tangents and scanning the xs' tangents."""
    from tracejit.autodiff.forward_rules import jvp_of_graph

    carry = list(args[:n_carry])
    xs = list(args[n_carry : n_carry + n_xs])
    consts = list(args[n_carry + n_xs :])
    carry_at = _float_positions(carry)
    xs_at = [i for i in range(n_xs) if tangents[n_carry + i] is not None]
    const_tangents = list(tangents[n_carry + n_xs :])
    ys_at = _float_positions(out[n_carry:])

    def step(c: list[Any], x: list[Any] | None) -> tuple[list[Any], list[Any]]:
        x = list(x or [])
        carried = _placed(c[n_carry:], carry_at, n_carry)
        x_tangents = _placed(x[n_xs:], xs_at, n_xs)
        outs, found = jvp_of_graph(
            body, [*c[:n_carry], *x[:n_xs], *consts], [*carried, *x_tangents, *const_tangents]
        )
        new_carry = [*outs[:n_carry], *(found[i] for i in carry_at)]
        return new_carry, [*outs[n_carry:], *(found[n_carry + j] for j in ys_at)]

    init = [*carry, *_filled(tangents[:n_carry], carry, carry_at)]
    scanned = [*xs, *(tangents[n_carry + i] for i in xs_at)]
    final, ys = scan(step, init, scanned or None, length=length, reverse=reverse)
    n_ys = len(out) - n_carry
    return [
        *_placed(list(final)[n_carry:], carry_at, n_carry),
        *_placed(list(ys)[n_ys:], ys_at, n_ys),
    ]


SCAN = defop(
    "scan",
    _infer_scan,
    _scan,
    _scan_vjp,
    jvp=_scan_jvp,
    subgraphs=True,
    multiple_results=True,
)


# Public API ------------------------------------------------------------------------------------
from tracejit.ops.control_api import cond, fori_loop, scan, switch, while_loop  # noqa: E402

__all__ = ["cond", "fori_loop", "scan", "switch", "while_loop"]
