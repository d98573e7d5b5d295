"""The API reference (docs/api.md) renders every public name, and public modules say which
names are public (``__all__``).

docs/api.md is a list of mkdocstrings blocks, ``::: module`` with an optional
``members: [...]`` list; a block without one renders the module's ``__all__``. These tests read
the blocks the way mkdocstrings does and compare, by object identity, what they render with
``tracejit.__all__`` and each public submodule's ``__all__``.
"""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest

import tracejit as tj

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"
_BLOCK = re.compile(r"^::: ([\w.]+)\n((?:    .*\n)*)", re.M)
_MEMBERS = re.compile(r"members: \[(.*?)\]")


def _blocks() -> list[tuple[str, list[str] | None]]:
    blocks = []
    for path, options in _BLOCK.findall(API_MD.read_text()):
        members = _MEMBERS.search(options)
        names = [n.strip() for n in members.group(1).split(",")] if members else None
        blocks.append((path, names))
    return blocks


def _rendered() -> dict[int, str]:
    """id(object) -> where the reference renders it, for every rendered object."""
    out: dict[int, str] = {}
    for path, names in _blocks():
        module = importlib.import_module(path)
        if names is None:
            names = [n for n in getattr(module, "__all__", []) if n not in _submodule_names(module)]
        for name in names:
            out[id(getattr(module, name))] = f"{path}.{name}"
    return out


def _submodule_names(module: types.ModuleType) -> set[str]:
    return {
        n
        for n in getattr(module, "__all__", [])
        if isinstance(getattr(module, n), types.ModuleType)
    }


def _public_modules() -> list[types.ModuleType]:
    return [getattr(tj, n) for n in tj.__all__ if isinstance(getattr(tj, n), types.ModuleType)]


def test_every_block_names_a_module_and_members_that_exist():
    for path, names in _blocks():
        module = importlib.import_module(path)
        if names is None:
            assert hasattr(module, "__all__"), (
                f"docs/api.md renders {path} without a members list, so {path} must define "
                "__all__ (mkdocstrings renders __all__)"
            )
            names = list(module.__all__)
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, f"docs/api.md lists {missing} under {path}, which has no such names"


def test_the_reference_renders_every_top_level_name():
    rendered = _rendered()
    missing = [
        n
        for n in tj.__all__
        if not isinstance(getattr(tj, n), types.ModuleType) and id(getattr(tj, n)) not in rendered
    ]
    assert not missing, (
        f"docs/api.md does not render tracejit.{missing}: add each to the block of the module "
        "that defines it"
    )


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_the_reference_renders_every_name_of_each_public_module(module):
    rendered = _rendered()
    missing = [
        n
        for n in module.__all__
        if not isinstance(getattr(module, n), types.ModuleType)
        and id(getattr(module, n)) not in rendered
    ]
    assert not missing, f"docs/api.md does not render {module.__name__}.{missing}"


def _defined_here(module: types.ModuleType) -> list[str]:
    """Public functions and classes a module itself defines (not the ones it imports).
    tracejit.errors also holds the traceback helpers tracejit's own modules share; its public
    names are its error and warning classes."""
    kinds = (type,) if module is tj.errors else (types.FunctionType, type)
    return [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and isinstance(v, kinds) and v.__module__ == module.__name__
    ]


@pytest.mark.parametrize("module", [tj, *_public_modules()], ids=lambda m: m.__name__)
def test_public_modules_define_a_complete_all(module):
    assert hasattr(module, "__all__"), f"{module.__name__} defines no __all__"
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), f"{module.__name__}.__all__ repeats a name"
    assert all(hasattr(module, n) for n in exported)
    unlisted = [n for n in _defined_here(module) if n not in exported]
    assert not unlisted, f"{module.__name__} defines {unlisted} but leaves them out of __all__"


def test_dir_of_a_public_module_lists_no_typing_helpers():
    # The complaint that started this: dir(tj.optim) listed Any, Callable, GradientTape...
    # __all__ is what `from tracejit.optim import *` and the reference see.
    for module in _public_modules():
        assert not {"Any", "Callable", "annotations"} & set(module.__all__), module.__name__


def test_every_name_the_top_level_imports_is_in_all():
    public = {
        n
        for n, v in vars(tj).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert public <= set(tj.__all__), (
        f"{sorted(public - set(tj.__all__))} were imported after __all__ was computed: keep "
        "__all__ the last block of tracejit/__init__.py"
    )
