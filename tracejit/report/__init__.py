"""``tj.report``: one self-contained HTML page about a compiled function.

For each trace: its input signature and why it was traced (the retrace explanation), timings and
call count, the IR after every pass with a diff between consecutive passes, each node linked to
the line of your code that made it, the graph drawn by Graphviz, the StableHLO, XLA's compiled
HLO and cost analysis, the backward part of a train step, and AutoGraph's converted source. The
page has no network dependencies (inline CSS, script and SVG), so it opens from disk.

``tj.config.write_reports(dir)`` (or ``TRACEJIT_REPORT=dir``) writes one page per traced
function, after each trace and again at exit.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracejit.report.collect import collect_function
from tracejit.report.render import page

if TYPE_CHECKING:
    from tracejit.tracing.function import ConcreteFunction, Function

__all__ = ["report", "report_html"]


def report_html(f: Function[..., Any] | ConcreteFunction) -> str:
    """The report page for ``f`` (a ``tj.function``: every trace so far; or one
    ``ConcreteFunction``) as HTML text."""
    return page(collect_function(f))


def report(f: Function[..., Any] | ConcreteFunction, path: str | os.PathLike[str]) -> Path:
    """Write the HTML compile report of ``f`` — a ``tj.function`` (every trace made so far) or
    one of its traces (a ``ConcreteFunction``) — to ``path``; open it in a browser.

    >>> import tracejit as tj
    >>> @tj.function
    ... def f(x):
    ...     return tj.exp(x) * 2.0
    >>> _ = f(tj.ones((3,)))
    >>> tj.report(f, "f.html")  # doctest: +SKIP
    PosixPath('f.html')
    >>> "The IR after each pass" in tj.report_html(f)
    True
    """
    target = Path(path)
    target.write_text(report_html(f), encoding="utf-8")
    return target


# TRACEJIT_REPORT=dir -----------------------------------------------------------------------------
_lock = threading.Lock()
_written: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()
_taken: set[Path] = set()
_at_exit = False


def write_function_report(function: Function[..., Any], directory: str) -> None:
    """Write (again) ``function``'s report into ``directory``, as ``<name>.html`` (a second
    function with the same name gets ``<name>_2.html``). A failure warns instead of raising: the
    report must not break the program it describes."""
    global _at_exit
    with _lock:
        path = _written.get(function)
        if path is None:
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(function.name)) or "function"
            path, number = Path(directory) / f"{safe}.html", 1
            while path in _taken:
                number += 1
                path = Path(directory) / f"{safe}_{number}.html"
            _taken.add(path)
            _written[function] = path
        if not _at_exit:
            atexit.register(_rewrite_all)
            _at_exit = True
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        report(function, path)
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"tracejit: could not write the report {path}: {err}", stacklevel=2)


def _rewrite_all() -> None:
    """At exit: the final call counts and compile times."""
    for function, path in list(_written.items()):
        write_function_report(function, str(path.parent))
