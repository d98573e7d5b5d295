"""The ``shard`` op: lay a value out over the devices of a mesh (model parallelism).

``shard(w, P(None, "model"))`` is an identity on values that tells XLA's SPMD partitioner how to
split ``w``: its second dimension over the mesh axis ``model``. Inside a ``tj.function`` it is a
node of the IR (``shard[mesh=((data,2),(model,4)), spec=(none,model)] %s0``) lowered to
``jax.lax.with_sharding_constraint``; eagerly it is ``jax.device_put`` with that sharding. Its
gradient is the cotangent laid out the same way.

Params are plain data: ``spec`` a tuple with one entry per leading dimension (a mesh axis name,
a tuple of names, or None), ``mesh`` the mesh's ``(axis name, size)`` pairs. The device mesh
itself is found again from those axes when the node runs (see runtime/sharding.py).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tracejit.errors import OpError
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.registry import bind, defop
from tracejit.runtime import sharding as layouts
from tracejit.types import AVal

_TRACER = jax.core.Tracer


def normalize_spec(spec: Any) -> tuple[Any, ...]:
    """A ``PartitionSpec``, tuple or list (or one axis name) as a hashable tuple of axis names,
    tuples of names and Nones."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        return (spec,)
    entries = []
    for entry in tuple(spec):
        if entry is None or isinstance(entry, str):
            entries.append(entry)
        elif isinstance(entry, (tuple, list)) and all(isinstance(a, str) for a in entry):
            entries.append(tuple(entry))
        else:
            raise TypeError(
                f"tj.distribute.shard: a spec entry must be a mesh axis name, a tuple of names "
                f"or None, got {entry!r:.60}"
            )
    return tuple(entries)


def _infer(x: AVal, *, spec: tuple[Any, ...], mesh: layouts.MeshKey) -> AVal:
    problem = layouts.spec_problem(spec, dict(mesh), x)
    if problem is not None:
        raise OpError("shard", problem)
    return x


def _sharding(spec: tuple[Any, ...], mesh: layouts.MeshKey) -> NamedSharding:
    return NamedSharding(layouts.mesh_for(mesh), PartitionSpec(*spec))


def _impl(x: Any, *, spec: tuple[Any, ...], mesh: layouts.MeshKey) -> Any:
    if isinstance(x, _TRACER):  # inside jax.jit: a constraint for the SPMD partitioner
        return jax.lax.with_sharding_constraint(x, _sharding(spec, mesh))
    return jax.device_put(jnp.asarray(x), _sharding(spec, mesh))  # eager: move it there now


def _vjp(ct: Any, x: Any, *, out: Any, spec: tuple[Any, ...], mesh: layouts.MeshKey) -> Any:
    return (bind(SHARD, ct, spec=spec, mesh=mesh),)


SHARD = defop(
    "shard",
    _infer,
    _impl,
    _vjp,
    foldable=False,  # a layout annotation: folding it into a constant would drop it
    doc="identity that lays its input out over a device mesh (with_sharding_constraint)",
    jvp=linear_jvp("shard"),
)


def shard(x: Any, spec: Any, mesh: Mesh | None = None) -> Any:
    """``x`` laid out over the devices of ``mesh``: dimension ``i`` split over the mesh axis
    ``spec[i]`` (None: not split; missing trailing entries: not split).

    The mesh defaults to the one in force: the active ``strategy.scope()``'s (``strategy.run``
    enters it), else jax's ``jax.sharding.set_mesh``. Values are unchanged; inside a
    ``tj.function`` the op tells XLA how to partition the program (model parallelism: split a
    large weight over a ``model`` axis), eagerly it moves the value there.

    >>> import numpy as np
    >>> import tracejit as tj
    >>> from jax.sharding import PartitionSpec as P
    >>> mesh = tj.distribute.make_mesh((1,), ("model",))
    >>> w = tj.distribute.shard(np.ones((4, 2), np.float32), P(None, "model"), mesh)
    >>> w.value.sharding.spec == P(None, "model"), float(w.sum())
    (True, 8.0)
    """
    if mesh is None:
        mesh = layouts.current_mesh()
        if mesh is None:
            raise OpError(
                "shard",
                "no mesh is in force: call it under `with strategy.scope():` (tj.distribute), "
                "inside strategy.run, under jax.sharding.set_mesh(mesh), or pass mesh=",
            )
    mesh = layouts.register_mesh(mesh)
    return bind(SHARD, x, spec=normalize_spec(spec), mesh=layouts.mesh_key(mesh))
