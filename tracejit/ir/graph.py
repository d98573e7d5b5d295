"""tracejit's IR: a small SSA graph of plain data.

- ``Value``: one SSA value with its aval and a stable id, printed ``%id``. Identity is the object.
- ``Node``: one op application — op, input values, params, output values, user source location.
- ``Graph``: inputs, constants, state, nodes in topological order, outputs and provenance (which
  passes produced it).

Derived facts (users of a value, liveness) are computed by functions, never stored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tracejit.ir.source import SourceLoc
from tracejit.types import AVal

if TYPE_CHECKING:
    from tracejit.ops.registry import OpDef


class Value:
    """An SSA value. ``id`` is assigned once (``"3"`` or ``"c0"`` for constants) and never
    renumbered, so dumps before and after a pass line up."""

    __slots__ = ("aval", "id")

    def __init__(self, aval: AVal, id: str) -> None:
        self.aval = aval
        self.id = id

    def __repr__(self) -> str:
        return f"%{self.id}: {self.aval}"


class Params(Mapping[str, Any]):
    """Immutable, sorted, hashable op parameters (so ``(op, inputs, params)`` is a CSE key)."""

    __slots__ = ("_items", "_hash")

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: tuple[tuple[str, Any], ...] = tuple(sorted(pairs))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self._items)
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Params) and self._items == other._items

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def __repr__(self) -> str:
        return f"Params({dict(self._items)!r})"


@dataclass(eq=False, slots=True)
class Node:
    """One op application. ``outputs`` are the values this node defines."""

    op: OpDef
    inputs: tuple[Value, ...]
    params: Params
    outputs: tuple[Value, ...]
    loc: SourceLoc | None = None


@dataclass(eq=False)
class Graph:
    """A function in SSA form.

    ``consts`` pairs each constant value with the array it stands for. Lifted variables are
    *state*: ``state[i]`` is variable ``state_names[i]``'s value when the call starts and
    ``state_outputs[i]`` its value when it ends (the same Value when it is not assigned).
    ``provenance`` lists the stages that produced the graph (``["traced", "cse(-1)"]``).
    """

    name: str
    inputs: tuple[Value, ...]
    consts: tuple[tuple[Value, np.ndarray], ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Value, ...]
    state: tuple[Value, ...] = ()
    state_outputs: tuple[Value, ...] = ()
    state_names: tuple[str, ...] = ()
    provenance: tuple[str, ...] = ("traced",)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        from tracejit.ir.printer import format_graph

        return format_graph(self)

    def format(self, *, source: bool = True, types: bool = True, max_const: int = 8) -> str:
        """The text form of the graph; ``source`` adds user-line comments, ``types`` avals."""
        from tracejit.ir.printer import format_graph

        return format_graph(self, source=source, types=types, max_const=max_const)

    def to_dot(self, *, max_label: int = 48) -> str:
        """Graphviz DOT text of the graph (nested graphs as clusters); see ``tracejit.ir.dot``."""
        from tracejit.ir.dot import to_dot

        return to_dot(self, max_label=max_label)

    def render(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Draw the graph to ``path`` (svg, png or pdf; by default the path's suffix) with the
        Graphviz ``dot`` program, which must be installed (``apt-get install graphviz``)."""
        from tracejit.ir.dot import render

        return render(self, path, format)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython display
        printer.text(str(self))

    def __repr__(self) -> str:
        return f"<tracejit Graph {self.name}: {len(self.nodes)} nodes>"

    def get_operations(self) -> list[Node]:
        """The top-level nodes, in order (TF's ``Graph.get_operations``; nested bodies are
        params of their control-flow node, as TF keeps them in function definitions)."""
        return list(self.nodes)

    def node_count(self, nested: bool = True) -> int:
        """How many nodes the graph holds, by default counting those of nested bodies too
        (a loop unrolled by Python grows this; a ``while_loop`` node does not)."""
        count = len(self.nodes)
        if nested:
            for node in self.nodes:
                count += sum(body.node_count() for _, body in nested_graphs(node))
        return count

    def updated_state(self) -> list[int]:
        """Indices of the state slots whose variable the graph assigns."""
        return [i for i, (a, b) in enumerate(zip(self.state, self.state_outputs)) if a is not b]

    def verify(self) -> None:
        """Raise ``IRVerificationError`` if an invariant does not hold."""
        from tracejit.ir.verify import verify

        verify(self)


def nested_graphs(node: Node) -> list[tuple[str, Graph]]:
    """The graphs a node holds in its params (a Graph, or a tuple of Graphs), labelled."""
    found: list[tuple[str, Graph]] = []
    for key, value in node.params.items():
        if isinstance(value, Graph):
            found.append((key, value))
        elif isinstance(value, tuple) and value and all(isinstance(g, Graph) for g in value):
            found.extend((f"{key}[{i}]", g) for i, g in enumerate(value))
    return found


def map_nested(node: Node, transform: Callable[[Graph], Graph]) -> Node:
    """``node`` with ``transform`` applied to each graph in its params (same node if none
    changed)."""
    items: dict[str, Any] = {}
    changed = False
    for key, value in node.params.items():
        if isinstance(value, Graph):
            new: Any = transform(value)
        elif isinstance(value, tuple) and value and all(isinstance(g, Graph) for g in value):
            new = tuple(transform(g) for g in value)
        else:
            new = value
        changed = changed or new is not value and new != value
        items[key] = new
    if not changed:
        return node
    from dataclasses import replace

    return replace(node, params=Params(items))


def evaluate(graph: Graph, args: Sequence[Any], apply: Callable[..., Any]) -> list[Any]:
    """Run ``graph`` on ``args`` with ``apply(node, *inputs)`` computing each node: the one env
    loop behind lowering (apply = the op's impl), replay through ``bind``, and nested bodies."""
    env: dict[Value, Any] = dict(zip(graph.inputs, args))
    env.update(graph.consts)
    for node in graph.nodes:
        out = apply(node, *[env[v] for v in node.inputs])
        env.update(zip(node.outputs, out if node.op.multiple_results else (out,)))
    return [env[v] for v in graph.outputs]


def users(graph: Graph) -> dict[Value, list[Node]]:
    """Map each value to the nodes that read it (derived on demand, never stored)."""
    result: dict[Value, list[Node]] = {}
    for node in graph.nodes:
        for value in node.inputs:
            result.setdefault(value, []).append(node)
    return result


def has_effects(node: Node) -> bool:
    """Whether running ``node`` does more than compute its outputs: an impure op (a print), or
    a node whose nested graphs hold one (a loop that prints)."""
    if not node.op.pure:
        return True
    return any(has_effects(inner) for _, body in nested_graphs(node) for inner in body.nodes)


def live_nodes(graph: Graph) -> list[Node]:
    """Nodes whose outputs reach the graph outputs, or that have effects (``has_effects``)."""
    live: set[Value] = set(graph.outputs) | set(graph.state_outputs)
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if any(out in live for out in node.outputs) or has_effects(node):
            kept.append(node)
            live.update(node.inputs)
    kept.reverse()
    return kept
