"""Global configuration: debugging switches that apply to every ``tj.function``."""

from __future__ import annotations


class _Config:
    def __init__(self) -> None:
        self.run_eagerly = False


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
