"""Arguments as trace-cache keys: pytree flattening, canonical argument order, spec matching.

A call's *structure* is a hashable nested tuple that says everything tracing depends on:

- a tensor-like leaf (tracejit Tensor, jax array, numpy array or scalar) becomes its ``AVal``
  (shape, dtype, weak flag) — new values of the same shape reuse the trace;
- a container (tuple, list, dict, namedtuple, dataclass, None) becomes a tag and its children;
  dicts key by their sorted items, never by insertion order;
- any other leaf (Python number, string, enum...) is kept by type and value, as tf.function does,
  so ``f(3)`` and ``f(4)`` are two traces and ``f(3)`` and ``f(3.0)`` are too.

The tensor leaves themselves are collected in order into a flat list: the inputs of the graph.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax import export as jax_export

from tracejit.eager.tensor import Tensor
from tracejit.eager.variable import Variable
from tracejit.errors import DtypeError, SignatureError
from tracejit.types import ARRAY_TYPE, AVal, TensorSpec, aval_of_array

# Tags of container nodes in a structure.
TUPLE, LIST, DICT, STATIC, NONE, VARIABLE = "tuple", "list", "dict", "static", "none", "variable"


@dataclasses.dataclass(frozen=True)
class AnyRank:
    """A ``TensorSpec(shape=None)`` in an input_signature: a tensor of this dtype and any rank.

    XLA compiles one rank at a time, so a call resolves it to the call's rank with every
    dimension unknown (``resolve_ranks``): one trace per rank seen, TF's unknown rank emulated.
    """

    dtype: np.dtype


class VariableKey:
    """A variable in a cache key: equal only to itself (identity), with its aval."""

    __slots__ = ("variable",)

    def __init__(self, variable: Variable) -> None:
        self.variable = variable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VariableKey) and other.variable is self.variable

    def __hash__(self) -> int:
        return id(self.variable)


# The tracing protocol: a class that defines ``__tracejit_trace_key__(self)`` (returning a hashable
# value) enters cache keys by that value, as a Python argument: equal keys share a trace, a new
# key traces again (TF's ``__tf_tracing_type__``, in one method). A class written for TF's
# protocol works too: its ``__tf_tracing_type__(context)`` (called with ``context=None``) is the
# key, matched by equality (TF's subtype relations are not used).
TRACE_KEY = "__tracejit_trace_key__"
TF_TRACE_TYPE = "__tf_tracing_type__"


_PYTHON_SCALARS = frozenset({int, float, bool, str, complex})


def _trace_key(obj: Any) -> Any:
    method = getattr(obj, TRACE_KEY, None)
    if method is not None:
        return method()
    return getattr(obj, TF_TRACE_TYPE)(None)


class TraceKeyError(TypeError):
    """A class's trace key is not hashable (raised as it is, not as 'unhashable argument')."""


class TraceKeyed:
    """An argument that defines the tracing protocol, in a cache key: equal to another when
    both are of one class and their trace keys are equal; ``obj`` is the argument itself."""

    __slots__ = ("obj", "key", "_hash")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.key = _trace_key(obj)
        try:
            self._hash = hash((type(obj), self.key))
        except TypeError:
            raise TraceKeyError(
                f"{type(obj).__name__}.{TRACE_KEY}() (or {TF_TRACE_TYPE}) returned a "
                f"{type(self.key).__name__}, which is not hashable; return a hashable value (a "
                "number, string or tuple of them)"
            ) from None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TraceKeyed)
            and type(other.obj) is type(self.obj)
            and other.key == self.key
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"{type(self.obj).__name__} with trace key {self.key!r}"


def python_value(structure: Any) -> Any:
    """The Python value a STATIC structure node holds (the argument itself for ``TraceKeyed``)."""
    value = structure[2]
    return value.obj if type(value) is TraceKeyed else value


