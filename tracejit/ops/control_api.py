"""The public control-flow functions: run Python eagerly, build one control-flow node when a
condition or loop is symbolic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tracejit.errors import OpError
from tracejit.ir.graph import Value
from tracejit.ir.source import user_location
from tracejit.ops.tensor_array import refine_carry
from tracejit.tracing import context
from tracejit.tracing import signature as sig
from tracejit.tracing.bodies import (
    Body,
    align,
    align_captures,
    check_same_outputs,
    flatten_operands,
    trace_body,
)
from tracejit.tracing.tracer import Tracer
from tracejit.types import AVal, TensorSpec


def _tracers(values: Sequence[Value], sources: dict[Value, Any] | None = None) -> list[Any]:
    """Operands for captured values: the tracer or variable they came from when known (so
    gradient tapes can follow them), else a fresh tracer."""
    builder = context.state.builder
    sources = sources or {}
    found = [sources.get(v) for v in values]
    return [Tracer(v, builder) if s is None else s for v, s in zip(values, found)]


def _finish(body: Body, outputs: Sequence[Any]) -> Any:
    """Assign the variables the bodies assigned; rebuild the user's output structure."""
    builder = context.state.builder
    n_user = body.n_user_outputs
    for variable, value in zip(body.assigned, outputs[n_user:]):
        builder.assign_variable(variable, value)
    return sig.unflatten(body.out_structure, iter(outputs[:n_user]))


