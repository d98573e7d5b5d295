"""tracejit's IR as JSON, and back — with every field of a possibly hostile file checked.

A graph is an object ``{"name", "provenance", "inputs", "state", "state_names", "consts",
"nodes", "outputs", "state_outputs"}``. A value is declared once as ``{"id": "3", "aval":
"f32[?,4]"}`` (plus ``"weak": true`` for weakly typed values) and referred to afterwards by its
id; ids are scoped to one graph (a nested body is a graph of its own). A node is ``{"op": "add",
"inputs": ["0", "c1"], "params": {...}, "outputs": [values], "loc": ["iris.py", 31, "forward"]}``
with the op named as in the registry. A constant names its array (``"array": "c4"``) in the
``.npz`` next to the JSON. Params, and static Python values anywhere, are tagged:
``{"int": 3}``, ``{"float": "0.1"}`` (repr, so NaN and infinities survive), ``{"bool": true}``,
``{"none": null}``, ``{"str": "relu"}``, ``{"dtype": "float32"}``, ``{"tuple": [...]}``,
``{"graph": {...}}``.

Decoding builds values in order, so a use before definition (and so any cycle) cannot resolve;
re-runs each op's ``infer`` on the declared inputs and compares with the declared outputs; caps
every shape's element count; and finally runs tracejit's verifier. Nothing is imported or
evaluated: op names are looked up in the registry, dtypes in a fixed table.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tracejit.host import gather_array
from tracejit.ir.graph import Graph, Node, Params, Value
from tracejit.ir.source import SourceLoc
from tracejit.ir.verify import verify
from tracejit.ops.registry import all_ops
from tracejit.saved.errors import FormatError
from tracejit.saved.files import DTYPES, CorruptFileError, dtype_from_name, dtype_name
from tracejit.types import AVal, short_name

MAX_DEPTH = 32  # nesting of graphs and tuples
MAX_NAME = 256
_SHORT_DTYPES = {short_name(d): d for d in DTYPES.values()}
_AVAL = re.compile(r"([a-z0-9]+)\[([0-9?,]*)\]")
_ID = re.compile(r"[A-Za-z0-9_]{1,32}")


# Encoding ----------------------------------------------------------------------------------------
def encode_value(value: Any, encode_graph: Callable[[Graph], Any] | None = None) -> Any:
    """A param or static Python value as a tagged JSON object (TypeError if it has no form)."""
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": int(value)}
    if isinstance(value, float):
        return {"float": repr(float(value))}
    if value is None:
        return {"none": None}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, np.dtype):
        return {"dtype": dtype_name(value)}
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v, encode_graph) for v in value]}
    if isinstance(value, Graph) and encode_graph is not None:
        return {"graph": encode_graph(value)}
    raise TypeError(
        f"a value of type {type(value).__name__} cannot be saved (saved params and Python "
        "arguments are numbers, strings, booleans, None, dtypes, tuples of them, and graphs)"
    )


def encode_aval(aval: AVal) -> dict[str, Any]:
    return {"aval": str(aval), **({"weak": True} if aval.weak else {})}


class GraphEncoder:
    """Encodes graphs; constants' arrays are collected in ``arrays`` (key -> array)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self._keys: dict[int, tuple[Any, str]] = {}

    def _array_key(self, array: Any) -> str:
        found = self._keys.get(id(array))
        if found is not None:
            return found[1]
        key = f"c{len(self._keys)}"
        stored = gather_array(array)  # a global constant split over processes: gathered
        dtype_name(stored.dtype)  # raises the clear error for dtypes that cannot be stored
        self.arrays[key] = stored
        self._keys[id(array)] = (array, key)  # keep the object alive so its id stays unique
        return key

    def graph(self, graph: Graph) -> dict[str, Any]:
        def declare(value: Value) -> dict[str, Any]:
            return {"id": value.id, **encode_aval(value.aval)}

        return {
            "name": graph.name,
            "provenance": list(graph.provenance),
            "inputs": [declare(v) for v in graph.inputs],
            "state": [declare(v) for v in graph.state],
            "state_names": list(graph.state_names),
            "consts": [{**declare(v), "array": self._array_key(a)} for v, a in graph.consts],
            "nodes": [self._node(node) for node in graph.nodes],
            "outputs": [v.id for v in graph.outputs],
            "state_outputs": [v.id for v in graph.state_outputs],
        }

    def _node(self, node: Node) -> dict[str, Any]:
        _refuse_python_code(node)
        encoded: dict[str, Any] = {
            "op": node.op.name,
            "inputs": [v.id for v in node.inputs],
            "params": {k: encode_value(v, self.graph) for k, v in node.params.items()},
            "outputs": [{"id": v.id, **encode_aval(v.aval)} for v in node.outputs],
        }
        if node.loc is not None:
            file = node.loc.file.replace("\\", "/").rsplit("/", 1)[-1].strip("<>")
            encoded["loc"] = [file, node.loc.line, node.loc.function]
        return encoded


