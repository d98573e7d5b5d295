"""Training utilities: object-based checkpoints.

``tj.train.Checkpoint(model=..., optimizer=..., step=...)`` saves and restores every variable
reachable from the objects it is given; ``tj.train.CheckpointManager`` keeps the newest N;
``tj.train.latest_checkpoint(directory)`` finds the newest complete one.
"""

from tracejit.train.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    RestoreStatus,
    latest_checkpoint,
    list_variables,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointManager",
    "RestoreStatus",
    "latest_checkpoint",
    "list_variables",
]
