"""Forward-mode autodiff: ``tj.autodiff.ForwardAccumulator`` (TF's API), ``tj.jvp`` (jax's) and
``tj.hvp`` (forward-over-reverse Hessian-vector products).

The accumulator sits with the gradient tapes in ``context.state.tapes``: after every op, ``bind``
hands it the op, its inputs and its outputs (``record_op``), and when an input has a tangent it
computes the outputs' tangents at once with the op's JVP rule (``forward_rules.op_jvp``). The
rules are written with tracejit ops, so tangents are computed eagerly next to an eager program
and become IR nodes in the same graph inside a ``tj.function``.

Nesting follows TF. Tapes and accumulators *outside* this one (earlier in the tuple) see the
tangent computations, so a tape around an accumulator differentiates JVPs (reverse-over-forward)
and an outer accumulator gets tangents of tangents. Those *inside* it do not; an accumulator
around a tape sees the tape's backward pass, which is how forward-over-reverse gives
Hessian-vector products.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax

from tracejit.autodiff.forward_rules import op_jvp, transpose
from tracejit.autodiff.tape import GradientError, GradientTape, differentiable_dtype
from tracejit.eager.tensor import constant
from tracejit.eager.variable import Variable
from tracejit.ops.arguments import arg_aval
from tracejit.ops.registry import OpDef
from tracejit.ops.tensor_methods import TensorMethods, is_tensor_leaf
from tracejit.tracing import context


class TangentError(GradientError, ValueError):
    """A tangent that does not fit its primal (another structure or shape): a ``ValueError``,
    as in TF."""


class ForwardAccumulator:
    """Computes Jacobian-vector products of everything computed from ``primals`` while active.

    ``primals`` (tensors or Variables, any pytree) move in the directions ``tangents`` (same
    structure and shapes); ``acc.jvp(y)`` is then ``dy/dprimals @ tangents``. Integer and bool
    primals carry no tangent.

    >>> import tracejit as tj
    >>> x = tj.constant(3.0)
    >>> with tj.autodiff.ForwardAccumulator(x, tj.constant(1.0)) as acc:
    ...     y = x * x
    >>> float(acc.jvp(y))
    6.0
    """

    def __init__(self, primals: Any, tangents: Any) -> None:
        self._tangents: dict[int, tuple[Any, Any]] = {}  # id -> (object, tangent), kept alive
        self._recording = False
        self.watch(primals, tangents)

    def __enter__(self) -> ForwardAccumulator:
        context.state.tapes = context.state.tapes + (self,)
        self._recording = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._recording = False
        context.state.tapes = tuple(t for t in context.state.tapes if t is not self)

    def watch(self, primals: Any, tangents: Any) -> None:
        """Follow more primals, moving in the directions ``tangents``."""
        if isinstance(primals, (TensorMethods, Variable)):
            # One primal: its tangent may be anything tj.constant takes (a nested list...).
            leaves, tangent_leaves = [primals], [tangents]
            structure = tangent_structure = None
        else:
            leaves, structure = jax.tree_util.tree_flatten(primals, is_leaf=is_tensor_leaf)
            tangent_leaves, tangent_structure = jax.tree_util.tree_flatten(
                tangents, is_leaf=is_tensor_leaf
            )
        if structure != tangent_structure:
            raise TangentError(
                f"ForwardAccumulator: the tangents ({tangent_structure}) must have the "
                f"structure of the primals ({structure})"
            )
        for primal, tangent in zip(leaves, tangent_leaves):
            if not isinstance(primal, (TensorMethods, Variable)):
                raise TypeError(
                    "ForwardAccumulator watches tensors or Variables, got "
                    f"{type(primal).__name__}; convert it with tj.constant first"
                )
            aval = arg_aval("ForwardAccumulator", primal)
            if not differentiable_dtype(primal):
                continue  # integer and bool tensors carry no tangent (as in TF and jax)
            tangent = _as_tangent(tangent, aval)
            previous = self._tangents.get(id(primal))
            if previous is not None:  # watched twice: the directions add up, as in TF
                tangent = previous[1] + tangent
            self._tangents[id(primal)] = (primal, tangent)

    def jvp(self, primals: Any, unconnected_gradients: str = "none") -> Any:
        """The tangents of ``primals`` (tensors computed while active, any pytree): None where
        no tangent reaches them (zeros with ``unconnected_gradients="zero"``; integer and bool
        tensors always give None)."""
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError("unconnected_gradients must be 'none' or 'zero'")

        def tangent_of(x: Any) -> Any:
            found = self._tangent_of(x)
            if found is None and unconnected_gradients == "zero" and differentiable_dtype(x):
                from tracejit.ops.creation import zeros_like

                return zeros_like(x)
            return found

        return jax.tree_util.tree_map(tangent_of, primals, is_leaf=is_tensor_leaf)

    # Called by bind and the tape entries -----------------------------------------------------
    def _tangent_of(self, x: Any) -> Any:
        found = self._tangents.get(id(x))
        return None if found is None else found[1]

    def record_op(self, op: OpDef, args: tuple[Any, ...], params: dict[str, Any], out: Any) -> None:
        """Called by ``bind`` after every op while active: the outputs' tangents, at once."""
        if not self._recording or not op.differentiable:
            return
        tangents = tuple(self._tangent_of(a) for a in args)
        if all(t is None for t in tangents):
            return
        outputs = tuple(out) if op.multiple_results else (out,)
        if not any(differentiable_dtype(o) for o in outputs):
            return
        with self._computing():
            found = op_jvp(op, args, params, outputs, tangents)
        self._keep(outputs, found)

    def record(self, inputs: Sequence[Any], outputs: Sequence[Any], vjp: Any) -> None:
        """A tape entry with only a VJP closure (a compiled call, an eager custom_gradient):
        its tangents are the transpose of that VJP."""
        if not self._recording:
            return
        tangents = tuple(self._tangent_of(x) for x in inputs)
        if all(t is None for t in tangents):
            return
        with self._computing():
            found = transpose(vjp, list(outputs), tangents)
        self._keep(tuple(outputs), found)

    def note_variable_read(self, variable: Variable, tensor: Any) -> None:
        found = self._tangents.get(id(variable))
        if self._recording and found is not None:
            self._tangents[id(tensor)] = (tensor, found[1])

    def _keep(self, outputs: Sequence[Any], tangents: Sequence[Any]) -> None:
        for o, t in zip(outputs, tangents):
            if t is not None and differentiable_dtype(o):
                self._tangents[id(o)] = (o, t)

    @contextlib.contextmanager
    def _computing(self) -> Iterator[None]:
        """While tangents are computed, only the tapes outside this accumulator record."""
        tapes = context.state.tapes
        position = next(i for i, t in enumerate(tapes) if t is self)
        context.state.tapes = tapes[:position]
        try:
            yield
        finally:
            context.state.tapes = tapes


