"""Converting a Python function: find its source, rewrite it, compile it so that it keeps the
user's file and line numbers, and rebuild it around the original globals and closure cells.

The converted ``def`` is compiled inside a factory whose parameters are ``ag__`` and the
function's free variables, so the compiler makes them closure cells. The converted function is
then built directly from its code object with the *original* ``__globals__`` (global reads and
writes stay live) and the *original* cells (so ``nonlocal`` writes and later rebinding in the
enclosing function are shared), plus a cell holding the operators module for ``ag__``.
"""

from __future__ import annotations
import __future__

import ast
import dis
import functools
import inspect
import linecache
import os
import sysconfig
import threading
import types
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import tracejit
from tracejit.autograph import templates as t
from tracejit.autograph.exceptions import AutoGraphWarning, ConversionError
from tracejit.autograph.transformer import thunk_spans, transform
from tracejit.errors import user_stacklevel

_PACKAGE_DIR = os.path.dirname(os.path.abspath(tracejit.__file__)) + os.sep
_LIBRARY_PACKAGES = frozenset(
    {"numpy", "jax", "jaxlib", "scipy", "typing_extensions", "_pytest", "pytest"}
)
_LIBRARY_DIRS = tuple(
    {_PACKAGE_DIR}
    | {
        os.path.abspath(sysconfig.get_paths()[key]) + os.sep
        for key in ("stdlib", "platstdlib")
        if sysconfig.get_paths().get(key)
    }
)
_INSTALLED_MARKERS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})


@dataclass
class _Entry:
    code: types.CodeType  # the converted function's code
    source: str  # the converted function, as Python source (for to_code)


_UNSEEN: Any = object()
_lock = threading.RLock()
_entries: weakref.WeakKeyDictionary[types.CodeType, _Entry | None] = weakref.WeakKeyDictionary()
_converted_codes: weakref.WeakSet[types.CodeType] = weakref.WeakSet()
_called_as_is: weakref.WeakSet[types.CodeType] = weakref.WeakSet()  # library code, generators
_warned: weakref.WeakSet[types.CodeType] = weakref.WeakSet()


def is_library(fn: Any) -> bool:
    """Whether ``fn`` is library code that is called as it is: tracejit itself, numpy, jax, the
    standard library, installed packages, builtins."""
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return True
    top = (getattr(fn, "__module__", None) or "").partition(".")[0]
    if top in _LIBRARY_PACKAGES:
        return True
    filename = code.co_filename
    if filename.startswith((*_LIBRARY_DIRS, "<frozen")):
        return True
    return any(marker in filename for marker in _INSTALLED_MARKERS)


def is_converted(fn: Any) -> bool:
    return getattr(fn, "__code__", None) in _converted_codes


def convert(fn: Any) -> Any:
    """The AutoGraph-converted version of ``fn``, or ``fn`` itself when it cannot or need not be
    converted (library code, generators, no source: see the warning). Methods, partials and
    the functions they call are converted too; the conversion is cached per code object.

    >>> import tracejit as tj
    >>> from tracejit import autograph
    >>> def clip(x):
    ...     if x > 1.0:
    ...         x = tj.ones_like(x)
    ...     return x
    >>> tj.function(autograph.convert(clip))(tj.constant(5.0)).numpy()
    array(1., dtype=float32)
    """
    if isinstance(fn, functools.partial):
        inner = convert(fn.func)
        return fn if inner is fn.func else functools.partial(inner, *fn.args, **fn.keywords)
    if isinstance(fn, types.MethodType):
        inner = convert(fn.__func__)
        return fn if inner is fn.__func__ else types.MethodType(inner, fn.__self__)
    if not isinstance(fn, types.FunctionType) or is_converted(fn):
        return fn
    code = fn.__code__
    if code in _called_as_is:
        return fn
    entry = _entries.get(code, _UNSEEN)
    if entry is _UNSEEN:
        if is_library(fn) or code.co_flags & _GENERATOR_FLAGS:
            _called_as_is.add(code)
            return fn
        entry = _entry(fn)
    return fn if entry is None else _instantiate(entry, fn)


def to_code(fn: Any) -> str:
    """The converted source of ``fn``, for reading (what ``tj.function`` traces).

    >>> from tracejit import autograph
    >>> def relu(x):
    ...     return x if x > 0 else 0.0
    >>> print(autograph.to_code(relu))
    def relu(x):
        return ag__.if_exp(x > 0, lambda: x, lambda: 0.0)
    """
    target = fn.__func__ if isinstance(fn, types.MethodType) else fn
    if not isinstance(target, types.FunctionType):
        raise TypeError(f"to_code needs a Python function, got {type(fn).__name__}")
    entry = _entry(target, warn=False)
    if entry is None:
        raise ConversionError(f"cannot convert {_describe(target)}: its source is not available")
    return entry.source


