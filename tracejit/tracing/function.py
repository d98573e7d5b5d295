"""``@tj.function``: trace a Python function once per input signature, run the compiled graph.

``Function`` owns the trace cache (structure -> ``ConcreteFunction``); a ``ConcreteFunction``
is one trace: its graph (``.ir``), its input and output specs, and its executable.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, overload

from typing_extensions import ParamSpec

from tracejit import config
from tracejit.autodiff.through_function import make_backward, record_call
from tracejit.eager.tensor import Tensor
from tracejit.eager.variable import Variable
from tracejit.errors import EscapedTracerError, trimmed
from tracejit.ir.graph import Graph, Value
from tracejit.ir.verify import verify
from tracejit.passes.manager import PassReport, run_pipeline
from tracejit.passes.manager import resolve as resolve_pipeline
from tracejit.runtime.executable import Executable
from tracejit.runtime.pure import to_jax as pure_function
from tracejit.runtime.sharding import resolve_shardings
from tracejit.tracing import checks, context, inspection, retracing
from tracejit.tracing import concrete as info
from tracejit.tracing import signature as sig
from tracejit.tracing.tracer import GraphBuilder, Tracer
from tracejit.types import AVal, TensorSpec, aval_of_array

P = ParamSpec("P")
_CONFIG = config._config  # read on the cached-call path: one attribute lookup
R = TypeVar("R")


class ConcreteFunction:
    """One trace of a ``tj.function``: a graph for one input signature, compiled on first call.

    ``.ir`` is the printable graph; ``.inputs``/``.outputs`` are TensorSpecs of the flat tensor
    inputs and outputs; calling it runs the compiled executable.
    """

    def __init__(
        self,
        function: Function[..., Any],
        in_structure: tuple[Any, ...],
        graph: Graph,
        out_structure: Any,
        variables: Sequence[Variable],
        trace_seconds: float,
    ) -> None:
        self.function = function
        self.in_structure = in_structure
        self.traced_graph = graph
        start = time.perf_counter()
        dump_name = f"{graph.name}.trace{function.trace_count + 1}"
        self.graph, self.report = run_pipeline(graph, function._passes, dump_name=dump_name)
        self.optimize_seconds = time.perf_counter() - start
        self.out_structure = out_structure
        self.variables = tuple(variables)
        self.trace_seconds = trace_seconds
        in_shardings, out_shardings = resolve_shardings(
            function, in_structure, out_structure, self.graph, variables
        )
        self.executable = Executable(
            self.graph, out_structure, variables, in_shardings, out_shardings
        )
        self.calls = 0
        self._backward: Function[..., Any] | None = None
        # The structure of the call that made this trace (``in_structure`` may be relaxed or
        # come from an input_signature) and that call's number, 1-based (0: not from a call).
        self.call_structure: tuple[Any, ...] = in_structure
        self.traced_at_call = 0

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def ir(self) -> Graph:
        """The optimized graph that is lowered to jax.jit (printable: ``print(cf.ir)``)."""
        return self.graph

    @property
    def ir_unoptimized(self) -> Graph:
        """The graph as traced, before optimization passes."""
        return self.traced_graph

    def pass_report(self) -> PassReport:
        """Per pass: node counts before and after, and the time it took (prints as a table)."""
        return self.report

    @property
    def input_avals(self) -> list[AVal]:
        return [v.aval for v in self.graph.inputs]

    @property
    def output_avals(self) -> list[AVal]:
        return [v.aval for v in self.graph.outputs]

    @property
    def inputs(self) -> list[TensorSpec]:
        """Specs of the flat tensor inputs, in order."""
        return [TensorSpec.from_aval(a) for a in self.input_avals]

    @property
    def outputs(self) -> list[TensorSpec]:
        """Specs of the flat tensor outputs, in order."""
        return [TensorSpec.from_aval(a) for a in self.output_avals]

    # TF's introspection (see tracing/concrete.py) ----------------------------------------------
    @property
    def structured_input_signature(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` with a named ``TensorSpec`` per tensor and the bound Python values."""
        return info.structured_input_signature(self)

    @property
    def function_type(self) -> Any:
        """An ``inspect.Signature``: parameters annotated with their specs, bound Python
        arguments with their traced values as defaults."""
        return info.function_type(self)

    @property
    def structured_outputs(self) -> Any:
        """The result's structure, a ``TensorSpec`` per tensor."""
        return info.structured_outputs(self)

    @property
    def output_shapes(self) -> Any:
        """The result's structure, each tensor's shape (None for an unknown dimension)."""
        return info.output_shapes(self)

    @property
    def output_dtypes(self) -> Any:
        """The result's structure, each tensor's dtype."""
        return info.output_dtypes(self)

    @property
    def trainable_variables(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.trainable)

    def pretty_printed_signature(self) -> str:
        """This trace's parameters (specs, bound Python values) and result, as TF prints them."""
        return info.pretty_signature(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != self.function._signature.n_fast:
            canonical = info.bind_call(self, args, kwargs)  # bound Python arguments may be left out
        else:
            canonical = args
        structure, leaves = sig.flatten_arguments(
            canonical, self.function._signature.names, self.name
        )
        if not sig.matches(self.in_structure, structure):
            error = info.bound_value_error(self, self.function._signature.names, structure)
            if error is not None:
                raise trimmed(error)
            sig.check_against_signature(
                self.in_structure, structure, self.function._signature.names, self.name
            )
        self.calls += 1
        if context.state.tapes:
            return record_call(self, leaves, canonical)
        try:
            return self.executable.run(leaves)
        except Exception as err:  # noqa: BLE001 - re-raised naming this trace
            error = inspection.run_error(self, err)
            if error is None:
                raise
            raise error from err

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """jax's ``Lowered`` for these arguments (``.as_text()`` gives StableHLO). A TensorSpec
        with unknown dims (``None``) lowers with jax symbolic dimensions (``tensor<?x3xf32>``);
        compiling needs concrete shapes (see ``compiled_text``)."""
        canonical = info.bind_call(self, args, kwargs)
        _, leaves = sig.flatten_arguments(canonical, self.function._signature.names, self.name)
        avals = [leaf.aval() if isinstance(leaf, TensorSpec) else None for leaf in leaves]
        if any(a is not None and not a.is_fully_known() for a in avals):
            known = [a if a is not None else aval_of_array(x) for a, x in zip(avals, leaves)]
            return self.executable.lower(sig.symbolic_structs(known))
        structs = [a.to_struct() if a is not None else x for a, x in zip(avals, leaves)]
        return self.executable.lower(structs)

    def compiled_text(self, *args: Any, **kwargs: Any) -> str:
        """The optimized HLO that XLA compiled (jax's ``lowered.compile().as_text()``).

        A trace with unknown dimensions needs example arguments (tensors or arrays) to fix
        the shapes; otherwise the trace's own input avals are used.
        """
        return inspection.compile_trace(self, args, kwargs).as_text()

    def cost_analysis(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """XLA's cost figures for this trace — ``flops``, ``bytes accessed`` and more, where the
        backend reports them (an empty dict where it does not). Arguments as for
        ``compiled_text``."""
        return inspection.cost_figures(inspection.compile_trace(self, args, kwargs))

    @property
    def compile_seconds(self) -> float | None:
        """How long the first call took (jax lowering + XLA compile + run); None before it."""
        return self.executable.compile_seconds

    def export(self, **options: Any) -> bytes:
        """A serialized ``jax.export`` artifact of this trace, runnable with jax alone (see
        ``tracejit.saved.export`` for the calling convention and options)."""
        from tracejit.saved.export import export

        return export(self, **options)

    def to_jax(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """This trace as a pure jax function: ``(fn, state)`` with
        ``fn(state, *args) -> (new_state, outputs)``.

        ``state`` holds the current value of each variable the trace uses (``self.variables``
        order), ``new_state`` the values after the call (the assigned ones updated); arguments
        are as for calling this concrete function, outputs are jax arrays in the function's
        output structure. ``fn`` runs the optimized graph's ops, so ``jax.jit``, ``jax.grad``,
        ``jax.vmap`` and ``jax.lax.scan`` accept it. Nothing is written back to the variables.

        >>> import jax, tracejit as tj
        >>> w = tj.Variable(2.0)
        >>> @tj.function
        ... def scale(x):
        ...     w.assign_add(1.0)
        ...     return w * x
        >>> fn, state = scale.get_concrete_function(tj.constant(1.0)).to_jax()
        >>> new_state, y = jax.jit(fn)(state, 5.0)
        >>> float(new_state[0]), float(y), float(w.numpy())
        (3.0, 15.0, 2.0)
        """
        return pure_function(self)

    def backward_function(self) -> Function[..., Any]:
        """A compiled function computing this trace's VJP (made on first use)."""
        if self._backward is None:
            self._backward = make_backward(self)
        return self._backward

    def __repr__(self) -> str:
        ins = ", ".join(str(a) for a in self.input_avals)
        outs = ", ".join(str(a) for a in self.output_avals)
        return f"<ConcreteFunction {self.name}({ins}) -> ({outs})>"


class Function(Generic[P, R]):
    """A Python function compiled per input signature. Create with ``tj.function``."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        input_signature: Sequence[Any] | None = None,
        reduce_retracing: bool = False,
        optimize: bool | Sequence[Any] = True,
        autograph: bool = True,
        name: str | None = None,
        in_shardings: Any = None,
        out_shardings: Any = None,
        _instance: Any = None,
    ) -> None:
        self.python_function = fn
        self.autograph = autograph
        self._converted: Callable[..., Any] | None = None
        self.in_shardings = in_shardings
        self.out_shardings = out_shardings
        self.optimize = optimize
        self._passes = resolve_pipeline(optimize)
        self.name = name or getattr(fn, "__name__", "function")
        self.input_signature = None if input_signature is None else tuple(input_signature)
        self.reduce_retracing = reduce_retracing
        self._instance_ref: Callable[[], Any] | None = None
        if _instance is not None:
            try:
                self._instance_ref = weakref.ref(_instance)
            except TypeError:  # not weak-referenceable: hold it (and its traces) strongly
                self._instance_ref = lambda: _instance
        self._signature = sig.CallSignature(fn, drop_first=_instance is not None)
        self._cache: dict[tuple[Any, ...], ConcreteFunction] = {}
        self._traces: list[ConcreteFunction] = []
        self._lock = threading.RLock()
        self._bound: dict[int, Function[..., Any]] = {}
        self.trace_count = 0
        self._warned_retracing = False
        self._signature_structure = self._structure_of_signature()
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    # The call path -------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if context.state.builder is not None:
            return self._call_python(args, kwargs)  # inline into the enclosing trace
        if config._config.run_eagerly:  # the original Python, as TF runs it
            return self._call_python(args, kwargs, self.python_function)
        if kwargs or len(args) != self._signature.n_fast:
            canonical = self._signature.canonicalize(args, kwargs)
        else:
            canonical = args
        leaves: list[Any] = []
        parts = []
        try:
            for arg in canonical:
                if type(arg) is Tensor:  # the common case, inlined: this is the hot path
                    leaves.append(arg._value)
                    parts.append(arg._aval or arg.aval)
                else:
                    parts.append(sig.flatten(arg, leaves))
        except TypeError:
            parts, leaves = sig.flatten_arguments(canonical, self._signature.names, self.name)
        key = tuple(parts)
        concrete = self._cache.get(key)
        if concrete is None:
            try:
                concrete = self._lookup_or_trace(key, canonical)
            except Exception as err:  # noqa: BLE001 - the same error, minus tracejit's frames
                trimmed(err)
                raise
        elif _CONFIG.log_cache:
            inspection.log_cache_hit(self, concrete)
        concrete.calls += 1
        if context.state.tapes:  # an eager tape differentiates through the compiled call
            return record_call(concrete, leaves, canonical)
        try:  # free in Python 3.11+ unless it raises
            return concrete.executable.run(leaves)
        except Exception as err:  # noqa: BLE001 - re-raised naming the function
            error = inspection.run_error(concrete, err)
            if error is None:
                raise
            raise error from err

    def _python(self) -> Callable[..., Any]:
        """The function tracing runs: AutoGraph's conversion of it (made once) by default."""
        if not self.autograph:
            return self.python_function
        if self._converted is None:
            from tracejit import autograph

            self._converted = autograph.convert(self.python_function)
        return self._converted

    def _call_python(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], fn: Callable[..., Any] | None = None
    ) -> Any:
        fn = fn or self._python()
        if self._instance_ref is not None:
            return fn(self._instance_ref(), *args, **kwargs)
        return fn(*args, **kwargs)

    def _lookup_or_trace(
        self, key: tuple[Any, ...], canonical: tuple[Any, ...]
    ) -> ConcreteFunction:
        with self._lock:
            concrete = self._cache.get(key)
            if concrete is not None:  # another thread traced it while we waited
                return concrete
            concrete = self._find_compatible(key)
            if concrete is None:
                call = sum(c.calls for c in self._traces) + 1  # bookkeeping on the miss path
                retracing.note_new_trace(self, key, call)
                concrete = self._trace(self._structure_to_trace(key), canonical)
                concrete.call_structure, concrete.traced_at_call = key, call
                inspection.log_trace(self, concrete)
            self._cache[key] = concrete
            return concrete

    def _find_compatible(self, key: tuple[Any, ...]) -> ConcreteFunction | None:
        for concrete in self._traces:
            if sig.matches(concrete.in_structure, key):
                return concrete
        return None

    def _structure_to_trace(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """What to trace for a cache miss: the signature's specs, a relaxed structure, or the
        call's own."""
        if self._signature_structure is not None:
            n = len(self._signature_structure)
            sig.check_against_signature(
                self._signature_structure, key[:n], self._signature.names, self.name
            )
            structure = sig.resolve_ranks(self._signature_structure, key[:n]) + key[n:]
            if sig.has_any_rank(structure):
                raise ValueError(
                    f"{self.name}: its input_signature has a TensorSpec of unknown rank "
                    "(shape=None), and XLA compiles one rank at a time, so tracejit traces once "
                    "per rank the function is called with. Call it with tensors, or ask for one "
                    "rank: get_concrete_function(tj.TensorSpec(shape=(None, None), ...))"
                )
            return structure
        if self.reduce_retracing:
            for concrete in reversed(self._traces):
                relaxed = sig.relax(concrete.in_structure, key)
                if relaxed is not None:
                    return relaxed
        return key

    def _structure_of_signature(self) -> tuple[Any, ...] | None:
        if self.input_signature is None:
            return None
        structure = []
        for name, spec in zip(self._signature.names, self.input_signature):
            leaves: list[Any] = []
            node = sig.flatten(spec, leaves)
            if not leaves or not all(isinstance(leaf, TensorSpec) for leaf in leaves):
                raise TypeError(
                    f"{self.name}: input_signature entry for '{name}' must be a TensorSpec "
                    f"or a nested structure of TensorSpecs, got {spec!r}"
                )
            structure.append(node)
        return tuple(structure)

    # Tracing -------------------------------------------------------------------------------
    def _trace(self, structure: tuple[Any, ...], canonical: tuple[Any, ...]) -> ConcreteFunction:
        start = time.perf_counter()
        builder, out_values, out_structure = self._run_python(structure)
        if self._traces:  # variables may be created on the first trace only
            checks.check_created_variables(self.name, builder, self.trace_count + 1, check=False)
        elif builder.created_variables:  # trace again, as TF does, to check it makes no more
            builder, out_values, out_structure = self._run_python(structure)
            checks.check_created_variables(self.name, builder, 1, check=True)
        graph = builder.build(out_values)
        if config.debug_checks():
            verify(graph)
        elapsed = time.perf_counter() - start
        concrete = ConcreteFunction(
            self, structure, graph, out_structure, builder.variables, elapsed
        )
        self._traces.append(concrete)
        self.trace_count += 1
        return concrete

    def _run_python(self, structure: tuple[Any, ...]) -> tuple[GraphBuilder, list[Value], Any]:
        """Run the Python function on symbolic inputs for ``structure``, recording a graph."""
        builder = GraphBuilder(self.name, autograph=self.autograph)
        with builder.active():
            tracers = iter([builder.new_input(a) for a in sig.tensor_avals(structure)])
            arguments = tuple(sig.unflatten(s, tracers) for s in structure)
            args, kwargs = self._signature.to_call(arguments)
            result = self._call_python(args, kwargs)
            out_values: list[Value] = []
            out_structure = _flatten_outputs(result, builder, out_values, self.name)
        checks.check_outputs(self.name, out_structure)
        return builder, out_values, out_structure

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> ConcreteFunction:
        """The trace for these arguments (tensors or ``TensorSpec``s), tracing if needed.

        >>> import tracejit as tj
        >>> f = tj.function(lambda x: x * 2)
        >>> f.get_concrete_function(tj.TensorSpec([None, 3])).outputs
        [TensorSpec(shape=(None, 3), dtype=float32)]
        """
        if not args and not kwargs and self._signature_structure is not None:
            key: tuple[Any, ...] = self._signature_structure
            canonical: tuple[Any, ...] = ()
        else:
            canonical = self._signature.canonicalize(args, kwargs)
            key, _ = sig.flatten_arguments(canonical, self._signature.names, self.name)
        concrete = self._cache.get(key)
        if concrete is not None:
            return concrete
        try:
            return self._lookup_or_trace(key, canonical)
        except Exception as err:  # noqa: BLE001 - the same error, minus tracejit's frames
            trimmed(err)
            raise

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """jax's ``Lowered`` object for these arguments: ``f.lower(x).as_text()`` is StableHLO."""
        return self.get_concrete_function(*args, **kwargs).lower(*args, **kwargs)

    def to_jax(self, *args: Any, **kwargs: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """Trace for these example arguments and convert: ``(fn, state)`` of
        ``self.get_concrete_function(*args, **kwargs).to_jax()`` (see ``ConcreteFunction.to_jax``).

        >>> import jax, jax.numpy as jnp, tracejit as tj
        >>> fn, state = tj.function(lambda x: tj.sum(x * x)).to_jax(tj.zeros((3,)))
        >>> jax.grad(lambda x: fn(state, x)[1])(jnp.arange(3.0))
        Array([0., 2., 4.], dtype=float32)
        """
        return self.get_concrete_function(*args, **kwargs).to_jax()

    def summary(self) -> inspection.FunctionSummary:
        """A table of the traces made so far: signature, node counts before and after
        optimization, trace, optimize and compile times, and calls.

        >>> import tracejit as tj
        >>> f = tj.function(lambda x: tj.exp(x) * 2.0)
        >>> _ = f(tj.ones((3,)))
        >>> print(f.summary())  # doctest: +ELLIPSIS
        <lambda> (<doctest ...>:1): 1 trace, 1 calls
          #  signature  nodes  optimized  trace ms  optimize ms  compile ms  calls
          1  x: f32[3]      2          2  ...
        """
        return inspection.summary(self)

    def pretty_printed_concrete_signatures(self) -> str:
        """Every trace's signature, as ``ConcreteFunction.pretty_printed_signature`` prints it,
        oldest first (TF's method of the same name)."""
        return "\n\n".join(c.pretty_printed_signature() for c in self._traces)

    def concrete_functions(self) -> list[ConcreteFunction]:
        """Every trace made so far, oldest first."""
        return list(self._traces)

    def clear_cache(self) -> None:
        """Drop every trace (and reset ``trace_count``)."""
        with self._lock:
            self._cache.clear()
            self._traces.clear()
            self.trace_count = 0

    # Methods: one Function (one cache) per instance, holding the instance weakly -------------
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        bound = self._bound.get(id(instance))
        if bound is None or bound._instance_ref is None or bound._instance_ref() is not instance:
            bound = Function(
                self.python_function,
                input_signature=self.input_signature,
                reduce_retracing=self.reduce_retracing,
                optimize=self.optimize,
                autograph=self.autograph,
                name=self.name,
                in_shardings=self.in_shardings,
                out_shardings=self.out_shardings,
                _instance=instance,
            )
            self._bound[id(instance)] = bound
            try:
                weakref.finalize(instance, self._bound.pop, id(instance), None)
            except TypeError:
                pass
        return bound

    def __repr__(self) -> str:
        return f"<tj.function {self.name}: {self.trace_count} trace(s)>"


def _flatten_outputs(result: Any, builder: GraphBuilder, out_values: list[Value], name: str) -> Any:
    """Structure of the Python function's result; tensor leaves become graph outputs."""
    leaves: list[Any] = []
    structure = sig.flatten(result, leaves)
    for leaf in leaves:
        if isinstance(leaf, Tracer) and leaf.builder is not builder:
            raise EscapedTracerError(f"{name} returned a symbolic tensor from another trace")
        out_values.append(builder.to_value(leaf, "return"))
    return structure


def _output_flatten_tracer(tracer: Tracer, leaves: list[Any]) -> AVal:
    leaves.append(tracer)
    return tracer.aval


sig.register_leaf(Tracer, _output_flatten_tracer)


@overload
def function(fn: Callable[P, R], **options: Any) -> Function[P, R]: ...
@overload
def function(fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Function[P, R]]: ...
def function(
    fn: Callable[P, R] | None = None,
    *,
    input_signature: Sequence[Any] | None = None,
    reduce_retracing: bool = False,
    optimize: bool | Sequence[Any] = True,
    autograph: bool = True,
    in_shardings: Any = None,
    out_shardings: Any = None,
) -> Any:
    """Compile ``fn``: trace it into tracejit's IR once per input signature, run it with XLA.

    Tensor arguments key the trace cache by shape and dtype; other arguments by value.
    ``optimize``: True runs the default pass pipeline on each trace, False none, or a list of
    pass names / ``Graph -> Graph`` functions. ``autograph``: Python ``if``/``while``/``for`` on
    tensors become control-flow ops (see docs/control-flow.md).
    ``in_shardings``/``out_shardings`` lay inputs and outputs out over a device mesh, as in
    ``jax.jit``: one ``jax.sharding.Sharding``,
    ``PartitionSpec`` or ``TensorSpec -> Sharding`` callable for every tensor, or a list (dict)
    with one per parameter; see docs/scaling.md.

    >>> import tracejit as tj
    >>> @tj.function
    ... def affine(x, w, b):
    ...     return x @ w + b
    >>> x = tj.ones((2, 3)); w = tj.ones((3, 4)); b = tj.zeros((4,))
    >>> affine(x, w, b).shape
    (2, 4)
    >>> affine.trace_count
    1
    """

    def decorate(f: Callable[P, R]) -> Function[P, R]:
        return Function(
            f,
            input_signature=input_signature,
            reduce_retracing=reduce_retracing,
            optimize=optimize,
            autograph=autograph,
            in_shardings=in_shardings,
            out_shardings=out_shardings,
        )

    return decorate if fn is None else decorate(fn)