def flatten(obj: Any, leaves: list[Any], objects: bool = False) -> Any:
    """Append the tensor leaves of ``obj`` to ``leaves`` (their arrays, or the tensor objects
    themselves with ``objects=True``); return its hashable structure."""
    kind = type(obj)
    if kind is Tensor:
        leaves.append(obj if objects else obj._value)
        return obj.aval
    if kind is Variable:  # keyed by identity; the trace reads it as lifted state
        return (VARIABLE, VariableKey(obj), obj.aval)
    if kind is ARRAY_TYPE or isinstance(obj, (jax.Array, np.ndarray, np.generic)):
        leaves.append(obj)
        return aval_of_array(obj)
    if kind is tuple:
        return (TUPLE, tuple(flatten(x, leaves, objects) for x in obj))
    if kind is list:
        return (LIST, tuple(flatten(x, leaves, objects) for x in obj))
    if obj is None:
        return NONE
    if isinstance(obj, dict):
        keys = _sorted_keys(obj)
        return (DICT, kind, keys, tuple(flatten(obj[k], leaves, objects) for k in keys))
    if isinstance(obj, tuple) and hasattr(kind, "_fields"):  # namedtuple
        return (kind, tuple(flatten(x, leaves, objects) for x in obj))
    if kind is TensorSpec:
        leaves.append(obj)
        return obj.aval() if obj.shape is not None else AnyRank(obj.dtype)
    if kind in _PYTHON_SCALARS:
        return (STATIC, kind, obj)
    if hasattr(kind, TRACE_KEY) or hasattr(kind, TF_TRACE_TYPE):
        return (STATIC, kind, TraceKeyed(obj))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = tuple(f.name for f in dataclasses.fields(obj))
        return (kind, fields, tuple(flatten(getattr(obj, f), leaves, objects) for f in fields))
    handler = _EXTRA_LEAVES.get(kind)
    if handler is not None:
        return handler(obj, leaves)
    hash(obj)  # a TypeError here is reported with the argument's name by the caller
    return (STATIC, kind, obj)


# Leaf kinds added by other parts of tracejit (Variables), type -> flatten handler.
_EXTRA_LEAVES: dict[type, Callable[[Any, list[Any]], Any]] = {}


def register_leaf(kind: type, handler: Callable[[Any, list[Any]], Any]) -> None:
    """Let another module define how objects of ``kind`` enter cache keys."""
    _EXTRA_LEAVES[kind] = handler


def _sorted_keys(obj: dict[Any, Any]) -> tuple[Any, ...]:
    try:
        return tuple(sorted(obj))
    except TypeError:
        return tuple(sorted(obj, key=repr))


def unflatten(structure: Any, leaves: Iterator[Any]) -> Any:
    """Rebuild the object ``structure`` describes, taking tensor leaves from ``leaves``."""
    if isinstance(structure, AVal):
        return next(leaves)
    if structure == NONE:
        return None
    tag = structure[0]
    if tag == TUPLE:
        return tuple(unflatten(s, leaves) for s in structure[1])
    if tag == LIST:
        return [unflatten(s, leaves) for s in structure[1]]
    if tag == STATIC:
        return python_value(structure)
    if tag == VARIABLE:
        return structure[1].variable
    if tag == DICT:
        _, kind, keys, children = structure
        items = {k: unflatten(s, leaves) for k, s in zip(keys, children)}
        return items if kind is dict else kind(items)
    if isinstance(tag, type) and len(structure) == 2:  # namedtuple
        return tag(*(unflatten(s, leaves) for s in structure[1]))
    if isinstance(tag, type) and len(structure) == 3:  # dataclass
        kind, fields, children = structure
        return kind(**{f: unflatten(s, leaves) for f, s in zip(fields, children)})
    raise AssertionError(f"unknown structure node {structure!r}")


def tensor_avals(structure: Any) -> list[AVal]:
    """The avals of the tensor leaves of a structure, in leaf order."""
    found: list[AVal] = []

    def walk(node: Any) -> None:
        if isinstance(node, AVal):
            found.append(node)
        elif isinstance(node, tuple) and not (node and node[0] in (STATIC, VARIABLE)):
            for child in node:  # tags and dict keys are never avals, so walking them is harmless
                walk(child)

    walk(structure)
    return found


# Matching and generalizing structures ----------------------------------------------------------
def aval_matches(spec: AVal, actual: AVal) -> bool:
    """Whether a concrete ``actual`` aval fits ``spec`` (None dims in the spec match any size)."""
    if (
        spec.dtype != actual.dtype
        or spec.weak != actual.weak
        or len(spec.shape) != len(actual.shape)
    ):
        return False
    return all(s is None or s == a for s, a in zip(spec.shape, actual.shape))