def _entry(fn: types.FunctionType, warn: bool = True) -> _Entry | None:
    code = fn.__code__
    with _lock:
        if code in _entries:
            return _entries[code]
        try:
            entry: _Entry | None = _build(fn)
        except _NoSource as err:
            entry = None
            if warn and _has_control_flow(code):
                _warn_once(code, f"{_describe(fn)} is traced without conversion: {err}")
        except Exception as err:  # noqa: BLE001 - a converter bug must not stop the user's trace
            entry = None
            _warn_once(
                code,
                f"{_describe(fn)} could not be converted and is traced as it is "
                f"({type(err).__name__}: {err}); please report this",
            )
        _entries[code] = entry
        return entry


class _NoSource(Exception):
    pass


def _describe(fn: types.FunctionType) -> str:
    code = fn.__code__
    return f"{fn.__qualname__} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"


def _warn_once(code: types.CodeType, message: str) -> None:
    if code in _warned:
        return
    _warned.add(code)
    message += (
        ". Python `if`/`while`/`for`/`and`/`or` on symbolic tensors in it will fail; define it "
        "with `def` in a source file, or use tj.cond / tj.while_loop / tj.where directly."
    )
    warnings.warn(message, AutoGraphWarning, stacklevel=user_stacklevel())


def _has_control_flow(code: types.CodeType) -> bool:
    """Whether the bytecode (or a nested function's) branches: converting would matter."""
    jumps = set(dis.hasjrel) | set(dis.hasjabs)
    if any(ins.opcode in jumps for ins in dis.get_instructions(code)):
        return True
    return any(
        isinstance(c, types.CodeType) and c.co_name not in _COMPREHENSIONS and _has_control_flow(c)
        for c in code.co_consts
    )


# Parsing ----------------------------------------------------------------------------------------
def _parse(fn: types.FunctionType) -> ast.FunctionDef | ast.Lambda:
    """The function's own AST node, with the line and column numbers of its file."""
    code = fn.__code__
    if code.co_name == "<lambda>":
        return _parse_lambda(code)
    try:
        lines, first_line = inspect.getsourcelines(code)  # not fn: that would follow __wrapped__
    except (OSError, TypeError) as err:
        raise _NoSource(f"its source code is not available ({err})") from None
    source = "".join(lines)
    indented = source[:1] in (" ", "\t")
    try:
        # An indented def (a method, a nested function) parses as the body of `if 1:`, which
        # keeps its column offsets, unlike dedenting.
        module = ast.parse("if 1:\n" + source if indented else source)
    except SyntaxError as err:
        raise _NoSource(f"its source could not be parsed ({err.msg})") from None
    ast.increment_lineno(module, first_line - (2 if indented else 1))
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef) and node.name == code.co_name:
            return node
    raise _NoSource("its definition could not be located in its source")


def _parse_lambda(code: types.CodeType) -> ast.Lambda:
    """A lambda, found in its whole file (it may sit inside a larger expression) by its line,
    its parameters and, when several match, the columns of its code."""
    lines = linecache.getlines(code.co_filename)
    if not lines:
        raise _NoSource("its source code is not available")
    try:
        module = ast.parse("".join(lines))
    except SyntaxError as err:
        raise _NoSource(f"its file could not be parsed ({err.msg})") from None
    params = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    found = [
        n
        for n in ast.walk(module)
        if isinstance(n, ast.Lambda)
        and n.lineno == code.co_firstlineno
        and [a.arg for a in (*n.args.posonlyargs, *n.args.args, *n.args.kwonlyargs)] == params
    ]
    if len(found) > 1:
        found = [n for n in found if _within(code, n.body)]
    if len(found) != 1:
        raise _NoSource("its definition could not be told apart from other lambdas on its line")
    return found[0]


def _within(code: types.CodeType, body: ast.expr) -> bool:
    """Whether every located instruction of ``code`` lies inside ``body``'s source span."""
    if not hasattr(code, "co_positions"):
        return False
    start = (body.lineno, body.col_offset)
    end = (body.end_lineno, body.end_col_offset)
    for line, end_line, col, end_col in code.co_positions():
        if line is None or col is None or (col, end_col) == (0, 0):
            continue
        if (line, col) < start or (end_line, end_col) > end:  # type: ignore[operator]
            return False
    return True


