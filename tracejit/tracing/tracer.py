"""Symbolic tensors and the graph builder they record into.

While a ``GraphBuilder`` is active (``with builder.active():``) every ``bind`` in this thread emits
a node into it. Values reaching an op from outside the trace — eager tensors, numpy and jax arrays,
Python scalars — are captured as graph constants.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from tracejit.eager import interop
from tracejit.eager.tensor import Tensor
from tracejit.eager.variable import Variable, check_assignable, converted_to
from tracejit.errors import (
    DtypeError,
    EscapedTracerError,
    OpError,
    OpTypeError,
    SymbolicNumpyError,
    TracerConversionError,
)
from tracejit.ir.graph import Graph, Node, Params, Value
from tracejit.ir.source import SourceLoc, user_location
from tracejit.ops.elementwise import CAST
from tracejit.ops.registry import OpDef, bind
from tracejit.ops.shape import stack
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.tracing import context
from tracejit.types import AVal, array_of_python, aval_of_array, aval_of_python_scalar

_SCALARS = (bool, int, float, complex)


class Tracer(TensorMethods, context.Symbolic):
    """A symbolic tensor: it stands for a value of the graph being traced and has the same API
    as an eager ``Tensor``, but no contents until the compiled function runs."""

    __slots__ = ("value", "builder")

    def __init__(self, value: Value, builder: GraphBuilder) -> None:
        self.value = value
        self.builder = builder

    @property
    def aval(self) -> AVal:
        return self.value.aval

    def __repr__(self) -> str:
        return f"<tj symbolic tensor %{self.value.id}: {self.value.aval}>"

    # Asking for a concrete value cannot work while tracing: say so, and what to do instead.
    def __bool__(self) -> bool:
        fix = (
            "Use tj.where(cond, a, b) to select values, or compute the condition from Python "
            "values (shapes, arguments) that are known while tracing."
        )
        if self.builder.root.autograph is False:
            fix = (
                "AutoGraph is off for this function (tj.function(..., autograph=False)), so its "
                "Python `if`/`while` on tensors are not converted to graph control flow: drop "
                "autograph=False, or write tj.cond / tj.while_loop / tj.where yourself."
            )
        raise TracerConversionError(
            "bool() of a symbolic tensor (an `if`, `while`, `and`/`or` or assert on a tensor)",
            fix,
            user_location(),
        )

    def __float__(self) -> float:
        raise TracerConversionError(
            "float() of a symbolic tensor",
            "Keep the value as a tensor, or return it from the function and convert the result.",
            user_location(),
        )

    def __int__(self) -> int:
        raise TracerConversionError(
            "int() of a symbolic tensor",
            "Keep the value as a tensor; for shapes use x.shape, which is known while tracing.",
            user_location(),
        )

    __index__ = __int__

    def numpy(self) -> np.ndarray:
        raise SymbolicNumpyError(
            ".numpy() of a symbolic tensor",
            "Return the tensor from the tj.function and call .numpy() on the result, or run "
            "eagerly with tj.config.run_functions_eagerly(True) to debug.",
            user_location(),
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TracerConversionError(
            "Converting a symbolic tensor to a numpy array",
            "Use tracejit ops (tj.exp, tj.sum, ...) instead of numpy functions inside a "
            "tj.function.",
            user_location(),
        )

    # numpy and jax functions cannot compute with a symbolic tensor: they get the error that
    # names the tracejit op to use (tracejit/eager/interop.py). Operators stay tracejit ops.
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        op = interop.as_operator(ufunc, method, inputs, kwargs)
        if op is not None:  # ``numpy_array + x`` is ``np.add(numpy_array, x)``
            return op(*inputs)
        raise interop.numpy_error(*interop.ufunc_name(ufunc, method))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise interop.numpy_error(*interop.numpy_function_name(func))

    @property
    def __jax_array__(self) -> Any:
        if interop.called_by_jax_operator():
            return None  # ``jax_array + x``: Python then calls our reflected operator
        raise interop.jax_error()  # (jax reads this while abstractifying arguments)

    def __len__(self) -> int:
        if not self.value.aval.shape:
            raise TypeError("len() of a 0-d tensor")
        first = self.value.aval.shape[0]
        if first is None:
            raise TracerConversionError(
                "len() of a tensor whose first dimension is unknown",
                "Use ops over the whole axis (x.sum(axis=0), tj.scan over x) instead of a Python "
                "count, or trace with a known size (input_signature with a number there).",
                user_location(),
            )
        return first

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))


class GraphBuilder(context.Interpreter):
    """Builds one graph while a Python function runs on symbolic tensors."""

    tracing = True

    def __init__(
        self, name: str, parent: GraphBuilder | None = None, autograph: bool | None = None
    ) -> None:
        self.name = name
        self.parent = parent
        self.autograph = autograph  # the tj.function's setting (None: not a function's trace)
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.consts: list[tuple[Value, Any]] = []
        # id(object) -> (object, value): the object is kept alive so its id is not reused.
        self._const_ids: dict[Any, tuple[Any, Value]] = {}
        # For nested graphs: outer value -> the input standing for it in this graph, and the
        # object (tracer or variable) it came from, so tapes can follow it.
        self.captures: dict[Value, Value] = {}
        self.capture_sources: dict[Value, Any] = {}
        self._next_id = 0
        self._next_const = 0
        self.finished = False
        # Lifted variables, in first-use order: the state input standing for each one's value at
        # call time, and its current value in program order (changed by assign).
        self.variables: list[Variable] = []
        self._variable_index: dict[int, int] = {}
        self.state_inputs: list[Value] = []
        self.state_current: list[Value] = []
        self.created_variables: list[Variable] = []
        self.created_at: list[SourceLoc | None] = []  # the user's line of each creation
        # Nested bodies: id(variable) -> (variable, value) for variables assigned (or preset as
        # loop-carried) in this body.
        self.nested_variables: dict[int, tuple[Variable, Value]] = {}

    @property
    def root(self) -> GraphBuilder:
        """The builder of the function being traced (nested bodies have a parent)."""
        root = self
        while root.parent is not None:
            root = root.parent
        return root

    # Values ----------------------------------------------------------------------------------
    def _new_value(self, aval: AVal) -> Value:
        # Nested bodies number their values from the enclosing trace's counter, so every id in
        # a function's printed IR is unique.
        root = self.root
        value = Value(aval, str(root._next_id))
        root._next_id += 1
        return value

    def new_input(self, aval: AVal) -> Tracer:
        value = self._new_value(aval)
        self.inputs.append(value)
        return Tracer(value, self)

    def _new_const(self, key: Any, owner: Any, aval: AVal, array: Any) -> Value:
        found = self._const_ids.get(key)
        if found is not None:
            return found[1]
        root = self.root  # constants of nested bodies are numbered with the function's, too
        value = Value(aval, f"c{root._next_const}")
        root._next_const += 1
        self.consts.append((value, array))
        self._const_ids[key] = (owner, value)
        return value

    def to_value(self, arg: Any, op: str = "", position: int = 0) -> Value:
        """The graph value for an op argument, capturing outside values as constants."""
        if isinstance(arg, Tracer):
            if arg.builder is self:
                return arg.value
            return self._capture(arg, op, position)
        if isinstance(arg, Tensor):
            return self._new_const(id(arg), arg, arg.aval, arg._value)
        if isinstance(arg, Variable):
            return self.variable_value(arg)
        if isinstance(arg, (jax.Array, np.ndarray, np.generic)):
            try:
                aval = aval_of_array(arg)
            except DtypeError as err:  # float128, object, strings...: no jax array holds them
                raise OpTypeError(op, f"argument {position}: {err}", user_location()) from None
            return self._new_const(id(arg), arg, aval, arg)
        if isinstance(arg, _SCALARS):
            aval = aval_of_python_scalar(arg)
            return self._new_const(("py", type(arg), arg), None, aval, arg)
        if isinstance(arg, (list, tuple)):
            if _holds_symbolic(arg):  # [x, y] with symbolic tensors: stacked, as eagerly
                return self.to_value(_stacked(arg), op, position)
            array = array_of_python(arg)
            if array is not None:
                return self._new_const(id(array), array, aval_of_array(array), array)
        raise OpTypeError(
            op,
            f"argument {position} must be a tensor, array or Python number, "
            f"got {type(arg).__name__}: {arg!r:.80}",
            user_location(),
        )

    def _capture(self, tracer: Tracer, op: str, position: int) -> Value:
        """A tracer of an enclosing graph used in this (nested) graph becomes an input here."""
        outer = tracer.builder
        ancestor = self.parent
        while ancestor is not None and ancestor is not outer:
            ancestor = ancestor.parent
        if ancestor is None or outer.finished:
            raise EscapedTracerError(
                f"{op}: argument {position} is a symbolic tensor from another trace "
                f"(%{tracer.value.id} of {outer.name!r}); symbolic tensors exist only inside "
                "the tj.function being traced. Return the value instead of storing it."
                + (f"\n  at {loc.describe()}" if (loc := user_location()) else "")
            )
        outer_value = (
            tracer.value if self.parent is outer else self.parent._capture(tracer, op, position)
        )
        inner = self.captures.get(outer_value)
        if inner is None:
            inner = self._new_value(outer_value.aval)
            self.captures[outer_value] = inner
            self.capture_sources[outer_value] = (
                tracer
                if self.parent is outer
                else self.parent.capture_sources.get(outer_value, tracer)
            )
        return inner

    # Variables -------------------------------------------------------------------------------
    def variable_value(self, variable: Variable) -> Value:
        """The variable's current value in program order (a state input on first use; in a
        nested graph, the enclosing graph's value, captured, unless this body assigned it)."""
        index = self._variable_index.get(id(variable))
        if index is not None:
            return self.state_current[index]
        if self.parent is not None:
            found = self.nested_variables.get(id(variable))
            if found is not None:
                return found[1]
            outer = self.parent.variable_value(variable)
            inner = self.captures.get(outer)
            if inner is None:
                inner = self.captures[outer] = self._new_value(outer.aval)
                self.capture_sources[outer] = variable
            return inner
        value = Value(variable.aval, f"s{len(self.variables)}")
        self._variable_index[id(variable)] = len(self.variables)
        self.variables.append(variable)
        self.state_inputs.append(value)
        self.state_current.append(value)
        return value

    def preset_variable(self, variable: Variable, value: Value) -> None:
        """In a loop body: the variable's value is this (loop-carried) input."""
        self.nested_variables[id(variable)] = (variable, value)

    def assigned_in_body(self) -> list[tuple[Variable, Value]]:
        """Variables a nested body assigned, with their final values."""
        return [
            (v, value) for v, value in self.nested_variables.values() if value not in self.inputs
        ]

    def read_variable(self, variable: Variable) -> Tracer:
        tracer = Tracer(self.variable_value(variable), self)
        if context.state.tapes:
            from tracejit.autodiff.tape import notify_variable_read

            notify_variable_read(variable, tracer)
        return tracer

    def assign_variable(self, variable: Variable, value: Any) -> None:
        if isinstance(value, (list, tuple, np.ndarray)):  # converts to the variable's dtype
            value = converted_to(value, variable.aval.dtype)
        new = self.to_value(value, "Variable.assign")
        check_assignable(variable, new.aval, "assign")
        if new.aval.dtype != variable.aval.dtype or new.aval.weak:
            with self.active():
                new = bind(CAST, Tracer(new, self), dtype=variable.aval.dtype).value
        if self.parent is not None:  # a nested body: the new value becomes a body output
            self.nested_variables[id(variable)] = (variable, new)
            return
        self.variable_value(variable)  # make sure it has a state slot
        self.state_current[self._variable_index[id(variable)]] = new

    def note_variable_created(self, variable: Variable) -> None:
        root = self
        while root.parent is not None:  # the rule is about the function's trace, not a body
            root = root.parent
        root.created_variables.append(variable)
        root.created_at.append(user_location())

    def evaluate_constant(self, x: Any, what: str) -> Any:
        """The concrete value of ``x`` if it depends on no input or state of the trace (used for
        variable initial values computed inside a tj.function)."""
        if not isinstance(x, Tracer):
            return x
        if x.builder is not self:
            raise EscapedTracerError(f"{what} is a symbolic tensor from another trace")
        producers = {out: node for node in self.nodes for out in node.outputs}
        consts = {value: array for value, array in self.consts}
        memo: dict[Value, Any] = {}

        def value_of(value: Value) -> Any:
            if value in memo:
                return memo[value]
            if value in consts:
                result = consts[value]
            elif value in producers:
                node = producers[value]
                args = [value_of(v) for v in node.inputs]
                out = node.op.impl(*args, **node.params)
                outs = out if node.op.multiple_results else (out,)
                memo.update(zip(node.outputs, outs))
                return memo[value]
            else:
                raise OpError(
                    "tj.Variable",
                    f"the {what} depends on the function's inputs or on other variables; "
                    "a variable's initial value must be computable before the call (pass a "
                    "callable, or a value that does not depend on the arguments)",
                    user_location(),
                )
            memo[value] = result
            return result

        return value_of(x.value)

    # Nodes -----------------------------------------------------------------------------------
    def emit(self, op: OpDef, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        """Record ``op(*args, **params)`` as a node; return tracers for its outputs."""
        inputs = tuple(self.to_value(a, op.name, i) for i, a in enumerate(args))
        loc = user_location()
        frozen = _freeze_params(op.name, params, loc)
        try:
            out_avals = op.infer_outputs(tuple(v.aval for v in inputs), frozen)
        except OpError as err:
            raise type(err)(err.op, err.detail, loc) from None
        outputs = tuple(self._new_value(aval) for aval in out_avals)
        self.nodes.append(Node(op, inputs, frozen, outputs, loc))
        tracers = tuple(Tracer(v, self) for v in outputs)
        return tracers if op.multiple_results else tracers[0]

    bind = emit  # the Interpreter method ``bind`` calls while this builder is innermost

    def add_node(
        self, op: OpDef, inputs: tuple[Value, ...], params: Params, loc: SourceLoc | None
    ) -> tuple[Value, ...]:
        """Append a node built from values directly (used by inlining and by passes)."""
        out_avals = op.infer_outputs(tuple(v.aval for v in inputs), params)
        outputs = tuple(self._new_value(aval) for aval in out_avals)
        self.nodes.append(Node(op, inputs, params, outputs, loc))
        return outputs

    @contextlib.contextmanager
    def active(self) -> Iterator[GraphBuilder]:
        with context.interpreting(self):
            yield self

    def build(self, outputs: list[Value], provenance: tuple[str, ...] = ("traced",)) -> Graph:
        self.finished = True
        return Graph(
            name=self.name,
            inputs=tuple(self.inputs) + tuple(self.captures.values()),
            consts=tuple(self.consts),
            nodes=tuple(self.nodes),
            outputs=tuple(outputs),
            state=tuple(self.state_inputs),
            state_outputs=tuple(self.state_current),
            state_names=tuple(v.name for v in self.variables),
            provenance=provenance,
        )


def _holds_symbolic(items: list | tuple) -> bool:
    return any(
        isinstance(x, Tracer) or (isinstance(x, (list, tuple)) and _holds_symbolic(x))
        for x in items
    )


def _stacked(items: list | tuple) -> Any:
    """A nested list of tensors and numbers as one tensor (``tj.stack`` at each level): what
    an op argument ``[x, y]`` means, as it does eagerly."""
    if not items:
        raise OpTypeError("stack", "got an empty list where a tensor is expected")
    return stack([_stacked(x) if isinstance(x, (list, tuple)) else x for x in items])


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _freeze_params(op: str, params: dict[str, Any], loc: SourceLoc | None) -> Params:
    frozen = Params({k: _freeze(v) for k, v in params.items()})
    for key, value in frozen.items():
        try:
            hash(value)
        except TypeError:
            raise OpTypeError(
                op, f"parameter {key}={value!r:.60} must be hashable (a number, string, tuple)", loc
            ) from None
    return frozen
