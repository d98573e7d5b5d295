"""GradientTape: reverse-mode autodiff by recording ops as they run (define-by-run).

Every ``bind`` tells the active tapes what it computed. A tape keeps an entry — inputs, outputs
and a VJP closure — for each op that touches a tensor it tracks. ``gradient`` walks the entries
backwards, calling each op's VJP rule from its registry entry. The rules are written with
tracejit ops, so the backward pass runs eagerly under an eager tape and becomes IR nodes when the
tape is used inside a ``tj.function``; and a tape active while another computes gradients records
the backward ops too, which is how nested tapes give higher-order gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from tracejit.eager.variable import Variable
from tracejit.errors import TracejitError
from tracejit.ops.registry import OpDef
from tracejit.ops.tensor_methods import TensorMethods, is_tensor_leaf
from tracejit.tracing import context

Vjp = Callable[[tuple[Any, ...]], Sequence[Any]]


class GradientError(TracejitError):
    """A gradient was asked for in a way that cannot work (tape reused, non-scalar...)."""


class TapeUsedError(GradientError, RuntimeError):
    """``gradient()`` called again on a non-persistent tape (a ``RuntimeError``, as in TF)."""


def differentiable_dtype(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and bool(jnp.issubdtype(dtype, jnp.inexact))


class _Entry:
    __slots__ = ("inputs", "outputs", "vjp")

    def __init__(self, inputs: Sequence[Any], outputs: Sequence[Any], vjp: Vjp) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.vjp = vjp


class GradientTape:
    """Records operations for automatic differentiation.

    >>> import tracejit as tj
    >>> x = tj.constant(3.0)
    >>> with tj.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x * x
    >>> float(tape.gradient(y, x))
    6.0
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._tracked: dict[int, Any] = {}  # id -> object (kept alive so ids stay unique)
        self._variable_reads: dict[int, list[Any]] = {}  # id(variable) -> tensors read from it
        self._watched_variables: dict[int, Variable] = {}
        self._entries: list[_Entry] = []
        self._recording = False
        self._used = False

    # Recording -------------------------------------------------------------------------------
    def __enter__(self) -> GradientTape:
        context.state.tapes = context.state.tapes + (self,)
        self._recording = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._recording = False
        context.state.tapes = tuple(t for t in context.state.tapes if t is not self)

    @contextlib.contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Ops run inside this block are not recorded."""
        previous, self._recording = self._recording, False
        try:
            yield
        finally:
            self._recording = previous

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._entries.clear()
        self._tracked.clear()
        self._variable_reads.clear()
        self._watched_variables.clear()

    def watch(self, tensors: Any) -> None:
        """Track tensors (or Variables) as gradient sources; accepts a pytree."""
        for leaf in jax.tree_util.tree_leaves(tensors, is_leaf=is_tensor_leaf):
            if isinstance(leaf, Variable):
                self._watched_variables[id(leaf)] = leaf
            elif isinstance(leaf, TensorMethods):
                self._tracked[id(leaf)] = leaf
            else:
                raise TypeError(
                    f"GradientTape.watch expects tensors or Variables, got {type(leaf).__name__}"
                )

    def watched_variables(self) -> list[Variable]:
        return list(self._watched_variables.values())

    def _is_tracked(self, x: Any) -> bool:
        if id(x) in self._tracked:
            return True
        if isinstance(x, Variable):
            if id(x) in self._watched_variables:
                return True
            if self.watch_accessed_variables and x.trainable:
                self._watched_variables[id(x)] = x
                return True
        return False

    def record_op(
        self, op: OpDef, args: tuple[Any, ...], params: dict[str, Any], out: Any
    ) -> None:
        """Called by ``bind`` after every op while this tape is in ``context.state.tapes``."""
        if not op.differentiable or not self._recording:
            return
        outputs = out if op.multiple_results else (out,)
        self.record(args, outputs, lambda cts: op_vjp(op, args, params, outputs, cts))

    def record(self, inputs: Sequence[Any], outputs: Sequence[Any], vjp: Vjp) -> None:
        """Keep an entry if any input is tracked; its float outputs become tracked."""
        if not self._recording or not any(self._is_tracked(x) for x in inputs):
            return
        self._entries.append(_Entry(tuple(inputs), tuple(outputs), vjp))
        for out in outputs:
            if differentiable_dtype(out):
                self._tracked[id(out)] = out

    def note_variable_read(self, variable: Variable, tensor: Any) -> None:
        if self._recording and self._is_tracked(variable):
            self._tracked[id(tensor)] = tensor
            self._variable_reads.setdefault(id(variable), []).append(tensor)

    # Gradients -------------------------------------------------------------------------------
    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """Gradients of ``target`` (a tensor or pytree; non-scalar targets are summed) with
        respect to ``sources`` (tensors and Variables, any pytree), in the sources' structure.
        Unconnected sources give None, or zeros with ``unconnected_gradients="zero"``."""
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError("unconnected_gradients must be 'none' or 'zero'")
        if self._used and not self.persistent:
            raise TapeUsedError(
                "gradient() was already called on this non-persistent GradientTape; create it "
                "with tj.GradientTape(persistent=True) to compute several gradients"
            )
        self._used = True
        from tracejit.autodiff.backward import backward

        targets = jax.tree_util.tree_leaves(target, is_leaf=is_tensor_leaf)
        seeds = (
            None
            if output_gradients is None
            else jax.tree_util.tree_leaves(output_gradients, is_leaf=is_tensor_leaf)
        )
        leaves, treedef = jax.tree_util.tree_flatten(sources, is_leaf=is_tensor_leaf)
        with self.stop_recording():
            cts = backward(self._entries, targets, seeds)
            grads = [self._gradient_of(leaf, cts, unconnected_gradients) for leaf in leaves]
        if not self.persistent:  # free the recording; watched_variables() still answers, as TF
            watched = dict(self._watched_variables)
            self.reset()
            self._watched_variables = watched
        return jax.tree_util.tree_unflatten(treedef, grads)

    def jacobian(
        self,
        target: Any,
        sources: Any,
        unconnected_gradients: str = "none",
        parallel_iterations: int | None = None,
        experimental_use_pfor: bool = True,
    ) -> Any:
        """The full Jacobian of ``target`` (one tensor) with respect to each of ``sources``
        (tensors and Variables, any nest): for a source of shape S, a tensor of shape
        ``target.shape + S`` (TF's ``GradientTape.jacobian``). Unconnected sources give None,
        or zeros with ``unconnected_gradients="zero"``. Computed by one backward pass batched
        with ``tj.vmap`` over the target's one-hot cotangents (``parallel_iterations`` and
        ``experimental_use_pfor`` are accepted for TF compatibility; it is always vectorized).

        >>> import tracejit as tj
        >>> x = tj.constant([1.0, 2.0])
        >>> with tj.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * x
        >>> tape.jacobian(y, x).numpy()
        array([[2., 0.],
               [0., 4.]], dtype=float32)
        """
        from tracejit.autodiff.jacobian import jacobian

        self._start_gradient(unconnected_gradients)
        try:
            return jacobian(self, target, sources, unconnected_gradients)
        finally:
            self._end_gradient()

    def batch_jacobian(
        self,
        target: Any,
        source: Any,
        unconnected_gradients: str = "none",
        parallel_iterations: int | None = None,
        experimental_use_pfor: bool = True,
    ) -> Any:
        """Per-example Jacobians (TF's ``GradientTape.batch_jacobian``): for ``target`` of shape
        ``(B, *y)`` and ``source`` of shape ``(B, *x)`` where example b of the target depends
        only on example b of the source, the tensor of shape ``(B, *y, *x)`` holding each
        example's Jacobian. One backward pass batched with ``tj.vmap`` over ``y``'s one-hot
        cotangents.

        >>> import tracejit as tj
        >>> x = tj.constant([[1.0, 2.0], [3.0, 4.0]])
        >>> with tj.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * x
        >>> tape.batch_jacobian(y, x).numpy()[1]
        array([[6., 0.],
               [0., 8.]], dtype=float32)
        """
        from tracejit.autodiff.jacobian import batch_jacobian

        self._start_gradient(unconnected_gradients)
        try:
            return batch_jacobian(self, target, source, unconnected_gradients)
        finally:
            self._end_gradient()

    def _start_gradient(self, unconnected_gradients: str) -> None:
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError("unconnected_gradients must be 'none' or 'zero'")
        if self._used and not self.persistent:
            raise TapeUsedError(
                "a gradient was already computed with this non-persistent GradientTape; "
                "create it with tj.GradientTape(persistent=True) to compute several"
            )
        self._used = True

    def _end_gradient(self) -> None:
        if not self.persistent:
            watched = dict(self._watched_variables)
            self.reset()
            self._watched_variables = watched

    def _gradient_of(self, source: Any, cts: dict[int, Any], unconnected: str) -> Any:
        from tracejit.ops.creation import zeros_like

        # Only what the tape watched has a gradient, as in TF: a non-trainable Variable (or a
        # tensor never watched) that an op happened to read gets None, not the cotangent the
        # op's VJP computed for it.
        if isinstance(source, Variable):
            # (A trainable Variable read where the tape was paused, e.g. inside a custom
            # gradient's body, is still one the tape watches by access, as TF's.)
            watched = id(source) in self._watched_variables or (
                self.watch_accessed_variables and source.trainable
            )
        else:
            watched = id(source) in self._tracked
        if not watched:
            return zeros_like(source) if unconnected == "zero" else None
        found = [cts[id(source)]] if id(source) in cts else []
        if isinstance(source, Variable):
            found += [cts[id(t)] for t in self._variable_reads.get(id(source), []) if id(t) in cts]
        if not found:
            return zeros_like(source) if unconnected == "zero" else None
        total = found[0]
        for g in found[1:]:
            total = total + g
        return total


def op_vjp(
    op: OpDef,
    args: tuple[Any, ...],
    params: dict[str, Any],
    outputs: tuple[Any, ...],
    cts: tuple[Any, ...],
) -> Sequence[Any]:
    """Apply the op's registered VJP rule: ``vjp(ct, *primals, out=out, **params)``."""
    if op.vjp is None:
        raise GradientError(f"op '{op.name}' has no gradient rule (VJP) yet")
    if op.multiple_results and op.none_cotangents:
        return op.vjp(cts, *args, out=outputs, **params)
    if op.multiple_results:
        from tracejit.ops.creation import zeros_like

        full = tuple(zeros_like(o) if c is None else c for c, o in zip(cts, outputs))
        return op.vjp(full, *args, out=outputs, **params)
    return op.vjp(cts[0], *args, out=outputs[0], **params)


def notify_variable_read(variable: Variable, tensor: Any) -> None:
    for tape in context.state.tapes:
        tape.note_variable_read(variable, tensor)

