"""The op registry: one ``OpDef`` per op holds everything about it, and ``bind`` is the only door.

``defop("exp", infer=..., impl=..., elementwise=True)`` declares an op once:

- ``infer(*avals, **params)`` gives output avals (and raises the clear error when inputs don't fit);
- ``impl(*arrays, **params)`` is a jax function — the *same* callable runs eagerly, folds constants
  and is lowered inside ``jax.jit``, so the three can never disagree;
- ``vjp`` (added by the autodiff issue) is written with tracejit ops;
- ``jvp`` (forward mode, a keyword of ``defop``) is written with tracejit ops too;
- flags are what passes read: ``elementwise``/``fusible`` (fusion), ``pure`` (CSE/DCE),
  ``commutative`` (CSE), ``foldable``/``random`` (constant folding), ``subgraphs`` (nested graph
  walks).

``bind(op, *args, **params)`` routes a call to ``context.state.interpreter``: inside a trace a
GraphBuilder emits a node into the graph being built; otherwise the eager interpreter runs
``impl`` at once on concrete arrays. Then each tape in ``context.state.tapes`` records the op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracejit.errors import OpError, TracejitError, trimmed
from tracejit.tracing import context
from tracejit.types import AVal

InferFn = Callable[..., "AVal | tuple[AVal, ...]"]


@dataclass(eq=False, frozen=True)
class OpDef:
    """Everything about one op. Compared and hashed by identity."""

    name: str
    infer: InferFn
    impl: Callable[..., Any]
    vjp: Callable[..., Any] | None = None
    # Forward mode: ``jvp(tangents, *primals, out, **params)`` -> the result's tangent(s); see
    # tracejit.ops.jvp_rules. None: derived from the VJP (tracejit.autodiff.forward_rules).
    jvp: Callable[..., Any] | None = None
    # tj.vmap: ``batch(args, dims, **params) -> (outputs, out_dims)``, written with tracejit ops
    # (``dims[i]``: the batch axis of ``args[i]``, or None); or the reason the op has none.
    batch: Callable[..., Any] | None = None
    not_batchable: str = ""
    elementwise: bool = False
    fusible: bool = False  # may join an elementwise fusion group (elementwise ops, broadcasts)
    pure: bool = True
    commutative: bool = False
    foldable: bool = True
    differentiable: bool = True
    random: bool = False
    subgraphs: bool = False
    multiple_results: bool = False
    # The VJP of a multiple-result op gets None (not zeros) for outputs that got no cotangent.
    none_cotangents: bool = False
    doc: str = ""

    def infer_outputs(self, avals: tuple[AVal, ...], params: Mapping[str, Any]) -> tuple[AVal, ...]:
        """Output avals as a tuple, whatever the arity of the op."""
        out = self.infer(*avals, **params)
        return tuple(out) if self.multiple_results else (out,)

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def __hash__(self) -> int:
        return id(self)


_REGISTRY: dict[str, OpDef] = {}


def defop(
    name: str,
    infer: InferFn,
    impl: Callable[..., Any],
    vjp: Callable[..., Any] | None = None,
    **flags: Any,
) -> OpDef:
    """Declare an op. Raises if the name is taken: an op has exactly one entry."""
    if name in _REGISTRY:
        raise ValueError(f"op {name!r} is already registered")
    flags.setdefault("fusible", flags.get("elementwise", False))
    op = OpDef(name, infer, impl, vjp, **flags)
    _REGISTRY[name] = op
    return op


def set_batch_rule(op: OpDef, rule: Callable[..., Any] | None, reason: str = "") -> None:
    """Give ``op`` its batching rule for ``tj.vmap`` (or, with ``rule=None``, the reason it has
    none). The generic rules live in ``tracejit.ops.batching``, installed after every op file
    has declared its ops."""
    object.__setattr__(op, "batch", rule)
    object.__setattr__(op, "not_batchable", reason)


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r}; known ops: {', '.join(sorted(_REGISTRY))}") from None


def all_ops() -> dict[str, OpDef]:
    """A copy of the registry, name -> OpDef."""
    return dict(_REGISTRY)


# Operands that are plain data, converted to tensors (by tracejit.eager.tensor.constant) before
# a tape records them.
RAW_OPERANDS: frozenset[type] = frozenset({list, tuple, np.ndarray})
to_tensor: Callable[[Any], Any] = lambda value: value  # noqa: E731 - replaced at import time


def bind(op: OpDef, *args: Any, **params: Any) -> Any:
    """Apply ``op`` to ``args``: the innermost interpreter runs it (a GraphBuilder emits a node,
    the eager interpreter runs ``impl`` now); then each active gradient tape records it."""
    state = context.state
    tapes = state.tapes
    if tapes and any(type(a) in RAW_OPERANDS for a in args):
        # Converted once, here, so the tapes record (and the VJP rules see) tensors, never a
        # Python list or numpy array.
        args = tuple(to_tensor(a) if type(a) in RAW_OPERANDS else a for a in args)
    try:  # free in Python 3.11+ unless it raises
        out = state.interpreter.bind(op, args, params)
    except TracejitError as err:  # the user's line is in the message; drop our frames
        trimmed(err)
        raise
    for tape in tapes:
        tape.record_op(op, args, params, out)
    return out


def apply_impl(node: Any, *args: Any) -> Any:
    """Run an IR node with its op's jax implementation (lowering, folding, nested bodies)."""
    return node.op.impl(*args, **node.params)


def apply_bind(node: Any, *args: Any) -> Any:
    """Run an IR node through ``bind``: eagerly, recorded on tapes, or re-emitted into the
    graph being traced (inlining)."""
    return bind(node.op, *args, **node.params)


def check(condition: bool, op: str, message: str) -> None:
    """Raise the op's clear error when ``condition`` is false (used by infer rules)."""
    if not condition:
        raise OpError(op, message)
