"""``tj.custom_gradient``: a function whose gradient is written by its author.

One rule, however the gradient is computed: the custom gradient wins over the body's own
derivative.

- Eagerly the body runs at once (its ops are recorded, as in TF, so higher-order gradients can
  follow what the gradient function closes over) and each active tape records one entry whose
  VJP is the user's ``grad_fn``; the outputs are fresh tensors, so the body's own ops never
  receive the outputs' cotangents.
- While tracing, the body and ``grad_fn`` are traced into the two nested graphs of one
  ``custom_gradient`` node (``tracejit.ops.custom_gradient``). The rule is then part of the IR:
  a tape inside the trace, an eager tape differentiating *through* the compiled call (which
  replays the IR), control-flow VJPs and saved functions all find it there.

Variables the body reads that are not among its arguments get gradients too when ``grad_fn``
takes a keyword argument ``variables`` (as in TF): ``grad_fn(*dys, variables=[v, ...])`` returns
``(input_gradients, variable_gradients)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from tracejit.autodiff.tape import GradientError
from tracejit.eager.tensor import Tensor, constant, wrap
from tracejit.eager.variable import Variable
from tracejit.ir.graph import Value
from tracejit.ops.arguments import arg_aval
from tracejit.ops.custom_gradient import CUSTOM_GRADIENT
from tracejit.ops.tensor_methods import TensorMethods, is_tensor_leaf
from tracejit.tracing import context
from tracejit.tracing import signature as sig
from tracejit.tracing.tracer import GraphBuilder
from tracejit.types import AVal


def custom_gradient(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``fn(*xs) -> (y, grad_fn)`` whose ``grad_fn(*dys)`` returns the gradients of
    the inputs (one, or a tuple of one per positional argument; None for no gradient): every
    way of computing gradients uses it instead of differentiating ``fn``'s body — eager tapes,
    tapes inside a ``tj.function``, eager tapes through a compiled call, ``tj.grad``.

    >>> import tracejit as tj
    >>> @tj.custom_gradient
    ... def clipped_identity(x):
    ...     return x, lambda dy: tj.clip(dy, -1.0, 1.0)
    >>> x = tj.constant(2.0)
    >>> with tj.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = clipped_identity(x) * 10.0
    >>> float(tape.gradient(y, x))
    1.0
    >>> f = tj.function(lambda x: clipped_identity(x) * 10.0)
    >>> with tj.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = f(x)
    >>> float(tape.gradient(y, x))
    1.0
    """

    return _decorate(fn, converted=False)


def _decorate(fn: Callable[..., Any], converted: bool) -> Callable[..., Any]:
    variant: list[Callable[..., Any]] = []

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(
                f"{_name(fn)} is a tj.custom_gradient function: pass its arguments by "
                f"position (got keyword arguments {', '.join(sorted(kwargs))})"
            )
        if context.state.builder is not None:
            return _traced(fn, args, converted)
        return _eager(fn, args)

    def autograph_variant() -> Callable[..., Any]:
        """Called by AutoGraph's converted code: the same function with its body (and then
        its gradient function) converted, so tensor ``if``/``for`` work inside them."""
        if not variant:
            from tracejit.autograph.conversion import convert

            variant.append(_decorate(convert(fn), converted=True))
        return variant[0]

    wrapper.__tj_autograph__ = autograph_variant  # type: ignore[attr-defined]
    return wrapper


# Shared checks ---------------------------------------------------------------------------------
def _name(fn: Any) -> str:
    return getattr(fn, "__name__", "custom_gradient function")


def _is_tensor(x: Any) -> bool:
    return isinstance(x, (TensorMethods, Variable, np.ndarray, jax.Array))


def _split(fn: Any, result: Any) -> tuple[Any, Callable[..., Any]]:
    if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
        raise GradientError(
            f"a tj.custom_gradient function must return (outputs, grad_fn); {_name(fn)} returned "
            f"{type(result).__name__}" + (f" of {len(result)}" if isinstance(result, tuple) else "")
        )
    return result


