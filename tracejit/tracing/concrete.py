"""What a concrete function tells about itself, in TF's terms, and how a call binds to it.

A concrete function is one trace: its parameters are fixed to tensor specs *and* to the Python
values it was traced with. As in TF, those Python arguments are bound: a call may leave them out
(the traced value is used) or repeat them, but a different value is a ``TypeError``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from tracejit.errors import SignatureError
from tracejit.tracing import signature as sig
from tracejit.types import AVal, TensorSpec

if TYPE_CHECKING:
    from tracejit.tracing.function import ConcreteFunction


def _specs(structure: Any, name: str | None = None) -> Any:
    """The object ``structure`` describes, with a ``TensorSpec`` for each tensor leaf."""
    specs = iter([TensorSpec.from_aval(a, name) for a in sig.tensor_avals(structure)])
    return sig.unflatten(structure, specs)


def _is_bound(structure: Any) -> bool:
    """Whether an argument's structure holds only Python values (no tensor, no variable)."""
    if sig.tensor_avals(structure):
        return False
    found: list[bool] = []

    def walk(node: Any) -> None:
        if isinstance(node, tuple) and node and not isinstance(node, AVal):
            if node[0] == sig.VARIABLE:
                found.append(True)
            elif node[0] != sig.STATIC:
                for child in node:
                    walk(child)

    walk(structure)
    return not found


def bind_call(
    concrete: ConcreteFunction, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """The canonical arguments of a call of ``concrete``: parameters left out take the Python
    values the trace was made with (a parameter that held tensors must be given)."""
    call_signature = concrete.function._signature
    try:
        bound = call_signature.signature.bind_partial(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{concrete.name}: {err} (signature: {call_signature.signature})") from None
    canonical = []
    for param, structure in zip(call_signature.params, concrete.in_structure):
        if param.name in bound.arguments:
            canonical.append(bound.arguments[param.name])
        elif _is_bound(structure):
            canonical.append(sig.unflatten(structure, iter(())))
        elif param.default is not inspect.Parameter.empty:
            canonical.append(param.default)
        else:
            raise TypeError(
                f"{concrete.name}() missing required argument '{param.name}': this concrete "
                f"function takes {describe_argument(structure)} there"
            )
    return tuple(canonical)


def bound_value_error(
    concrete: ConcreteFunction, names: list[str], structure: tuple[Any, ...]
) -> SignatureError | None:
    """A ``TypeError`` for a call that passes a bound Python argument with another value (None
    when every bound argument matches)."""
    for name, traced, given in zip(names, concrete.in_structure, structure):
        if _is_bound(traced) and traced != given:
            return SignatureError(
                f"{concrete.name}(): argument '{name}' was bound to "
                f"{describe_argument(traced)} when this concrete function was made, got "
                f"{describe_argument(given)}. A concrete function is one trace; call the "
                "tj.function itself to trace for another value."
            )
    return None


def describe_argument(structure: Any) -> str:
    if isinstance(structure, AVal):
        return repr(TensorSpec.from_aval(structure))
    return repr(_specs(structure))


# Introspection, as TF's ConcreteFunction offers it ---------------------------------------------
def structured_input_signature(concrete: ConcreteFunction) -> tuple[tuple[Any, ...], dict]:
    """``(args, kwargs)``: a ``TensorSpec`` (named after its parameter) for each tensor, the
    Python values the trace was made with, in the arguments' structure."""
    call_signature = concrete.function._signature
    arguments = tuple(
        _specs(structure, name)
        for name, structure in zip(call_signature.names, concrete.in_structure)
    )
    return call_signature.to_call(arguments)


def function_type(concrete: ConcreteFunction) -> inspect.Signature:
    """The Python signature of a call of this trace: each parameter annotated with its specs
    (a ``TensorSpec`` per tensor, in the argument's structure) and each bound Python argument
    given its traced value as default, since a call may leave it out (TF's ``function_type``)."""
    call_signature = concrete.function._signature
    params = []
    for param, structure in zip(call_signature.params, concrete.in_structure):
        spec = _specs(structure, param.name)
        if _is_bound(structure) and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            params.append(param.replace(annotation=spec, default=spec))
        else:
            params.append(param.replace(annotation=spec, default=inspect.Parameter.empty))
    for i, param in enumerate(params):  # a parameter without default cannot follow one with
        later = params[i + 1 :]
        if param.default is not inspect.Parameter.empty and any(
            p.default is inspect.Parameter.empty and p.kind is param.kind for p in later
        ):
            params[i] = param.replace(default=inspect.Parameter.empty)
    return_spec = structured_outputs(concrete)
    return inspect.Signature(params, return_annotation=return_spec)


def structured_outputs(concrete: ConcreteFunction) -> Any:
    """The result's structure with a ``TensorSpec`` for each tensor."""
    return _specs(concrete.out_structure)


def output_shapes(concrete: ConcreteFunction) -> Any:
    """The result's structure with each tensor's shape (a tuple; None for unknown dims)."""
    shapes = iter([a.shape for a in sig.tensor_avals(concrete.out_structure)])
    return sig.unflatten(concrete.out_structure, shapes)


def output_dtypes(concrete: ConcreteFunction) -> Any:
    """The result's structure with each tensor's dtype."""
    dtypes = iter([a.dtype for a in sig.tensor_avals(concrete.out_structure)])
    return sig.unflatten(concrete.out_structure, dtypes)


def _describe_spec(value: Any) -> str:
    if isinstance(value, TensorSpec):
        return f"{value.dtype} Tensor, shape={value.shape}"
    if isinstance(value, (tuple, list)) and any(
        isinstance(x, (TensorSpec, tuple, list, dict)) for x in value
    ):
        inner = ", ".join(_describe_spec(x) for x in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_describe_spec(v)}" for k, v in value.items()) + "}"
    return f"{value!r}"


def pretty_signature(concrete: ConcreteFunction) -> str:
    """One trace's signature, as TF prints concrete signatures: the parameters, each with its
    spec or bound Python value, and what it returns."""
    call_signature = concrete.function._signature
    names = call_signature.names
    lines = [f"{concrete.function.name}({', '.join(names)})", "  Args:"]
    for name, structure in zip(names, concrete.in_structure):
        lines.append(f"    {name}: {_describe_spec(_specs(structure))}")
    lines.append("  Returns:")
    lines.append(f"    {_describe_spec(structured_outputs(concrete))}")
    if concrete.variables:
        listed = ", ".join(f"'{v.name}' {v.aval}" for v in concrete.variables)
        lines.append(f"  Variables: {listed}")
    return "\n".join(lines)
