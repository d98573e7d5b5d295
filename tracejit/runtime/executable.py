"""The compiled side of a concrete function: call the jitted graph on flat input arrays (and the
current values of the variables it uses), write assigned variables back, and rebuild the Python
function's output structure with eager tensors.

``run`` is the cached-call hot path: a closure specialized at construction so that a call costs
one jax.jit dispatch plus wrapping the outputs.

Donation: the buffers of variables the graph assigns are donated to XLA, so an update needs no
second copy of the parameters. A variable whose buffer an eager read handed out
(``Variable.exposed``) is not donated on that call, so a tensor the user holds stays valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from tracejit.eager.tensor import wrap
from tracejit.eager.variable import Variable
from tracejit.ir.graph import Graph
from tracejit.lowering.to_jax import graph_to_function
from tracejit.tracing.signature import unflatten
from tracejit.types import AVal


class Executable:
    """``executable.run(leaves)`` runs the graph on the flat tensor leaves of a call."""

    def __init__(self, graph: Graph, out_structure: Any, variables: Sequence[Variable]) -> None:
        self.graph = graph
        self.variables = tuple(variables)
        fn, self.const_args = graph_to_function(graph)
        updated = graph.updated_state()
        self.updated_variables = tuple(self.variables[i] for i in updated)
        first_state = len(graph.inputs)
        self.donated_argnums = tuple(first_state + i for i in updated)
        self.jitted = jax.jit(fn)
        self.jitted_donating = (
            jax.jit(fn, donate_argnums=self.donated_argnums)
            if self.donated_argnums
            else self.jitted
        )
        self.unpack = _unpacker(out_structure, len(graph.outputs))
        self.n_outputs = len(graph.outputs)
        self.run = self._make_run()

    def _make_run(self) -> Callable[[list[Any]], Any]:
        jitted, const_args, unpack = self.jitted, self.const_args, self.unpack
        if not self.variables:
            if const_args:
                return lambda leaves: unpack(jitted(*leaves, *const_args))
            return lambda leaves: unpack(jitted(*leaves))
        return self.run_with_state

    def run_with_state(self, leaves: list[Any], donate: bool = True) -> Any:
        state = [v._value for v in self.variables]
        if donate and not any(v.exposed for v in self.updated_variables):
            result = self.jitted_donating(*leaves, *state, *self.const_args)
        else:
            result = self.jitted(*leaves, *state, *self.const_args)
        if not self.updated_variables:
            return self.unpack(result)
        results = result if isinstance(result, tuple) else (result,)
        for variable, array in zip(self.updated_variables, results[self.n_outputs :]):
            variable._value = array
            variable.exposed = False
        outputs = results[: self.n_outputs]
        return self.unpack(outputs[0] if self.n_outputs == 1 else outputs)

    def lower(self, leaves: list[Any]) -> Any:
        """jax's ``Lowered`` for these leaves (arrays or ShapeDtypeStructs)."""
        state = [v._value for v in self.variables]
        return self.jitted_donating.lower(*leaves, *state, *self.const_args)


def _unpacker(structure: Any, n_outputs: int) -> Callable[[Any], Any]:
    """A function from the jitted call's result to the user's output structure (specialized
    for the common single-tensor case)."""
    if isinstance(structure, AVal):
        return wrap
    if n_outputs == 1:
        return lambda out: unflatten(structure, iter((wrap(out),)))
    return lambda outs: unflatten(structure, (wrap(o) for o in outs))