def _takes_variables(grad_fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(grad_fn).parameters.values()
    except (TypeError, ValueError):  # a builtin: no way to tell; assume the plain form
        return False
    return any(p.name == "variables" or p.kind is p.VAR_KEYWORD for p in parameters)


def _check_variables(fn: Any, grad_fn: Callable[..., Any], variables: Sequence[Variable]) -> None:
    if variables and not _takes_variables(grad_fn):
        names = ", ".join(v.name for v in variables)
        raise GradientError(
            f"{_name(fn)} reads the trainable variables {names} (not passed as arguments), so "
            "its gradient function must accept a keyword argument 'variables' and return "
            "(input_gradients, variable_gradients), as in TF: def grad_fn(dy, variables=None)"
        )


def _call_grad_fn(
    fn: Any, grad_fn: Callable[..., Any], cts: Sequence[Any], n_args: int, variables: list[Any]
) -> list[Any]:
    """``grad_fn``'s result as one gradient (or None) per argument, then per variable."""
    if variables:
        result = grad_fn(*cts, variables=variables)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise GradientError(
                f"the gradient function of {_name(fn)} takes variables, so it must return "
                "(input_gradients, variable_gradients)"
            )
        inputs, of_variables = result
        of_variables = (
            list(of_variables) if isinstance(of_variables, (tuple, list)) else [of_variables]
        )
        if len(of_variables) != len(variables):
            raise GradientError(
                f"the gradient function of {_name(fn)} returned {len(of_variables)} variable "
                f"gradients for {len(variables)} variables"
            )
    else:
        inputs, of_variables = grad_fn(*cts), []
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    if len(inputs) != n_args:
        raise GradientError(
            f"the gradient function of {_name(fn)} returned {len(inputs)} gradients for "
            f"{n_args} inputs"
        )
    return inputs + of_variables


def _checked(fn: Any, grad: Any, like: AVal, what: str) -> Any:
    """A gradient as a tensor of the input's shape and dtype; a clear error when it has
    another shape (a broadcast gradient would be silently wrong)."""
    from tracejit.ops.elementwise import cast

    if not isinstance(grad, TensorMethods):
        grad = constant(grad)
    shape = grad.aval.shape
    same = len(shape) == len(like.shape) and all(
        a is None or b is None or a == b for a, b in zip(shape, like.shape)
    )
    if not same:
        raise GradientError(
            f"the gradient function of {_name(fn)} returned a gradient of shape {tuple(shape)} "
            f"for {what} of shape {tuple(like.shape)}"
        )
    return grad if grad.aval.dtype == like.dtype and not grad.aval.weak else cast(grad, like.dtype)


# Eager -----------------------------------------------------------------------------------------
class _VariableWatcher:
    """Sits with the tapes while an eager body runs and notes the trainable variables it
    uses (TF's VariableWatcher), whether read or passed to ops directly."""

    def __init__(self) -> None:
        self.variables: dict[int, Variable] = {}

    def _note(self, values: Sequence[Any]) -> None:
        for v in values:
            if isinstance(v, Variable) and v.trainable:
                self.variables.setdefault(id(v), v)

    def record_op(self, op: Any, args: tuple[Any, ...], params: Any, out: Any) -> None:
        self._note(args)

    def record(self, inputs: Sequence[Any], outputs: Sequence[Any], vjp: Any) -> None:
        self._note(inputs)

    def note_variable_read(self, variable: Variable, tensor: Any) -> None:
        self._note([variable])


def _fresh(x: Any) -> Any:
    return wrap(x._value) if isinstance(x, Tensor) else x


def _eager(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    tapes = context.state.tapes
    watcher = _VariableWatcher()
    context.state.tapes = tapes + (watcher,)
    try:  # the body's ops are recorded (as in TF): higher-order gradients may need them
        output, grad_fn = _split(fn, fn(*args))
    finally:
        context.state.tapes = tapes
    variables = [v for v in watcher.variables.values() if all(v is not a for a in args)]
    _check_variables(fn, grad_fn, variables)
    # Fresh tensor objects for the outputs, so an output that *is* an input (an identity), or
    # a value the body computed, is reached only through grad_fn's rule.
    output = jax.tree_util.tree_map(_fresh, output, is_leaf=is_tensor_leaf)
    outputs = jax.tree_util.tree_leaves(output, is_leaf=is_tensor_leaf)
    targets = list(args) + variables

    def vjp(cts: tuple[Any, ...]) -> list[Any]:
        grads = _call_grad_fn(fn, grad_fn, cts, len(args), variables)
        for i, (g, x) in enumerate(zip(grads, targets)):
            if g is not None and _is_tensor(x):
                what = f"input {i}" if i < len(args) else f"variable '{x.name}'"
                grads[i] = _checked(fn, g, arg_aval(_name(fn), x), what)
        return grads

    for tape in tapes:
        tape.record(targets, outputs, vjp)
    return output


# Traced ----------------------------------------------------------------------------------------
def _traced(fn: Callable[..., Any], args: tuple[Any, ...], converted: bool) -> Any:
    from tracejit.ops.control_api import _tracers
    from tracejit.ops.registry import bind
    from tracejit.tracing.bodies import _numbers_to_tensors

    parent = context.state.builder
    name = _name(fn)
    forward = GraphBuilder(name, parent=parent)
    positions = [i for i, a in enumerate(args) if _is_tensor(a)]
    tapes, context.state.tapes = context.state.tapes, ()  # the node is recorded, not the body
    try:
        with forward.active():
            inner = list(args)
            for i in positions:
                inner[i] = forward.new_input(arg_aval(name, args[i]))
            output, grad_fn = _split(fn, fn(*inner))
            if converted:
                from tracejit.autograph.conversion import convert

                grad_fn = convert(grad_fn)
            leaves: list[Any] = []
            structure = sig.flatten(_numbers_to_tensors(output), leaves, objects=True)
            outs = [forward.to_value(leaf, name, i) for i, leaf in enumerate(leaves)]
            variables = _read_variables(forward, args)
            _check_variables(fn, grad_fn, list(variables.values()))
            grad_graph, grad_of, residuals = _trace_gradient(
                fn, grad_fn, forward, outs, inner, positions, variables
            )
            assigned = [v for v, _ in forward.assigned_in_body()]
            finals = [forward.variable_value(v) for v in assigned]
        body = forward.build(outs + finals + residuals, provenance=("traced",))
    finally:
        context.state.tapes = tapes
    operands = [args[i] for i in positions]
    operands += _tracers(list(forward.captures), forward.capture_sources)
    results = bind(
        CUSTOM_GRADIENT,
        *operands,
        body=body,
        grad=grad_graph,
        n_outputs=len(outs),
        n_assigned=len(assigned),
        grad_of=grad_of,
    )
    for variable, value in zip(assigned, results[len(outs) :]):
        parent.assign_variable(variable, value)
    return sig.unflatten(structure, iter(results[: len(outs)]))


def _read_variables(forward: GraphBuilder, args: tuple[Any, ...]) -> dict[Value, Variable]:
    """The trainable variables the body read (not passed as arguments), by captured value."""
    found: dict[Value, Variable] = {}
    for outer, source in forward.capture_sources.items():
        if isinstance(source, Variable) and source.trainable and all(source is not a for a in args):
            if all(source is not v for v in found.values()):
                found[outer] = source
    return found


def _trace_gradient(
    fn: Any,
    grad_fn: Callable[..., Any],
    forward: GraphBuilder,
    outs: list[Value],
    inner: list[Any],
    positions: list[int],
    variables: dict[Value, Variable],
) -> tuple[Any, tuple[int, ...], list[Value]]:
    """Trace ``grad_fn`` as a body nested in the forward body: what it closes over of the
    forward computation is captured, and those forward values become the residuals."""
    builder = GraphBuilder(f"{forward.name}_grad", parent=forward)
    captured = list(forward.captures)  # operand k (after the arguments) is captured[k]
    with builder.active():
        cts = [builder.new_input(v.aval.strong()) for v in outs]
        grads = _call_grad_fn(fn, grad_fn, cts, len(inner), list(variables.values()))
        pairs: list[tuple[int, Value]] = []
        for k, g in enumerate(grads):
            if g is None:
                continue
            if k < len(inner):
                if k not in positions:
                    continue  # a Python argument takes no gradient
                operand, like, what = positions.index(k), inner[k].aval, f"input {k}"
            else:
                outer = list(variables)[k - len(inner)]
                variable = variables[outer]
                operand = len(positions) + captured.index(outer)
                like, what = variable.aval, f"variable '{variable.name}'"
            pairs.append((operand, builder.to_value(_checked(fn, g, like, what), _name(fn))))
    if builder.assigned_in_body():
        names = ", ".join(v.name for v, _ in builder.assigned_in_body())
        raise GradientError(
            f"the gradient function of {_name(fn)} assigns the variables {names}; a gradient "
            "function must only compute gradients"
        )
    pairs.sort(key=lambda pair: pair[0])
    graph = builder.build([value for _, value in pairs], provenance=("traced",))
    return graph, tuple(operand for operand, _ in pairs), list(builder.captures)
