"""Argument and result structures of saved functions, in a form that needs no user classes.

A concrete function's input structure (see ``tracing/signature.py``) names Python types: dict
subclasses, namedtuples, dataclasses, the types of static values. A loaded function has none of
them, so structures are stored and compared in a *portable* form where each type is replaced
by its name: ``(("namedtuple", "Point", ("x", "y")), children)`` instead of ``(Point,
children)``. A call to a loaded function flattens its arguments with tracejit's usual
``flatten``, makes the result portable the same way, and matches it against the saved
structures with the usual ``matches`` (unknown dims match any size).

Results come back as tuples, lists and dicts: a namedtuple result is returned as a tuple and a
dataclass result as a dict, since the loading process need not have those classes.
"""

from __future__ import annotations

import inspect
import keyword
from typing import Any

from tracejit.eager.variable import Variable
from tracejit.saved.errors import FormatError
from tracejit.saved.ir_json import (
    decode_value,
    encode_aval,
    encode_value,
    expect,
    fail,
    fields,
    parse_aval,
    text,
)
from tracejit.tracing import signature as sig
from tracejit.tracing.signature import DICT, LIST, NONE, STATIC, TUPLE, VARIABLE
from tracejit.types import AVal

NAMEDTUPLE, DATACLASS = "namedtuple", "dataclass"


# Live structure -> portable structure -> JSON ----------------------------------------------------
def portable(structure: Any) -> Any:
    """``structure`` with Python types replaced by names (so it compares across processes)."""
    if isinstance(structure, AVal) or structure == NONE:
        return structure
    tag = structure[0]
    if tag in (TUPLE, LIST):
        return (tag, tuple(portable(s) for s in structure[1]))
    if tag == STATIC:
        return (STATIC, structure[1].__name__, structure[2])
    if tag == VARIABLE:
        return structure
    if tag == DICT:
        _, kind, keys, children = structure
        return (DICT, kind.__name__, keys, tuple(portable(s) for s in children))
    if isinstance(tag, type) and len(structure) == 2:
        return (
            (NAMEDTUPLE, tag.__name__, tuple(tag._fields)),
            tuple(portable(s) for s in structure[1]),
        )
    if isinstance(tag, type) and len(structure) == 3:
        return ((DATACLASS, tag.__name__), structure[1], tuple(portable(s) for s in structure[2]))
    raise AssertionError(f"unknown structure node {structure!r}")


def encode(structure: Any, variable_index: Any = None) -> Any:
    """A portable structure as JSON; ``variable_index(variable)`` numbers variables in results
    (None: a variable here is an error — saved functions cannot take variables as arguments)."""
    if isinstance(structure, AVal):
        return {
            "tensor": encode_aval(structure)["aval"],
            **({"weak": True} if structure.weak else {}),
        }
    if structure == NONE:
        return {"none": None}
    tag = structure[0]
    if tag in (TUPLE, LIST):
        return {tag: [encode(s, variable_index) for s in structure[1]]}
    if tag == STATIC:
        return {"static": encode_value(structure[2]), "type": structure[1]}
    if tag == VARIABLE:
        if variable_index is None:
            raise TypeError(
                f"the variable '{structure[1].variable.name}' is passed as an argument; a saved "
                "function cannot take variables as arguments (use them from the enclosing scope "
                "or a tj.Module, so they are saved with the function)"
            )
        return {"variable": variable_index(structure[1].variable)}
    if tag == DICT:
        _, kind, keys, children = structure
        items = [[encode_value(k), encode(s, variable_index)] for k, s in zip(keys, children)]
        return {"dict": items, "type": kind}
    if tag[0] == NAMEDTUPLE:
        return {
            "namedtuple": [encode(s, variable_index) for s in structure[1]],
            "type": tag[1],
            "fields": list(tag[2]),
        }
    return {
        "dataclass": [encode(s, variable_index) for s in structure[2]],
        "type": tag[1],
        "fields": list(structure[1]),
    }


# JSON -> portable structure -------------------------------------------------------------------
def decode(obj: Any, where: str, max_elements: int, n_variables: int = 0, depth: int = 0) -> Any:
    """A portable structure from JSON (variables, in results only, as ``(VARIABLE, index)``)."""
    if depth > 32:
        raise fail(where, "structure nested deeper than 32")
    expect(obj, dict, where)

    def children(key: str) -> tuple[Any, ...]:
        items = expect(obj[key], list, f"{where}.{key}")
        return tuple(
            decode(s, f"{where}.{key}[{i}]", max_elements, n_variables, depth + 1)
            for i, s in enumerate(items)
        )

    def names(key: str) -> tuple[str, ...]:
        items = expect(obj[key], list, f"{where}.{key}")
        return tuple(text(n, f"{where}.{key}[{i}]") for i, n in enumerate(items))

    if "tensor" in obj:
        fields(obj, where, ("tensor",), ("weak",))
        return parse_aval(
            {"aval": obj["tensor"], "weak": obj.get("weak", False)}, where, max_elements
        )
    if "none" in obj:
        fields(obj, where, ("none",))
        if obj["none"] is not None:
            raise fail(where, "none must be null")
        return NONE
    for tag in (TUPLE, LIST):
        if tag in obj:
            fields(obj, where, (tag,))
            return (tag, children(tag))
    if "static" in obj:
        fields(obj, where, ("static", "type"))
        return (STATIC, text(obj["type"], f"{where}.type"), decode_value(obj["static"], where))
    if "variable" in obj:
        fields(obj, where, ("variable",))
        index = expect(obj["variable"], int, f"{where}.variable")
        if not 0 <= index < n_variables:
            raise fail(where, f"variable {index} does not exist")
        return (VARIABLE, index)
    if "dict" in obj:
        fields(obj, where, ("dict", "type"))
        keys, values = [], []
        for i, item in enumerate(expect(obj["dict"], list, f"{where}.dict")):
            at = f"{where}.dict[{i}]"
            if not isinstance(item, list) or len(item) != 2:
                raise fail(at, "expected a [key, value] pair")
            keys.append(decode_value(item[0], at))
            values.append(decode(item[1], at, max_elements, n_variables, depth + 1))
        _hashable(keys, where)
        return (DICT, text(obj["type"], f"{where}.type"), tuple(keys), tuple(values))
    for tag in (NAMEDTUPLE, DATACLASS):
        if tag in obj:
            fields(obj, where, (tag, "type", "fields"))
            items, field_names = children(tag), names("fields")
            if len(items) != len(field_names):
                raise fail(where, f"{len(field_names)} fields but {len(items)} values")
            name = text(obj["type"], f"{where}.type")
            if tag == NAMEDTUPLE:
                return ((NAMEDTUPLE, name, field_names), items)
            return ((DATACLASS, name), field_names, items)
    raise fail(where, f"not a structure node (keys: {', '.join(sorted(obj))})")


