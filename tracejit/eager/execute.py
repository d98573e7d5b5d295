"""Eager execution of one op: unwrap tensors, run the op's jax ``impl``, wrap the result.

``EagerInterpreter`` is the define-by-run interpreter at the bottom of ``context.state``: ``bind``
calls it when no trace is active. It is on the
hot path of every eager op, so the common cases (tensors, jax arrays, Python scalars) cost one
type check each; everything else goes through ``_convert`` and errors through ``_explain``.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from tracejit.eager.tensor import Tensor, wrap
from tracejit.eager.variable import Variable
from tracejit.errors import (
    DtypeError,
    EscapedTracerError,
    OpError,
    OpTypeError,
    TracejitError,
    trimmed,
)
from tracejit.ir.source import user_location
from tracejit.ops.registry import OpDef
from tracejit.tracing import context
from tracejit.types import (
    ARRAY_TYPE,
    AVal,
    array_of_python,
    as_dtype,
    aval_of_array,
    aval_of_python_scalar,
    check_python_int,
)

_PASS_THROUGH = frozenset({ARRAY_TYPE, float, int, bool, complex})


class EagerInterpreter(context.Interpreter):
    """The interpreter at the bottom of the stack: runs each op now (JAX's EvalTrace)."""

    def bind(self, op: OpDef, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        try:  # free in Python 3.11+ unless it raises
            return execute(op, args, params)
        except TracejitError as err:  # the user's line is in the message; drop our frames
            trimmed(err)
            raise


def execute(op: OpDef, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
    values = []
    variables = None
    for position, arg in enumerate(args):
        kind = type(arg)
        if kind is Tensor:
            values.append(arg._value)
        elif kind in _PASS_THROUGH:
            if kind is int:
                check_python_int(arg, _default_int())
            values.append(arg)
        else:
            if kind is Variable:
                variables = (variables or []) + [arg]
            values.append(_convert(op, position, arg))
    try:
        out = op.impl(*values, **params)
    except Exception as err:  # noqa: BLE001 - re-raised with the user's line
        raise _explain(op, values, params, err) from err
    if variables is not None:
        _note_exposed(variables, out)
    if op.multiple_results:
        return tuple(wrap(o) for o in out)
    return wrap(out)


def _note_exposed(variables: list[Variable], out: Any) -> None:
    """An op that returns a variable's buffer unchanged (reshape to its own shape, a cast to its
    own dtype, stop_gradient...) hands that buffer out: the variable must not donate it."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for variable in variables:
        if any(o is variable._value for o in outs):
            variable.exposed = True


def _default_int() -> Any:
    return as_dtype(np.int64)  # int32 unless x64 is on (as_dtype caches the answer)


def _convert(op: OpDef, position: int, arg: Any) -> Any:
    if isinstance(arg, (Tensor, Variable)):
        return arg._value
    if isinstance(arg, jax.Array):
        return arg
    if isinstance(arg, (np.ndarray, np.generic)):
        try:
            as_dtype(arg.dtype)  # raises for float128, object, strings...: no jax array holds them
        except DtypeError as err:
            raise OpTypeError(op.name, f"argument {position}: {err}", user_location()) from None
        return arg
    if isinstance(arg, (list, tuple)):
        try:
            array = array_of_python(arg)
        except ValueError as err:
            raise OpTypeError(op.name, f"argument {position}: {err}", user_location()) from None
        if array is not None:
            return array
    if isinstance(arg, context.Symbolic):
        raise EscapedTracerError(
            f"{op.name}: argument {position} is a symbolic tensor from a trace that has "
            "finished; symbolic tensors exist only while their tj.function is being traced. "
            "Return it from the function instead of storing it.\n"
            f"  at {_where()}"
        )
    raise OpTypeError(
        op.name,
        f"argument {position} must be a tensor, array or Python number, "
        f"got {type(arg).__name__}: {arg!r:.80}",
        user_location(),
    )


def _where() -> str:
    loc = user_location()
    return loc.describe() if loc else "<unknown>"


def _aval(value: Any) -> AVal:
    if isinstance(value, (bool, int, float, complex)):
        return aval_of_python_scalar(value)
    return aval_of_array(value)


def _explain(op: OpDef, values: list[Any], params: dict[str, Any], err: Exception) -> Exception:
    """Turn a failure inside jax into tracejit's error: the op's own inference usually says
    what is wrong in the user's terms; otherwise wrap jax's message."""
    loc = user_location()
    if isinstance(err, OpError):
        return type(err)(err.op, err.detail, err.loc or loc)
    try:
        op.infer(*[_aval(v) for v in values], **params)
    except OpError as clear:
        return type(clear)(clear.op, clear.detail, loc)
    except Exception:  # noqa: BLE001 - fall through to wrapping jax's error
        pass
    kind = OpTypeError if isinstance(err, TypeError) else OpError
    return kind(op.name, f"{type(err).__name__}: {err}", loc)

