"""``tj.device(name)``: run a block on one jax device, as TF's ``with tf.device(...)``.

Inside the block, eager tensors made from data, the results of eager ops, new Variables and
compiled calls are placed on that device. The mechanism is jax's own default device
(``jax.default_device``), which tracejit's arrays follow because they are uncommitted: an op or a
compiled call on uncommitted inputs runs on the default device and leaves its results there.
Variables created in the block are pinned there (``jax.device_put``), as a TF variable lives on
the device it was created on.

Names are TF's or jax's spellings: ``"cpu"``, ``"cpu:1"``, ``"gpu:0"``, ``"/device:GPU:1"``,
``"/GPU:0"``, ``"/job:localhost/replica:0/task:0/device:CPU:0"``, or a ``jax.Device``. The index
counts the devices of that platform (``jax.devices("cpu")[1]`` is ``"cpu:1"``). Unlike TF's soft
placement, a device that does not exist is an error listing the devices that do.

Inside a ``tj.function`` that is being traced the block changes nothing: a compiled call runs on
one device as a whole, the device it is called on.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import jax

from tracejit.tracing import context

_SPELLING = re.compile(
    r"^(?:/job:[^/]+)?(?:/replica:\d+)?(?:/task:\d+)?/?(?:device:)?"
    r"(?P<platform>[A-Za-z_]+)(?::(?P<index>\d+))?$"
)
_ALIASES = {"gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "cpu": "cpu", "tpu": "tpu"}


def available_devices() -> list[str]:
    """The names ``tj.device`` accepts for the devices of this process (``cpu:0``, ...)."""
    names: list[str] = []
    for platform in ("cpu", "gpu", "tpu"):
        try:
            found = jax.devices(platform)
        except RuntimeError:  # no such backend here
            continue
        names.extend(f"{platform}:{i}" for i in range(len(found)))
    return names


def resolve_device(name: Any) -> jax.Device:
    """The jax device a TF- or jax-style device name stands for (see the module docstring)."""
    if isinstance(name, jax.Device):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"tj.device expects a device name such as 'cpu:0' or 'gpu:1' (or a jax.Device), "
            f"got {type(name).__name__}: {name!r:.60}"
        )
    match = _SPELLING.match(name.strip())
    platform = _ALIASES.get(match["platform"].lower()) if match else None
    if match is None or platform is None:
        raise ValueError(
            f"tj.device({name!r}): not a device name; write 'cpu', 'cpu:1', 'gpu:0' or TF's "
            f"'/device:GPU:0'. Available devices: {', '.join(available_devices())}"
        )
    index = int(match["index"] or 0)
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    if index >= len(devices):
        raise ValueError(
            f"tj.device({name!r}): there is no {platform} device {index} in this process. "
            f"Available devices: {', '.join(available_devices())}"
        )
    return devices[index]


@contextlib.contextmanager
def device(name: Any) -> Iterator[jax.Device]:
    """Place eager tensors, Variables and compiled calls of the block on one device.

    ``name`` is ``"cpu"``, ``"cpu:1"``, ``"gpu:0"``, TF's ``"/device:GPU:0"`` or a
    ``jax.Device``; the block gets the jax device. An unknown device raises ``ValueError``
    listing the available ones.

    >>> import tracejit as tj
    >>> with tj.device("cpu:0") as where:
    ...     x = tj.constant([1.0, 2.0]) * 2
    >>> x.device == where, where.platform
    (True, 'cpu')
    """
    placed = resolve_device(name)
    state = context.state
    previous = state.device
    state.device = placed
    try:
        with jax.default_device(placed):
            yield placed
    finally:
        state.device = previous


def placement_device() -> jax.Device:
    """The device new tensors are made on: the innermost ``tj.device`` block's, else jax's
    default device."""
    placed = context.state.device
    if placed is not None:
        return placed
    default = jax.config.jax_default_device  # a device, a platform name, or None
    # (jax.devices()[0] is process 0's in a multi-process run: this process's own first one)
    return default if isinstance(default, jax.Device) else jax.local_devices()[0]


def device_mismatch(device: Any) -> str | None:
    """Why the array API's ``device=`` cannot be honoured (None when it can): it may name the
    device tensors are made on now, or be None; placing elsewhere is ``tj.device``'s job."""
    if device is None:
        return None
    here = placement_device()
    if resolve_device(device) == here:
        return None
    return (
        f"device={device!r}, but tensors are made on {here} here; place them with "
        f"`with tj.device({device!r}):` (or x.to_device({device!r}))"
    )