def _hashable(keys: list[Any], where: str) -> None:
    try:
        if len(set(keys)) != len(keys):
            raise fail(where, "a dict has the same key twice")
    except TypeError:
        raise fail(where, "dict keys must be hashable") from None


def to_output(structure: Any, variables: list[Variable]) -> Any:
    """A decoded result structure as one ``signature.unflatten`` rebuilds with plain
    containers: namedtuples become tuples, dataclasses and dict subclasses dicts."""
    if isinstance(structure, AVal) or structure == NONE:
        return structure
    tag = structure[0]
    if tag in (TUPLE, LIST):
        return (tag, tuple(to_output(s, variables) for s in structure[1]))
    if tag == STATIC:
        return (STATIC, type(structure[2]), structure[2])
    if tag == VARIABLE:
        variable = variables[structure[1]]
        return (VARIABLE, sig.VariableKey(variable), variable.aval)
    if tag == DICT:
        return (DICT, dict, structure[2], tuple(to_output(s, variables) for s in structure[3]))
    if tag[0] == NAMEDTUPLE:
        return (TUPLE, tuple(to_output(s, variables) for s in structure[1]))
    return (DICT, dict, structure[1], tuple(to_output(s, variables) for s in structure[2]))


def describe(structure: Any) -> str:
    """Words for a portable structure: ``f32[?,4]``, ``(f32[3], 'relu')``, ``{'x': i32[]}``."""
    if isinstance(structure, AVal):
        return f"{structure}{' (weak)' if structure.weak else ''}"
    if structure == NONE:
        return "None"
    tag = structure[0]
    if tag in (TUPLE, LIST):
        inner = ", ".join(describe(s) for s in structure[1])
        return f"({inner}{',' if len(structure[1]) == 1 else ''})" if tag == TUPLE else f"[{inner}]"
    if tag == STATIC:
        return repr(structure[2])
    if tag == VARIABLE:
        return "<variable>"
    if tag == DICT:
        inner = ", ".join(f"{k!r}: {describe(s)}" for k, s in zip(structure[2], structure[3]))
        return "{" + inner + "}"
    names, children = (tag[2], structure[1]) if tag[0] == NAMEDTUPLE else structure[1:]
    return f"{tag[1]}(" + ", ".join(f"{n}={describe(s)}" for n, s in zip(names, children)) + ")"


# Parameters ----------------------------------------------------------------------------------
_P = inspect.Parameter
_KINDS = {
    k.name: k
    for k in (
        _P.POSITIONAL_ONLY,
        _P.POSITIONAL_OR_KEYWORD,
        _P.VAR_POSITIONAL,
        _P.KEYWORD_ONLY,
        _P.VAR_KEYWORD,
    )
}
_EMPTY = _P.empty


def encode_parameters(parameters: list[inspect.Parameter]) -> list[dict[str, Any]]:
    """Names, kinds and (Python-valued) defaults of a function's parameters."""
    encoded = []
    for param in parameters:
        entry: dict[str, Any] = {"name": param.name, "kind": param.kind.name}
        if param.default is not inspect.Parameter.empty:
            try:
                entry["default"] = encode_value(param.default)
            except TypeError:
                pass  # a tensor or object default: callers of the loaded function pass it
        encoded.append(entry)
    return encoded


def decode_parameters(obj: Any, where: str) -> inspect.Signature:
    params = []
    for i, entry in enumerate(expect(obj, list, where)):
        at = f"{where}[{i}]"
        fields(entry, at, ("name", "kind"), ("default",))
        kind = _KINDS.get(text(entry["kind"], f"{at}.kind"))
        if kind is None:
            raise fail(f"{at}.kind", f"{entry['kind']!r} is not one of {', '.join(_KINDS)}")
        default = decode_value(entry["default"], at) if "default" in entry else _EMPTY
        name = text(entry["name"], f"{at}.name")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise fail(f"{at}.name", f"{name!r} is not a valid parameter name")
        try:
            params.append(inspect.Parameter(name, kind, default=default))
        except ValueError as err:
            raise fail(at, str(err)) from None
    try:
        return inspect.Signature(params)
    except ValueError as err:
        raise FormatError(f"{where}: {err}") from None
