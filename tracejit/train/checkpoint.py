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
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.eager.variable import Variable
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

    def save(self, directory: str) -> str:
        """Write the next numbered checkpoint (``ckpt-<N>``) into ``directory``; return its
        path. Values are read first, so the checkpoint is one consistent snapshot."""
        _not_tracing("save")
        arrays = {path: np.asarray(v._value) for path, v in self.variables().items()}
        return write_checkpoint(directory, arrays)

    def restore(self, path: str | None) -> RestoreStatus:
        """Assign the values saved at ``path`` to the live variables with the same paths.

        ``path`` is a checkpoint, or a directory of checkpoints (the newest is used), or None
        (nothing is restored: the result of ``latest_checkpoint`` on an empty directory).
        Missing slot variables of optimizers are created. Any problem — unreadable or damaged
        files, a shape or dtype that does not fit — raises ``CheckpointError`` before anything
        is assigned.
        """
        _not_tracing("restore")
        if path is None:
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
        return RestoreStatus(path, sorted(matched), missing, unused)


def _mismatch(path: str, target: Any, array: np.ndarray) -> str | None:
    if isinstance(target, object_graph.SlotRef):
        aval = target.variable.aval  # a slot has its variable's shape and dtype
    else:
        aval = target.aval
    if tuple(array.shape) != aval.shape or as_dtype(array.dtype) != aval.dtype:
        got = AVal(tuple(array.shape), np.dtype(array.dtype))
        return f"{path}: the checkpoint holds {got}, the variable is {aval}"
    return None


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

    def save(self) -> str:
        """Save a new checkpoint, then delete the oldest beyond ``max_to_keep`` (and temporary
        folders left by writers that died); return the new checkpoint's path."""
        _not_tracing("save")
        arrays = {p: np.asarray(v._value) for p, v in self.checkpoint.variables().items()}
        path = write_checkpoint(self.directory, arrays, self.prefix)
        if self.max_to_keep is not None:
            for old in self.checkpoints[: -self.max_to_keep]:
                files.remove_directory(old)
        files.remove_stale_temporaries(self.directory)
        return path

    def restore_latest(self) -> RestoreStatus:
        """Restore the newest checkpoint (nothing, if there is none yet)."""
        return self.checkpoint.restore(self.latest_checkpoint)
