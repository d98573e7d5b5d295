"""The error a saved directory raises when it cannot be trusted to load."""

from __future__ import annotations

from tracejit.errors import TracejitError


class FormatError(TracejitError, ValueError):
    """A saved directory is corrupt, hostile, or of another format version: it was rejected
    before anything in it ran. The message names the file and the field."""
