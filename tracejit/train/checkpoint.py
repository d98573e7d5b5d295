"""Object-based checkpoints that lose nothing: ``Checkpoint``, ``CheckpointManager``,
``latest_checkpoint``.

A checkpoint is a directory ``ckpt-<N>`` holding ``manifest.json`` (format, version, and per
variable path: shape, dtype, sha256 of the bytes, key in the array file) and ``arrays.npz``.
It is written into a temporary folder beside it and renamed into place once every file is
fsynced, so whatever moment a process dies, the directory holds the previous checkpoints and
possibly the new one complete — never a torn one — and ``latest_checkpoint`` ignores the
temporary folders.

Restoring validates everything first (files, checksums, shapes and dtypes against the live
variables) and only then assigns, so a failed restore leaves every variable untouched.

In a multi-process run (``tj.distribute.initialize``) every process calls ``save`` / ``write``
at the same point: each variable's whole value is read (a variable split over several
processes' devices is gathered, a collective), process 0 alone writes the files, and every
process returns the same path once the checkpoint is complete. A checkpoint holds whole values
only, so any process count can restore it: every process reads the files (on a file system they
share) and each variable takes its value in its own layout.

>>> import tempfile
>>> import tracejit as tj
>>> w = tj.Variable([1.0, 2.0])
>>> ckpt = tj.train.Checkpoint(w=w)
>>> path = ckpt.save(tempfile.mkdtemp())
>>> _ = w.assign([0.0, 0.0])
>>> ckpt.restore(path).assert_consumed().restored
['w']
>>> w.numpy()
array([1., 2.], dtype=float32)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracejit.eager.variable import Variable
from tracejit.errors import trims_tracebacks
from tracejit.host import gather_array
from tracejit.module import Module
from tracejit.saved import files
from tracejit.tracing import context
from tracejit.train import object_graph
from tracejit.train.checkpoint_files import (
    MANIFEST,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint,
    write_checkpoint,
    write_checkpoint_at,
)
from tracejit.train.object_graph import TRACKABLE, ObjectGraph
from tracejit.types import AVal, as_dtype


# Restore reports ---------------------------------------------------------------------------------
class RestoreStatus:
    """What a restore matched. ``restored``: paths assigned; ``missing``: variables of the live
    objects the checkpoint lacks; ``unused``: checkpoint entries no live object took."""

    def __init__(self, path: str | None, restored: list[str], missing: list[str],
                 unused: list[str]) -> None:  # fmt: skip
        self.path, self.restored, self.missing, self.unused = path, restored, missing, unused

    def assert_consumed(self) -> RestoreStatus:
        """Raise ``CheckpointError`` unless every entry and every live variable matched."""
        if self.missing or self.unused:
            raise CheckpointError(str(self))
        return self

    def assert_existing_objects_matched(self) -> RestoreStatus:
        """Raise ``CheckpointError`` if a live variable got no value from the checkpoint."""
        if self.missing:
            raise CheckpointError(str(self))
        return self

    def expect_partial(self) -> RestoreStatus:
        """Say that a partial match is intended (for symmetry with TF; does nothing)."""
        return self

    def __str__(self) -> str:
        lines = [f"restored {len(self.restored)} variable(s) from {self.path}"]
        if self.missing:
            lines.append("  not in the checkpoint (left as they were): " + ", ".join(self.missing))
        if self.unused:
            lines.append(
                "  in the checkpoint but matching no live variable: " + ", ".join(self.unused)
            )
        return "\n".join(lines)

    __repr__ = __str__


# Checkpoint ---------------------------------------------------------------------------------
class Checkpoint:
    """Saves and restores the variables reachable from the objects it is given.

    ``Checkpoint(model=model, optimizer=opt, step=step)``: modules, optimizers (with their slot
    variables), random generators, variables, and lists or dicts of them. Variables are named by
    attribute path (``model/layers/0/kernel``, ``optimizer/slots/model/layers/0/kernel/m``).
    """

    def __init__(self, **objects: Any) -> None:
        for name, obj in objects.items():
            if not isinstance(obj, (Variable, list, tuple, dict, *TRACKABLE)):
                raise TypeError(
                    f"Checkpoint({name}=...): got a {type(obj).__name__}; a checkpoint tracks "
                    "Variables, tj.Modules, optimizers, random Generators and lists or dicts of "
                    "them"
                )
        self._objects = dict(objects)

    def object_graph(self) -> ObjectGraph:
        return object_graph.build(self._objects)

    def variables(self) -> dict[str, Variable]:
        """Every variable a save would write, path -> variable."""
        return self.object_graph().all_variables()

    @trims_tracebacks
    def save(self, file_prefix: str) -> str:
        """Write the next numbered checkpoint and return its path. As in TF, ``file_prefix``
        is a prefix: ``save("d/ckpt")`` writes ``d/ckpt-1``, then ``d/ckpt-2``, ...; an existing
        directory ``d`` means ``d/ckpt``. Values are read first, so the checkpoint is one
        consistent snapshot."""
        _not_tracing("save")
        arrays = snapshot(self.variables())
        if os.path.isdir(file_prefix):
            return on_process_zero(lambda: write_checkpoint(file_prefix, arrays))
        directory, prefix = os.path.split(os.path.abspath(file_prefix))
        return on_process_zero(lambda: write_checkpoint(directory, arrays, prefix))

    @trims_tracebacks
    def write(self, path: str) -> str:
        """Write a checkpoint at exactly ``path`` (no numbering; an existing one there is
        replaced atomically), as TF's ``Checkpoint.write``; return ``path``."""
        _not_tracing("write")
        arrays = snapshot(self.variables())
        return on_process_zero(lambda: write_checkpoint_at(path, arrays))

    @trims_tracebacks
    def read(self, path: str) -> RestoreStatus:
        """Restore the checkpoint written by ``write(path)`` (TF's ``Checkpoint.read``)."""
        return self.restore(path)

    @trims_tracebacks
    def restore(self, path: str | None, *, allow_none: bool = False) -> RestoreStatus:
        """Assign the values saved at ``path`` to the live variables with the same paths.

        ``path`` is a checkpoint, or a directory of checkpoints (the newest is used). None
        (``latest_checkpoint`` of an empty directory) raises ``CheckpointError``, unless
        ``allow_none=True`` says that starting fresh is intended (then nothing is restored).
        Entries for variables a module creates later (lazily, on its first call) are kept and
        assigned when the module creates them (TF's deferred restoration).
        Missing slot variables of optimizers are created. Any problem — unreadable or damaged
        files, a shape or dtype that does not fit — raises ``CheckpointError`` before anything
        is assigned.
        """
        _not_tracing("restore")
        if path is None:
            if not allow_none:
                raise CheckpointError(
                    "Checkpoint.restore(None): there is no checkpoint to restore (did "
                    "latest_checkpoint find none?); pass allow_none=True to start fresh"
                )
            return RestoreStatus(None, [], sorted(self.variables()), [])
        if not os.path.isfile(os.path.join(path, MANIFEST)):
            newest = latest_checkpoint(path)
            if newest is None:
                raise CheckpointError(f"{path} is neither a checkpoint nor a directory of them")
            path = newest
        saved = read_checkpoint(path)
        graph = self.object_graph()
        targets: dict[str, Any] = dict(graph.variables)
        targets.update({p: s if s.current is None else s.current for p, s in graph.slots.items()})
        matched = {p: targets[p] for p in saved if p in targets}
        problems = [_mismatch(p, t, saved[p]) for p, t in matched.items()]
        problems = [p for p in problems if p]
        if problems:
            raise CheckpointError(
                f"cannot restore {path}; nothing was assigned:\n  " + "\n  ".join(problems)
            )
        for target_path, target in matched.items():  # everything fits: now assign
            if isinstance(target, object_graph.SlotRef):
                target = target.optimizer.slots(target.variable)[target.slot]
            target.assign(jnp.asarray(saved[target_path]))
        existing = graph.all_variables()
        missing = sorted(p for p in existing if p not in saved)
        unused = sorted(p for p in saved if p not in targets)
        _defer(graph, {p: saved[p] for p in unused})
        return RestoreStatus(path, sorted(matched), missing, unused)


