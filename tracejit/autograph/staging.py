"""Building one control-flow node for a converted statement whose condition is symbolic.

The operators hand over the statement's parts as functions and the state of the names it
assigns (``get_state``/``set_state``). This module decides, per name, what crosses the node:

- a tensor (or a pytree of tensors): a branch output / a loop-carried value;
- a Python value that is the same on every path: stays a Python value (not an output);
- a Python number that differs between branches, or changes in a loop: converted to a tensor
  (matching the dtype and shape of the tensor on the other path, when there is one);
- undefined on one path: an error naming the variable, except for the lowered return value,
  which is filled with zeros where the function has not returned yet.

The decision for a branch output needs both branches, but ``tj.cond`` traces them one after the
other. The first traced branch follows a tentative *plan*; if the second one does not fit it,
the node is traced again with the plan both branches agree on (``Replan``) — this happens only
when a Python value differs between the branches. Loops do the same when a value that entered
as a Python number (or as the undefined return value) comes out of the body as a tensor of a
different type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from tracejit.autograph.exceptions import ConversionError
from tracejit.autograph.undefined import Undefined, UndefinedReturnValue
from tracejit.eager.tensor import Tensor, constant
from tracejit.ir.source import SourceLoc
from tracejit.ops import control_api as control
from tracejit.ops.creation import full
from tracejit.ops.elementwise import cast, not_equal
from tracejit.ops.tensor_methods import is_tensor_leaf
from tracejit.tracing.tracer import Tracer
from tracejit.types import AVal

UNDEFINED, STATIC, NUMBER, TENSOR = "undefined", "static", "number", "tensor"
_NUMBERS = (bool, int, float, np.bool_, np.integer, np.floating)
_ARRAYS = (Tracer, Tensor, np.ndarray, jax.Array)


class Replan(Exception):
    """Trace the node again with ``plan`` (raised inside a branch or loop body)."""

    def __init__(self, owner: object, plan: list[Slot]) -> None:
        super().__init__("replan")
        self.owner = owner
        self.plan = plan


def kind(value: Any) -> str:
    if isinstance(value, Undefined):
        return UNDEFINED
    if isinstance(value, _NUMBERS):
        return NUMBER
    if any(
        isinstance(leaf, _ARRAYS)
        for leaf in jax.tree_util.tree_leaves(value, is_leaf=is_tensor_leaf)
    ):
        return TENSOR
    return STATIC


def tensorish(value: Any) -> bool:
    """A tensor, a number, or a pytree of tensors and numbers (``(0.0, 1.0)``)."""
    if kind(value) in (TENSOR, NUMBER):
        return True
    leaves = jax.tree_util.tree_leaves(value, is_leaf=is_tensor_leaf)
    return bool(leaves) and all(isinstance(leaf, _NUMBERS) for leaf in leaves)


def _python_aval(value: Any) -> AVal:
    if isinstance(value, (bool, np.bool_)):
        return AVal((), np.dtype(bool))
    if isinstance(value, (int, np.integer)):
        return AVal((), np.dtype(np.int32))
    return AVal((), np.dtype(np.float32))


def _aval(leaf: Any) -> AVal | None:
    if isinstance(leaf, (Tracer, Tensor)):
        return leaf.aval
    if isinstance(leaf, (np.ndarray, jax.Array)):
        return AVal(tuple(leaf.shape), np.dtype(leaf.dtype))
    return None  # a Python number inside a pytree of tensors: any type fits


def describe(value: Any) -> str:
    """``a tensor f32[3]``, ``a tuple of tensors``, ``the Python int 3``, ``undefined``."""
    what = kind(value)
    if what == UNDEFINED:
        return "undefined"
    if what == TENSOR:
        aval = _aval(value)
        return f"a tensor {aval.strong()}" if aval else f"a {type(value).__name__} of tensors"
    return f"the Python {type(value).__name__} {value!r:.40}"


@dataclass(frozen=True)
class Slot:
    """How one name crosses the node: ``tensor`` (with its pytree structure and leaf avals),
    ``static`` (one Python value on every path) or ``undefined``."""

    kind: str
    value: Any = None
    treedef: Any = None  # None: a single tensor made from a Python number
    avals: tuple[AVal | None, ...] = ()
    from_python: bool = False  # a loop value with Python numbers: its type may still change

    @staticmethod
    def tensor_like(value: Any, from_python: bool = False) -> Slot:
        """The slot of a tensorish value. Number leaves fit any type, unless ``from_python``
        (a loop's initial value), where they get their default dtype."""
        if kind(value) == NUMBER:
            aval = _python_aval(value) if from_python else None
            return Slot(TENSOR, avals=(aval,), from_python=from_python)
        leaves, treedef = jax.tree_util.tree_flatten(value, is_leaf=is_tensor_leaf)
        numbers = [isinstance(leaf, _NUMBERS) for leaf in leaves]
        avals = tuple(
            _python_aval(leaf) if number and from_python else _aval(leaf)
            for leaf, number in zip(leaves, numbers)
        )
        return Slot(TENSOR, treedef=treedef, avals=avals, from_python=from_python and any(numbers))

    @property
    def single(self) -> bool:
        return self.treedef is None or self.treedef.num_leaves == 1 and not self.treedef.children()

    def same_structure(self, other: Slot) -> bool:
        return (self.single and other.single) or self.treedef == other.treedef

    def fits(self, value: Any) -> bool:
        """Whether a tensorish ``value`` has this slot's structure, shapes and dtypes."""
        other = Slot.tensor_like(value)
        return self.same_structure(other) and all(
            a is None or b is None or (a.shape == b.shape and a.dtype == b.dtype)
            for a, b in zip(self.avals, other.avals)
        )

    def produce(self, value: Any, name: str, loc: SourceLoc | None) -> Any:
        """The value as this slot's tensors: numbers are filled to their leaf's shape and dtype,
        the undefined return value becomes zeros."""
        if isinstance(value, UndefinedReturnValue):
            leaves = [_filled(a, 0, name, loc) for a in self.avals]
            return leaves[0] if self.treedef is None else self.treedef.unflatten(leaves)
        if kind(value) == NUMBER and self.single:
            return _filled(self.avals[0], value, name, loc)
        if tensorish(value):
            leaves, treedef = jax.tree_util.tree_flatten(value, is_leaf=is_tensor_leaf)
            if not any(isinstance(leaf, _NUMBERS) for leaf in leaves):
                return value
            if self.treedef is not None and treedef == self.treedef:
                filled = [
                    _filled(a, leaf, name, loc) if isinstance(leaf, _NUMBERS) else leaf
                    for a, leaf in zip(self.avals, leaves)
                ]
                return treedef.unflatten(filled)
        raise ConversionError(f"'{name}' cannot be {describe(value)} here", loc)


def _filled(aval: AVal | None, value: Any, name: str, loc: SourceLoc | None) -> Any:
    if aval is None:
        return constant(value)
    if any(d is None for d in aval.shape):
        raise ConversionError(
            f"'{name}' needs a placeholder of type {aval.strong()} on a path where it has no "
            "tensor value, but a dimension is unknown; give it a tensor value on every path",
            loc,
        )
    return full(aval.shape, value, aval.dtype)


def _wider(a: AVal | None, b: AVal | None) -> AVal | None:
    if a is None or b is None:
        return None
    rank = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}
    return a if rank.get(a.dtype.kind, 0) >= rank.get(b.dtype.kind, 0) else b