def matches(spec: Any, actual: Any) -> bool:
    """Whether a call's structure fits a (possibly generalized) traced structure."""
    if type(spec) is AnyRank:
        if isinstance(actual, AVal):
            return actual.dtype == spec.dtype and not actual.weak
        return spec == actual
    if isinstance(spec, AVal):
        return isinstance(actual, AVal) and aval_matches(spec, actual)
    if isinstance(spec, tuple) and isinstance(actual, tuple):
        if len(spec) != len(actual) or (spec and spec[0] in (STATIC, VARIABLE)):
            return spec == actual
        return all(matches(s, a) for s, a in zip(spec, actual))
    return spec == actual


def relax(old: Any, new: Any) -> Any | None:
    """The structure that covers both, with differing dims made unknown; None if the two differ
    in anything but dimension sizes (dtype, rank, Python values, container layout)."""
    if isinstance(old, AVal) and isinstance(new, AVal):
        if old.dtype != new.dtype or old.weak != new.weak or old.ndim != new.ndim:
            return None
        shape = tuple(a if a == b else None for a, b in zip(old.shape, new.shape))
        return AVal(shape, old.dtype, old.weak)
    if isinstance(old, tuple) and isinstance(new, tuple):
        if len(old) != len(new) or (old and old[0] in (STATIC, VARIABLE)):
            return old if old == new else None
        parts = []
        for a, b in zip(old, new):
            merged = relax(a, b)
            if merged is None:
                return None
            parts.append(merged)
        return tuple(parts)
    return old if old == new else None


def resolve_ranks(spec: Any, actual: Any) -> Any:
    """``spec`` with each ``AnyRank`` that meets a tensor in ``actual`` replaced by an aval of
    that tensor's rank with every dimension unknown (what one trace per rank covers)."""
    if type(spec) is AnyRank:
        if isinstance(actual, AVal):
            return AVal((None,) * actual.ndim, spec.dtype, False)
        return spec
    if (
        isinstance(spec, tuple)
        and not isinstance(spec, AVal)
        and isinstance(actual, tuple)
        and len(spec) == len(actual)
        and not (spec and spec[0] in (STATIC, VARIABLE))
    ):
        return tuple(resolve_ranks(s, a) for s, a in zip(spec, actual))
    return spec


def has_any_rank(structure: Any) -> bool:
    """Whether a structure still holds a tensor of unknown rank (which cannot be traced)."""
    if type(structure) is AnyRank:
        return True
    if isinstance(structure, tuple) and not isinstance(structure, AVal):
        if structure and structure[0] in (STATIC, VARIABLE):
            return False
        return any(has_any_rank(child) for child in structure)
    return False