class DeferredRestore:
    """Checkpoint entries under one module's path that no variable took yet: assigned to the
    variables (and handed to the sub-modules) the module creates later under those names.

    ``slots`` (shared by all of one restore's deferrals): optimizer slot entries by the path of
    the variable they belong to; when that variable appears, its optimizer gets them, and
    creates those slots with the saved values (so resuming trains as if never stopped)."""

    def __init__(
        self, prefix: str, saved: dict[str, np.ndarray], slots: PendingSlots | None = None
    ) -> None:
        self.prefix, self.saved = prefix, saved
        self.slots: PendingSlots = {} if slots is None else slots

    def attach(self, key: str, value: Any) -> None:
        self._attach(f"{self.prefix}/{object_graph.escape(key)}", value)

    def _attach(self, path: str, value: Any) -> None:
        if isinstance(value, Variable) and path in self.saved:
            array = self.saved.pop(path)
            problem = _mismatch(path, value, array)
            if problem:
                raise CheckpointError(f"deferred restore of {path}: {problem}")
            value._value = jnp.asarray(array)  # a plain write: this also works while tracing
            for optimizer, slot, slot_array in self.slots.pop(path, []):
                problem = _mismatch(f"{path} ({slot} slot)", value, slot_array)
                if problem:
                    raise CheckpointError(f"deferred restore of {path}: {problem}")
                pending = optimizer.__dict__.setdefault("__deferred_slots__", {})
                pending.setdefault(id(value), {})[slot] = slot_array
        elif isinstance(value, Module):
            below = {p: a for p, a in self.saved.items() if p.startswith(path + "/")}
            if below:
                value.__dict__["__deferred_restore__"] = DeferredRestore(path, below, self.slots)
                for key, child in list(vars(value).items()):
                    value.__dict__["__deferred_restore__"].attach(key, child)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                self._attach(f"{path}/{i}", item)