def cond(
    pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any
) -> Any:
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``.

    With a symbolic ``pred`` both branches are traced into one ``cond`` node; their outputs must
    agree in structure, shape and dtype.

    >>> import tracejit as tj
    >>> f = tj.function(lambda x: tj.cond(x.sum() > 0, lambda: x * 2, lambda: -x))
    >>> f(tj.constant([1.0, -3.0])).numpy()
    array([-1.,  3.], dtype=float32)
    """
    if not isinstance(pred, Tracer):
        return true_fn(*operands) if bool(pred) else false_fn(*operands)
    from tracejit.ops.control import COND
    from tracejit.ops.registry import bind

    structure, leaves = flatten_operands("cond", operands)
    bodies = [
        trace_body("true_branch", true_fn, structure[1]),
        trace_body("false_branch", false_fn, structure[1]),
    ]
    check_same_outputs("cond", ["true branch", "false branch"], bodies)
    (true_body, false_body), captured, _ = align(bodies)
    outputs = bind(
        COND,
        pred,
        *leaves,
        *_tracers(captured, true_body.sources),
        true_body=true_body.graph,
        false_body=false_body.graph,
    )
    return _finish(true_body, outputs)


def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """``branches[index](*operands)``, the index clamped to the valid range (as jax does)."""
    if not branches:
        raise ValueError("switch needs at least one branch")
    if not isinstance(index, Tracer):
        return branches[int(np.clip(int(index), 0, len(branches) - 1))](*operands)
    from tracejit.ops.control import SWITCH
    from tracejit.ops.registry import bind

    structure, leaves = flatten_operands("switch", operands)
    bodies = [trace_body(f"branch_{i}", fn, structure[1]) for i, fn in enumerate(branches)]
    check_same_outputs("switch", [f"branch {i}" for i in range(len(bodies))], bodies)
    aligned, captured, _ = align(bodies)
    outputs = bind(
        SWITCH,
        index,
        *leaves,
        *_tracers(captured, aligned[0].sources),
        branches=tuple(b.graph for b in aligned),
    )
    return _finish(aligned[0], outputs)


def _relaxed(structure: Any, invariants: Any) -> Any:
    """Apply ``shape_invariants`` (TensorSpecs or shapes, None dims = may change) to avals."""
    if invariants is None:
        return structure
    avals = iter(invariants if isinstance(invariants, (list, tuple)) else [invariants])

    def relax(node: Any) -> Any:
        if isinstance(node, AVal):
            spec = next(avals, None)
            if spec is None:
                return node
            shape = spec.shape if isinstance(spec, TensorSpec) else tuple(spec)
            return AVal(tuple(shape), node.dtype)
        if isinstance(node, tuple) and node and node[0] in (sig.TUPLE, sig.LIST):
            return (node[0], tuple(relax(c) for c in node[1]))
        return node

    return relax(structure)


def _check_carry(what: str, names: str, body: Body, carry_avals: Sequence[AVal]) -> None:
    outs = [v.aval for v in body.graph.outputs]
    if len(outs) < len(carry_avals):
        raise OpError(
            what,
            f"the body returns {len(outs)} values for {len(carry_avals)} {names}",
            user_location(),
        )
    for i, (before, after) in enumerate(zip(carry_avals, outs)):
        same_dims = len(before.shape) == len(after.shape) and all(
            b is None or b == a for b, a in zip(before.shape, after.shape)
        )
        if before.dtype != after.dtype or not same_dims:
            label = (
                f"{names[:-1]} {i}"
                if i < len(carry_avals) - len(body.assigned)
                else f"variable '{body.assigned[i - len(carry_avals) + len(body.assigned)].name}'"
            )
            raise OpError(
                what,
                f"{label} enters the loop as {before.strong()} but the body makes it "
                f"{after.strong()}; "
                "loop-carried values must keep their shape and dtype (declare a changing "
                "dimension with shape_invariants=[...] using None)",
                user_location(),
            )


def _variables_read(tree: Any) -> Any:
    """Loop-carried Variables enter a loop as their current value (as in TF): the loop's
    result is a tensor, not the Variable object passed through unchanged."""
    from tracejit.eager.variable import Variable

    if isinstance(tree, Variable):
        return tree.read_value()
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_variables_read(x) for x in tree)
    if isinstance(tree, dict):
        return {k: _variables_read(v) for k, v in tree.items()}
    return tree


def while_loop(
    cond_fn: Callable[..., Any],
    body_fn: Callable[..., Any],
    loop_vars: Sequence[Any],
    maximum_iterations: int | None = None,
    shape_invariants: Sequence[Any] | None = None,
) -> Any:
    """Repeat ``loop_vars = body_fn(*loop_vars)`` while ``cond_fn(*loop_vars)`` (TF's
    argument convention); returns the final loop variables.

    >>> import tracejit as tj
    >>> collatz = tj.function(lambda n: tj.while_loop(
    ...     lambda n, steps: n != 1,
    ...     lambda n, steps: (tj.where(n % 2 == 0, n // 2, 3 * n + 1), steps + 1),
    ...     (n, tj.constant(0))))
    >>> [int(t) for t in collatz(tj.constant(6))]
    [1, 8]
    """
    single = not isinstance(loop_vars, (list, tuple))
    loop_vars = (loop_vars,) if single else loop_vars
    builder = context.state.builder
    if builder is None:
        values, i = tuple(loop_vars), 0
        while (maximum_iterations is None or i < maximum_iterations) and bool(cond_fn(*values)):
            out = body_fn(*values)
            values, i = ((out,) if single else tuple(out)), i + 1
        return values[0] if single else values
    from tracejit.ops.control import WHILE_LOOP
    from tracejit.ops.registry import bind

    structure, leaves = flatten_operands("while_loop", _variables_read(tuple(loop_vars)))
    structure = _relaxed(structure, shape_invariants)
    step = (lambda *v: (body_fn(*v),)) if single else body_fn
    found = trace_body("loop_body", step, structure[1])  # discovers the variables it assigns
    refined = refine_carry(tuple(loop_vars), found.out_structure)  # TensorArrays' first writes
    if refined is not None:
        structure, leaves = flatten_operands("while_loop", refined)
        structure = _relaxed(structure, shape_invariants)
        found = trace_body("loop_body", step, structure[1])
    presets = found.assigned
    test = trace_body("loop_cond", cond_fn, structure[1], presets, collect_assigned=False)
    body = trace_body("loop_body", step, structure[1], presets) if presets else found
    carry_avals = sig.tensor_avals(structure) + [v.aval for v in presets]
    _check_carry("while_loop", "loop variables", body, carry_avals)
    result = test.graph.outputs[0].aval if test.graph.outputs else None
    if result is None or result.shape != () or result.dtype != np.dtype(bool):
        raise OpError(
            "while_loop", f"the condition must return a bool scalar, got {result}", user_location()
        )
    (test, body), captured = align_captures([test, body])
    carry = [*leaves, *_tracers([builder.variable_value(v) for v in presets])]
    outputs = bind(
        WHILE_LOOP,
        *carry,
        *_tracers(captured, body.sources),
        cond_body=test.graph,
        body=body.graph,
        n_carry=len(carry),
        maximum_iterations=maximum_iterations,
    )
    for variable, value in zip(presets, outputs[len(leaves) :]):
        builder.assign_variable(variable, value)
    final = sig.unflatten(structure, iter(outputs[: len(leaves)]))
    return final[0] if single else final


def scan(
    fn: Callable[..., Any], init: Any, xs: Any, length: int | None = None, reverse: bool = False
) -> tuple[Any, Any]:
    """``carry, y = fn(carry, x)`` over the first axis of ``xs`` (a pytree, or None with
    ``length``); returns ``(final_carry, stacked_ys)`` as ``jax.lax.scan`` does.

    >>> import tracejit as tj
    >>> total, partial = tj.function(lambda xs: tj.scan(lambda c, x: (c + x, c + x), 0.0, xs))(
    ...     tj.constant([1.0, 2.0, 3.0]))
    >>> float(total), partial.numpy()
    (6.0, array([1., 3., 6.], dtype=float32))
    """
    builder = context.state.builder
    if builder is None:
        return _scan_eagerly(fn, init, xs, length, reverse)
    from tracejit.ops.control import SCAN
    from tracejit.ops.registry import bind

    carry_structure, carry_leaves = flatten_operands("scan", _variables_read(init))
    xs_structure, xs_leaves = flatten_operands("scan", xs)
    length = _scan_length(xs_leaves, length)
    x_structure = _drop_leading(xs_structure)
    found = trace_body("scan_body", fn, [carry_structure, x_structure])
    out = found.out_structure
    refined = refine_carry(init, out[1][0]) if _is_pair(out) else None  # TensorArrays
    if refined is not None:
        carry_structure, carry_leaves = flatten_operands("scan", refined)
        found = trace_body("scan_body", fn, [carry_structure, x_structure])
    presets = found.assigned
    body = (
        trace_body("scan_body", fn, [carry_structure, x_structure], presets) if presets else found
    )
    out = body.out_structure
    if not _is_pair(out):
        raise OpError("scan", "fn must return a pair (new_carry, y)", user_location())
    n_carry, n_vars = len(carry_leaves), len(presets)
    carry_avals = sig.tensor_avals(carry_structure)
    new_carry_structure, y_structure = out[1]
    if sig.tensor_avals(new_carry_structure) and not sig.matches(
        _shape_free(carry_structure), _shape_free(new_carry_structure)
    ):
        raise OpError(
            "scan", "fn must return a carry with the same structure as init", user_location()
        )
    graph = body.graph
    n_args = n_carry + len(xs_leaves)
    outs = list(graph.outputs)
    user, finals = outs[: len(outs) - n_vars], outs[len(outs) - n_vars :]
    inputs = list(graph.inputs)
    reordered_inputs = (
        inputs[:n_carry]
        + inputs[n_args : n_args + n_vars]
        + inputs[n_carry:n_args]
        + inputs[n_args + n_vars :]
    )
    import dataclasses

    graph = dataclasses.replace(
        graph,
        inputs=tuple(reordered_inputs),
        outputs=tuple(user[:n_carry] + finals + user[n_carry:]),
    )
    body = dataclasses.replace(body, graph=graph)
    _check_carry(
        "scan",
        "carry values",
        dataclasses.replace(body, assigned=presets),
        carry_avals + [v.aval for v in presets],
    )
    carry = [*carry_leaves, *_tracers([builder.variable_value(v) for v in presets])]
    outputs = bind(
        SCAN,
        *carry,
        *xs_leaves,
        *_tracers(body.captured, body.sources),
        body=graph,
        n_carry=len(carry),
        n_xs=len(xs_leaves),
        length=length,
        reverse=reverse,
    )
    for variable, value in zip(presets, outputs[n_carry : n_carry + n_vars]):
        builder.assign_variable(variable, value)
    final_carry = sig.unflatten(carry_structure, iter(outputs[:n_carry]))
    ys = sig.unflatten(y_structure, iter(outputs[n_carry + n_vars :]))
    return final_carry, ys


def _is_pair(out: Any) -> bool:
    return isinstance(out, tuple) and out[:1] in ((sig.TUPLE,), (sig.LIST,)) and len(out[1]) == 2


def _shape_free(structure: Any) -> Any:
    if isinstance(structure, AVal):
        return AVal(tuple(None for _ in structure.shape), structure.dtype, structure.weak)
    if isinstance(structure, tuple) and structure and structure[0] in (sig.TUPLE, sig.LIST):
        return (structure[0], tuple(_shape_free(c) for c in structure[1]))
    return structure


def _drop_leading(structure: Any) -> Any:
    if isinstance(structure, AVal):
        if not structure.shape:
            raise OpError(
                "scan", "every xs leaf needs a leading axis to scan over", user_location()
            )
        return AVal(structure.shape[1:], structure.dtype, structure.weak)
    if isinstance(structure, tuple) and structure and structure[0] in (sig.TUPLE, sig.LIST):
        return (structure[0], tuple(_drop_leading(c) for c in structure[1]))
    if isinstance(structure, tuple) and structure and structure[0] == sig.DICT:
        return structure[:3] + (tuple(_drop_leading(c) for c in structure[3]),)
    return structure


def _scan_length(xs_leaves: Sequence[Any], length: int | None) -> int | None:
    sizes = {x.shape[0] for x in xs_leaves}
    if len(sizes) > 1:
        raise OpError(
            "scan",
            f"xs leaves have different leading sizes {sorted(sizes, key=str)}",
            user_location(),
        )
    if length is not None and sizes and sizes != {length} and sizes != {None}:
        raise OpError(
            "scan", f"length={length} but xs have leading size {sizes.pop()}", user_location()
        )
    if not xs_leaves and length is None:
        raise OpError("scan", "give xs or length", user_location())
    return length if length is not None else next(iter(sizes))


def _scan_eagerly(
    fn: Callable[..., Any], init: Any, xs: Any, length: int | None, reverse: bool
) -> tuple[Any, Any]:
    from tracejit.ops.shape import stack

    _, leaves = flatten_operands("scan", xs)
    n = length if length is not None else (leaves[0].shape[0] if leaves else None)
    if n is None:
        raise OpError("scan", "give xs or length", user_location())
    structure, _ = flatten_operands("scan", xs)
    carry, ys = init, []
    for i in reversed(range(n)) if reverse else range(n):
        x = sig.unflatten(structure, iter([leaf[i] for leaf in leaves])) if leaves else None
        carry, y = fn(carry, x)
        ys.append(y)
    if reverse:
        ys.reverse()
    y_structure, _ = flatten_operands("scan", ys[0]) if ys else (sig.NONE, [])
    columns = [flatten_operands("scan", y)[1] for y in ys]
    stacked = (
        [stack([col[j] for col in columns]) for j in range(len(columns[0]))]
        if columns and columns[0]
        else []
    )
    return carry, sig.unflatten(y_structure, iter(stacked))


def fori_loop(lower: Any, upper: Any, body_fn: Callable[[Any, Any], Any], init: Any) -> Any:
    """``val = body_fn(i, val)`` for ``i`` in ``range(lower, upper)`` (jax's convention).
    With Python bounds it is a scan (differentiable); with tensor bounds a while_loop."""
    if isinstance(lower, int) and isinstance(upper, int):
        from tracejit.eager.tensor import constant
        from tracejit.ops.creation import arange

        if context.state.builder is None:
            val = init
            for i in range(lower, upper):
                val = body_fn(constant(i), val)
            return val
        final, _ = scan(lambda val, i: (body_fn(i, val), None), init, arange(lower, upper))
        return final
    from tracejit.ops.elementwise import less

    _, final = while_loop(
        lambda i, val: less(i, upper), lambda i, val: (i + 1, body_fn(i, val)), (lower, init)
    )
    return final
