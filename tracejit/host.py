"""Reading array values on the host, when an array may be a *global* one of a multi-process run.

After ``tj.distribute.initialize`` a jax array can span the devices of several processes. Its
value can be read in this process when this process's devices hold all of it (it is replicated,
or split only over this process's devices); otherwise the other parts live in other processes'
memory and only a collective (``tj.distribute.gather``, called by every process) brings them
here. Everything in tracejit that reads values on the host — ``numpy()``, printing, constant
folding and the other passes, saving — asks here first, so nothing calls ``np.asarray`` on an
array it cannot read.

Bottom layer: imports jax and numpy only (and tracejit.errors).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from tracejit.errors import TracejitError


class NotAddressableError(TracejitError, RuntimeError):
    """A value was read on the host that this process holds only part of: a global array split
    over the devices of several processes (a ``RuntimeError``, as jax raises)."""


def holds_whole(array: Any) -> bool:
    """Whether this process's devices hold every element of ``array`` (always true for
    anything but a global jax array of a multi-process run)."""
    if not isinstance(array, jax.Array) or array.is_fully_addressable:
        return True
    sharding = array.sharding
    if not sharding.has_addressable_devices:
        return False
    if array.is_fully_replicated:
        return True
    covered = np.zeros(array.shape, dtype=bool)  # split over local devices, replicated across
    for index in sharding.addressable_devices_indices_map(array.shape).values():
        covered[index] = True
    return bool(covered.all())


def describe_split(array: jax.Array) -> str:
    """``a global f32[64,784] array split over the devices of 2 processes``."""
    processes = {device.process_index for device in array.sharding.device_set}
    dtype = np.dtype(array.dtype).name
    return (
        f"a global {dtype}{list(array.shape)} array split over the devices of {len(processes)} "
        "processes"
    )


def host_array(array: Any, what: str = "the value") -> np.ndarray:
    """``np.asarray(array)``, or ``NotAddressableError`` saying how to read ``what`` when this
    process holds only part of it."""
    if holds_whole(array):
        return np.asarray(array)
    raise NotAddressableError(
        f"{what} is {describe_split(array)}; this process holds only part of it "
        f"(process {jax.process_index()} of {jax.process_count()}). Read all of it with "
        "tj.distribute.gather(x) — a collective: call it on every process — or this "
        "process's part with x.value.addressable_shards."
    )


def gather_array(array: Any) -> np.ndarray:
    """All of ``array`` in host memory: read directly when this process holds all of it, else
    gathered from every process (``multihost_utils.process_allgather``) — a collective, so every
    process must make the same calls in the same order."""
    if holds_whole(array):
        return np.asarray(array)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def host_or_none(array: Any) -> np.ndarray | None:
    """``np.asarray(array)``, or None when this process cannot read all of it (for passes and
    printing, which then treat the value as unknown)."""
    return np.asarray(array) if holds_whole(array) else None