def _as_tangent(tangent: Any, aval: Any) -> Any:
    from tracejit.ops.elementwise import cast

    if not isinstance(tangent, TensorMethods):
        tangent = constant(tangent, dtype=aval.dtype)
    shape = tuple(tangent.aval.shape)
    same = len(shape) == len(aval.shape) and all(
        a is None or b is None or a == b for a, b in zip(shape, aval.shape)
    )
    if not same:
        raise TangentError(
            f"ForwardAccumulator: a tangent of shape {shape} for a primal of shape "
            f"{tuple(aval.shape)}; each tangent must have its primal's shape"
        )
    return tangent if tangent.dtype == aval.dtype else cast(tangent, aval.dtype)


def _as_tensors(tree: Any) -> Any:
    def convert(leaf: Any) -> Any:
        return leaf if isinstance(leaf, (TensorMethods, Variable)) else constant(leaf)

    return jax.tree_util.tree_map(convert, tree, is_leaf=is_tensor_leaf)


def _check_sequence(name: str, what: str, value: Any) -> None:
    if not isinstance(value, (tuple, list)):
        raise TypeError(
            f"{name}: {what} must be a tuple or list with one entry per argument of the "
            f"function (as in jax), got {type(value).__name__}"
        )


def jvp(fn: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """``(fn(*primals), J @ tangents)``: ``fn``'s value and its Jacobian-vector product in the
    direction ``tangents`` (one per primal, pytrees like them), as ``jax.jvp``. Float outputs
    the tangents do not reach get zeros; integer and bool outputs get None.

    >>> import tracejit as tj
    >>> y, dy = tj.jvp(lambda x: tj.sin(x) * 2.0, (tj.constant(0.0),), (tj.constant(1.0),))
    >>> float(y), float(dy)
    (0.0, 2.0)
    """
    _check_sequence("tj.jvp", "primals", primals)
    _check_sequence("tj.jvp", "tangents", tangents)
    primals = _as_tensors(tuple(primals))
    with ForwardAccumulator(primals, tuple(tangents)) as acc:
        out = fn(*primals)
    return out, acc.jvp(out, unconnected_gradients="zero")


def hvp(fn: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """The Hessian of scalar-valued ``fn`` times ``tangents`` (one per primal), in the
    primals' structure: forward mode over a gradient tape (forward-over-reverse), as in TF's
    advanced autodiff guide, at about the cost of two gradients and without the Hessian.

    >>> import tracejit as tj
    >>> x = tj.constant([1.0, 2.0])
    >>> tj.hvp(lambda x: tj.sum(x ** 3), (x,), (tj.constant([1.0, 0.0]),))[0].numpy()
    array([6., 0.], dtype=float32)
    """
    _check_sequence("tj.hvp", "primals", primals)
    _check_sequence("tj.hvp", "tangents", tangents)
    primals = _as_tensors(tuple(primals))
    with ForwardAccumulator(primals, tuple(tangents)) as acc:
        with GradientTape() as tape:
            tape.watch(primals)
            value = fn(*primals)
        if not isinstance(value, TensorMethods) or value.shape != ():
            shape = getattr(value, "shape", type(value).__name__)
            raise GradientError(
                f"tj.hvp: {getattr(fn, '__name__', 'fn')} must return a scalar tensor, got {shape}"
            )
        grads = tape.gradient(value, primals, unconnected_gradients="zero")
    return acc.jvp(grads, unconnected_gradients="zero")


__all__ = ["ForwardAccumulator", "TangentError", "hvp", "jvp"]
