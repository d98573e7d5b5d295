"""The object graph: every variable reachable from some named roots, named by its attribute path.

As in TF's object-based checkpoints, a variable is named by how it is reached, not by its
``name``: ``model/layers/0/kernel`` is attribute ``layers`` of root ``model``, item 0, attribute
``kernel``. Modules, optimizers and random generators are walked through their attributes (and
the lists, tuples and dicts in them); a variable reachable along several paths gets the shortest
(breadth-first, in attribute order), so the names do not depend on how deep a shared layer sits.

An optimizer's slot variables are named after the variable they belong to:
``optimizer/slots/model/layers/0/kernel/m``; its other variables (``iterations``) by attribute.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tracejit.eager.variable import Variable
from tracejit.module import Module
from tracejit.optim import Optimizer
from tracejit.random import Generator

TRACKABLE = (Module, Optimizer, Generator)
SLOTS = "slots"


def escape(segment: Any) -> str:
    """A path segment: '/' and '%' in dict keys are escaped so paths split unambiguously."""
    return str(segment).replace("%", "%25").replace("/", "%2F")


def children(obj: Any) -> Iterator[tuple[str, Any]]:
    """The named children of one object of the graph (attributes, items)."""
    if isinstance(obj, (list, tuple)):
        yield from ((str(i), item) for i, item in enumerate(obj))
    elif isinstance(obj, dict):
        yield from ((escape(key), item) for key, item in obj.items())
    elif isinstance(obj, TRACKABLE) or hasattr(obj, "__dict__"):
        for key, value in vars(obj).items():
            if key.startswith("__") or (isinstance(obj, Optimizer) and key == "_slots"):
                continue
            yield escape(key), value


@dataclass
class SlotRef:
    """One optimizer slot: where it would live, and what creates it if it does not exist yet."""

    optimizer: Optimizer
    variable: Variable | None  # the trained variable (None if it is not in the graph)
    slot: str
    current: Variable | None  # the slot variable, if the optimizer has created it


@dataclass
class ObjectGraph:
    """``variables``: path -> variable (each variable once, at its shortest path); ``slots``:
    path -> SlotRef for every slot that exists or that the optimizer would create for a
    variable of the graph."""

    variables: dict[str, Variable] = field(default_factory=dict)
    slots: dict[str, SlotRef] = field(default_factory=dict)
    optimizers: list[tuple[str, Optimizer]] = field(default_factory=list)
    modules: dict[str, Module] = field(default_factory=dict)

    def path_of(self, variable: Variable) -> str | None:
        for path, candidate in self.variables.items():
            if candidate is variable:
                return path
        return None

    def all_variables(self) -> dict[str, Variable]:
        """Every existing variable, slots included, path -> variable."""
        found = dict(self.variables)
        found.update({p: s.current for p, s in self.slots.items() if s.current is not None})
        return found


def build(roots: Mapping[str, Any]) -> ObjectGraph:
    """Walk the graph from ``roots`` (name -> object)."""
    graph = ObjectGraph()
    seen: set[int] = set()
    queue: deque[tuple[str, Any]] = deque(roots.items())
    while queue:
        path, obj = queue.popleft()
        if id(obj) in seen or not _walkable(obj):
            continue
        seen.add(id(obj))
        if isinstance(obj, Variable):
            graph.variables[path] = obj
            continue
        if isinstance(obj, Optimizer):
            graph.optimizers.append((path, obj))
        if isinstance(obj, Module):
            graph.modules[path] = obj
        queue.extend((f"{path}/{name}" if path else name, child) for name, child in children(obj))
    by_id = {id(v): p for p, v in graph.variables.items()}
    for opt_path, optimizer in graph.optimizers:
        _add_slots(graph, opt_path, optimizer, by_id)
    return graph


def _walkable(obj: Any) -> bool:
    return isinstance(obj, (Variable, list, tuple, dict, *TRACKABLE))


def _add_slots(graph: ObjectGraph, opt_path: str, optimizer: Optimizer, by_id: dict) -> None:
    trained = {id(v): v for v in graph.variables.values()}
    for variable_id, slots in optimizer._slots.items():
        base = by_id.get(variable_id)
        for slot_name, slot in slots.items():
            if base is None:  # trained variable not reachable: name the slot by its own name
                path = f"{opt_path}/{SLOTS}/unreachable/{escape(slot.name)}"
                graph.slots[path] = SlotRef(optimizer, None, slot_name, slot)
            else:
                path = f"{opt_path}/{SLOTS}/{base}/{slot_name}"
                graph.slots[path] = SlotRef(optimizer, trained[variable_id], slot_name, slot)
    # Slots the optimizer has not created yet (restoring before the first step).
    for base, variable in graph.variables.items():
        if id(variable) in optimizer._slots or not variable.trainable:
            continue
        for slot_name in optimizer._slot_names:
            graph.slots[f"{opt_path}/{SLOTS}/{base}/{slot_name}"] = SlotRef(
                optimizer, variable, slot_name, None
            )
