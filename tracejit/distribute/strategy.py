"""Data parallelism: one program over many devices, each tensor argument split along its first
axis.

``DataParallel`` owns a device mesh with a batch axis (``data``). Variables created under its
``scope()`` are replicated over the mesh; ``run(step, *args)`` lays each tensor argument out as
one *global* array split over ``data`` and calls ``step``. The compiled step is one ``jax.jit``
program whose inputs are sharded: XLA's SPMD partitioner runs it on every device with its part
of the batch and inserts the collectives, so the mean loss over the global batch — and hence its
gradient — is averaged across devices without any hand-written all-reduce, and the step computes
what one device would on the whole batch.

Multi-host (JAX's multi-controller model): every process runs the same script, calls
``tj.distribute.initialize()`` before creating the strategy, and passes *its own* part of the
batch to ``run``; the mesh spans ``jax.devices()`` (every process's devices), and the global
batch is assembled from the local parts with ``jax.make_array_from_process_local_data``.

``shard_parameters=True`` (FSDP / ZeRO-3 style) splits each variable made in the scope —
parameters and optimizer slots — over the batch axis instead of copying it to every device
(along its first dimension that divides evenly; variables with none stay replicated): each
device holds 1/N of the model, and XLA's partitioner all-gathers the weights where the step
needs them whole and reduce-scatters their gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from tracejit import config
from tracejit.eager.tensor import Tensor, wrap
from tracejit.eager.variable import Variable
from tracejit.host import gather_array
from tracejit.runtime import sharding as layouts
from tracejit.runtime.sharding import ShardingError
from tracejit.tracing import context
from tracejit.tracing.function import ConcreteFunction, Function
from tracejit.types import TensorSpec

_ARRAYS = (Tensor, jax.Array, np.ndarray, np.generic)


class DataParallel:
    """Data-parallel execution over the devices of a mesh.

    Args:
        devices: the devices to use (default: ``jax.devices()``, every device of every
            process), or a ``jax.sharding.Mesh`` that has a ``batch_axis`` (its other axes are
            free for model parallelism with ``tj.distribute.shard``).
        batch_axis: the mesh axis the batch is split over.
        shard_parameters: split the variables made in the scope over ``batch_axis`` (along
            their first dimension divisible by its size) instead of replicating them, so that
            each device holds a part of the model (FSDP / ZeRO-3); the results are the same.

    >>> import numpy as np
    >>> import tracejit as tj
    >>> strategy = tj.distribute.DataParallel()     # every device; one on this machine
    >>> with strategy.scope():
    ...     w = tj.Variable(np.ones((3, 2), np.float32), name="w")
    >>> @tj.function
    ... def step(x):
    ...     loss = tj.mean((x @ w) ** 2)
    ...     w.assign_sub(0.1 * tj.ones_like(w))
    ...     return loss
    >>> float(strategy.run(step, np.ones((4, 3), np.float32)))
    9.0
    >>> strategy.num_replicas, w.value().value.sharding.is_fully_replicated
    (1, True)
    """

    def __init__(
        self,
        devices: Sequence[Any] | Mesh | None = None,
        *,
        batch_axis: str = "data",
        shard_parameters: bool = False,
    ) -> None:
        if isinstance(devices, Mesh):
            mesh = devices
        else:
            chosen = list(jax.devices() if devices is None else devices)
            mesh = layouts.make_mesh((len(chosen),), (batch_axis,), chosen)
        if batch_axis not in mesh.shape:
            raise ShardingError(
                f"DataParallel: the mesh ({layouts.describe_mesh(mesh)}) has no axis "
                f"'{batch_axis}' to split the batch over; name one with batch_axis="
            )
        self.mesh = layouts.register_mesh(mesh)
        self.batch_axis = batch_axis
        self.shard_parameters = bool(shard_parameters)
        self.data_sharding = NamedSharding(self.mesh, PartitionSpec(batch_axis))
        self.replicated_sharding = NamedSharding(self.mesh, PartitionSpec())
        self._devices = frozenset(self.mesh.devices.flat)
        self._local_parts = _local_parts(self.mesh, batch_axis)

    @property
    def num_replicas(self) -> int:
        """How many parts the batch is split into (the size of the batch axis)."""
        return int(self.mesh.shape[self.batch_axis])

    # Scope and variables ---------------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self) -> Iterator[DataParallel]:
        """Variables created inside are replicated over the mesh; ``shard`` and
        ``PartitionSpec`` shardings use this mesh."""
        previous = context.state.strategy
        context.state.strategy = self
        try:
            yield self
        finally:
            context.state.strategy = previous

    def place_variable(self, variable: Variable) -> jax.Array:
        """The array a variable created in the scope holds: its value, replicated (or split,
        with ``shard_parameters``)."""
        aval = variable.aval
        return self._laid_out(variable._value, self.variable_sharding(aval.shape, aval.dtype))

    def variable_sharding(self, shape: Sequence[int], dtype: Any = np.float32) -> NamedSharding:
        """The layout of a variable of ``shape`` and ``dtype`` made in the scope: replicated;
        with ``shard_parameters``, a floating-point one is split over the batch axis along its
        first dimension that divides evenly (replicated when none does: biases of odd sizes,
        scalars; and counters and random generator states, which are not floats)."""
        if self.shard_parameters and jnp.issubdtype(dtype, jnp.inexact):
            parts = self.num_replicas
            for dim, size in enumerate(shape):
                if size >= parts and size % parts == 0:
                    spec = (None,) * dim + (self.batch_axis,)
                    return NamedSharding(self.mesh, PartitionSpec(*spec))
        return self.replicated_sharding

    def replicate(self, value: Any) -> Tensor:
        """``value`` as a tensor holding a full copy on every device of the mesh (every process
        must pass the same value)."""
        return wrap(self._replicated(_array_of(value)))

    def _replicated(self, array: Any) -> jax.Array:
        return self._laid_out(array, self.replicated_sharding)

    def _laid_out(self, array: Any, sharding: NamedSharding) -> jax.Array:
        if jax.process_count() == 1:
            return jax.device_put(array, sharding)
        host = gather_array(array)  # the same on every process: each fills its own devices
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    # Inputs ----------------------------------------------------------------------------------
    def split_batch(self, value: Any, name: str = "value") -> Tensor:
        """``value`` — this process's part of a batch — as one global tensor split along its
        first axis over the batch axis (what ``run`` does to each tensor argument). A 0-d
        value is replicated; a jax array already on the mesh is kept as it is."""
        array = _array_of(value)
        if isinstance(array, jax.Array) and array.sharding.device_set == self._devices:
            return value if isinstance(value, Tensor) else wrap(array)
        if np.ndim(array) == 0:
            return self.replicate(array)
        rows = int(np.shape(array)[0])
        if rows % self._local_parts:
            raise ShardingError(self._indivisible(name, rows))
        if jax.process_count() == 1:
            return wrap(jax.device_put(array, self.data_sharding))
        return wrap(jax.make_array_from_process_local_data(self.data_sharding, array))

    def batch_sharding(self, spec: TensorSpec) -> Sharding:
        """The sharding ``run`` gives a tensor of ``spec``: split along the first axis, or
        replicated when 0-d. Pass it as ``tj.function(step, in_shardings=strategy.batch_sharding)``
        to fix the inputs' layout in the trace (and see it in the IR)."""
        return self.data_sharding if len(spec.shape) else self.replicated_sharding

    def _indivisible(self, name: str, rows: int) -> str:
        parts, axis = self._local_parts, self.batch_axis
        if jax.process_count() > 1:
            held = f"this process holds {parts} of the {self.num_replicas} parts of axis '{axis}'"
        else:
            held = f"the batch is split into {parts} parts over mesh axis '{axis}'"
        lower = rows - rows % parts
        example = f"{lower} or {lower + parts}" if lower else f"{parts}"
        return (
            f"DataParallel: {name} has a batch of {rows} rows, which does not split evenly: "
            f"{held}, so the batch size must be a multiple of {parts} (e.g. {example}). Drop "
            "or pad the last partial batch yourself (padding rows change a mean loss)."
        )

    # Running ---------------------------------------------------------------------------------
    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` as one SPMD program over the mesh, in this scope.

        Each tensor argument (Tensor, numpy or jax array, nested in tuples, lists and dicts) is
        split along its first axis (``split_batch``); other arguments pass unchanged. For a
        ``tj.function``, every variable it uses must be on the mesh (created in the scope):
        otherwise a ``ShardingError`` names it, before anything runs.
        """
        with self.scope():
            args, kwargs = self._place((args, kwargs))
            compiled = isinstance(fn, (Function, ConcreteFunction))
            # (Inside another trace the call is inlined: its variables are that trace's.)
            if compiled and context.state.builder is None and not config.functions_run_eagerly():
                self._check_variables(fn, args, kwargs)
            return fn(*args, **kwargs)

    def _place(self, tree: Any) -> Any:
        paths, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_tensor_like)
        placed = [
            self.split_batch(leaf, _argument_name(path)) if isinstance(leaf, _ARRAYS) else leaf
            for path, leaf in paths
        ]
        return jax.tree_util.tree_unflatten(treedef, placed)

    def _check_variables(self, fn: Any, args: Any, kwargs: Any) -> None:
        concrete = (
            fn if isinstance(fn, ConcreteFunction) else fn.get_concrete_function(*args, **kwargs)
        )
        for variable in concrete.variables:
            devices = variable._value.sharding.device_set
            if devices != self._devices:
                raise ShardingError(self._not_on_mesh(concrete.name, variable, devices))

    def _not_on_mesh(self, name: str, variable: Variable, devices: Any) -> str:
        held = ", ".join(sorted(f"{d.platform}:{d.id}" for d in devices)[:4])
        return (
            f"DataParallel.run: {name} uses variable '{variable.name}', which is on "
            f"{len(devices)} device(s) ({held}{', ...' if len(devices) > 4 else ''}), not on the "
            f"strategy's {len(self._devices)} devices ({layouts.describe_mesh(self.mesh)}). "
            "Create variables under `with strategy.scope():` — model, optimizer and random "
            "generators; an optimizer creates its slots on the first call of the step, so make "
            "that call through strategy.run — or replicate it first: "
            "`variable.assign(strategy.replicate(variable))`."
        )

    def __repr__(self) -> str:
        platform = next(iter(self._devices)).platform
        sharded = ", sharded parameters" if self.shard_parameters else ""
        return (
            f"<tj.distribute.DataParallel {layouts.describe_mesh(self.mesh)} on {platform}"
            f"{sharded}>"
        )


def _is_tensor_like(x: Any) -> bool:
    return isinstance(x, (Tensor, Variable))


def _array_of(value: Any) -> Any:
    if isinstance(value, (Tensor, Variable)):
        return value._value
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return value
    return np.asarray(value)


def _argument_name(path: Any) -> str:
    """``argument 0``, ``argument 'y'['a']`` from a jax key path over ``(args, kwargs)``."""
    if len(path) < 2:
        return "value"
    top, first, rest = path[0], path[1], path[2:]
    label = f"argument {first.idx}" if top.idx == 0 else f"argument '{first.key}'"
    return label + "".join(str(key) for key in rest)


def _local_parts(mesh: Mesh, axis: str) -> int:
    """Into how many parts this process's devices split the batch axis."""
    position = mesh.axis_names.index(axis)
    me = jax.process_index()
    held = {
        index[position]
        for index, device in np.ndenumerate(mesh.devices)
        if device.process_index == me
    }
    return max(len(held), 1)