# Canonical arguments -----------------------------------------------------------------------
class CallSignature:
    """Binds ``(args, kwargs)`` to a canonical tuple, one entry per parameter in order, with
    defaults applied, so keyword order and defaults never cause a retrace."""

    def __init__(self, fn: Callable[..., Any], drop_first: bool = False) -> None:
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        if drop_first:
            params = params[1:]
        self.signature = signature.replace(parameters=params)
        self.params = params
        self.names = [p.name for p in params]
        plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        # Calls with exactly these positional arguments need no binding (the fast path).
        self.n_fast = len(params) if all(p.kind in plain for p in params) else -1

    def canonicalize(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if not kwargs and len(args) == self.n_fast:
            return args
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{err} (signature: {self.signature})") from None
        bound.apply_defaults()
        return tuple(bound.arguments[name] for name in self.names)

    def to_call(self, canonical: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Turn a canonical tuple back into ``(args, kwargs)`` for the Python function."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param, value in zip(self.params, canonical):
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            elif param.kind is inspect.Parameter.KEYWORD_ONLY:
                kwargs[param.name] = value
            else:
                args.append(value)
        return tuple(args), kwargs


def flatten_arguments(
    canonical: tuple[Any, ...], names: list[str], function: str
) -> tuple[tuple[Any, ...], list[Any]]:
    """Flatten each canonical argument; an unhashable non-tensor leaf is a TypeError that names
    the argument and the offending value."""
    leaves: list[Any] = []
    try:
        return tuple([flatten(arg, leaves) for arg in canonical]), leaves
    except DtypeError as err:  # an array no jax array can hold (float128, strings...)
        for name, arg in zip(names, canonical):
            try:
                flatten(arg, [])
            except DtypeError:
                raise DtypeError(f"{function}(): argument '{name}': {err}") from None
        raise
    except TraceKeyError as err:
        raise TraceKeyError(f"{function}(): {err}") from None
    except TypeError:
        for name, arg in zip(names, canonical):
            path = _find_unhashable(arg, name)
            if path is not None:
                where, value = path
                raise TypeError(
                    f"{function}(): argument {where} is a {type(value).__name__}, which is "
                    "neither a tensor nor hashable, so it cannot be part of the trace cache key. "
                    "Pass tensors, or hashable Python values (numbers, strings, tuples)."
                ) from None
        raise


def _find_unhashable(obj: Any, path: str) -> tuple[str, Any] | None:
    leaves: list[Any] = []
    try:
        flatten(obj, leaves)
        return None
    except TypeError:
        pass
    children: list[tuple[str, Any]] = []
    if isinstance(obj, (list, tuple)):
        children = [(f"{path}[{i}]", x) for i, x in enumerate(obj)]
    elif isinstance(obj, dict):
        children = [(f"{path}[{k!r}]", v) for k, v in obj.items()]
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        children = [(f"{path}.{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    for child_path, child in children:
        found = _find_unhashable(child, child_path)
        if found is not None:
            return found
    return (repr(path) if "[" not in path and "." not in path else path, obj)


def describe_leaf(structure: Any) -> str:
    """Words for a structure node in error messages."""
    if type(structure) is AnyRank:
        return f"a tensor of any rank and dtype {structure.dtype}"
    if isinstance(structure, AVal):
        shape = tuple("?" if d is None else d for d in structure.shape)
        return f"a tensor of shape {shape} and dtype {structure.dtype}"
    if isinstance(structure, tuple) and structure and structure[0] == STATIC:
        return f"the Python value {structure[2]!r}"
    if structure == NONE:
        return "None"
    if structure[0] == VARIABLE:
        return f"the variable '{structure[1].variable.name}'"
    return f"a {structure[0] if isinstance(structure[0], str) else structure[0].__name__}"


def first_mismatch(spec: Any, actual: Any, path: str) -> tuple[str, Any, Any] | None:
    """Locate where ``actual`` stops fitting ``spec``: (path, spec node, actual node)."""
    if matches(spec, actual):
        return None
    if (
        isinstance(spec, tuple)
        and isinstance(actual, tuple)
        and len(spec) == len(actual)
        and spec[:1] == actual[:1]
        and spec[0] in (TUPLE, LIST)
        and len(spec[1]) == len(actual[1])
    ):
        for i, (s, a) in enumerate(zip(spec[1], actual[1])):
            found = first_mismatch(s, a, f"{path}[{i}]")
            if found is not None:
                return found
    return (path, spec, actual)


def check_against_signature(
    specs: tuple[Any, ...], actual: tuple[Any, ...], names: list[str], function: str
) -> None:
    """Raise a SignatureError naming the first argument that does not fit ``input_signature``."""
    for name, spec, got in zip(names, specs, actual):
        found = first_mismatch(spec, got, name)
        if found is None:
            continue
        where, expected, given = found
        if isinstance(expected, AVal):
            expected_text = repr(TensorSpec.from_aval(expected))
        elif type(expected) is AnyRank:
            expected_text = repr(TensorSpec(None, expected.dtype))
        else:
            expected_text = describe_leaf(expected)
        raise SignatureError(
            f"{function}(): argument '{where}' does not match the input_signature: expected "
            f"{expected_text}, got {describe_leaf(given)}"
        )


def symbolic_structs(
    avals: Sequence[AVal], shapes: Sequence[str | None] | None = None
) -> list[jax.ShapeDtypeStruct]:
    """ShapeDtypeStructs for ``avals`` with each unknown dim a jax symbolic dimension, all in
    one symbolic scope. By default an unknown leading dim is the shared symbol ``batch``, any
    other unknown dim one of its own (``d<input>_<axis>``); ``shapes`` gives a jax shape string
    per input instead (None keeps the default)."""
    scope = jax_export.SymbolicScope()
    structs = []
    for i, aval in enumerate(avals):
        given = shapes[i] if shapes is not None and i < len(shapes) else None
        if given is None and aval.is_fully_known():
            structs.append(aval.to_struct())
            continue
        if given is None:
            dims = [
                "batch" if (axis == 0 and d is None) else (f"d{i}_{axis}" if d is None else str(d))
                for axis, d in enumerate(aval.shape)
            ]
            given = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
        shape = jax_export.symbolic_shape(given, scope=scope)
        structs.append(jax.ShapeDtypeStruct(shape, aval.dtype, weak_type=aval.weak))
    return structs
