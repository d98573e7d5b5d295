"""OpInfo rows for ``tj.distribute``'s ``shard`` op (tracejit/distribute/shard.py).

The main test process has one device, so the samples lay values out over one-device meshes:
enough to run the op eagerly, traced, inferred and differentiated (its value is the identity,
whatever the mesh). The layouts over several devices are checked by tests/distribute_checks.py
on eight forced CPU devices. The jax reference is ``with_sharding_constraint`` itself, so the
gradient check differentiates jax's own constraint.

Rows are built on first access (module ``__getattr__``): the meshes need jax's devices, and
this module and ``opinfo`` may import each other in either order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

import tracejit as tj

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def _samples(rng: np.random.Generator) -> list[Sample]:
    rows = tj.distribute.make_mesh((1,), ("data",))
    grid = tj.distribute.make_mesh((1, 1), ("data", "model"))

    def f32(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    return [
        ((f32(4, 3),), {"spec": PartitionSpec("data"), "mesh": rows}),
        ((f32(2, 4, 3),), {"spec": PartitionSpec(None, "model"), "mesh": grid}),
        ((f32(6, 2),), {"spec": (("data", "model"), None), "mesh": grid}),
        ((f32(5),), {"spec": PartitionSpec(), "mesh": rows}),
        ((rng.integers(-5, 6, size=(4, 2)).astype(np.int32),), {"spec": ("data",), "mesh": rows}),
    ]


def _np_shard(x: Any, spec: Any, mesh: Any) -> Any:
    return np.asarray(x)


def _jax_shard(x: Any, spec: Any, mesh: Any) -> Any:
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec(*spec)))


def distribute_opinfos() -> list[OpInfo]:
    from opinfo import OpInfo

    return [OpInfo("shard", tj.distribute.shard, _samples, _np_shard, _jax_shard)]


def __getattr__(name: str) -> Any:
    if name == "DISTRIBUTE_OPS":  # computed once, on first access
        globals()["DISTRIBUTE_OPS"] = rows = distribute_opinfos()
        return rows
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
