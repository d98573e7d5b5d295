"""The compiled side of a concrete function: call the jitted graph on flat input arrays (and the
current values of the variables it uses), write assigned variables back, and rebuild the Python
function's output structure with eager tensors.

``run`` is the cached-call hot path: a closure specialized at construction so that a call costs
one jax.jit dispatch plus wrapping the outputs. The first call goes through ``_first_run``
instead, which times jax's lowering and XLA's compile (``compile_seconds``) and then installs
the fast closure.

Donation: the buffers of variables the graph assigns are donated to XLA, so an update needs no
second copy of the parameters. A buffer is donated only while its variable owns it alone: one
that may be visible elsewhere (``Variable.exposed``: it came from a tensor or another variable,
or a read handed it out) is not donated on that call, so a tensor the user holds stays valid.

Threads: a call holds the locks of all the variables it uses (taken in creation order, so two
calls never deadlock) around reading their values, the compiled call and the write-back, so
concurrent calls that update the same variables are serialized and no update is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax

from tracejit import config
from tracejit.eager.tensor import wrap
from tracejit.eager.variable import Variable
from tracejit.ir.graph import Graph
from tracejit.lowering.to_jax import graph_to_function
from tracejit.runtime.sharding import jit_options
from tracejit.tracing.signature import unflatten
from tracejit.types import AVal


class Executable:
    """``executable.run(leaves)`` runs the graph on the flat tensor leaves of a call."""

    def __init__(
        self,
        graph: Graph,
        out_structure: Any,
        variables: Sequence[Variable],
        in_shardings: Sequence[Any] | None = None,
        out_shardings: Sequence[Any] | None = None,
    ) -> None:
        self.graph = graph
        self.variables = tuple(variables)
        unique = {id(v): v for v in self.variables}.values()
        self.locks = tuple(v.lock for v in sorted(unique, key=lambda v: v.serial))
        fn, self.const_args = graph_to_function(graph)
        updated = graph.updated_state()
        self.updated_variables = tuple(self.variables[i] for i in updated)
        first_state = len(graph.inputs)
        self.donated_argnums = tuple(first_state + i for i in updated)
        # Shardings (tj.distribute): the given ones; variables spanning devices keep theirs.
        options = jit_options(
            graph, self.variables, len(self.const_args), in_shardings, out_shardings
        )
        self.jitted = jax.jit(fn, **options)
        self.jitted_donating = (
            jax.jit(fn, donate_argnums=self.donated_argnums, **options)
            if self.donated_argnums
            else self.jitted
        )
        self.unpack = _unpacker(out_structure, len(graph.outputs))
        self.n_outputs = len(graph.outputs)
        # The first call traces the lowered function with jax and compiles it with XLA: it is
        # timed (``compile_seconds``), then ``run`` becomes the plain fast path.
        self.compile_seconds: float | None = None
        self._run_fast = self._make_run()
        self.run: Callable[[list[Any]], Any] = self._first_run

    def _first_run(self, leaves: list[Any]) -> Any:
        start = time.perf_counter()
        result = self._run_fast(leaves)
        self.compile_seconds = time.perf_counter() - start
        self.run = self._run_fast
        if config.logging_enabled("compile"):
            ins = ", ".join(str(v.aval) for v in self.graph.inputs)
            config.logger.info(
                "compiled %s(%s) in %.1f ms (first call: jax lowering, XLA compile, run)",
                self.graph.name,
                ins,
                self.compile_seconds * 1e3,
            )
        return result

    def _make_run(self) -> Callable[[list[Any]], Any]:
        jitted, const_args, unpack = self.jitted, self.const_args, self.unpack
        if not self.variables:
            if const_args:
                return lambda leaves: unpack(jitted(*leaves, *const_args))
            return lambda leaves: unpack(jitted(*leaves))
        return self.run_with_state

    def run_with_state(
        self, leaves: list[Any], donate: bool = True, state_out: list[Any] | None = None
    ) -> Any:
        """Run with the variables' current values; ``state_out`` (when given) receives them,
        and they are then not donated."""
        locks = self.locks
        for lock in locks:
            lock.acquire()
        try:
            state = [v._value for v in self.variables]
            if state_out is not None:
                state_out.extend(state)
                donate = False
            if donate and not any(v.exposed for v in self.updated_variables):
                result = self.jitted_donating(*leaves, *state, *self.const_args)
            else:
                result = self.jitted(*leaves, *state, *self.const_args)
            if not self.updated_variables:
                return self.unpack(result)
            results = result if isinstance(result, tuple) else (result,)
            for variable, array in zip(self.updated_variables, results[self.n_outputs :]):
                variable._value = array  # a fresh output buffer: the variable owns it
                variable.exposed = False
        finally:
            for lock in reversed(locks):
                lock.release()
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
