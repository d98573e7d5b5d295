"""Tensor loops for converted ``while`` and ``for`` statements.

The names a loop assigns and reads later (at its head: in its test, in the next iteration, or
after it) are its loop-carried values. They must be tensors of a fixed type: Python numbers are
converted when the loop starts (taking the body's type if the body changes it, e.g. ``s = 0``
then ``s = s + row``), other Python values must stay the same, and a value that is undefined
before the loop is an error naming it — except the lowered return value, which starts as zeros.

- ``while`` -> ``tj.while_loop``;
- ``for x in tensor`` -> ``tj.scan`` over the first axis (with ``break``: each step's body runs
  under a ``cond`` on the loop's flags);
- ``for i in tj.range(n)`` -> with Python int bounds, ``tj.scan`` over the indices (a known trip
  count: differentiable), or with ``break``/``return`` a ``tj.while_loop`` bounded by
  ``maximum_iterations``; with a symbolic bound, a ``tj.while_loop`` over a counter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tracejit.autograph.exceptions import ConversionError
from tracejit.autograph.ranges import StaticRange, TensorRange
from tracejit.autograph.staging import (
    NUMBER,
    STATIC,
    TENSOR,
    UNDEFINED,
    Replan,
    Slot,
    describe,
    kind,
    predicate,
    same_static,
    tensor_if,
    tensorish,
)
from tracejit.autograph.undefined import UndefinedReturnValue
from tracejit.eager.tensor import constant
from tracejit.eager.variable import Variable
from tracejit.ir.source import SourceLoc
from tracejit.ops import control_api as control
from tracejit.ops.creation import arange
from tracejit.ops.elementwise import greater, less, logical_and, where
from tracejit.ops.tensor_array import with_first_write
from tracejit.tracing.tracer import Tracer

GetState = Callable[[], Sequence[Any]]
SetState = Callable[[Sequence[Any]], None]


def _initial_plan(
    init: Sequence[Any], names: Sequence[str], construct: str, loc: SourceLoc | None
) -> list[Slot]:
    plan = []
    for value, name in zip(init, names):
        what = kind(value)
        if tensorish(value):
            plan.append(Slot.tensor_like(value, from_python=True))
        elif isinstance(value, UndefinedReturnValue):
            plan.append(Slot(UNDEFINED))
        elif what == UNDEFINED:
            raise ConversionError(
                f"'{name}' is assigned in this {construct} and used after it (or in its next "
                f"iteration), but it has no value before the loop. The loop's condition is a "
                f"symbolic tensor, so the loop runs in the graph and carries '{name}' from one "
                f"iteration to the next: give '{name}' a value of the right shape and dtype "
                "before the loop",
                loc,
            )
        else:
            plan.append(Slot(STATIC, value))
    return plan


class _LoopAttempt:
    """One tracing of a loop under a plan; ``leave`` checks each body's outputs against it."""

    def __init__(
        self,
        plan: list[Slot],
        init: Sequence[Any],
        rest: Sequence[Any],
        names: Sequence[str],
        set_state: SetState,
        construct: str,
        loc: SourceLoc | None,
    ) -> None:
        self.plan, self.init, self.rest, self.names = plan, init, rest, names
        self.set_state, self.construct, self.loc = set_state, construct, loc

    def loop_vars(self) -> tuple[Any, ...]:
        return tuple(
            slot.produce(value, name, self.loc)
            for slot, value, name in zip(self.plan, self.init, self.names)
            if slot.kind == TENSOR
        )

    def state(self, carried: Sequence[Any]) -> list[Any]:
        values = iter(carried)
        state = []
        for slot, value in zip(self.plan, self.init):
            state.append(next(values) if slot.kind == TENSOR else slot.value)
            if slot.kind == UNDEFINED:
                state[-1] = value
        return state + list(self.rest)

    def enter(self, carried: Sequence[Any]) -> None:
        self.set_state(self.state(carried))

    def leave(self, values: Sequence[Any]) -> tuple[Any, ...]:
        new_plan = list(self.plan)
        for j, (slot, value, name) in enumerate(zip(self.plan, values, self.names)):
            refined = with_first_write(self.init[j], value)  # a TensorArray's element shape
            if refined is not None:
                self.init[j] = refined  # the list _run holds: the next attempt starts from it
                new_plan[j] = Slot.tensor_like(refined)
                continue
            new_slot = self._check(slot, self.init[j], value, name)
            if new_slot is not None:
                new_plan[j] = new_slot
        if any(a is not b for a, b in zip(new_plan, self.plan)):
            raise Replan(self, new_plan)
        return tuple(
            slot.produce(value, name, self.loc)
            for slot, value, name in zip(self.plan, values, self.names)
            if slot.kind == TENSOR
        )

    def _check(self, slot: Slot, before: Any, after: Any, name: str) -> Slot | None:
        """None if ``after`` fits the slot; else the slot to trace again with, or an error."""
        what = kind(after)
        if slot.kind == TENSOR:
            if tensorish(after):
                if slot.fits(after):
                    return None
                changed = Slot.tensor_like(after)
                if slot.from_python and slot.same_structure(changed):
                    avals = tuple(n or o for n, o in zip(changed.avals, slot.avals))
                    return Slot(TENSOR, treedef=slot.treedef, avals=avals)
            elif isinstance(after, UndefinedReturnValue):
                return None
        elif slot.kind == STATIC:
            if what in (STATIC, NUMBER) and same_static(slot.value, after):
                return None
        elif what in (TENSOR, NUMBER):
            return Slot.tensor_like(after)
        elif what == UNDEFINED:
            return None
        raise ConversionError(
            f"'{name}' enters this {self.construct} as {describe(before)} but the loop body "
            f"makes it {describe(after)}. The loop's condition is a symbolic tensor, so the "
            "loop runs in the graph: a loop variable must keep its shape and dtype (and a "
            "Python value other than a number must not change)",
            self.loc,
        )


