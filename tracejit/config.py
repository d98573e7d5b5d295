"""Global configuration: debugging switches and optimizer settings for every ``tj.function``."""

from __future__ import annotations

import os


class _Config:
    def __init__(self) -> None:
        self.run_eagerly = False
        self.fold_limit = 1 << 16  # elements: larger results are not constant-folded
        self.unsafe_rewrites = False
        self.dump_dir: str | None = os.environ.get("TRACEJIT_DUMP_IR") or None


_config = _Config()


def run_functions_eagerly(enabled: bool = True) -> None:
    """Run the Python body of every ``tj.function`` eagerly instead of tracing and compiling it.

    Results are identical; use it to step through a function with a debugger or print values.

    >>> import tracejit as tj
    >>> tj.config.run_functions_eagerly(True)
    >>> tj.config.functions_run_eagerly()
    True
    >>> tj.config.run_functions_eagerly(False)
    """
    _config.run_eagerly = bool(enabled)


def functions_run_eagerly() -> bool:
    """Whether ``run_functions_eagerly(True)`` is in force."""
    return _config.run_eagerly


def set_fold_limit(elements: int) -> None:
    """Constant folding skips results with more than ``elements`` elements (default 65,536)."""
    _config.fold_limit = int(elements)


def fold_limit() -> int:
    return _config.fold_limit


def set_unsafe_rewrites(enabled: bool) -> None:
    """Allow rewrites that can change results in corner cases (``x * 0 -> 0`` is wrong for NaN
    and inf). Off by default; affects functions traced afterwards."""
    _config.unsafe_rewrites = bool(enabled)


def unsafe_rewrites() -> bool:
    return _config.unsafe_rewrites


def dump_ir(directory: str | None) -> None:
    """Write the IR after every pass of every trace to text files in ``directory`` (None turns
    it off). The environment variable ``TRACEJIT_DUMP_IR=<dir>`` does the same."""
    _config.dump_dir = directory


def dump_directory() -> str | None:
    return _config.dump_dir
