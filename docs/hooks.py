"""mkdocs hook: what the doctests need but a reader does not.

The guides' and docstrings' ``pycon`` snippets run as doctests, so they carry ``# doctest:``
directives and ``<doctest ...>`` file names in expected output. On the rendered site the
directives are dropped and the placeholder reads ``<stdin>``, as the user's own REPL would show.
(docs/stylesheets/copy.css makes the copy button leave out prompts and output.)
"""

from __future__ import annotations

import re

# Pygments renders a directive as a comment span, e.g. <span class="c1"># doctest: +ELLIPSIS</span>,
# after a space that belongs to the code before it.
_DIRECTIVE = re.compile(r'\s*<span class="c1">#\s*doctest:[^<]*</span>')
_PLACEHOLDER = re.compile(r"&lt;doctest (?:\.\.\.|[\w.\[\]-]+)&gt;")


def clean(html: str) -> str:
    """``html`` without doctest directives, with ``<doctest ...>`` shown as ``<stdin>``."""
    return _PLACEHOLDER.sub("&lt;stdin&gt;", _DIRECTIVE.sub("", html))


def on_page_content(html: str, **_: object) -> str:
    return clean(html)
