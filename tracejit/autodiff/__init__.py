"""Automatic differentiation: gradient tapes (reverse mode) and forward mode.

``tj.autodiff.ForwardAccumulator`` is TF's name for the forward-mode accumulator; it is loaded on
first use so that importing the tape does not import forward mode.
"""

from __future__ import annotations

from typing import Any

_FORWARD = ("ForwardAccumulator", "TangentError")


def __getattr__(name: str) -> Any:
    if name in _FORWARD:
        from tracejit.autodiff import forward

        return getattr(forward, name)
    raise AttributeError(f"module 'tracejit.autodiff' has no attribute {name!r}")