def same_static(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object whose == raises is simply not the same value
        return False


def predicate(value: Any, construct: str, loc: SourceLoc | None) -> Any:
    """The condition as a bool scalar tensor (a scalar number means ``!= 0``, as in Python)."""
    if not isinstance(value, Tracer):
        return constant(bool(value))
    aval = value.aval
    if aval.shape != ():
        raise ConversionError(
            f"the condition of this {construct} is a tensor {aval.strong()}; a tensor "
            "condition must be a scalar (use tj.all / tj.any to reduce it)",
            loc,
        )
    if aval.dtype != np.dtype(bool):
        return not_equal(value, cast(0, aval.dtype))
    return value


# Conditionals ----------------------------------------------------------------------------------
Thunk = Callable[[], Sequence[Any]]


def tensor_if(
    cond: Any,
    body: Callable[[], None],
    orelse: Callable[[], None],
    get_state: Callable[[], Sequence[Any]],
    set_state: Callable[[Sequence[Any]], None],
    names: Sequence[str],
    n_outputs: int,
    loc: SourceLoc | None,
) -> None:
    """A converted ``if`` with a symbolic condition: both branches run from the same state; the
    first ``n_outputs`` names are merged by a ``cond`` node, the others are restored."""
    init = tuple(get_state())

    def branch(run: Callable[[], None]) -> Thunk:
        def thunk() -> Sequence[Any]:
            set_state(init)
            run()
            return tuple(get_state())[:n_outputs]

        return thunk

    merged = cond_values(
        cond, (branch(body), branch(orelse)), init[:n_outputs], names[:n_outputs], "`if`", loc
    )
    set_state((*merged, *init[n_outputs:]))


def cond_values(
    pred: Any,
    branches: tuple[Thunk, Thunk],
    init: Sequence[Any],
    names: Sequence[str],
    construct: str,
    loc: SourceLoc | None,
) -> list[Any]:
    """Trace both ``branches`` (each returns one value per name) into one ``cond`` node; the
    merged values, one per name."""
    pred = predicate(pred, construct, loc)
    plan: list[Slot] | None = None
    for _ in range(3):
        attempt = _CondAttempt(plan, init, names, construct, loc)
        try:
            outputs = control.cond(
                pred, attempt.branch(0, branches[0]), attempt.branch(1, branches[1])
            )
        except Replan as replan:
            if replan.owner is not attempt:
                raise
            plan = replan.plan
            continue
        return attempt.merge(outputs)
    raise AssertionError("conditional plan did not settle")


_SIDES = ("true branch", "false branch")


class _CondAttempt:
    def __init__(
        self,
        plan: list[Slot] | None,
        init: Sequence[Any],
        names: Sequence[str],
        construct: str,
        loc: SourceLoc | None,
    ) -> None:
        self.plan, self.final = plan, plan is not None
        self.init, self.names, self.construct, self.loc = init, names, construct, loc
        self.records: dict[int, list[Any]] = {}

    def branch(self, which: int, thunk: Thunk) -> Callable[[], tuple[Any, ...]]:
        def run() -> tuple[Any, ...]:
            values = list(thunk())
            self.records[which] = values
            if self.plan is None:
                self.plan = [self._tentative(v, i) for v, i in zip(values, self.init)]
            elif not self.final and not all(self._accepts(s, v) for s, v in zip(self.plan, values)):
                raise Replan(self, self._refine())
            return tuple(
                slot.produce(v, name, self.loc)
                for slot, v, name in zip(self.plan, values, self.names)
                if slot.kind == TENSOR
            )

        return run

    def _tentative(self, value: Any, before: Any) -> Slot:
        what = kind(value)
        if what == TENSOR:
            return Slot.tensor_like(value)
        if what == NUMBER and kind(before) == TENSOR and Slot.tensor_like(before).single:
            return Slot.tensor_like(before)
        return Slot(UNDEFINED) if what == UNDEFINED else Slot(STATIC, value)

    def _accepts(self, slot: Slot, value: Any) -> bool:
        what = kind(value)
        if slot.kind == STATIC:
            return what in (STATIC, NUMBER) and same_static(slot.value, value)
        if slot.kind == UNDEFINED:
            return what == UNDEFINED
        if tensorish(value):
            return slot.fits(value)
        return isinstance(value, UndefinedReturnValue)

    def _refine(self) -> list[Slot]:
        return [
            self._agree(name, self.records[0][j], self.records[1][j])
            for j, name in enumerate(self.names)
        ]

    def _agree(self, name: str, a: Any, b: Any) -> Slot:
        """The slot both branches' values fit, or the error saying why there is none."""
        kinds = (kind(a), kind(b))
        if kinds == (UNDEFINED, UNDEFINED):
            return Slot(UNDEFINED)
        if UNDEFINED in kinds:
            side = kinds.index(UNDEFINED)
            defined = (a, b)[1 - side]
            if not isinstance((a, b)[side], UndefinedReturnValue):
                raise self._one_branch_error(name, defined_in=_SIDES[1 - side])
            if tensorish(defined):
                return Slot.tensor_like(defined, from_python=True)
            raise ConversionError(
                f"in the {self.construct}, the {_SIDES[1 - side]} returns "
                f"{describe(defined)} and the {_SIDES[side]} does not return yet: with a "
                "symbolic condition a function must return a tensor on every path",
                self.loc,
            )
        if TENSOR in kinds:
            tensor, other = (a, b) if kinds[0] == TENSOR else (b, a)
            slot = Slot.tensor_like(tensor)
            if tensorish(other) and slot.fits(other):
                return slot
            raise self._mismatch(name, a, b)
        if same_static(a, b):
            return Slot(STATIC, a)
        if tensorish(a) and tensorish(b):  # different Python numbers: tensors of a wide type
            first, second = Slot.tensor_like(a, True), Slot.tensor_like(b, True)
            if first.same_structure(second):
                avals = tuple(map(_wider, first.avals, second.avals))
                return Slot(TENSOR, treedef=first.treedef, avals=avals)
        raise self._mismatch(name, a, b)

    def _one_branch_error(self, name: str, defined_in: str) -> ConversionError:
        other = _SIDES[1 - _SIDES.index(defined_in)]
        return ConversionError(
            f"'{name}' is defined in the {defined_in} of this {self.construct} but not in the "
            f"{other}, and it is used afterwards. The condition is a symbolic tensor, so both "
            f"branches are traced and must define the same variables: define '{name}' before "
            f"the `if`, or in the {other} too",
            self.loc,
        )

    def _mismatch(self, name: str, a: Any, b: Any) -> ConversionError:
        return ConversionError(
            f"'{name}' is {describe(a)} in the true branch of this {self.construct} but "
            f"{describe(b)} in the false branch; with a symbolic condition both branches must "
            "give it the same type (a tensor of one shape and dtype, or one Python value)",
            self.loc,
        )

    def merge(self, outputs: Sequence[Any]) -> list[Any]:
        assert self.plan is not None
        produced = iter(outputs)
        merged = []
        for j, slot in enumerate(self.plan):
            if slot.kind == TENSOR:
                merged.append(next(produced))
            elif slot.kind == STATIC:
                merged.append(slot.value)
            else:
                merged.append(self.records.get(0, self.init)[j])
        return merged
