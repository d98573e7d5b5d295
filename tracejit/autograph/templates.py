"""Small builders for the AST the converter generates, and fresh names that cannot collide with
the user's."""

from __future__ import annotations

import ast
from collections.abc import Iterable

AG = "ag__"  # the name the converted code uses for tracejit.autograph.operators


class Namer:
    """Fresh identifiers for one converted function: ``if_body_1``, ``break_2``, ... never equal
    to a name that appears in the user's source."""

    def __init__(self, tree: ast.AST) -> None:
        self.taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        self.taken |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
        self.taken |= {
            n.name
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
        self.counter = 0
        self.helpers: set[str] = set()  # names of generated functions (renamed after compiling)
        self._fixed: dict[str, str] = {}

    def fixed(self, base: str) -> str:
        """The same fresh name on every call (for parameters of generated functions)."""
        if base not in self._fixed:
            self._fixed[base] = self.new(base, numbered=False)
        return self._fixed[base]

    def new(self, base: str, *, numbered: bool = True, helper: bool = False) -> str:
        if numbered:
            self.counter += 1
            candidate = f"{base}_{self.counter}"
        else:
            candidate = base
        while candidate in self.taken:
            candidate += "_"
        self.taken.add(candidate)
        if helper:
            self.helpers.add(candidate)
        return candidate


def load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def store(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Store())


def ag_attr(name: str) -> ast.Attribute:
    return ast.Attribute(value=load(AG), attr=name, ctx=ast.Load())


def ag_call(name: str, *args: ast.expr, **keywords: ast.expr) -> ast.Call:
    return ast.Call(
        func=ag_attr(name),
        args=list(args),
        keywords=[ast.keyword(arg=k, value=v) for k, v in keywords.items()],
    )


def assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[store(name)], value=value)


def constant(value: object) -> ast.Constant:
    return ast.Constant(value=value)


def thunk(body: ast.expr) -> ast.Lambda:
    """``lambda: body``, positioned on ``body`` so its code points at the user's expression."""
    node = ast.Lambda(args=no_arguments(), body=body)
    return ast.copy_location(node, body)


def no_arguments(*names: str) -> ast.arguments:
    return ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg=n) for n in names],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )


def function_def(name: str, params: Iterable[str], body: list[ast.stmt]) -> ast.FunctionDef:
    return ast.FunctionDef(
        name=name,
        args=no_arguments(*params),
        body=body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        type_comment=None,
        **({"type_params": []} if "type_params" in ast.FunctionDef._fields else {}),
    )


def names_tuple(names: Iterable[str], ctx: ast.expr_context) -> ast.Tuple:
    return ast.Tuple(elts=[ast.Name(id=n, ctx=ctx) for n in names], ctx=ctx)


def negate_any(flags: list[str]) -> ast.expr:
    """``ag__.not_(a)`` or ``ag__.not_(ag__.or_(lambda: a, lambda: b))``: true while no flag
    is set (the flags may be tensors, so ``not``/``or`` go through the operators)."""
    if len(flags) == 1:
        return ag_call("not_", load(flags[0]))
    return ag_call("not_", ag_call("or_", *(thunk(load(f)) for f in flags)))


def _position(source: ast.AST) -> tuple[int, int, int, int]:
    """A one-line position for generated code standing for ``source``: the header of a compound
    statement (``while n > 1``), else the first line. (A call spanning several lines would be
    reported by CPython at the line of its attribute's end, i.e. the statement's last line.)"""
    end: ast.AST | None = None
    if isinstance(source, (ast.If, ast.While)):
        end = source.test
    elif isinstance(source, ast.For):
        end = source.iter
    line, col = source.lineno, source.col_offset  # type: ignore[attr-defined]
    if end is not None and end.end_lineno == line:  # type: ignore[attr-defined]
        return line, line, col, end.end_col_offset  # type: ignore[attr-defined]
    if source.end_lineno == line:  # type: ignore[attr-defined]
        return line, line, col, source.end_col_offset  # type: ignore[attr-defined]
    return line, line, col, col


def located(node: ast.AST, source: ast.AST) -> ast.AST:
    """Give ``node`` and every descendant without a position a one-line position at
    ``source``."""
    line, end_line, col, end_col = _position(source)
    for child in ast.walk(node):
        if "lineno" in child._attributes and getattr(child, "lineno", None) is None:
            child.lineno, child.end_lineno = line, end_line  # type: ignore[attr-defined]
            child.col_offset, child.end_col_offset = col, end_col  # type: ignore[attr-defined]
    return node


def python_blocks(stmt: ast.stmt) -> list[tuple[ast.AST, str]]:
    """The statement lists inside try/with/match: they stay Python, but the statements in them
    are converted (and their jumps lowered). ``(owner, attribute)`` pairs."""
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [(stmt, "body")]
    if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
        blocks = [(stmt, "body"), (stmt, "orelse"), (stmt, "finalbody")]
        return blocks + [(h, "body") for h in stmt.handlers]
    if isinstance(stmt, ast.Match):
        return [(case, "body") for case in stmt.cases]
    return []