def _refuse_python_code(node: Node) -> None:
    """A node running a Python function (``tj.jax_function``) has no saved form: the function
    is code, not data. Say which function and where, and what works instead."""
    from tracejit.autodiff.py_function import HostFunction
    from tracejit.ops.jax_call import JaxCallable

    for value in node.params.values():
        if isinstance(value, JaxCallable):
            where = f" at {node.loc}" if node.loc is not None else ""
            raise TypeError(
                f"op {node.op.name}{where} calls the jax function {value} (tj.jax_function), "
                "which cannot be saved: its code is Python, not data. Export the compiled "
                "computation with tj.saved.export(concrete_function) (jax.export serializes "
                "it), or write the function with tracejit ops"
            )
        if isinstance(value, HostFunction):  # tj.py_function / tj.numpy_function
            where = f" at {node.loc}" if node.loc is not None else ""
            raise TypeError(
                f"op {node.op.name}{where} calls the Python function {value} "
                f"({value.what()}), which cannot be saved: it runs Python code when the program "
                "runs, and a saved function loads without your code. Write it with tracejit ops "
                "to save it"
            )


# Checked access to JSON --------------------------------------------------------------------------
def fail(where: str, message: str) -> FormatError:
    return FormatError(f"{where}: {message}")


_KIND_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    float: "a number",
}


def expect(obj: Any, kind: type, where: str) -> Any:
    """``obj`` if it has the JSON type ``kind`` (bools are never integers), else FormatError."""
    if not isinstance(obj, kind) or (isinstance(obj, bool) and kind is not bool):
        raise fail(where, f"expected {_KIND_NAMES[kind]}, got {_json_type(obj)}")
    return obj


def _json_type(obj: Any) -> str:
    if obj is None:
        return "null"
    return _KIND_NAMES.get(type(obj), type(obj).__name__)


def fields(obj: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """``obj`` as an object holding exactly the ``required`` keys and some ``optional`` ones."""
    expect(obj, dict, where)
    missing = [k for k in required if k not in obj]
    extra = [k for k in obj if k not in required and k not in optional]
    if missing or extra:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(repr(k) for k in extra)}"] if extra else []
        )
        raise fail(where, f"{'; '.join(problems)} (fields are {', '.join(required + optional)})")
    return obj


def text(obj: Any, where: str, limit: int = MAX_NAME) -> str:
    expect(obj, str, where)
    if len(obj) > limit or any(ord(c) < 32 for c in obj):
        raise fail(where, f"not a plain string of at most {limit} characters")
    return obj


