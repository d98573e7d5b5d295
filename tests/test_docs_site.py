"""The documentation site: mkdocs.yml's nav, the API reference's modules, and the IR picture
that docs/make_images.py draws with tracejit's own renderer. (``mkdocs build --strict`` itself
runs in .ci/run; the guides' snippets run as doctests of docs/*.md.)"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from pathlib import Path

import pytest

from tracejit.ir import dot

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text.split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r":\s*([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE)


def test_nav_lists_every_page_and_only_existing_ones():
    pages = nav_pages()
    assert len(pages) == len(set(pages))
    for page in pages:
        assert (DOCS / page).is_file(), page
    assert sorted(pages) == sorted(p.name for p in DOCS.glob("*.md"))
    for guide in ("control-flow.md", "inspecting.md", "api.md", "examples.md"):
        assert guide in pages


def test_api_reference_names_importable_modules():
    modules = re.findall(r"^::: ([\w.]+)", (DOCS / "api.md").read_text(), flags=re.MULTILINE)
    assert "tracejit.tracing.function" in modules and "tracejit.config" in modules
    for name in modules:
        importlib.import_module(name)


def test_examples_page_covers_every_example():
    text = (DOCS / "examples.md").read_text()
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert f"examples/{script.name}" in text, script.name


def test_readme_and_guides_link_to_existing_pages():
    for source in [ROOT / "README.md", *DOCS.glob("*.md")]:
        base = source.parent
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|svg))\)", source.read_text()):
            assert (base / target).is_file(), f"{source.name} links to missing {target}"


def load_make_images():
    spec = importlib.util.spec_from_file_location("make_images", DOCS / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ir_pictures_are_up_to_date_and_render(tmp_path):
    make_images = load_make_images()
    pictures = make_images.pictures()
    assert "images/classifier.svg" in (DOCS / "inspecting.md").read_text()
    for stem, graph in pictures.items():
        committed = DOCS / "images" / f"{stem}.dot"
        assert committed.read_text() == graph.to_dot(), (
            f"{committed} is out of date: run python docs/make_images.py"
        )
        assert (DOCS / "images" / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
        if dot.dot_program() is None:
            if os.environ.get("CI"):
                pytest.fail("Graphviz `dot` is missing in CI: .ci/run installs graphviz")
            pytest.skip("Graphviz `dot` is not installed (apt-get install graphviz)")
        svg = graph.render(tmp_path / f"{stem}.svg").read_text()
        assert "cond: true_body" in svg and "class_totals" in svg


def test_rendered_snippets_hide_doctest_machinery_and_copy_clean_code():
    spec = importlib.util.spec_from_file_location("hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    rendered = (
        '<span class="gp">&gt;&gt;&gt; </span><span class="nb">print</span>(f.summary())  '
        '<span class="c1"># doctest: +ELLIPSIS</span>\n'
        '<span class="go">&lt;lambda&gt; (&lt;doctest ...&gt;:1): 1 trace</span>'
    )
    cleaned = hooks.clean(rendered)
    assert "doctest" not in cleaned
    assert "(&lt;stdin&gt;:1)" in cleaned and "print</span>(f.summary())\n" in cleaned
    config = (ROOT / "mkdocs.yml").read_text()
    assert "docs/hooks.py" in config and "stylesheets/copy.css" in config
    css = (DOCS / "stylesheets" / "copy.css").read_text()
    for token in ("[data-md-copying] .gp", "[data-md-copying] .go"):  # Material's copy state
        assert token in css
