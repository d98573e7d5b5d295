"""The storage layer under checkpoints and saved functions: directories that appear whole or not
at all, arrays that load without pickle, and JSON that is parsed strictly.

- ``write_directory_atomically`` writes into a temporary folder beside the target, fsyncs every
  file and the folder, then renames it into place: a crash or a kill at any moment leaves either
  the old directory or the complete new one, never a torn one.
- ``write_arrays`` / ``read_arrays``: ``.npz`` files of plain arrays with a manifest entry per
  array (shape, dtype name, sha256 of its bytes). Reading checks the zip member's size and the
  ``.npy`` header against the manifest *before* reading any data, never unpickles, and checks
  every checksum.
- ``read_json``: size-capped, no NaN/Infinity literals, no duplicate keys, and nesting depth and
  item count capped by a scan of the bytes *before* any Python object is built.
- Every file is opened with ``open_regular``: regular files only (a FIFO, device or directory
  in a file's place is refused at once, never blocks), size checked before a byte is read.

This module imports only the standard library, numpy and ml_dtypes (never jax, never the rest of
tracejit), so a small writer process can use it without paying for jax's import.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import ml_dtypes
import numpy as np

TEMP_PREFIX = ".tmp-"
_MAX_NPY_HEADER = 65536
_CHUNK = 1 << 20
MAX_JSON_DEPTH = 256
MAX_JSON_ITEMS = 4_000_000
_DTYPE_NAMES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
)  # fmt: skip
DTYPES: dict[str, np.dtype] = {name: np.dtype(name) for name in _DTYPE_NAMES}
DTYPES["bfloat16"] = np.dtype(ml_dtypes.bfloat16)


class CorruptFileError(ValueError):
    """A file is missing, truncated, or does not hold what its manifest says."""


# Opening files ----------------------------------------------------------------------------------
def open_regular(path: str, max_bytes: int) -> io.BufferedReader:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``.

    The file is opened non-blocking (a FIFO in its place cannot make the open wait for a
    writer), then ``fstat``-ed: anything but a regular file, or a file over the cap, raises
    ``CorruptFileError`` before a byte is read."""
    name = os.path.basename(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise CorruptFileError(f"{name}: cannot be read ({err.strerror or err})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorruptFileError(f"{name} is not a regular file")
        if info.st_size > max_bytes:
            raise CorruptFileError(
                f"{name} is {info.st_size} bytes, larger than the allowed {max_bytes}"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (``CorruptFileError`` otherwise)."""
    with open_regular(path, max_bytes) as file:
        try:  # (read what fstat saw, plus a byte: never a buffer of the whole cap)
            raw = file.read(min(os.fstat(file.fileno()).st_size, max_bytes) + 1)
        except OSError as err:
            raise CorruptFileError(
                f"{os.path.basename(path)}: cannot be read ({err.strerror or err})"
            ) from None
    if len(raw) > max_bytes:  # (it grew after the fstat)
        raise CorruptFileError(f"{os.path.basename(path)} is larger than {max_bytes} bytes")
    return raw


# Dtypes ------------------------------------------------------------------------------------------
def dtype_name(dtype: Any) -> str:
    """The portable name of a dtype tracejit can store (``float32``, ``bfloat16``...)."""
    dtype = np.dtype(dtype)
    for name, known in DTYPES.items():
        if known == dtype:
            return name
    raise TypeError(f"arrays of dtype {dtype} cannot be stored (known: {', '.join(DTYPES)})")


def dtype_from_name(name: Any) -> np.dtype:
    """The dtype a stored name stands for; only names in ``DTYPES`` are accepted, so a file can
    never ask numpy for an object or structured dtype."""
    if not isinstance(name, str) or name not in DTYPES:
        raise CorruptFileError(f"unknown dtype {name!r} (known: {', '.join(DTYPES)})")
    return DTYPES[name]


def _storage_dtype(dtype: np.dtype) -> np.dtype:
    """How an array of ``dtype`` sits in an .npy file: itself when numpy's header can name it,
    else unsigned integers of the same width (bfloat16 is stored as uint16 bits)."""
    if np.dtype(dtype.str) == dtype:
        return dtype
    return np.dtype(f"<u{dtype.itemsize}")


def checksum(array: np.ndarray) -> str:
    """sha256 of an array's bytes in C order."""
    return hashlib.sha256(np.asarray(array).tobytes(order="C")).hexdigest()


# Arrays ------------------------------------------------------------------------------------------
def write_arrays(path: str, arrays: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Write ``arrays`` (key -> array) as an uncompressed ``.npz`` at ``path``, fsynced; return
    the manifest entries ``{key: {"shape", "dtype", "sha256"}}``."""
    entries: dict[str, dict[str, Any]] = {}
    stored: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        array = np.asarray(value)
        if not array.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
            array = array.copy(order="C")
        name = dtype_name(array.dtype)
        stored[key] = array.view(_storage_dtype(array.dtype))
        entries[key] = {"shape": list(array.shape), "dtype": name, "sha256": checksum(array)}
    with open(path, "wb") as file:
        np.savez(file, **stored)
        file.flush()
        os.fsync(file.fileno())
    return entries


def element_count(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def arrays_file_cap(expected: Mapping[str, tuple[tuple[int, ...], np.dtype, str]]) -> int:
    """The most bytes an ``.npz`` holding the ``expected`` arrays can take: their data, an
    ``.npy`` header and zip records for each, and a little slack."""
    per_member = _MAX_NPY_HEADER + 1024
    data = sum(element_count(shape) * dtype.itemsize for shape, dtype, _ in expected.values())
    return data + per_member * (len(expected) + 1)


def read_arrays(
    file: Any, expected: Mapping[str, tuple[tuple[int, ...], np.dtype, str]], name: str = ""
) -> dict[str, np.ndarray]:
    """Read the arrays ``expected`` names (key -> (shape, dtype, sha256)) from an ``.npz``
    (a path or an open binary file).

    Shapes come from an already validated manifest; a member whose sizes, compression method,
    header, length or checksum disagrees raises ``CorruptFileError`` -- sizes and method are
    checked before any data is read, and data is streamed into a buffer of the declared size
    (never more), hashed as it arrives. Members not named are never read.
    """
    if not name:
        path_like = isinstance(file, (str, os.PathLike))
        name = os.path.basename(os.fspath(file)) if path_like else "the arrays file"
    try:
        with zipfile.ZipFile(file) as archive:
            infos = archive.infolist()
            if len(infos) > len(expected) + 16:
                raise CorruptFileError(
                    f"{name} has {len(infos)} members for {len(expected)} arrays"
                )
            members = {info.filename: info for info in infos}
            return {
                key: _read_member(archive, members, key, *spec) for key, spec in expected.items()
            }
    except CorruptFileError:
        raise
    except MemoryError:
        raise CorruptFileError(f"{name}: its arrays do not fit in memory") from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error) as err:
        raise CorruptFileError(f"{name}: unreadable array file ({err})") from None
    except (ValueError, RuntimeError, NotImplementedError) as err:  # bad headers, encryption
        raise CorruptFileError(f"{name}: malformed array file ({err})") from None


def _read_member(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    key: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
    digest: str,
) -> np.ndarray:
    info = members.get(key + ".npy")
    where = f"array {key!r}"
    if info is None:
        raise CorruptFileError(f"{where} is missing from the array file")
    storage = _storage_dtype(dtype)
    nbytes = element_count(shape) * storage.itemsize
    if not nbytes <= info.file_size <= nbytes + _MAX_NPY_HEADER:
        raise CorruptFileError(
            f"{where} should hold {nbytes} bytes of data, but its file is {info.file_size} bytes"
        )
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CorruptFileError(f"{where}: compression method {info.compress_type} is not allowed")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise CorruptFileError(f"{where}: a stored member's sizes disagree")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(member)
        elif version in ((2, 0), (3, 0)):
            header = np.lib.format.read_array_header_2_0(member)
        else:
            raise CorruptFileError(f"{where}: unsupported .npy version {version}")
        stored_shape, fortran, stored_dtype = header
        if tuple(stored_shape) != shape or fortran or stored_dtype != storage:
            raise CorruptFileError(
                f"{where}: the file holds {stored_dtype} {tuple(stored_shape)}"
                f"{' (Fortran order)' if fortran else ''}, the manifest says {dtype} {shape}"
            )
        buffer = bytearray(nbytes)
        view = memoryview(buffer)
        hasher = hashlib.sha256()
        filled = 0
        while filled < nbytes:  # stream: never more than the declared size
            chunk = member.read(min(_CHUNK, nbytes - filled))
            if not chunk:
                raise CorruptFileError(f"{where} is truncated")
            view[filled : filled + len(chunk)] = chunk
            hasher.update(chunk)
            filled += len(chunk)
        if member.read(1):
            raise CorruptFileError(f"{where} has trailing bytes")
    if hasher.hexdigest() != digest:
        raise CorruptFileError(f"{where}: checksum mismatch (the bytes were changed or damaged)")
    return np.frombuffer(buffer, dtype=storage).reshape(shape).view(dtype)


# JSON --------------------------------------------------------------------------------------------
def _no_constants(name: str) -> Any:
    raise CorruptFileError(f"JSON literal {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CorruptFileError(f"JSON object has the key {key!r} twice")
        result[key] = value
    return result


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def check_json_shape(raw: bytes, max_depth: int = MAX_JSON_DEPTH,
                     max_items: int = MAX_JSON_ITEMS) -> None:  # fmt: skip
    """Refuse JSON text nested deeper than ``max_depth`` or with more than ``max_items`` values
    and keys, by scanning the bytes (at C speed) before the parser builds any object.

    Items are bounded by the separators and openings (``,`` ``:`` ``[`` ``{``), counted even
    inside strings, so the bound is conservative; depth is computed outside strings."""
    items = sum(raw.count(c) for c in (b",", b":", b"[", b"{")) + 1
    if items > max_items:
        raise CorruptFileError(f"holds more than the allowed {max_items} JSON values")
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    depth = int(np.cumsum(steps).max())
    if depth > max_depth:
        raise CorruptFileError(f"is nested {depth} deep, more than the allowed {max_depth}")


def parse_json(raw: bytes, name: str, max_items: int = MAX_JSON_ITEMS) -> Any:
    """Parse JSON bytes strictly: shape checked first (``check_json_shape``), no NaN/Infinity,
    no duplicate keys."""
    try:
        check_json_shape(raw, max_items=max_items)
        return json.loads(raw, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except CorruptFileError as err:
        raise CorruptFileError(f"{name}: {err}") from None
    except MemoryError:
        raise CorruptFileError(f"{name}: does not fit in memory") from None
    except (ValueError, RecursionError) as err:  # includes JSONDecodeError, bad UTF-8
        raise CorruptFileError(f"{name} is not valid JSON ({err})") from None


def read_json(path: str, max_bytes: int, max_items: int = MAX_JSON_ITEMS) -> Any:
    """Parse a JSON file strictly: a regular file of at most ``max_bytes``, then
    ``parse_json``."""
    return parse_json(read_capped(path, max_bytes), os.path.basename(path), max_items)


def write_json(path: str, data: Any) -> bytes:
    """Write ``data`` as JSON (sorted keys, fsynced); return the bytes written."""
    raw = json.dumps(data, sort_keys=True, indent=1, allow_nan=False).encode()
    with open(path, "wb") as file:
        file.write(raw)
        file.flush()
        os.fsync(file.fileno())
    return raw


def sha256_file(path: str | Any, max_bytes: int | None = None) -> str:
    """sha256 of a file (a path, opened with ``open_regular`` when ``max_bytes`` is given, or
    an open binary file, hashed from its current position)."""
    if not isinstance(path, (str, os.PathLike)):
        return _sha256_stream(path)
    if max_bytes is None:
        with open(path, "rb") as file:
            return _sha256_stream(file)
    with open_regular(path, max_bytes) as file:
        return _sha256_stream(file)


def _sha256_stream(file: Any) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: file.read(_CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def member_path(directory: str, name: Any) -> str:
    """``directory/name`` for a file name read from a manifest: a plain name, never a path that
    could leave the directory (no separators, no ``..``, no links pointing elsewhere)."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 128
        or name in (".", "..")
        or any(c in name for c in "/\\\0:")
    ):
        raise CorruptFileError(f"file name {name!r} is not a plain file name in the directory")
    path = os.path.join(directory, name)
    real_dir = os.path.realpath(directory)
    if os.path.dirname(os.path.realpath(path)) != real_dir:
        raise CorruptFileError(f"file {name!r} points outside the directory")
    return path


# Atomic directories ------------------------------------------------------------------------------
def fsync_directory(path: str) -> None:
    """Make a directory's entries (files created, renamed) durable."""
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(parent: str, name: str) -> str:
    return os.path.join(parent, f"{TEMP_PREFIX}{name}-{os.getpid()}-{secrets.token_hex(4)}")


def write_directory_atomically(
    parent: str, name: str, fill: Callable[[str], None], replace: bool = False
) -> str:
    """Create ``parent/name`` whole: ``fill(tmp)`` writes the files into a temporary folder in
    ``parent``, which is fsynced and renamed into place. With ``replace``, an existing
    ``parent/name`` is swapped out (moved aside, then deleted); otherwise an existing non-empty
    one makes this raise ``FileExistsError`` and nothing changes."""
    os.makedirs(parent, exist_ok=True)
    tmp = temporary_path(parent, name)
    os.mkdir(tmp)
    final = os.path.join(parent, name)
    try:
        fill(tmp)
        for entry in os.scandir(tmp):
            if entry.is_file(follow_symlinks=False):
                fd = os.open(entry.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fsync_directory(tmp)
        old = None
        if replace and os.path.lexists(final):
            old = temporary_path(parent, name + "-old")
            os.rename(final, old)
        try:
            os.rename(tmp, final)
        except OSError as err:
            if old is not None:
                os.rename(old, final)
            if os.path.isdir(final):
                raise FileExistsError(f"{final} already exists") from err
            raise
        fsync_directory(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def remove_directory(path: str) -> None:
    """Delete a directory so that it never appears half-deleted under its own name: rename it to
    a temporary name first."""
    parent, name = os.path.split(os.path.abspath(path))
    doomed = temporary_path(parent, name + "-deleted")
    os.rename(path, doomed)
    fsync_directory(parent)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_stale_temporaries(parent: str) -> list[str]:
    """Delete temporary folders left in ``parent`` by writers that are no longer running (a
    killed process); return their paths. Folders of live processes are left alone. (Process ids
    are this machine's: do not share a checkpoint directory between machines that write.)"""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        parts = entry.name.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit() or _process_alive(int(parts[1])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
