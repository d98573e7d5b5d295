"""A griffe extension for the API reference: doctest examples in docstrings become ``pycon``
code blocks, so MkDocs shows them as code (not as nested quotes, with ``[1, 8]`` read as a
link). Loaded by mkdocstrings from ``mkdocs.yml``; not part of the tracejit package."""

from __future__ import annotations

import textwrap
from typing import Any

import griffe

PROMPTS = (">>>", "...")


def fence_doctests(text: str) -> str:
    """Wrap each run of ``>>>`` lines and their output (up to a blank line) in a code fence."""
    lines = textwrap.dedent(text).splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        stripped = line.lstrip()
        if not inside and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            inside = True
        elif inside and not stripped:
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fence the doctests of every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
