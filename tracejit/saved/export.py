"""Export a concrete function as a serialized ``jax.export`` artifact: StableHLO plus its calling
convention, runnable by jax alone (no tracejit, no Python source).

Calling convention of the blob (``exp = jax.export.deserialize(blob)``):

- ``variables="arguments"`` (the default): ``exp.call(*inputs, variables)`` where ``inputs``
  are the flat tensor inputs in ``cf.inputs`` order and ``variables`` is a dict from each
  variable's name (as in the IR's ``state`` lines; a repeated name gets ``#2``, ``#3``...) to
  its current value. It returns ``(outputs, updated)``: ``outputs`` the tuple of flat outputs
  in ``cf.outputs`` order, ``updated`` a dict with the new value of each variable the function
  assigns (feed them back in the next call). ``exp.in_tree`` shows the names.
- ``variables="constants"``: the current variable values are baked into the program;
  ``exp.call(*inputs)`` returns the tuple of flat outputs. Refused for functions that assign
  variables (their updates would be lost).

Unknown dimensions become symbolic: an unknown leading dimension is the shared symbol ``batch``
(inputs batched together must agree), any other unknown dimension a symbol of its own
(``d<input>_<axis>``); pass ``polymorphic_shapes`` (one jax shape string per input, e.g.
``"(b, 4)"``, or None to keep the default for that input) to choose otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
from jax import export as jax_export

from tracejit.autodiff.py_function import host_calls
from tracejit.lowering.to_jax import graph_to_function
from tracejit.tracing.signature import symbolic_structs


def _variable_names(names: Sequence[str]) -> list[str]:
    unique: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate in unique:
            candidate, n = f"{name}#{n}", n + 1
        unique.append(candidate)
    return unique


def export(
    cf: Any,
    *,
    variables: str = "arguments",
    polymorphic_shapes: Sequence[str | None] | None = None,
    platforms: Sequence[str] | None = None,
) -> bytes:
    """Serialize concrete function ``cf`` with ``jax.export`` (see the module docstring for the
    calling convention). ``platforms`` defaults to the current backend.

    >>> import numpy as np, jax
    >>> import tracejit as tj
    >>> w = tj.Variable(np.ones((4, 2), np.float32), name="w")
    >>> f = tj.function(lambda x: x @ w)
    >>> blob = tj.saved.export(f.get_concrete_function(tj.TensorSpec([None, 4])))
    >>> exp = jax.export.deserialize(blob)
    >>> (y,), updated = exp.call(np.ones((3, 4), np.float32), {"w": np.ones((4, 2), np.float32)})
    >>> y.shape, updated
    ((3, 2), {})
    """
    if variables not in ("arguments", "constants"):
        raise ValueError(f"variables must be 'arguments' or 'constants', got {variables!r}")
    graph = cf.ir
    for node, host in host_calls(graph):
        where = f" at {node.loc}" if node.loc is not None else ""
        raise TypeError(
            f"{graph.name} cannot be exported: op {node.op.name}{where} calls the Python function "
            f"{host} ({host.what()}) when it runs, and jax.export serializes no host callbacks"
        )
    fn, const_args = graph_to_function(graph)
    n_inputs, n_outputs = len(graph.inputs), len(graph.outputs)
    updated = graph.updated_state()
    names = _variable_names(graph.state_names)
    if variables == "constants" and updated:
        assigned = ", ".join(names[i] for i in updated)
        raise ValueError(
            f"{graph.name} assigns variables ({assigned}); baking them as constants "
            "would lose the updates. Export with variables='arguments'."
        )
    current = [v._value for v in cf.variables]

    def call(*args: Any) -> Any:
        inputs = args[:n_inputs]
        state = [args[n_inputs][n] for n in names] if variables == "arguments" else current
        result = fn(*inputs, *state, *const_args)
        results = result if len(updated) + n_outputs != 1 else (result,)
        outputs = tuple(results[:n_outputs])
        if variables == "constants":
            return outputs
        return outputs, {names[i]: new for i, new in zip(updated, results[n_outputs:])}

    specs: list[Any] = symbolic_structs([v.aval for v in graph.inputs], polymorphic_shapes)
    if variables == "arguments":
        specs.append({n: v.aval.to_struct() for n, v in zip(names, graph.state)})
    try:
        exported = jax_export.export(jax.jit(call), platforms=platforms)(*specs)
    except Exception as err:
        raise ValueError(
            f"jax.export could not export {graph.name} with input shapes "
            f"{[str(s.shape) for s in specs[:n_inputs]]}: {err}\nIf symbolic dimensions are the "
            "problem, pass polymorphic_shapes=[...] or export a trace with known shapes."
        ) from err
    return bytes(exported.serialize())
