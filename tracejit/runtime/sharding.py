"""Shardings of compiled calls: how layouts over several devices reach ``jax.jit``.

tracejit has no communication layer: a compiled function is lowered to one ``jax.jit`` program
and XLA's SPMD partitioner splits it over the devices its arguments (and ``in_shardings``) name,
inserting the collectives. This module is the glue the runtime needs for that:

- meshes: the one in force (a ``tj.distribute`` strategy's scope, else jax's ``set_mesh``), a
  registry so that ``shard`` nodes, which name their mesh by axes only (``((data,2),(model,4))``,
  plain data in the IR), find the device mesh again when lowered;
- ``resolve_shardings``: ``tj.function(in_shardings=..., out_shardings=...)`` — per argument, like
  ``jax.jit``'s — expanded to one sharding per flat tensor input and output of a trace, and noted
  in the graph's metadata so that the IR prints them (``%0: f32[?,784] @P(data)``);
- ``jit_options``: the ``in_shardings``/``out_shardings`` for ``jax.jit``. Variables keep the
  layout they were placed with: an assigned variable that spans several devices has its new
  value pinned to its current sharding (otherwise XLA would be free to pick another);
- ``format_sharding``: the text form (``P(data,none)``), never a Python repr.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding, SingleDeviceSharding

from tracejit.errors import TracejitError, with_location
from tracejit.ir.source import SourceLoc, user_location
from tracejit.tracing import context
from tracejit.tracing import signature as sig
from tracejit.types import AVal, TensorSpec

MeshKey = tuple[tuple[str, int], ...]


class ShardingError(TracejitError, ValueError):
    """A sharding does not fit: a spec longer than the value's rank, an unknown mesh axis, a
    dimension that does not split evenly, a variable that is not on the strategy's devices.
    The message ends with the user's line (``loc``, found on the stack when not given)."""

    def __init__(self, message: str, loc: SourceLoc | None = None) -> None:
        self.detail = message
        self.loc = loc if loc is not None else user_location()
        super().__init__(with_location(message, self.loc))


# Meshes ------------------------------------------------------------------------------------------
_AUTO = getattr(getattr(jax.sharding, "AxisType", None), "Auto", None)
_MESHES: dict[MeshKey, Mesh] = {}