# variable path -> (optimizer, slot name, saved value) for the slots of not-yet-built variables
PendingSlots = dict[str, list[tuple[Any, str, np.ndarray]]]


def _defer(graph: ObjectGraph, unused: dict[str, np.ndarray]) -> None:
    slots: PendingSlots = {}
    for opt_path, optimizer in graph.optimizers:
        prefix = f"{opt_path}/{object_graph.SLOTS}/"
        for path, array in unused.items():
            if path.startswith(prefix) and "/" in path[len(prefix) :]:
                base, slot = path[len(prefix) :].rsplit("/", 1)
                slots.setdefault(base, []).append((optimizer, slot, array))
    for module_path, module in graph.modules.items():
        below = {p: a for p, a in unused.items() if p.startswith(module_path + "/")}
        if below:
            module.__dict__["__deferred_restore__"] = DeferredRestore(module_path, below, slots)


def list_variables(path: str) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, shape)`` of every variable saved at ``path`` (a checkpoint or a directory of
    them), sorted by name, as TF's ``tf.train.list_variables``."""
    if not os.path.isfile(os.path.join(path, MANIFEST)):
        newest = latest_checkpoint(path)
        if newest is None:
            raise CheckpointError(f"{path} is neither a checkpoint nor a directory of them")
        path = newest
    return sorted((name, tuple(array.shape)) for name, array in read_checkpoint(path).items())


def _mismatch(path: str, target: Any, array: np.ndarray) -> str | None:
    if isinstance(target, object_graph.SlotRef):
        aval = target.variable.aval  # a slot has its variable's shape and dtype
    else:
        aval = target.aval
    if tuple(array.shape) != aval.shape or as_dtype(array.dtype) != aval.dtype:
        got = AVal(tuple(array.shape), np.dtype(array.dtype))
        return f"{path}: the checkpoint holds {got}, the variable is {aval}"
    return None


