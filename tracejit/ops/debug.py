"""``tj.print``: print tensors when a compiled function *runs* (and at once eagerly).

Python's ``print`` inside a ``tj.function`` runs once, while tracing, and shows symbolic tensors.
``tj.print`` is an op: tensors among its values are its inputs, everything else (strings, Python
numbers) is formatted while tracing into a template held in its params. It is an *effect*
(``pure=False``): DCE keeps it although it has no outputs, CSE never merges two prints, and it is
lowered to ``jax.debug.callback(..., ordered=True)``, so the prints of one function come out in
program order, on every call.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, TextIO

import jax
import numpy as np

from tracejit.eager.tensor import Tensor
from tracejit.eager.variable import Variable
from tracejit.ir.graph import Graph, map_nested
from tracejit.ops.registry import bind, defop
from tracejit.tracing import context
from tracejit.types import AVal


class Stream:
    """A file to print to, as an op param: compared by identity, printed by name (the IR never
    shows Python reprs)."""

    __slots__ = ("file",)

    def __init__(self, file: TextIO) -> None:
        self.file = file

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stream) and other.file is self.file

    def __hash__(self) -> int:
        return id(self.file)

    def __str__(self) -> str:
        if self.file is sys.stderr:
            return "stderr"
        name = getattr(self.file, "name", None)
        return json.dumps(name) if isinstance(name, str) else "stream"


def _format_value(value: Any) -> str:
    array = np.asarray(value)
    return str(array.item() if array.ndim == 0 and array.dtype == bool else array)


def _infer_print(*avals: AVal, template: str, end: str, file: Stream | None = None) -> tuple[()]:
    return ()


def _print(*arrays: Any, template: str, end: str, file: Stream | None = None) -> tuple[()]:
    def write(*values: Any) -> None:
        # sys.stdout is looked up when the print runs, so redirecting stdout later works.
        target = sys.stdout if file is None else file.file
        target.write(template.format(*[_format_value(v) for v in values]) + end)

    jax.debug.callback(write, *arrays, ordered=True)
    return ()


PRINT = defop(
    "print",
    _infer_print,
    _print,
    pure=False,
    foldable=False,
    differentiable=False,
    multiple_results=True,
    doc="Write values to a file when the program runs (an ordered effect).",
)

_TENSORS = (Tensor, Variable, context.Symbolic, jax.Array, np.ndarray, np.generic)


def _is_tensor(value: Any) -> bool:
    return isinstance(value, _TENSORS)


def print(  # tj.print mirrors the builtin, as tf.print does
    *values: Any, sep: str = " ", end: str = "\n", file: TextIO | None = None
) -> None:
    """Print ``values`` when the program runs: at once eagerly, on every call of a compiled
    function (Python's ``print`` there runs only while tracing). Tensors print their contents;
    strings and other Python values print as they are. Prints of one function come out in
    program order. ``file`` defaults to ``sys.stdout`` as it is when the print runs.

    On an accelerator the output may arrive after the call returns; ``jax.effects_barrier()``
    waits for it.

    >>> import tracejit as tj
    >>> @tj.function
    ... def step(x):
    ...     tj.print("x =", x, "sum:", x.sum())
    ...     return x * 2
    >>> _ = step(tj.constant([1.0, 2.0]))
    x = [1. 2.] sum: 3.0
    >>> _ = step(tj.constant([3.0, 4.0]))
    x = [3. 4.] sum: 7.0
    """
    pieces: list[str] = []
    tensors: list[Any] = []
    for value in values:
        if _is_tensor(value):
            pieces.append("{}")
            tensors.append(value)
        else:
            pieces.append(str(value).replace("{", "{{").replace("}", "}}"))
    params: dict[str, Any] = {"template": sep.join(pieces), "end": end}
    if file is not None:
        params["file"] = Stream(file)
    bind(PRINT, *tensors, **params)


def without_prints(graph: Graph) -> Graph:
    """``graph`` without its print nodes, nested bodies included (a backward pass replays the
    forward graph and must not print again)."""
    nodes = tuple(map_nested(node, without_prints) for node in graph.nodes if node.op is not PRINT)
    if len(nodes) == len(graph.nodes) and all(a is b for a, b in zip(nodes, graph.nodes)):
        return graph
    return dataclasses.replace(graph, nodes=nodes)
