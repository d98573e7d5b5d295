"""``tj.saved.save``: store traced, optimized functions with the variables they use.

The directory holds three files:

- ``saved.json`` — the manifest: ``{"format": "tracejit.saved", "version": 1, "program":
  {"file": "program.json", "sha256": ...}, "arrays": {"file": "arrays.npz", "sha256": ...}}``;
- ``program.json`` — ``{"functions": {name: {"parameters": [...], "signatures": [{"inputs",
  "outputs", "variables", "graph"}]}}, "variables": [{"path", "name", "trainable", "array"}],
  "arrays": {key: {"shape", "dtype", "sha256"}}}``; graphs as described in ``ir_json``;
- ``arrays.npz`` — constants (keys ``c<i>``) and variable values (keys ``v<i>``).

It is written whole into a temporary folder and renamed into place (replacing an earlier saved
directory), so readers never see a half-written one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from tracejit.eager.variable import Variable
from tracejit.host import gather_array
from tracejit.saved import files, structure
from tracejit.saved.ir_json import GraphEncoder
from tracejit.tracing.function import ConcreteFunction, Function

FORMAT = "tracejit.saved"
VERSION = 1
MANIFEST = "saved.json"
PROGRAM = "program.json"
ARRAYS = "arrays.npz"

Signatures = Function | ConcreteFunction | Mapping[str, Any] | None


def save(obj: Any, directory: str, signatures: Signatures = None) -> str:
    """Save the traced functions of ``obj`` and the variables they use into ``directory``.

    ``obj`` is a ``tj.Module`` (or any object): each ``tj.function`` attribute that has been
    traced (or has an ``input_signature``, which is traced now) is saved with all its traces,
    under its attribute name; or a ``tj.function`` /
    concrete function itself. ``signatures`` adds functions by name: a ``Function`` (all its
    traces), a ``ConcreteFunction``, or a list of them; a single one is named
    ``serving_default``. Returns ``directory``.

    Variables are named by their attribute path from ``obj`` (``model/layers/0/kernel``) when
    ``obj`` reaches them, else by their own names.

    >>> import tempfile
    >>> import tracejit as tj
    >>> @tj.function(input_signature=[tj.TensorSpec([None])])
    ... def double(x):
    ...     return x * 2
    >>> directory = tj.saved.save(double, tempfile.mkdtemp() + "/double")
    >>> sorted(os.listdir(directory))
    ['arrays.npz', 'program.json', 'saved.json']
    """
    traces = _collect(obj, signatures)
    if not traces:
        raise ValueError(
            f"tj.saved.save: found no traced function to save in {type(obj).__name__}; call "
            "the tj.functions (or get_concrete_function) first, or pass signatures="
        )
    arrays: dict[str, np.ndarray] = {}
    naming = _VariableNaming(obj)
    encoder = GraphEncoder(arrays)
    functions = {
        name: {
            "parameters": structure.encode_parameters(parameters),
            "signatures": [_encode_trace(cf, naming, encoder, name) for cf in concretes],
        }
        for name, (parameters, concretes) in traces.items()
    }
    variables = []
    for i, (path, variable) in enumerate(naming.variables):
        arrays[f"v{i}"] = gather_array(variable._value)  # (split over processes: gathered)
        variables.append(
            {"path": path, "name": variable.name, "trainable": variable.trainable, "array": f"v{i}"}
        )
    return _write(directory, {"functions": functions, "variables": variables}, arrays)


def _encode_trace(cf: ConcreteFunction, naming: _VariableNaming, encoder: GraphEncoder,
                  name: str) -> dict[str, Any]:  # fmt: skip
    where = f"tj.saved.save: {name}{_describe_inputs(cf)}"
    try:
        inputs = [structure.encode(structure.portable(s)) for s in cf.in_structure]
        outputs = structure.encode(structure.portable(cf.out_structure), naming.index)
        graph = encoder.graph(cf.ir)
    except TypeError as err:
        raise TypeError(f"{where}: {err}") from None
    return {
        "inputs": inputs,
        "outputs": outputs,
        "graph": graph,
        "variables": [naming.index(v) for v in cf.variables],
    }


def _describe_inputs(cf: ConcreteFunction) -> str:
    return "(" + ", ".join(str(a) for a in cf.input_avals) + ")"


def _write(directory: str, program: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    directory = os.path.abspath(directory)
    if (
        os.path.exists(directory)
        and os.listdir(directory)
        and not os.path.isfile(os.path.join(directory, MANIFEST))
    ):
        raise FileExistsError(
            f"tj.saved.save: {directory} exists and is not a saved directory; "
            "refusing to replace it"
        )

    def fill(tmp: str) -> None:
        program["arrays"] = files.write_arrays(os.path.join(tmp, ARRAYS), arrays)
        files.write_json(os.path.join(tmp, PROGRAM), program)
        manifest = {"format": FORMAT, "version": VERSION}
        for key, name in (("program", PROGRAM), ("arrays", ARRAYS)):
            manifest[key] = {"file": name, "sha256": files.sha256_file(os.path.join(tmp, name))}
        files.write_json(os.path.join(tmp, MANIFEST), manifest)

    parent, name = os.path.split(directory)
    files.write_directory_atomically(parent, name, fill, replace=True)
    return directory


# What to save --------------------------------------------------------------------------------
def _collect(obj: Any, signatures: Signatures) -> dict[str, tuple[list[Any], list[Any]]]:
    """name -> (parameters, concrete functions)."""
    found: dict[str, tuple[list[Any], list[Any]]] = {}

    def add(name: str, item: Any) -> None:
        if isinstance(item, (list, tuple)):
            for each in item:
                add(name, each)
            return
        if isinstance(item, Function):
            if not item.concrete_functions() and item.input_signature is not None:
                item.get_concrete_function()  # as in TF: a signature is enough to trace
            concretes = item.concrete_functions()
            if not concretes:
                raise ValueError(
                    f"tj.saved.save: {name} has never been traced: call it or "
                    "get_concrete_function(...) first"
                )
            params = item._signature.params
        elif isinstance(item, ConcreteFunction):
            concretes, params = [item], item.function._signature.params
        else:
            raise TypeError(
                f"tj.saved.save: signature {name!r} is a {type(item).__name__}, "
                "not a tj.function or a concrete function"
            )
        names = [p.name for p in params]
        entry = found.setdefault(name, (list(params), []))
        if [p.name for p in entry[0]] != names:
            raise ValueError(
                f"tj.saved.save: the functions saved as {name!r} take different "
                f"parameters ({[p.name for p in entry[0]]} and {names})"
            )
        entry[1].extend(c for c in concretes if all(c is not o for o in entry[1]))

    if isinstance(obj, (Function, ConcreteFunction)):
        add(obj.name, obj)
    elif obj is not None:
        for name, function in _traced_attributes(obj):
            add(name, function)
    if isinstance(signatures, (Function, ConcreteFunction)):
        signatures = {"serving_default": signatures}
    for name, item in (signatures or {}).items():
        add(str(name), item)
    return found


def _traced_attributes(obj: Any) -> list[tuple[str, Function[..., Any]]]:
    """tj.function attributes of ``obj`` (methods and instance attributes) that were traced or
    have an input_signature."""
    found: dict[str, Function[..., Any]] = {}
    for klass in reversed(type(obj).__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Function):
                found[name] = getattr(obj, name)  # the per-instance Function holding traces
    for name, value in getattr(obj, "__dict__", {}).items():
        if isinstance(value, Function):
            found[name] = value
    return [
        (n, f) for n, f in found.items() if f.concrete_functions() or f.input_signature is not None
    ]


class _VariableNaming:
    """Numbers the variables the saved functions use; names them by object path when ``root``
    reaches them, else by their own names (made unique)."""

    def __init__(self, root: Any) -> None:
        self.paths: dict[int, str] = {}
        if root is not None and not isinstance(root, (Function, ConcreteFunction)):
            from tracejit.train import object_graph

            roots = dict(object_graph.children(root))
            graph = object_graph.build(roots)
            self.paths = {id(v): p for p, v in graph.all_variables().items()}
        self.variables: list[tuple[str, Variable]] = []
        self._index: dict[int, int] = {}
        self._taken: set[str] = set()

    def index(self, variable: Variable) -> int:
        found = self._index.get(id(variable))
        if found is not None:
            return found
        path = self.paths.get(id(variable)) or variable.name
        unique, n = path, 1
        while unique in self._taken:
            unique, n = f"{path}_{n}", n + 1
        self._taken.add(unique)
        self._index[id(variable)] = len(self.variables)
        self.variables.append((unique, variable))
        return self._index[id(variable)]