def auto_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` with every axis of jax's *automatic* kind (tracejit's lowered functions carry no
    sharding types, so ``jax.make_mesh``'s default explicit axes would refuse its constraints)."""
    types = getattr(mesh, "axis_types", None)
    if _AUTO is None or types is None or all(t == _AUTO for t in types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(_AUTO,) * len(mesh.axis_names))


def make_mesh(
    shape: Sequence[int], axis_names: Sequence[str], devices: Sequence[Any] | None = None
) -> Mesh:
    """A device mesh of ``shape`` with ``axis_names`` over ``devices`` (default: every device of
    every process, ``jax.devices()``), with automatic axes.

    >>> import tracejit as tj
    >>> dict(tj.distribute.make_mesh((1,), ("data",)).shape)
    {'data': 1}
    """
    devices = list(jax.devices() if devices is None else devices)
    size = math.prod(shape)
    if len(devices) < size:
        raise ShardingError(
            f"a mesh of shape {tuple(shape)} needs {size} devices, got {len(devices)}"
        )
    grid = np.empty(len(devices[:size]), dtype=object)
    grid[:] = devices[:size]
    if _AUTO is None:
        return register_mesh(Mesh(grid.reshape(tuple(shape)), tuple(axis_names)))
    return register_mesh(
        Mesh(grid.reshape(tuple(shape)), tuple(axis_names), axis_types=(_AUTO,) * len(shape))
    )


def mesh_key(mesh: Mesh) -> MeshKey:
    """The mesh as IR params: ``(("data", 2), ("model", 4))``."""
    return tuple((str(name), int(size)) for name, size in mesh.shape.items())


def register_mesh(mesh: Mesh) -> Mesh:
    """Remember ``mesh`` (made automatic) as *the* mesh with its axes; return it."""
    mesh = auto_mesh(mesh)
    _MESHES[mesh_key(mesh)] = mesh
    return mesh


def mesh_for(key: MeshKey) -> Mesh:
    """The device mesh an IR node names by its axes: the one in force if it has these axes (a
    function is compiled on its first call, usually inside ``strategy.run``), else the last one
    registered with them, else a new one over the first devices."""
    current = current_mesh()
    if current is not None and mesh_key(current) == key:
        return auto_mesh(current)
    found = _MESHES.get(key)
    if found is not None:
        return found
    return make_mesh([size for _, size in key], [name for name, _ in key])


def current_mesh() -> Mesh | None:
    """The mesh in force: the innermost active ``strategy.scope()``'s, else the one set with
    ``jax.sharding.set_mesh`` (None when neither)."""
    strategy = context.state.strategy
    if strategy is not None:
        return strategy.mesh
    get_mesh = getattr(jax.sharding, "get_mesh", None)
    if get_mesh is None:
        return None
    try:
        mesh = get_mesh()
    except ValueError:  # inside jax.jit (a shard node being lowered): only tracejit's scope
        return None
    if isinstance(mesh, Mesh) and not mesh.empty:
        return mesh
    return None


def describe_mesh(mesh: Mesh) -> str:
    """``data=2, model=4``."""
    return ", ".join(f"{name}={size}" for name, size in mesh.shape.items())


# Text --------------------------------------------------------------------------------------------
def format_spec(spec: Sequence[Any]) -> str:
    """``P(data,none)``; a dim split over several axes prints ``(data,model)``."""

    def entry(axis: Any) -> str:
        if axis is None:
            return "none"
        if isinstance(axis, (tuple, list)):
            return "(" + ",".join(str(a) for a in axis) + ")"
        return str(axis)

    return "P(" + ",".join(entry(a) for a in spec) + ")"


def format_sharding(sharding: Sharding | None) -> str | None:
    """The text the IR prints after ``@`` (None: nothing to print)."""
    if sharding is None:
        return None
    if isinstance(sharding, NamedSharding):
        return format_spec(tuple(sharding.spec))
    if isinstance(sharding, SingleDeviceSharding):
        (device,) = sharding.device_set
        return f"device({device.platform}:{device.id})"
    return type(sharding).__name__


def spans_devices(sharding: Sharding) -> bool:
    return len(sharding.device_set) > 1


def variable_layout(variable: Any) -> Sharding | None:
    """The sharding a variable's value keeps across compiled calls (None: one device, nothing
    to keep)."""
    sharding = variable._value.sharding
    return sharding if spans_devices(sharding) else None


# Resolving in_shardings / out_shardings ----------------------------------------------------------
Entry = Any  # None | Sharding | PartitionSpec | Callable[[TensorSpec], ...] | nested containers


def _is_leaf_entry(entry: Entry) -> bool:
    return (
        entry is None
        or isinstance(entry, (Sharding, PartitionSpec))
        or (callable(entry) and not isinstance(entry, type))
    )


def to_sharding(entry: Entry, aval: AVal, where: str) -> Sharding | None:
    """One tensor's sharding from a user entry (a ``PartitionSpec`` uses the mesh in force; a
    callable is given the tensor's ``TensorSpec``); checked against the tensor's shape."""
    if callable(entry) and not isinstance(entry, (Sharding, PartitionSpec)):
        entry = entry(TensorSpec.from_aval(aval))
    if entry is None:
        return None
    if isinstance(entry, PartitionSpec):
        mesh = current_mesh()
        if mesh is None:
            raise ShardingError(
                f"{where}: PartitionSpec {format_spec(tuple(entry))} needs a mesh: trace under "
                "`with strategy.scope():` (tj.distribute), under jax.sharding.set_mesh(mesh), or "
                "pass a jax.sharding.NamedSharding(mesh, spec)"
            )
        entry = NamedSharding(register_mesh(mesh), entry)
    if not isinstance(entry, Sharding):
        raise ShardingError(
            f"{where}: expected a jax.sharding.Sharding, a PartitionSpec or None, "
            f"got {type(entry).__name__}"
        )
    if isinstance(entry, NamedSharding):
        check_spec(tuple(entry.spec), entry.mesh, aval, where)
        mesh = auto_mesh(entry.mesh)
        if mesh is not entry.mesh:  # jax.make_mesh's explicit axes: see auto_mesh
            entry = NamedSharding(mesh, entry.spec)
    return entry


def check_spec(spec: tuple[Any, ...], mesh: Mesh, aval: AVal, where: str) -> None:
    """Raise ``ShardingError`` (prefixed by ``where``) unless ``spec`` fits the value."""
    problem = spec_problem(spec, dict(mesh.shape), aval)
    if problem is not None:
        raise ShardingError(f"{where}: {problem}")


def spec_problem(spec: tuple[Any, ...], axes: dict[str, int], aval: AVal) -> str | None:
    """What is wrong with laying a value of ``aval`` out as ``spec`` over a mesh of ``axes``
    (name -> size), or None: a spec no longer than the rank, known axes each used once, known
    dims divisible by the number of parts they are split into."""
    shown = format_spec(spec)
    mesh = ", ".join(f"{name}={size}" for name, size in axes.items())
    if len(spec) > len(aval.shape):
        return (
            f"{shown} has {len(spec)} entries, but the value is {aval} (rank "
            f"{len(aval.shape)}): give at most one entry per dimension"
        )
    seen: list[str] = []
    for dim, entry in zip(aval.shape, spec):
        names = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        for name in names:
            if name not in axes:
                return f"{shown} names axis '{name}', which the mesh ({mesh}) does not have"
            if name in seen:
                return f"{shown} uses mesh axis '{name}' twice"
            seen.append(name)
        parts = math.prod(axes[name] for name in names)
        if dim is not None and dim % parts:
            return (
                f"{shown} splits a dimension of size {dim} of {aval} into {parts} parts "
                f"({mesh}); it must be divisible by {parts}"
            )
    return None


def expand(entry: Entry, structure: Any, out: list[Sharding | None], where: str) -> None:
    """Append one sharding per tensor leaf of ``structure`` (a cache-key structure, see
    tracing/signature.py): a leaf entry applies to every tensor below it, as in ``jax.jit``;
    containers of entries follow the argument's own containers."""
    is_container = (
        isinstance(structure, tuple) and not isinstance(structure, AVal) and bool(structure)
    )
    if is_container and structure[0] in (sig.STATIC, sig.VARIABLE):
        return  # Python values and variables (state keeps its own layout)
    if _is_leaf_entry(entry):
        if isinstance(structure, AVal):
            out.append(to_sharding(entry, structure, where))
        elif is_container:
            for child in structure[-1]:  # every container keeps its children last
                expand(entry, child, out, where)
        return
    if not isinstance(entry, (list, tuple, dict)):
        raise ShardingError(
            f"{where}: expected a jax.sharding.Sharding, a PartitionSpec, a callable of a "
            f"TensorSpec or None, got {type(entry).__name__}: {entry!r:.60}"
        )
    tag = structure[0] if is_container else None
    children = structure[-1] if is_container else ()
    if tag == sig.DICT and isinstance(entry, dict):
        for key, child in zip(structure[2], children):
            expand(entry.get(key), child, out, f"{where}[{key!r}]")
        return
    if tag not in (None, sig.DICT) and isinstance(entry, (list, tuple)):
        if len(entry) == len(children):
            for i, (item, child) in enumerate(zip(entry, children)):
                expand(item, child, out, f"{where}[{i}]")
            return
    raise ShardingError(
        f"{where}: the shardings given ({type(entry).__name__}) do not follow the argument's "
        f"structure ({sig.describe_leaf(structure)}); give one sharding for all its tensors, or "
        "a container of the same shape"
    )


def resolve_shardings(
    function: Any, in_structure: tuple[Any, ...], out_structure: Any, graph: Any, variables: Any
) -> tuple[tuple[Sharding | None, ...] | None, tuple[Sharding | None, ...] | None]:
    """One sharding per flat input and output of a trace, from ``function.in_shardings`` /
    ``out_shardings`` (None where not given); notes them in ``graph.metadata`` for the printer."""
    given_in = getattr(function, "in_shardings", None)
    given_out = getattr(function, "out_shardings", None)
    ins = None
    if given_in is not None:
        names = function._signature.names
        per_argument = _per_argument(given_in, names, f"{function.name}: in_shardings")
        flat: list[Sharding | None] = []
        for name, entry, structure in zip(names, per_argument, in_structure):
            expand(entry, structure, flat, f"{function.name}: in_shardings for '{name}'")
        ins = tuple(flat)
    outs = None
    if given_out is not None:
        flat = []
        expand(given_out, out_structure, flat, f"{function.name}: out_shardings")
        outs = tuple(flat)
    annotate(graph, ins, outs, variables)
    return ins, outs


def _per_argument(given: Entry, names: list[str], where: str) -> list[Entry]:
    if _is_leaf_entry(given):
        return [given] * len(names)
    if isinstance(given, dict):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ShardingError(f"{where} names {unknown}, which are not parameters {names}")
        return [given.get(name) for name in names]
    if isinstance(given, (list, tuple)):
        if len(given) > len(names):
            raise ShardingError(
                f"{where} has {len(given)} entries for {len(names)} parameters {names}"
            )
        return list(given) + [None] * (len(names) - len(given))
    raise ShardingError(
        f"{where}: expected a sharding, a PartitionSpec, a callable, or a list or dict of them "
        f"per parameter, got {type(given).__name__}"
    )


def annotate(graph: Any, ins: Any, outs: Any, variables: Sequence[Any]) -> None:
    """Note the shardings of a trace in ``graph.metadata["shardings"]`` (text, for the printer):
    ``mesh``, and per input, output and state slot the ``@`` text or None."""
    state = [variable_layout(v) for v in variables]
    every = [s for s in (*(ins or ()), *(outs or ()), *state) if s is not None]
    if not every:
        return
    mesh = next((s.mesh for s in every if isinstance(s, NamedSharding)), None)
    graph.metadata["shardings"] = {
        "mesh": None if mesh is None else describe_mesh(mesh),
        "inputs": tuple(format_sharding(s) for s in ins or (None,) * len(graph.inputs)),
        "outputs": tuple(format_sharding(s) for s in outs or (None,) * len(graph.outputs)),
        "state": tuple(format_sharding(s) for s in state),
    }


# jax.jit options ---------------------------------------------------------------------------------
def jit_options(
    graph: Any,
    variables: Sequence[Any],
    n_const_args: int,
    in_shardings: Sequence[Sharding | None] | None = None,
    out_shardings: Sequence[Sharding | None] | None = None,
) -> dict[str, Any]:
    """``jax.jit`` keyword arguments for ``fn(*inputs, *state, *const_args)`` returning
    ``(*outputs, *updated state)``: the given shardings (None entries are left to XLA), and each
    assigned variable spanning several devices pinned to its current layout. Empty when there
    is nothing to say (the single-device case is unchanged)."""
    options: dict[str, Any] = {}
    if in_shardings is not None:
        rest = (None,) * (len(graph.state) + n_const_args)
        options["in_shardings"] = tuple(in_shardings) + rest
    updated = [variable_layout(variables[i]) for i in graph.updated_state()]
    outs = tuple(out_shardings or (None,) * len(graph.outputs)) + tuple(updated)
    if any(s is not None for s in outs):
        options["out_shardings"] = outs[0] if len(outs) == 1 else outs
    return options
