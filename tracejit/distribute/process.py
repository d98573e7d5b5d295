"""Several processes, one run: starting JAX's distributed runtime, and reading global arrays.

JAX scales out by the *multi-controller* model: every process (one per host, or several on one
machine) runs the same script, and after ``jax.distributed.initialize`` ``jax.devices()`` lists
the devices of every process; a compiled step over a mesh of them runs on all at once, each
process feeding its own devices. ``initialize`` is a thin layer over that call; ``gather``
brings a global array that is split over processes to every process's host memory.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from tracejit.eager.tensor import Tensor
from tracejit.eager.variable import Variable
from tracejit.errors import TracejitError
from tracejit.host import gather_array

# The environment ``python -m tracejit.distribute.launch`` gives each process it starts.
COORDINATOR = "TRACEJIT_COORDINATOR_ADDRESS"
NUM_PROCESSES = "TRACEJIT_NUM_PROCESSES"
PROCESS_ID = "TRACEJIT_PROCESS_ID"
LAUNCHED = "TRACEJIT_LAUNCHED"  # "1": an uncaught exception ends the process at once


class DistributedError(TracejitError, RuntimeError):
    """The distributed runtime cannot be started as asked (called after a computation, called
    twice, an incomplete set of arguments)."""


def _backends_started() -> bool:
    from jax._src import xla_bridge  # no public query; jax.distributed itself asks this

    return bool(xla_bridge.backends_are_initialized())


def _from_environment(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> tuple[str | None, int | None, int | None]:
    """Fill unset arguments from the launcher's environment variables."""

    def number(name: str) -> int | None:
        text = os.environ.get(name)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            raise DistributedError(
                f"tj.distribute.initialize: the environment variable {name}={text!r} is not an "
                "integer"
            ) from None

    if coordinator_address is None:
        coordinator_address = os.environ.get(COORDINATOR)
    if num_processes is None:
        num_processes = number(NUM_PROCESSES)
    if process_id is None:
        process_id = number(PROCESS_ID)
    return coordinator_address, num_processes, process_id


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: int | Sequence[int] | None = None,
    cpu_collectives: str | None = "gloo",
    **options: Any,
) -> None:
    """Join this process to a multi-process run: ``jax.distributed.initialize`` with CPU
    collectives. Call it first, before anything creates an array or asks for devices.

    Args:
        coordinator_address: ``host:port`` of process 0's coordinator service.
        num_processes: how many processes the run has.
        process_id: this process's id, ``0 <= process_id < num_processes``.
        local_device_ids: restrict this process to these local devices (GPUs).
        cpu_collectives: the ``jax_cpu_collectives_implementation`` to use ("gloo", "mpi"),
            so that computations over CPU devices of several processes can communicate (it
            changes nothing for GPUs and TPUs); None leaves jax's setting as it is.
        options: further keyword arguments of ``jax.distributed.initialize``
            (``initialization_timeout``, ``cluster_detection_method``, ...).

    Unset arguments come from the environment ``python -m tracejit.distribute.launch`` sets
    (``TRACEJIT_COORDINATOR_ADDRESS``, ``TRACEJIT_NUM_PROCESSES``, ``TRACEJIT_PROCESS_ID``);
    what is still unset jax detects itself on a cluster (SLURM, Open MPI, TPU pods, Kubernetes
    with the right environment). Under the launcher, an uncaught exception ends the process at
    once (after printing it) instead of waiting in jax's shutdown for peers that will not come.

    Raises:
        DistributedError: called after a computation (jax's backends already run), or twice.

    >>> import tracejit as tj
    >>> tj.distribute.initialize(  # doctest: +SKIP
    ...     coordinator_address="10.0.0.1:1234", num_processes=2, process_id=0)
    """
    coordinator_address, num_processes, process_id = _from_environment(
        coordinator_address, num_processes, process_id
    )
    if jax.distributed.is_initialized():
        raise DistributedError(
            "tj.distribute.initialize was already called in this process (the distributed "
            f"runtime runs: process {jax.process_index()} of {jax.process_count()}); call it "
            "once, at the start of the script"
        )
    if _backends_started():
        raise DistributedError(
            "tj.distribute.initialize must be called before any computation: jax's backends "
            "are already running in this process (something created an array, ran an op or "
            "listed devices: tj.constant, tj.Variable, jax.devices(), ...). Call it first, "
            "right after the imports."
        )
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        **options,
    )
    if os.environ.get(LAUNCHED) == "1":
        sys.excepthook = _exit_at_once


def _exit_at_once(kind: type[BaseException], error: BaseException, tb: Any) -> None:
    """An uncaught exception under the launcher: print it and end the process now (jax's
    shutdown at exit waits for every peer to shut down too, up to minutes)."""
    traceback.print_exception(kind, error, tb)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def process_index() -> int:
    """This process's id in the run (0 when there is one process)."""
    return int(jax.process_index())


def process_count() -> int:
    """How many processes the run has (1 without ``initialize``)."""
    return int(jax.process_count())


def gather(value: Any) -> np.ndarray:
    """The whole value of a tensor, variable or jax array in this process's memory, even when
    its parts live on other processes' devices (a per-example result of ``strategy.run``).

    A collective when the value is split over processes: *every* process must call it, at the
    same point (``multihost_utils.process_allgather``). A value this process holds whole (one
    process, or replicated) is read without communicating.

    >>> import numpy as np
    >>> import tracejit as tj
    >>> tj.distribute.gather(tj.constant([1.0, 2.0]))
    array([1., 2.], dtype=float32)
    """
    return gather_array(value._value if isinstance(value, (Tensor, Variable)) else value)
