"""The on-disk form of checkpoints, written and read with numpy alone.

``ckpt-<N>/manifest.json`` holds ``{"format": "tracejit.checkpoint", "version": 1, "arrays":
"arrays.npz", "entries": {path: {"key", "shape", "dtype", "sha256"}}}``; ``ckpt-<N>/arrays.npz``
the arrays, under the entries' keys. Directories appear by an atomic rename once complete, so
listing the ``ckpt-<N>`` names that hold a manifest lists exactly the complete checkpoints.

Like ``tracejit.saved.files``, this module imports neither jax nor the rest of tracejit (only
``tracejit.errors``), so a writer process can use it cheaply.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from tracejit.errors import TracejitError
from tracejit.saved import files

FORMAT = "tracejit.checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
_MAX_MANIFEST = 64 << 20
_MAX_ELEMENTS = 1 << 34


class CheckpointError(TracejitError, ValueError):
    """A checkpoint cannot be read or does not fit the objects being restored; nothing was
    assigned."""


# The files --------------------------------------------------------------------------------------
def checkpoint_number(name: str, prefix: str = "ckpt") -> int | None:
    match = re.fullmatch(re.escape(prefix) + r"-(\d{1,18})", name)
    return int(match.group(1)) if match else None


def list_checkpoints(directory: str, prefix: str = "ckpt") -> list[str]:
    """Complete checkpoints in ``directory``, oldest first (temporary folders are ignored)."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        number = checkpoint_number(entry.name, prefix)
        if number is not None and os.path.isfile(os.path.join(entry.path, MANIFEST)):
            found.append((number, entry.path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: str, prefix: str | None = None) -> str | None:
    """The newest complete checkpoint in ``directory``, or None if there is none. Without a
    ``prefix``, any ``<prefix>-<N>`` checkpoint counts (the one written last wins), as TF's
    ``latest_checkpoint`` finds what ``save(file_prefix)`` wrote whatever the prefix."""
    if prefix is not None:
        found = list_checkpoints(directory, prefix)
        return found[-1] if found else None
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return None
    best: tuple[float, int, str] | None = None
    for entry in entries:
        match = re.fullmatch(r"(.+)-(\d{1,18})", entry.name)
        manifest = os.path.join(entry.path, MANIFEST)
        if match and not entry.name.startswith(".") and os.path.isfile(manifest):
            key = (os.stat(manifest).st_mtime, int(match.group(2)), entry.path)
            best = key if best is None or key > best else best
    return None if best is None else best[2]


def _filler(arrays: Mapping[str, np.ndarray]) -> Any:
    keys = {f"a{i}": path for i, path in enumerate(arrays)}

    def fill(tmp: str) -> None:
        stored = files.write_arrays(
            os.path.join(tmp, ARRAYS), {k: arrays[p] for k, p in keys.items()}
        )
        entries = {path: {"key": key, **stored[key]} for key, path in keys.items()}
        files.write_json(os.path.join(tmp, MANIFEST), {
            "format": FORMAT, "version": VERSION, "arrays": ARRAYS, "entries": entries,
        })  # fmt: skip

    return fill


def write_checkpoint_at(path: str, arrays: Mapping[str, np.ndarray]) -> str:
    """Write ``arrays`` as a checkpoint at exactly ``path`` (replacing one there), atomically."""
    parent, name = os.path.split(os.path.abspath(path))
    files.write_directory_atomically(parent, name, _filler(arrays), replace=True)
    return path


def write_checkpoint(directory: str, arrays: Mapping[str, np.ndarray], prefix: str = "ckpt") -> str:
    """Write ``arrays`` (path -> array) as the next numbered checkpoint of ``directory``,
    atomically; return its path. Only numpy and the file layer are involved."""
    fill = _filler(arrays)
    while True:  # another writer may take a number first: then take the next one
        existing = [
            checkpoint_number(os.path.basename(p), prefix) or 0
            for p in list_checkpoints(directory, prefix)
        ]
        name = f"{prefix}-{max(existing, default=0) + 1}"
        try:
            return files.write_directory_atomically(directory, name, fill)
        except FileExistsError:
            continue


def read_checkpoint(path: str) -> dict[str, np.ndarray]:
    """Every array of the checkpoint at ``path`` (variable path -> array), fully validated."""
    try:
        manifest = files.read_json(files.member_path(path, MANIFEST), _MAX_MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise CheckpointError(f"{path}: {MANIFEST} is not a tracejit checkpoint manifest")
        if manifest.get("version") != VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {manifest.get('version')!r}"
                f", this tracejit reads version {VERSION}"
            )
        entries = manifest.get("entries")
        if not isinstance(entries, dict):
            raise CheckpointError(f"{path}: {MANIFEST} has no entries table")
        expected = {p: _entry_spec(p, e, path) for p, e in entries.items()}
        arrays_path = files.member_path(path, manifest.get("arrays"))
        by_key = files.read_arrays(arrays_path, {k: spec for p, (k, *spec) in expected.items()})
    except files.CorruptFileError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return {p: by_key[expected[p][0]] for p in expected}


def _entry_spec(name: str, entry: Any, path: str) -> tuple[str, tuple[int, ...], Any, str]:
    ok = isinstance(entry, dict) and set(entry) == {"key", "shape", "dtype", "sha256"}
    shape = entry.get("shape") if ok else None
    ok = ok and isinstance(entry["key"], str) and re.fullmatch(r"a\d{1,9}", entry["key"])
    ok = ok and isinstance(shape, list) and len(shape) <= 64
    ok = ok and all(type(d) is int and 0 <= d <= _MAX_ELEMENTS for d in shape)
    ok = ok and isinstance(entry["sha256"], str)
    if not ok or files.element_count(tuple(shape)) > _MAX_ELEMENTS:
        raise CheckpointError(f"{path}: the manifest entry for {name!r} is malformed")
    try:
        dtype = files.dtype_from_name(entry["dtype"])
    except files.CorruptFileError as err:
        raise CheckpointError(f"{path}: the manifest entry for {name!r}: {err}") from None
    return entry["key"], tuple(shape), dtype, entry["sha256"]
