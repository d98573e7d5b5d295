"""A concrete function as a pure jax function: ``cf.to_jax()``.

The compiled call (``executable.py``) reads variables, runs the jitted graph and writes the
assigned ones back: a side effect jax transformations cannot see. ``to_jax`` makes the state
explicit instead: ``fn(state, *args) -> (new_state, outputs)``, where ``state`` holds one array
per variable the trace uses (in ``cf.variables`` order) and ``new_state`` the same, with the
values the call assigned. ``fn`` is the lowered graph — the env loop over the ops' own jax
``impl``s, the very function the compiled call jits — so it is a function of arrays that
``jax.jit``, ``jax.grad``, ``jax.vmap``, ``jax.lax.scan`` and any JAX library accept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax

from tracejit.lowering.to_jax import graph_to_function
from tracejit.tracing import concrete as info
from tracejit.tracing import signature as sig
from tracejit.types import AVal, aval_of_array

if TYPE_CHECKING:
    from tracejit.tracing.function import ConcreteFunction


def to_jax(concrete: ConcreteFunction) -> tuple[Callable[..., Any], tuple[jax.Array, ...]]:
    """``(fn, state)`` for ``concrete`` (see ``ConcreteFunction.to_jax``)."""
    graph = concrete.graph
    variables = concrete.variables
    lowered, const_args = graph_to_function(graph)
    updated = graph.updated_state()
    n_outputs = len(graph.outputs)
    single = n_outputs + len(updated) == 1
    names = concrete.function._signature.names
    state_avals = [v.aval for v in variables]
    expected = _strong(concrete.in_structure)
    input_avals = [v.aval for v in graph.inputs]

    def fn(state: Sequence[Any], *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], Any]:
        state = _checked_state(concrete, state, state_avals)
        canonical = info.bind_call(concrete, args, kwargs)
        structure, leaves = sig.flatten_arguments(canonical, names, concrete.name)
        # jax passes Python scalars as weakly typed arrays: their dtype is what must match.
        if not sig.matches(expected, _strong(structure)):
            sig.check_against_signature(expected, _strong(structure), names, concrete.name)
        leaves = [
            jax.lax.convert_element_type(x, a.dtype) if getattr(x, "weak_type", False) else x
            for x, a in zip(leaves, input_avals)
        ]
        result = lowered(*leaves, *state, *const_args)
        results = (result,) if single else tuple(result)
        new_state = list(state)
        for index, value in zip(updated, results[n_outputs:]):
            # The variable's own dtype, strongly typed (an assigned Python scalar is weak), so
            # new_state has exactly the type of state, as jax.lax.scan's carry must.
            new_state[index] = jax.lax.convert_element_type(value, state_avals[index].dtype)
        outputs = sig.unflatten(concrete.out_structure, iter(results[:n_outputs]))
        return tuple(new_state), outputs

    fn.__name__ = f"{concrete.name}_pure"
    fn.__doc__ = (
        f"{concrete.name} as a pure jax function: fn(state, *args) -> (new_state, outputs); "
        f"state: {', '.join(v.name for v in variables) or 'no variables'}"
    )
    fn.state_names = tuple(v.name for v in variables)  # type: ignore[attr-defined]
    state = tuple(v.exposed_array() for v in variables)  # handed out: never donated after this
    return fn, state


def _strong(structure: Any) -> Any:
    """``structure`` with every tensor aval strongly typed."""
    if isinstance(structure, AVal):
        return AVal(structure.shape, structure.dtype, False)
    if isinstance(structure, tuple) and not (structure and structure[0] in _OPAQUE):
        return tuple(_strong(child) for child in structure)
    return structure


_OPAQUE = (sig.STATIC, sig.VARIABLE)


def _checked_state(
    concrete: ConcreteFunction, state: Sequence[Any], avals: list[AVal]
) -> tuple[Any, ...]:
    """``state`` as a tuple, after checking it has one array of the right shape and dtype per
    variable (a ValueError naming the variable otherwise)."""
    if not isinstance(state, (tuple, list)) or len(state) != len(avals):
        given = f"a {type(state).__name__}"
        if isinstance(state, (tuple, list)):
            given += f" of {len(state)}"
        raise ValueError(
            f"{concrete.name} (to_jax): state must be a tuple of {len(avals)} arrays, one per "
            f"variable ({', '.join(v.name for v in concrete.variables) or 'none'}), got {given}"
        )
    for variable, aval, value in zip(concrete.variables, avals, state):
        given = aval_of_array(value) if hasattr(value, "dtype") else None
        if given is None or given.shape != aval.shape or given.dtype != aval.dtype:
            raise ValueError(
                f"{concrete.name} (to_jax): the state of variable '{variable.name}' must be "
                f"{aval}, got {given if given is not None else type(value).__name__}"
            )
    return tuple(state)