def _run(
    construct: str,
    get_state: GetState,
    set_state: SetState,
    names: Sequence[str],
    n_carried: int,
    loc: SourceLoc | None,
    build: Callable[[_LoopAttempt], Sequence[Any]],
) -> None:
    """Trace the loop (again while the plan changes) and set the final state."""
    state = list(get_state())
    # A Variable that the body reassigns is carried as its value (``y = v`` then ``y = y * x``)
    init = [v.read_value() if isinstance(v, Variable) else v for v in state[:n_carried]]
    rest = state[n_carried:]
    plan = _initial_plan(init, names[:n_carried], construct, loc)
    for _ in range(4):
        attempt = _LoopAttempt(plan, init, rest, names, set_state, construct, loc)
        try:
            final = build(attempt)
        except Replan as replan:
            if replan.owner is not attempt:
                raise
            plan = replan.plan
            continue
        set_state(attempt.state(final))
        return
    raise AssertionError("loop plan did not settle")


def tensor_while(
    test: Callable[[], Any],
    body: Callable[[], None],
    get_state: GetState,
    set_state: SetState,
    names: Sequence[str],
    n_carried: int,
    loc: SourceLoc | None,
) -> None:
    def build(attempt: _LoopAttempt) -> Sequence[Any]:
        def cond_fn(*carried: Any) -> Any:
            attempt.enter(carried)
            return predicate(test(), "`while` loop", loc)

        def body_fn(*carried: Any) -> tuple[Any, ...]:
            attempt.enter(carried)
            body()
            return attempt.leave(list(get_state())[:n_carried])

        return control.while_loop(cond_fn, body_fn, attempt.loop_vars())

    _run("`while` loop", get_state, set_state, names, n_carried, loc, build)


def guarded(
    extra_test: Callable[[], Any],
    run_body: Callable[[], None],
    get_state: GetState,
    set_state: SetState,
    names: Sequence[str],
    n_carried: int,
    loc: SourceLoc | None,
) -> bool:
    """Run one iteration's body if the loop's ``extra_test`` (no ``break``/``return`` yet)
    holds; under a tensor ``if`` when it is symbolic. False when a Python test says stop."""
    keep = extra_test()
    if isinstance(keep, Tracer):
        tensor_if(keep, run_body, lambda: None, get_state, set_state, names, n_carried, loc)
        return True
    if keep:
        run_body()
    return bool(keep)


def tensor_for(
    iterable: Tracer,
    extra_test: Callable[[], Any] | None,
    body: Callable[[Any], None],
    get_state: GetState,
    set_state: SetState,
    names: Sequence[str],
    n_carried: int,
    loc: SourceLoc | None,
) -> None:
    def build(attempt: _LoopAttempt) -> Sequence[Any]:
        def step(carried: tuple[Any, ...], row: Any) -> tuple[Any, None]:
            attempt.enter(carried)
            if extra_test is None:
                body(row)
            else:
                guarded(extra_test, lambda: body(row), get_state, set_state, names, n_carried, loc)
            return attempt.leave(list(get_state())[:n_carried]), None

        final, _ = control.scan(step, attempt.loop_vars(), iterable)
        return final

    if not iterable.aval.shape:
        raise ConversionError("a `for` loop cannot iterate over a 0-d tensor", loc)
    _run("`for` loop", get_state, set_state, names, n_carried, loc, build)


def tensor_range(
    bounds: TensorRange,
    extra_test: Callable[[], Any] | None,
    body: Callable[[Any], None],
    get_state: GetState,
    set_state: SetState,
    names: Sequence[str],
    n_carried: int,
    loc: SourceLoc | None,
) -> None:
    if isinstance(bounds, StaticRange) and extra_test is None:
        indices = arange(bounds.start, bounds.stop, bounds.step, dtype="int32")
        tensor_for(indices, None, body, get_state, set_state, names, n_carried, loc)
        return
    trips = len(bounds) if isinstance(bounds, StaticRange) else None
    stop, step = bounds.stop, bounds.step
    start = bounds.start if isinstance(bounds.start, Tracer) else constant(int(bounds.start))

    def in_range(i: Any) -> Any:
        if isinstance(step, int):
            return less(i, stop) if step > 0 else greater(i, stop)
        return where(greater(step, 0), less(i, stop), greater(i, stop))

    def build(attempt: _LoopAttempt) -> Sequence[Any]:
        def cond_fn(i: Any, *carried: Any) -> Any:
            attempt.enter(carried)
            keep = in_range(i)
            if extra_test is not None:
                keep = logical_and(keep, predicate(extra_test(), "`for` loop", loc))
            return keep

        def body_fn(i: Any, *carried: Any) -> tuple[Any, ...]:
            attempt.enter(carried)
            body(i)
            return (i + step, *attempt.leave(list(get_state())[:n_carried]))

        final = control.while_loop(
            cond_fn, body_fn, (start, *attempt.loop_vars()), maximum_iterations=trips
        )
        return final[1:]

    _run("`for` loop", get_state, set_state, names, n_carried, loc, build)
