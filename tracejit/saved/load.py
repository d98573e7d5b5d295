"""``tj.saved.load``: rebuild saved functions from a directory, trusting nothing in it.

Everything is validated before anything is returned: the manifest's format and version, each
file's sha256, every JSON field's type, every array's header, size and checksum, every graph
(ops looked up in the registry, each op's ``infer`` re-run and compared with the declared
avals, shapes capped, SSA order, tracejit's verifier), each signature against its graph and
variables, and finally an *abstract* evaluation of each graph's lowering (``jax.eval_shape``:
shapes and dtypes only, no computation). Any failure raises ``FormatError``.

A loaded function matches each call against its saved signatures (it cannot trace new ones) and
runs the saved graph with tracejit's lowering and runtime, compiling on first call; the
restored variables are its state, shared by all the functions of the directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import re
from typing import Any

import jax
import numpy as np

from tracejit.eager.variable import Variable
from tracejit.errors import SignatureError, TracejitError, execution_error_type, trims_tracebacks
from tracejit.ir.graph import Graph
from tracejit.lowering.to_jax import graph_to_function
from tracejit.runtime.executable import Executable
from tracejit.saved import files, structure
from tracejit.saved.errors import FormatError
from tracejit.saved.ir_json import GraphDecoder, expect, fail, fields, integer, text
from tracejit.saved.save import FORMAT, MANIFEST, VERSION
from tracejit.tracing import context
from tracejit.tracing import signature as sig
from tracejit.types import AVal, TensorSpec, as_dtype

MAX_ELEMENTS = 1 << 26  # per value and per array: 64 Mi elements (256 MiB of float32)
MAX_ARRAY_BYTES = 1 << 30  # all arrays together
MAX_PROGRAM_BYTES = 1 << 28
MAX_NODES = 100_000  # IR nodes over all graphs, nested bodies included
MAX_JSON_ITEMS = files.MAX_JSON_ITEMS
_ARRAY_KEY = re.compile(r"[cv]\d{1,9}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class Limits:
    """The caps a load enforces (see ``load``)."""

    max_elements: int = MAX_ELEMENTS
    max_array_bytes: int = MAX_ARRAY_BYTES
    max_program_bytes: int = MAX_PROGRAM_BYTES
    max_nodes: int = MAX_NODES
    max_json_items: int = MAX_JSON_ITEMS


def load(directory: str, *, max_elements: int = MAX_ELEMENTS,
         max_array_bytes: int = MAX_ARRAY_BYTES, max_program_bytes: int = MAX_PROGRAM_BYTES,
         max_nodes: int = MAX_NODES, max_json_items: int = MAX_JSON_ITEMS) -> Loaded:  # fmt: skip
    """Load what ``tj.saved.save`` wrote: an object whose attributes are the saved functions.

    The caps (raise them for bigger programs you trust not to exhaust memory):
    ``max_elements`` caps the size of every value and array the directory may declare
    (default 2**26); ``max_array_bytes`` all arrays together (1 GiB); ``max_program_bytes`` the
    size of its JSON (256 MiB); ``max_nodes`` the IR nodes of all its graphs (100,000);
    ``max_json_items`` the values and keys in its JSON (4,000,000). Raises ``FormatError``
    for a corrupt, hostile, oversized or incompatible directory, having run nothing from it.

    >>> import tempfile
    >>> import tracejit as tj
    >>> @tj.function
    ... def halve(x):
    ...     return x / 2
    >>> _ = halve(tj.constant([2.0, 4.0]))
    >>> loaded = tj.saved.load(tj.saved.save(halve, tempfile.mkdtemp() + "/halve"))
    >>> loaded.halve(tj.constant([6.0, 8.0])).numpy()
    array([3., 4.], dtype=float32)
    """
    directory = os.fspath(directory)
    limits = Limits(max_elements, max_array_bytes, max_program_bytes, max_nodes, max_json_items)
    try:
        program, arrays = _read_files(directory, limits)
        return _Builder(program, arrays, limits).build()
    except files.CorruptFileError as err:
        raise FormatError(f"{directory}: {err}") from None
    except FormatError as err:
        raise FormatError(f"{directory}: {err}") from None
    except (MemoryError, RecursionError) as err:
        raise FormatError(f"{directory}: too large to load ({type(err).__name__})") from None


def _read_files(directory: str, limits: Limits) -> tuple[dict, dict]:
    if not os.path.isdir(directory):
        raise FormatError("not a directory")
    manifest = files.read_json(files.member_path(directory, MANIFEST), 1 << 20)
    fields(manifest, MANIFEST, ("format", "version", "program", "arrays"))
    if manifest["format"] != FORMAT:
        raise FormatError(f"{MANIFEST}: format is {manifest['format']!r}, expected {FORMAT!r}")
    if type(manifest["version"]) is not int or manifest["version"] != VERSION:
        raise FormatError(
            f"{MANIFEST}: format version {manifest['version']!r}; this tracejit "
            f"reads version {VERSION} (save it again with a matching tracejit)"
        )
    entries = {
        key: fields(manifest[key], f"{MANIFEST}.{key}", ("file", "sha256"))
        for key in ("program", "arrays")
    }
    paths = {key: files.member_path(directory, entry["file"]) for key, entry in entries.items()}
    # program.json: a regular file under the cap, read once; the bytes hashed are the bytes parsed.
    raw = files.read_capped(paths["program"], limits.max_program_bytes)
    _check_digest(hashlib.sha256(raw).hexdigest(), entries["program"])
    program = files.parse_json(raw, "program.json", limits.max_json_items)
    del raw
    fields(program, "program.json", ("functions", "variables", "arrays"))
    expected = _expected_arrays(program, limits)
    # arrays.npz: a regular file no larger than the declared arrays need, hashed, then read.
    with files.open_regular(paths["arrays"], files.arrays_file_cap(expected)) as file:
        _check_digest(files.sha256_file(file), entries["arrays"])
        file.seek(0)
        return program, files.read_arrays(file, expected, entries["arrays"]["file"])


def _check_digest(digest: str, entry: dict) -> None:
    if digest != entry["sha256"]:
        raise FormatError(f"{entry['file']}: checksum mismatch (the file was changed or damaged)")


def _expected_arrays(program: dict, limits: Limits) -> dict:
    expected = {}
    total = 0
    max_elements = limits.max_elements
    for key, entry in expect(program["arrays"], dict, "program.json.arrays").items():
        at = f"program.json.arrays.{key}"
        if not _ARRAY_KEY.fullmatch(key):
            raise fail(at, "not an array key (c<i> or v<i>)")
        fields(entry, at, ("shape", "dtype", "sha256"))
        dims = expect(entry["shape"], list, f"{at}.shape")
        if len(dims) > 64:
            raise fail(at, "has more than 64 dimensions")
        shape = tuple(integer(d, f"{at}.shape", 0, max_elements) for d in dims)
        if files.element_count(shape) > max_elements:
            raise fail(at, f"shape {shape} is larger than the allowed {max_elements} elements")
        digest = text(entry["sha256"], f"{at}.sha256", 64)
        if not _SHA256.fullmatch(digest):
            raise fail(f"{at}.sha256", "not a sha256 hex digest")
        try:
            dtype = files.dtype_from_name(entry["dtype"])
        except files.CorruptFileError as err:
            raise fail(f"{at}.dtype", str(err)) from None
        total += files.element_count(shape) * dtype.itemsize
        if total > limits.max_array_bytes:
            raise fail(
                "program.json.arrays",
                f"declares more than the allowed {limits.max_array_bytes} bytes of arrays",
            )
        expected[key] = (shape, dtype, digest)
    return expected


class _Builder:
    """Decodes program.json into loaded functions (after validating all of it)."""

    def __init__(self, program: dict, arrays: dict[str, np.ndarray], limits: Limits) -> None:
        self.program, self.arrays, self.max_elements = program, arrays, limits.max_elements
        self.decoder = GraphDecoder(arrays, limits.max_elements, limits.max_nodes)

    def build(self) -> Loaded:
        variables = self._variables()
        avals = [a for *_, a in variables]
        functions = {}
        for name, entry in expect(self.program["functions"], dict, "functions").items():
            where = f"functions.{text(name, 'functions')}"
            fields(entry, where, ("parameters", "signatures"))
            signature = structure.decode_parameters(entry["parameters"], f"{where}.parameters")
            traces = [
                self._trace(t, f"{where}.signatures[{i}]", len(signature.parameters), avals)
                for i, t in enumerate(expect(entry["signatures"], list, f"{where}.signatures"))
            ]
            if not traces:
                raise fail(where, "has no signatures")
            functions[name] = (signature, traces)
        if not functions:  # save() refuses to write one: a file without them was edited
            raise fail("functions", "is empty (tj.saved.save always writes at least one)")
        # Everything is valid: now make the variables and the functions.
        made = [
            Variable(array, trainable=trainable, name=name)
            for _, name, trainable, array, _ in variables
        ]
        loaded = {
            name: LoadedFunction(
                name,
                signature,
                [
                    LoadedConcreteFunction(name, graph, ins, outs, [made[i] for i in indices], made)
                    for graph, ins, outs, indices in traces
                ],
            )
            for name, (signature, traces) in functions.items()
        }
        return Loaded(loaded, {path: v for (path, *_), v in zip(variables, made)})

    def _variables(self) -> list[tuple[str, str, bool, np.ndarray, AVal]]:
        found: list[tuple[str, str, bool, np.ndarray, AVal]] = []
        paths: set[str] = set()
        for i, entry in enumerate(expect(self.program["variables"], list, "variables")):
            at = f"variables[{i}]"
            fields(entry, at, ("path", "name", "trainable", "array"))
            path = text(entry["path"], f"{at}.path", 1024)
            if path in paths:
                raise fail(at, f"path {path!r} appears twice")
            paths.add(path)
            key = text(entry["array"], f"{at}.array", 16)
            array = self.arrays.get(key) if key.startswith("v") else None
            if array is None:
                raise fail(f"{at}.array", f"names array {key!r}, which is not a variable array")
            if as_dtype(array.dtype) != array.dtype:
                raise fail(
                    at,
                    f"a variable cannot hold {array.dtype} here (it was saved with "
                    "jax's 64-bit mode on: enable jax_enable_x64 to load it)",
                )
            trainable = expect(entry["trainable"], bool, f"{at}.trainable")
            name = text(entry["name"], f"{at}.name", 1024)
            found.append((path, name, trainable, array, AVal(array.shape, array.dtype, False)))
        return found

    def _trace(self, obj: Any, where: str, n_params: int, avals: list[AVal]) -> tuple:
        fields(obj, where, ("inputs", "outputs", "variables", "graph"))
        raw_inputs = expect(obj["inputs"], list, f"{where}.inputs")
        if len(raw_inputs) != n_params:
            raise fail(f"{where}.inputs", f"{len(raw_inputs)} entries for {n_params} parameters")
        ins = tuple(
            structure.decode(s, f"{where}.inputs[{i}]", self.max_elements)
            for i, s in enumerate(raw_inputs)
        )
        indices = [
            integer(v, f"{where}.variables", 0, len(avals) - 1)
            for v in expect(obj["variables"], list, f"{where}.variables")
        ]
        if len(set(indices)) != len(indices):
            raise fail(f"{where}.variables", "lists a variable twice")
        outs = structure.decode(obj["outputs"], f"{where}.outputs", self.max_elements, len(avals))
        graph = self.decoder.graph(obj["graph"], f"{where}.graph")
        _check_trace(graph, ins, outs, [avals[i] for i in indices], where)
        _abstract_check(graph, where)
        return (
            dataclasses.replace(graph, provenance=(*graph.provenance, "loaded")),
            ins,
            outs,
            indices,
        )


def _check_trace(graph: Graph, ins: tuple, outs: Any, state: list[AVal], where: str) -> None:
    """The signature fits the graph: input avals, output count and types, state avals."""
    declared = sig.tensor_avals(ins)
    if declared != [v.aval for v in graph.inputs]:
        raise fail(where, "the input signature does not match the graph's inputs")
    out_avals = sig.tensor_avals(outs)
    if len(out_avals) != len(graph.outputs) or any(
        a.dtype != v.aval.dtype or a.ndim != v.aval.ndim for a, v in zip(out_avals, graph.outputs)
    ):
        raise fail(where, "the output structure does not match the graph's outputs")
    if len(state) != len(graph.state) or any(
        a.shape != v.aval.shape or a.dtype != v.aval.dtype or v.aval.weak
        for a, v in zip(state, graph.state)
    ):
        raise fail(where, "the graph's state does not match the variables it names")


def _abstract_check(graph: Graph, where: str) -> None:
    """Trace the lowered graph with abstract values (no computation): every op implementation
    must accept its inputs and produce the declared types. With unknown dims, symbolic sizes are
    tried, then size 2; a graph that fails every attempt is refused."""
    expected = list(graph.outputs) + [graph.state_outputs[i] for i in graph.updated_state()]
    avals = [v.aval for v in graph.inputs] + [v.aval for v in graph.state]
    known = all(a.is_fully_known() for a in avals)
    attempts = (
        [lambda: [a.to_struct() for a in avals]]
        if known
        else [
            lambda: sig.symbolic_structs(avals),
            lambda: [
                AVal(tuple(2 if d is None else d for d in a.shape), a.dtype, a.weak).to_struct()
                for a in avals
            ],
        ]
    )
    try:
        fn, const_args = graph_to_function(graph)
    except Exception as err:  # noqa: BLE001
        raise fail(where, f"the graph cannot be lowered: {err}") from None
    error: Exception | None = None
    for attempt in attempts:
        try:
            result = jax.eval_shape(fn, *attempt(), *const_args)
        except Exception as err:  # noqa: BLE001 - whatever jax raises, the program is bad
            error = err
            continue
        results = result if isinstance(result, tuple) else (result,)
        for value, out in zip(expected, results):
            dims = [d if isinstance(d, int) else None for d in out.shape]
            bad = (
                np.dtype(out.dtype) != value.aval.dtype
                or len(dims) != value.aval.ndim
                or any(
                    d is not None and e is not None and d != e
                    for d, e in zip(dims, value.aval.shape)
                )
            )
            if bad or len(results) != len(expected):
                raise fail(
                    where,
                    f"%{value.id} is declared {value.aval} but computes "
                    f"{out.dtype}{list(out.shape)}",
                )
        return
    raise fail(where, f"the graph does not type-check when lowered: {error}")


# The loaded objects -----------------------------------------------------------------------------
class LoadedConcreteFunction:
    """One saved trace: its graph (``.ir``), input and output specs, and variables."""

    def __init__(self, name: str, graph: Graph, in_structure: tuple, out_structure: Any,
                 variables: list[Variable], all_variables: list[Variable]) -> None:  # fmt: skip
        self.name = name
        self.graph = graph
        self.in_structure = in_structure
        self.out_structure = structure.to_output(out_structure, all_variables)
        self.variables = tuple(variables)
        self._executable: Executable | None = None
        self._backward: Any = None

    @property
    def ir(self) -> Graph:
        return self.graph

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_aval(v.aval) for v in self.graph.inputs]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_aval(v.aval) for v in self.graph.outputs]

    @property
    def ir_unoptimized(self) -> Graph:
        return self.graph  # what was saved: replayed by a tape's backward pass

    def backward_function(self) -> Any:
        """The compiled VJP an eager tape uses through a call (made on first use)."""
        from tracejit.autodiff.through_function import make_backward

        if self._backward is None:
            self._backward = make_backward(self)  # type: ignore[arg-type]
        return self._backward

    @property
    def executable(self) -> Executable:
        if self._executable is None:  # compiled (by jax.jit) on the first call
            self._executable = Executable(self.graph, self.out_structure, self.variables)
        return self._executable

    def describe(self, names: list[str]) -> str:
        args = ", ".join(f"{n}: {structure.describe(s)}" for n, s in zip(names, self.in_structure))
        return f"{self.name}({args})"

    def __repr__(self) -> str:
        return f"<loaded ConcreteFunction {self.name}>"


class LoadedFunction:
    """A saved ``tj.function``: callable with the signatures it was saved with."""

    def __init__(self, name: str, signature: inspect.Signature,
                 concretes: list[LoadedConcreteFunction]) -> None:  # fmt: skip
        self.name = name
        self.__signature__ = signature

        def stub(*args: Any, **kwargs: Any) -> None: ...

        stub.__signature__ = signature  # type: ignore[attr-defined]
        self._call_signature = sig.CallSignature(stub)
        self._concretes = concretes

    def concrete_functions(self) -> list[LoadedConcreteFunction]:
        return list(self._concretes)

    @property
    def signatures(self) -> list[str]:
        """The saved signatures, as text (``predict(x: f32[?,4])``)."""
        return [c.describe(self._call_signature.names) for c in self._concretes]

    @trims_tracebacks
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if context.state.builder is not None:
            raise TracejitError(
                f"{self.name}: a loaded function cannot be called while a "
                "tj.function is being traced"
            )
        names = self._call_signature.names
        canonical = self._call_signature.canonicalize(args, kwargs)
        found, leaves = sig.flatten_arguments(canonical, names, self.name)
        actual = tuple(structure.portable(s) for s in found)
        for concrete in self._concretes:
            if sig.matches(concrete.in_structure, actual):
                if context.state.tapes:  # a tape differentiates through it, as a tj.function
                    from tracejit.autodiff.through_function import record_call

                    return record_call(concrete, leaves, canonical)  # type: ignore[arg-type]
                try:
                    return concrete.executable.run(leaves)
                except Exception as err:  # noqa: BLE001 - re-raised naming the function
                    if isinstance(err, TracejitError):
                        raise
                    raise execution_error_type(err)(
                        f"loaded function {concrete.describe(names)} failed at run time: "
                        f"{type(err).__name__}: {err}"
                    ) from err
        given = ", ".join(f"{n}: {structure.describe(s)}" for n, s in zip(names, actual))
        raise SignatureError(
            f"{self.name}({given}) matches no saved signature. A loaded function cannot trace "
            "new signatures; it was saved with:\n  "
            + "\n  ".join(self.signatures)
            + _sizes_hint(sig.tensor_avals(actual), [c.in_structure for c in self._concretes])
        )

    def __repr__(self) -> str:
        return f"<loaded tj.function {self.name}: {len(self._concretes)} signature(s)>"


def _sizes_hint(given: list[AVal], saved: list[Any]) -> str:
    """When a saved signature differs from the call only in known batch (leading) sizes, how to
    save one with an unknown batch dimension."""
    for structure_ in saved:
        avals = sig.tensor_avals(structure_)
        if len(avals) == len(given) and all(map(_batch_only, avals, given)):
            specs = ", ".join(_batch_spec(a) for a in avals)
            return (
                "\nOnly the batch size differs. To accept any batch size, save a trace with an "
                f"unknown batch dimension: trace the function with input_signature=[{specs}] (or "
                "call f.get_concrete_function(...) with those specs) before tj.saved.save."
            )
    return ""


def _batch_only(saved: AVal, given: AVal) -> bool:
    """``given`` fits ``saved`` except, possibly, in a known leading dimension."""
    if saved.dtype != given.dtype or saved.ndim != given.ndim:
        return False
    return saved.ndim == 0 or all(
        d is None or d == e for d, e in zip(saved.shape[1:], given.shape[1:])
    )


def _batch_spec(saved: AVal) -> str:
    """``tj.TensorSpec((None, 3), 'float32')``: the saved spec with an unknown leading dim."""
    dims = ["None" if i == 0 or d is None else str(d) for i, d in enumerate(saved.shape)]
    shape = "()" if not dims else f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    return f"tj.TensorSpec({shape}, '{saved.dtype}')"


class Loaded:
    """What ``tj.saved.load`` returns: the saved functions as attributes (and in
    ``signatures``), and the restored variables by path in ``variables``."""

    def __init__(self, functions: dict[str, LoadedFunction], variables: dict[str, Variable]):
        self.signatures = functions
        self.variables = variables

    def __getattr__(self, name: str) -> LoadedFunction:
        functions = self.__dict__.get("signatures", {})
        if name in functions:
            return functions[name]
        raise AttributeError(
            f"the loaded object has no function {name!r}; saved functions: "
            f"{', '.join(sorted(functions)) or 'none'}"
        )

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.signatures))

    def __repr__(self) -> str:
        return (
            f"<tj.saved object: functions {', '.join(sorted(self.signatures))}; "
            f"{len(self.variables)} variable(s)>"
        )
