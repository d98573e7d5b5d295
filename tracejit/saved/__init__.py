"""Saved functions: compiled functions that run without their Python source.

``tj.saved.save(obj, directory)`` stores the traced, optimized IR of ``obj``'s ``tj.function``s
(versioned JSON), the variables they use and their constants (``.npz``); ``tj.saved.load``
rebuilds callable functions from it, validating everything first (``FormatError`` otherwise);
``tj.saved.export(cf)`` serializes one concrete function as a ``jax.export`` artifact.
"""

from tracejit.saved.errors import FormatError
from tracejit.saved.export import export
from tracejit.saved.load import Loaded, LoadedFunction, load
from tracejit.saved.save import save

__all__ = ["FormatError", "Loaded", "LoadedFunction", "export", "load", "save"]
