"""Per-thread interpreter state: the graph builder currently tracing (if any) and the active
gradient tapes.

``bind`` reads this on every op call, so the module stays tiny and import-free. Each thread has
its own state: tracing in one thread never captures ops run in another.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class _State(threading.local):
    builder: Any = None  # the innermost active GraphBuilder, or None when running eagerly
    tapes: tuple[Any, ...] = ()  # active GradientTapes, innermost last
    strategy: Any = None  # the innermost tj.distribute strategy whose scope() is active


state = _State()


@contextlib.contextmanager
def paused_tracing() -> Iterator[None]:
    """Run eagerly for a moment inside a trace (variable initializers, like TF's init_scope)."""
    previous = state.builder
    state.builder = None
    try:
        yield
    finally:
        state.builder = previous