def snapshot(variables: dict[str, Variable]) -> dict[str, np.ndarray]:
    """Every variable's whole value in host memory, read before anything is written (one
    consistent snapshot). A variable split over several processes' devices is gathered: a
    collective, which every process of the run takes part in, in the same order."""
    return {path: gather_array(variable._value) for path, variable in variables.items()}


_PATH_BYTES = 4096


def on_process_zero(write: Callable[[], str]) -> str:
    """``write()`` on process 0 only (the one writer of a multi-process run), its result — the
    checkpoint's path — returned on every process once it is complete (a broadcast, which is
    also a barrier). If process 0 fails, it raises its error and the others a CheckpointError."""
    if jax.process_count() == 1:
        return write()
    from jax.experimental import multihost_utils

    path, error = "", None
    if jax.process_index() == 0:
        try:
            path = write()
        except Exception as err:  # noqa: BLE001 - re-raised below, after telling the others
            error = err
    encoded = path.encode("utf-8")
    if len(encoded) > _PATH_BYTES:
        raise CheckpointError(f"the checkpoint path is too long to share: {path[:80]}...")
    buffer = np.zeros(_PATH_BYTES, np.uint8)
    buffer[: len(encoded)] = np.frombuffer(encoded, np.uint8)
    shared = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
    if error is not None:
        raise error
    text = bytes(shared.astype(np.uint8)).rstrip(b"\0").decode("utf-8")
    if not text:
        raise CheckpointError(
            f"process 0 failed to write the checkpoint (process {jax.process_index()} of "
            f"{jax.process_count()} waited for it); see process 0's error"
        )
    return text


def _not_tracing(method: str) -> None:
    if context.state.builder is not None:
        raise CheckpointError(
            f"Checkpoint.{method} cannot run inside a tj.function; call it between compiled steps"
        )


class CheckpointManager:
    """Numbered checkpoints in one directory, keeping the newest ``max_to_keep``.

    >>> import tempfile
    >>> import tracejit as tj
    >>> step = tj.Variable(0)
    >>> manager = tj.train.CheckpointManager(tj.train.Checkpoint(step=step), tempfile.mkdtemp(),
    ...                                      max_to_keep=2)
    >>> for i in range(4):
    ...     _ = step.assign(i)
    ...     _ = manager.save()
    >>> [os.path.basename(p) for p in manager.checkpoints]
    ['ckpt-3', 'ckpt-4']
    """

    def __init__(self, checkpoint: Checkpoint, directory: str, max_to_keep: int | None = 5,
                 prefix: str = "ckpt") -> None:  # fmt: skip
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(
                f"max_to_keep must be at least 1 (or None to keep all), got {max_to_keep}"
            )
        self.checkpoint = checkpoint
        self.directory = directory
        self.max_to_keep = max_to_keep
        self.prefix = prefix

    @property
    def checkpoints(self) -> list[str]:
        """Complete checkpoints in the directory, oldest first."""
        return list_checkpoints(self.directory, self.prefix)

    @property
    def latest_checkpoint(self) -> str | None:
        return latest_checkpoint(self.directory, self.prefix)

    @trims_tracebacks
    def save(self) -> str:
        """Save a new checkpoint, then delete the oldest beyond ``max_to_keep`` (and temporary
        folders left by writers that died); return the new checkpoint's path."""
        _not_tracing("save")
        arrays = snapshot(self.checkpoint.variables())

        def write() -> str:
            path = write_checkpoint(self.directory, arrays, self.prefix)
            if self.max_to_keep is not None:
                for old in self.checkpoints[: -self.max_to_keep]:
                    files.remove_directory(old)
            files.remove_stale_temporaries(self.directory)
            return path

        return on_process_zero(write)

    def restore_latest(self) -> RestoreStatus:
        """Restore the newest checkpoint (nothing, if there is none yet)."""
        return self.checkpoint.restore(self.latest_checkpoint, allow_none=True)