# Building -------------------------------------------------------------------------------------
def _build(fn: types.FunctionType) -> _Entry:
    code = fn.__code__
    node = _parse(fn)
    namer = t.Namer(node)
    node = transform(node, namer)  # type: ignore[assignment]
    source = ast.unparse(node)
    factory = _factory_module(fn, node)
    compiled = compile(
        factory, code.co_filename, "exec", flags=_future_flags(code), dont_inherit=True
    )
    inner = _find_code(compiled, code.co_name)
    spans = thunk_spans(node)
    inner = _rename(
        inner,
        code.co_name,
        code.co_qualname if hasattr(code, "co_qualname") else None,
        namer.helpers,
        spans,
    )
    _register(inner)
    return _Entry(inner, source)


def _factory_module(fn: types.FunctionType, node: ast.AST) -> ast.Module:
    """``def ag__factory(ag__, <free variables>): <node>`` (inside ``class C:`` for a method of
    ``C``, so private ``__names`` are mangled as in the original)."""
    params = [t.AG, *fn.__code__.co_freevars]
    body: list[ast.stmt] = [node] if isinstance(node, ast.stmt) else [ast.Return(node)]  # type: ignore[list-item]
    name = getattr(node, "name", None)
    if name is not None and name not in params:
        # The def must not make its own name a local of the factory: a recursive call would
        # then find the factory's cell instead of the global the original function sees.
        body.insert(0, ast.Global(names=[name]))
    factory: ast.stmt = t.function_def("ag__factory", params, body)
    parts = fn.__qualname__.split(".")
    if len(parts) > 1 and parts[-2] != "<locals>":
        factory = ast.ClassDef(
            name=parts[-2],
            bases=[],
            keywords=[],
            body=[factory],
            decorator_list=[],
            **({"type_params": []} if "type_params" in ast.ClassDef._fields else {}),
        )
    t.located(factory, node)
    module = ast.Module(body=[factory], type_ignores=[])
    return ast.fix_missing_locations(module)


def _future_flags(code: types.CodeType) -> int:
    flags = 0
    for name in __future__.all_feature_names:
        flag = getattr(__future__, name).compiler_flag
        if code.co_flags & flag:
            flags |= flag
    return flags


def _find_code(code: types.CodeType, name: str) -> types.CodeType:
    """The code object of the converted function inside the compiled factory module."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_name == name and code.co_name == "ag__factory":
                return const
            try:
                return _find_code(const, name)
            except LookupError:
                pass
    raise LookupError(name)


def _rename(
    code: types.CodeType,
    name: str,
    qualname: str | None,
    helpers: set[str],
    spans: set[tuple[Any, ...]],
) -> types.CodeType:
    """Generated helpers and operand lambdas take the name of the user function they belong to,
    so tracebacks and IR locations say ``in f``, not ``in if_body_3``."""
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            generated = const.co_name in helpers or (
                const.co_name == "<lambda>" and _last_position(const) in spans
            )
            if generated:
                const = _rename(const, name, qualname, helpers, spans)
                const = const.replace(co_name=name)
                if qualname is not None:
                    const = const.replace(co_qualname=qualname)
            else:
                own_qualname = getattr(const, "co_qualname", None)
                const = _rename(const, const.co_name, own_qualname, helpers, spans)
        consts.append(const)
    return code.replace(co_consts=tuple(consts))


def _last_position(code: types.CodeType) -> tuple[Any, ...] | None:
    """The source span of a lambda's body: that of the last instruction before it returns (the
    return itself is placed at the lambda, with no columns)."""
    positions = [
        tuple(i.positions)
        for i in dis.get_instructions(code)
        if i.opname != "RETURN_VALUE" and getattr(i, "positions", None) and i.positions.lineno
    ]
    return positions[-1] if positions else None


def _register(code: types.CodeType) -> None:
    """Remember every function compiled from converted source (not class bodies), so
    converted_call does not convert them again."""
    if not code.co_flags & inspect.CO_OPTIMIZED:
        return
    _converted_codes.add(code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _register(const)


def _instantiate(entry: _Entry, fn: types.FunctionType) -> types.FunctionType:
    from tracejit.autograph import operators

    original = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    cells = tuple(
        types.CellType(operators) if name == t.AG else original[name]
        for name in entry.code.co_freevars
    )
    converted = types.FunctionType(entry.code, fn.__globals__, fn.__name__, fn.__defaults__, cells)
    converted.__kwdefaults__ = fn.__kwdefaults__
    converted.__dict__.update(fn.__dict__)
    for attribute in ("__module__", "__doc__", "__qualname__", "__annotations__"):
        setattr(converted, attribute, getattr(fn, attribute))
    converted.__wrapped__ = fn  # type: ignore[attr-defined]
    return converted
