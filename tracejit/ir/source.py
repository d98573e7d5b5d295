"""Source locations in the *user's* code: where an op was called, for the IR and for errors."""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from tracejit.errors import is_library_frame as _is_library_file


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """A place in user code: file, line number and enclosing function."""

    file: str
    line: int
    function: str

    @property
    def text(self) -> str:
        """The stripped source line, or "" when the file cannot be read."""
        return linecache.getline(self.file, self.line).strip()

    def short(self) -> str:
        """``iris.py:31 in forward``."""
        return f"{os.path.basename(self.file)}:{self.line} in {self.function}"

    def describe(self) -> str:
        """``iris.py:31 in forward: h = x @ w + b`` (the source text when available)."""
        text = self.text
        return f"{self.short()}: {text}" if text else self.short()

    def __str__(self) -> str:
        return self.short()


class _Replay(threading.local):
    loc: SourceLoc | None = None


_replay = _Replay()


@contextlib.contextmanager
def replaying_at(loc: SourceLoc | None) -> Iterator[None]:
    """Inside the block ``user_location()`` is ``loc``: a transformation re-emitting a node
    (``tj.vmap``'s batching rules) gives the new nodes, and its errors, the user's line of the
    node it came from."""
    previous = _replay.loc
    _replay.loc = loc
    try:
        yield
    finally:
        _replay.loc = previous


def user_location(skip: int = 1) -> SourceLoc | None:
    """The innermost frame of the call stack that is not inside tracejit or jax (or the line a
    transformation is replaying, see ``replaying_at``)."""
    if _replay.loc is not None:
        return _replay.loc
    frame = sys._getframe(skip)
    while frame is not None:
        code = frame.f_code
        if not _is_library_file(code.co_filename) and not code.co_filename.startswith("<frozen"):
            return SourceLoc(code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return None
