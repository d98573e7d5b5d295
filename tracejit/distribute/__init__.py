"""Beyond one device: data-parallel and sharded execution through JAX's SPMD partitioner.

tracejit grows no communication layer of its own. A compiled function is one ``jax.jit``
program; giving its inputs shardings over a device mesh (and annotating values inside it with
``shard``) is enough for XLA to partition it and insert the collectives.

- ``DataParallel(devices=None)``: variables created in ``strategy.scope()`` are replicated,
  ``strategy.run(step, *args)`` splits each tensor argument along its first axis;
- ``shard(x, spec)``: lay a value out over mesh axes (model parallelism), an IR op;
- ``tj.function(..., in_shardings=..., out_shardings=...)``: place inputs and outputs yourself;
- ``make_mesh(shape, axis_names)``: a mesh with the automatic axes tracejit lowers to;
- ``initialize(...)``: join a multi-process run (``jax.distributed``), started on one machine by
  ``python -m tracejit.distribute.launch --nproc N script.py``; ``gather`` reads a global array.

See docs/scaling.md.
"""

from tracejit.distribute.process import (
    DistributedError,
    gather,
    initialize,
    process_count,
    process_index,
)
from tracejit.distribute.shard import SHARD, shard
from tracejit.distribute.strategy import DataParallel
from tracejit.host import NotAddressableError
from tracejit.runtime.sharding import ShardingError, current_mesh, format_sharding, make_mesh

__all__ = [
    "SHARD",
    "DataParallel",
    "DistributedError",
    "NotAddressableError",
    "ShardingError",
    "current_mesh",
    "format_sharding",
    "gather",
    "initialize",
    "make_mesh",
    "process_count",
    "process_index",
    "shard",
]
