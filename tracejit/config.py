"""Global configuration: debugging switches and optimizer settings for every ``tj.function``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

LOG_EVENTS = ("trace", "compile", "retrace", "cache")
RETRACE_MODES = ("warn", "off", "error")

# Traces, compiles, retraces and cache hits are logged here (``tj.config.set_log``).
logger = logging.getLogger("tracejit")


def _parse_log(events: str | Iterable[str] | None) -> frozenset[str]:
    if events is None:
        return frozenset()
    names = events.replace(";", ",").split(",") if isinstance(events, str) else list(events)
    chosen = {name.strip().lower() for name in names if name.strip()}
    if "all" in chosen:
        return frozenset(LOG_EVENTS)
    unknown = sorted(chosen - set(LOG_EVENTS))
    if unknown:
        raise ValueError(
            f"unknown log event(s) {', '.join(unknown)}; choose from {', '.join(LOG_EVENTS)} "
            "or 'all'"
        )
    return frozenset(chosen)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


class _Config:
    def __init__(self) -> None:
        self.run_eagerly = False
        self.fold_limit = 1 << 16  # elements: larger results are not constant-folded
        self.unsafe_rewrites = False
        self.dump_dir: str | None = os.environ.get("TRACEJIT_DUMP_IR") or None
        self.report_dir: str | None = os.environ.get("TRACEJIT_REPORT") or None
        self.retrace_warning = "warn"
        self.full_traceback = _env_flag("TRACEJIT_FULL_TRACEBACK")
        self.debug_checks = _env_flag("TRACEJIT_DEBUG")
        self.log: frozenset[str] = frozenset()
        # Read by the cached-call hot path: one attribute, so it is a plain bool.
        self.log_cache = False
        self.unroll_warning_threshold: int | None = 1000


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


def write_reports(directory: str | None) -> None:
    """After every trace, write the function's HTML compile report (``tj.report``) to
    ``directory/<function>.html`` (None turns it off); the reports are written again at exit,
    with the final call counts and compile times. The environment variable
    ``TRACEJIT_REPORT=<dir>`` does the same."""
    _config.report_dir = directory


def report_directory() -> str | None:
    return _config.report_dir


def set_retrace_warning(mode: str) -> None:
    """What happens when a ``tj.function`` is traced 5 times within its last 10 calls:
    ``"warn"`` (the default: a ``RetracingWarning`` naming the argument that keeps changing),
    ``"off"``, or ``"error"`` (a ``RetracingError`` — strict retracing, for CI). The
    environment variable ``TRACEJIT_RETRACE_WARNING=error`` does the same at import.

    >>> import tracejit as tj
    >>> tj.config.set_retrace_warning("error")
    >>> tj.config.retrace_warning()
    'error'
    >>> tj.config.set_retrace_warning("warn")
    """
    if mode not in RETRACE_MODES:
        raise ValueError(f"retrace warning mode must be one of {RETRACE_MODES}, got {mode!r}")
    _config.retrace_warning = mode


def retrace_warning() -> str:
    """The mode set by ``set_retrace_warning``."""
    return _config.retrace_warning


def set_unroll_warning_threshold(nodes: int | None) -> None:
    """Warn (``tj.autograph.LoopUnrollWarning``, once per loop line) when one Python loop
    statement — a ``for`` over ``range``/a list, a ``while`` on a Python condition — unrolls
    into more than ``nodes`` nodes of the graph being traced (default 1000; None turns it off).
    The fix is usually ``tj.range``: a loop over it stays one loop node.

    >>> import tracejit as tj
    >>> tj.config.set_unroll_warning_threshold(500)
    >>> tj.config.unroll_warning_threshold()
    500
    >>> tj.config.set_unroll_warning_threshold(1000)
    """
    if nodes is not None and (not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1):
        raise ValueError(
            f"the unroll warning threshold must be a positive int or None, got {nodes!r}"
        )
    _config.unroll_warning_threshold = nodes


def unroll_warning_threshold() -> int | None:
    """The threshold set by ``set_unroll_warning_threshold`` (None: off)."""
    return _config.unroll_warning_threshold


def set_log(events: str | Iterable[str] | None) -> None:
    """Log these events through Python's ``logging`` (logger ``"tracejit"``, level INFO):
    ``"trace"`` (each trace, with trace and optimization times), ``"compile"`` (each first
    call, with its compile time), ``"retrace"`` (what changed), ``"cache"`` (cache hits), or
    ``"all"``; a comma-separated string or a list. ``None`` or ``""`` turns logging off. The
    environment variable ``TRACEJIT_LOG=trace,compile`` does the same at import.

    When no logging handler is configured, one printing to stderr is added.

    >>> import tracejit as tj
    >>> tj.config.set_log("trace,retrace")
    >>> sorted(tj.config.log_events())
    ['retrace', 'trace']
    >>> tj.config.set_log(None)
    """
    chosen = _parse_log(events)
    _config.log = chosen
    _config.log_cache = "cache" in chosen
    if chosen:
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        if not logger.hasHandlers():
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("tracejit: %(message)s"))
            logger.addHandler(handler)


def log_events() -> frozenset[str]:
    """The events being logged (see ``set_log``)."""
    return _config.log


def logging_enabled(event: str) -> bool:
    return event in _config.log


def set_full_traceback(enabled: bool = True) -> None:
    """Keep tracejit's own frames in the tracebacks of errors raised while tracing and running
    compiled functions (they are trimmed by default, so the traceback shows your code). The
    environment variable ``TRACEJIT_FULL_TRACEBACK=1`` does the same."""
    _config.full_traceback = bool(enabled)


def full_traceback() -> bool:
    """Whether ``set_full_traceback(True)`` (or ``TRACEJIT_FULL_TRACEBACK=1``) is in force."""
    return _config.full_traceback


def set_debug_checks(enabled: bool = True) -> None:
    """Verify every graph's IR invariants (SSA form, each node's avals against its op's
    inference) after tracing and after every pass that changed it. Off by default, since a
    verified tracer and passes keep them and the check costs about a third of tracing time; on
    in tracejit's own test suite. The environment variable ``TRACEJIT_DEBUG=1`` does the same.
    (Loading a saved function always verifies: its file is untrusted.)"""
    _config.debug_checks = bool(enabled)


def debug_checks() -> bool:
    """Whether ``set_debug_checks(True)`` (or ``TRACEJIT_DEBUG=1``) is in force."""
    return _config.debug_checks


def _from_environment() -> None:
    import warnings

    try:
        if os.environ.get("TRACEJIT_LOG"):
            set_log(os.environ["TRACEJIT_LOG"])
        if os.environ.get("TRACEJIT_RETRACE_WARNING"):
            set_retrace_warning(os.environ["TRACEJIT_RETRACE_WARNING"].strip().lower())
    except ValueError as err:  # a typo in the environment should not make import fail
        warnings.warn(f"tracejit: ignoring the environment setting: {err}", stacklevel=2)


_from_environment()

__all__ = [
    "LOG_EVENTS",
    "RETRACE_MODES",
    "debug_checks",
    "dump_directory",
    "dump_ir",
    "fold_limit",
    "full_traceback",
    "functions_run_eagerly",
    "log_events",
    "logging_enabled",
    "report_directory",
    "retrace_warning",
    "run_functions_eagerly",
    "set_debug_checks",
    "set_fold_limit",
    "set_full_traceback",
    "set_log",
    "set_retrace_warning",
    "set_unroll_warning_threshold",
    "set_unsafe_rewrites",
    "unroll_warning_threshold",
    "unsafe_rewrites",
    "write_reports",
]