def integer(obj: Any, where: str, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    expect(obj, int, where)
    if not low <= obj <= high:
        raise fail(where, f"{obj} is out of range [{low}, {high}]")
    return obj


def parse_aval(obj: Any, where: str, max_elements: int) -> AVal:
    """A value declaration's ``aval``/``weak`` fields as an AVal, with the size capped."""
    spec = text(obj.get("aval"), f"{where}.aval", 400)
    weak = obj.get("weak", False)
    if not isinstance(weak, bool):
        raise fail(f"{where}.weak", f"expected a boolean, got {_json_type(weak)}")
    match = _AVAL.fullmatch(spec)
    if match is None or match.group(1) not in _SHORT_DTYPES:
        raise fail(f"{where}.aval", f"{spec!r} is not an aval such as 'f32[?,4]'")
    dims_text = match.group(2)
    shape: list[int | None] = []
    for dim in dims_text.split(",") if dims_text else []:
        if dim == "?":
            shape.append(None)
        elif dim.isdigit() and len(dim) <= 12:
            shape.append(int(dim))
        else:
            raise fail(f"{where}.aval", f"bad dimension {dim!r} in {spec!r}")
    aval = AVal(tuple(shape), _SHORT_DTYPES[match.group(1)], weak)
    check_size(aval, where, max_elements)
    return aval


def check_size(aval: Any, where: str, max_elements: int) -> None:
    if not isinstance(aval, AVal) or len(aval.shape) > 64:
        raise fail(where, f"{aval!r:.80} is not a valid aval")
    known = [d for d in aval.shape if d is not None]
    if any(not isinstance(d, int) or d < 0 for d in known) or math.prod(known) > max_elements:
        raise fail(where, f"{aval} has more than the allowed {max_elements} elements")


# Decoding ----------------------------------------------------------------------------------------
def decode_value(obj: Any, where: str, depth: int = 0, decode_graph: Any = None) -> Any:
    """The Python value of a tagged JSON value (see the module docstring)."""
    if depth > MAX_DEPTH:
        raise fail(where, f"nested deeper than {MAX_DEPTH}")
    expect(obj, dict, where)
    if len(obj) != 1:
        raise fail(where, "a tagged value has exactly one key (int, float, bool, none, str, ...)")
    ((tag, body),) = obj.items()
    inner = f"{where}.{tag}"
    if tag == "int":
        return integer(body, inner)
    if tag == "float":
        raw = text(body, inner, 40)
        try:
            return float(raw)
        except ValueError:
            raise fail(inner, f"{raw!r} is not a float") from None
    if tag == "bool":
        return expect(body, bool, inner)
    if tag == "none":
        if body is not None:
            raise fail(inner, "must be null")
        return None
    if tag == "str":  # any characters (a print's end is "\n"); only the length is capped
        if len(expect(body, str, inner)) > 1 << 16:
            raise fail(inner, "string longer than 65536 characters")
        return body
    if tag == "dtype":
        try:
            return dtype_from_name(body)
        except CorruptFileError as err:
            raise fail(inner, str(err)) from None
    if tag == "tuple":
        items = expect(body, list, inner)
        return tuple(
            decode_value(v, f"{inner}[{i}]", depth + 1, decode_graph) for i, v in enumerate(items)
        )
    if tag == "graph" and decode_graph is not None:
        return decode_graph(body, inner, depth + 1)
    raise fail(where, f"unknown value tag {tag!r}")


class GraphDecoder:
    """Decodes graphs, resolving constants against ``arrays`` (key -> validated array)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], max_elements: int,
                 max_nodes: int = 100_000) -> None:  # fmt: skip
        self.arrays = arrays
        self.max_elements = max_elements
        self.max_nodes = max_nodes
        self.nodes_seen = 0  # over every graph this decoder reads, nested ones included
        self.ops = all_ops()

    def graph(self, obj: Any, where: str, depth: int = 0) -> Graph:
        if depth > MAX_DEPTH:
            raise fail(where, f"graphs nested deeper than {MAX_DEPTH}")
        names = (
            "name",
            "provenance",
            "inputs",
            "state",
            "state_names",
            "consts",
            "nodes",
            "outputs",
            "state_outputs",
        )
        fields(obj, where, names)
        env: dict[str, Value] = {}

        def declare(decl: Any, at: str, extra: tuple[str, ...] = ()) -> Value:
            fields(decl, at, ("id", "aval"), ("weak", *extra))
            value_id = text(decl["id"], f"{at}.id", 32)
            if not _ID.fullmatch(value_id):
                raise fail(f"{at}.id", f"{value_id!r} is not a value id")
            if value_id in env:
                raise fail(f"{at}.id", f"%{value_id} is defined twice")
            env[value_id] = Value(parse_aval(decl, at, self.max_elements), value_id)
            return env[value_id]

        def lookup(ref: Any, at: str) -> Value:
            value_id = text(ref, at, 32)
            if value_id not in env:
                raise fail(at, f"uses %{value_id} before it is defined (or never defines it)")
            return env[value_id]

        def items(key: str) -> list[tuple[str, Any]]:
            found = expect(obj[key], list, f"{where}.{key}")
            return [(f"{where}.{key}[{i}]", x) for i, x in enumerate(found)]

        inputs = tuple(declare(d, at) for at, d in items("inputs"))
        state = tuple(declare(d, at) for at, d in items("state"))
        state_names = tuple(text(n, at) for at, n in items("state_names"))
        consts = tuple(self._const(declare(d, at, ("array",)), d, at) for at, d in items("consts"))
        self.nodes_seen += len(expect(obj["nodes"], list, f"{where}.nodes"))
        if self.nodes_seen > self.max_nodes:
            raise fail(where, f"the program has more than the allowed {self.max_nodes} nodes")
        nodes = tuple(self._node(n, at, lookup, declare, depth) for at, n in items("nodes"))
        graph = Graph(
            name=text(obj["name"], f"{where}.name"),
            inputs=inputs,
            consts=consts,
            nodes=nodes,
            outputs=tuple(lookup(r, at) for at, r in items("outputs")),
            state=state,
            state_outputs=tuple(lookup(r, at) for at, r in items("state_outputs")),
            state_names=state_names,
            provenance=tuple(text(p, at) for at, p in items("provenance")),
        )
        if len(state_names) != len(state) or len(graph.state_outputs) != len(state):
            raise fail(where, "state, state_names and state_outputs differ in length")
        for before, after in zip(graph.state, graph.state_outputs):
            if after.aval.dtype != before.aval.dtype or after.aval.ndim != before.aval.ndim:
                raise fail(where, f"state %{before.id} ({before.aval}) is assigned {after.aval}")
        if depth > 0 and state:
            raise fail(where, "a nested body cannot have state")
        try:
            verify(graph)
        except Exception as err:  # noqa: BLE001 - any verifier failure means a bad file
            raise fail(where, f"the graph is not valid IR: {err}") from None
        return graph

    def _const(self, value: Value, decl: dict[str, Any], where: str) -> tuple[Value, np.ndarray]:
        key = text(decl["array"], f"{where}.array", 32)
        array = self.arrays.get(key)
        if array is None:
            raise fail(f"{where}.array", f"names array {key!r}, which the arrays table lacks")
        if tuple(array.shape) != value.aval.shape:
            raise fail(where, f"declares {value.aval} but its array has shape {array.shape}")
        if array.ndim and array.dtype != value.aval.dtype:
            from tracejit.types import as_dtype

            if as_dtype(array.dtype) != value.aval.dtype:
                raise fail(where, f"declares {value.aval} but its array is {array.dtype}")
        return value, array

    def _node(self, obj: Any, where: str, lookup: Any, declare: Any, depth: int) -> Node:
        fields(obj, where, ("op", "inputs", "params", "outputs"), ("loc",))
        name = text(obj["op"], f"{where}.op")
        op = self.ops.get(name)
        if op is None:
            raise fail(f"{where}.op", f"unknown op {name!r} (not in tracejit's op registry)")
        inputs = tuple(
            lookup(r, f"{where}.inputs[{i}]")
            for i, r in enumerate(expect(obj["inputs"], list, f"{where}.inputs"))
        )
        raw = expect(obj["params"], dict, f"{where}.params")
        params = Params(
            (text(k, f"{where}.params"), decode_value(v, f"{where}.params.{k}", depth, self.graph))
            for k, v in raw.items()
        )
        extra_check = _EXTRA_CHECKS.get(name)
        if extra_check is not None:
            extra_check(params, len(inputs), f"{where}.params")
        try:
            inferred = op.infer_outputs(tuple(v.aval for v in inputs), params)
        except Exception as err:  # noqa: BLE001 - whatever the rule raises, the node is bad
            raise fail(where, f"op {name} rejects its inputs or params: {err}") from None
        declared = expect(obj["outputs"], list, f"{where}.outputs")
        if len(declared) != len(inferred):
            raise fail(
                where, f"{name} declares {len(declared)} outputs, inference gives {len(inferred)}"
            )
        for i, aval in enumerate(inferred):
            check_size(aval, f"{where}: inferred output {i}", self.max_elements)
        outputs = tuple(declare(d, f"{where}.outputs[{i}]") for i, d in enumerate(declared))
        for out, aval in zip(outputs, inferred):
            if not _compatible(out.aval, aval):
                raise fail(where, f"{name} declares %{out.id}: {out.aval}, inference gives {aval}")
        return Node(op, inputs, params, outputs, self._loc(obj.get("loc"), f"{where}.loc"))

    def _loc(self, obj: Any, where: str) -> SourceLoc | None:
        if obj is None:
            return None
        expect(obj, list, where)
        if len(obj) != 3:
            raise fail(where, "expected [file, line, function]")
        file = text(obj[0], f"{where}[0]")
        if any(c in file for c in "/\\<>"):
            raise fail(f"{where}[0]", "must be a bare file name")
        # "<iris.py>": shown in errors and IR dumps, never opened (linecache skips <names>).
        return SourceLoc(
            f"<{file}>", integer(obj[1], f"{where}[1]", 0), text(obj[2], f"{where}[2]")
        )


def _check_print(params: Params, n_inputs: int, where: str) -> None:
    """``print`` formats its template with ``str.format`` when it runs: only bare ``{}`` fields,
    one per input, so a template can neither reach attributes (``{0.__class__}``) nor ask for
    huge paddings; and no ``file`` (a saved print writes to stdout)."""
    if set(params) != {"template", "end"}:
        raise fail(where, "print takes exactly the params template and end")
    template, end = params["template"], params["end"]
    if not isinstance(template, str) or not isinstance(end, str):
        raise fail(where, "print's template and end must be strings")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise fail(where, f"bad print template: {err}") from None
    replacement_fields = [p for p in parsed if p[1] is not None]
    if any(p[1:] != ("", "", None) for p in replacement_fields) or len(replacement_fields) != (
        n_inputs
    ):
        raise fail(where, f"a print template holds one bare {{}} per input ({n_inputs})")


# Checks beyond ``infer`` for ops whose params reach Python code when the program runs.
_EXTRA_CHECKS: dict[str, Callable[[Params, int, str], None]] = {"print": _check_print}


def _compatible(declared: AVal, inferred: AVal) -> bool:
    """Same dtype and rank; dims equal where both are known (passes may refine dims)."""
    if declared.dtype != inferred.dtype or declared.ndim != inferred.ndim:
        return False
    return all(d is None or i is None or d == i for d, i in zip(declared.shape, inferred.shape))
