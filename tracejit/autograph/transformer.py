"""The AST rewrite: Python control flow -> calls to the runtime operators.

Each function is converted in four steps:

1. expressions (whole tree): ``a and b`` -> ``ag__.and_(lambda: a, lambda: b)``, ``not x`` ->
   ``ag__.not_(x)``, ``a if t else b`` -> ``ag__.if_exp(t, lambda: a, lambda: b)``, every call
   ``f(*args, **kwargs)`` -> ``ag__.converted_call(f, args, kwargs)``;
2. jumps: ``return``/``break``/``continue`` -> flags (``lowering.py``);
3. liveness of every name after each ``if`` and at each loop head (``analysis.py``);
4. statements: each ``if``/``while``/``for`` becomes nested functions for its parts plus
   ``get_state``/``set_state`` functions over the names it assigns, and one operator call:

       if x > 0:                  def if_body_1():          def get_state_3():
           y = x * 2                  nonlocal y                return (y,)
       else:            ->            y = x * 2             def set_state_4(vars_):
           y = -x                 def else_body_2():            nonlocal y
                                      nonlocal y                (y,) = vars_
                                      y = -x
                                  ag__.if_stmt(x > 0, if_body_1, else_body_2, get_state_3,
                                               set_state_4, ('y',), 1)

   The operator decides at run time: a Python condition runs the Python statement, a symbolic
   tensor builds ``tj.cond``/``tj.while_loop``. The trailing number says how many of the names
   (the first ones) are live afterwards: branch outputs, or loop-carried values.

Every generated node takes the position of the statement it replaces, so the compiled code
keeps the user's line numbers.
"""

from __future__ import annotations

import ast

from tracejit.autograph import templates as t
from tracejit.autograph.analysis import (
    annotate_liveness,
    bound_names,
    declared_names,
    parameter_names,
    walk_scope,
)
from tracejit.autograph.lowering import lower_function

# Builtins that look at the calling frame: wrapping them would change what they see.
_CALLED_DIRECTLY = frozenset({"super", "locals", "globals", "vars", "eval", "exec", "dir"})
_THUNK_OPERATORS = frozenset({"and_", "or_", "if_exp"})


def _is_generator(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    kinds = (ast.Yield, ast.YieldFrom, ast.Await)
    return isinstance(node, ast.AsyncFunctionDef) or any(
        isinstance(n, kinds) for n in walk_scope(node.body)
    )


class ExpressionConverter(ast.NodeTransformer):
    """Step 1. Class bodies, decorators, annotations and generator functions are left alone."""

    def __init__(self) -> None:
        self.first_params: list[str | None] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return node  # a lambda in a class body cannot see the class's names

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        if _is_generator(node):
            return node
        params = [*node.args.posonlyargs, *node.args.args]
        self.first_params.append(params[0].arg if params else None)
        node.body = [self.visit(stmt) for stmt in node.body]
        self.first_params.pop()
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        node.body = self.visit(node.body)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if any(isinstance(n, ast.NamedExpr) for n in ast.walk(node)):
            return node  # `:=` inside a lambda would bind in the lambda
        name = "and_" if isinstance(node.op, ast.And) else "or_"
        return t.located(t.ag_call(name, *(t.thunk(v) for v in node.values)), node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return t.located(t.ag_call("not_", node.operand), node)
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        if any(isinstance(n, ast.NamedExpr) for n in ast.walk(node)):
            return node
        call = t.ag_call("if_exp", node.test, t.thunk(node.body), t.thunk(node.orelse))
        return t.located(call, node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        """``a < b < c`` -> ``ag__.and_(lambda: a < b, lambda: b < c)`` when ``b`` is a name or
        constant (evaluating it twice is then harmless)."""
        self.generic_visit(node)
        middle = node.comparators[:-1]
        if len(node.ops) < 2 or not all(isinstance(m, (ast.Name, ast.Constant)) for m in middle):
            return node
        lefts = [node.left, *middle]
        parts = [
            ast.copy_location(ast.Compare(left=left, ops=[op], comparators=[right]), node)
            for left, op, right in zip(lefts, node.ops, node.comparators)
        ]
        return t.located(t.ag_call("and_", *(t.thunk(p) for p in parts)), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id in _CALLED_DIRECTLY:
            first = self.first_params[-1] if self.first_params else None
            if func.id == "super" and not node.args and not node.keywords and first:
                # Zero-argument super() finds its class and instance in the calling frame,
                # which becomes a generated helper: spell them out.
                node.args = [t.load("__class__"), t.load(first)]
                t.located(node, node)
            return node
        args = ast.Tuple(elts=node.args, ctx=ast.Load())
        if node.keywords:
            kwargs: ast.expr = ast.Dict(
                keys=[t.constant(k.arg) if k.arg else None for k in node.keywords],
                values=[k.value for k in node.keywords],
            )
        else:
            kwargs = t.constant(None)
        return t.located(t.ag_call("converted_call", func, args, kwargs), node)


class _DeclarationHoister(ast.NodeTransformer):
    """Removes ``global``/``nonlocal`` statements of one scope (they move to its top)."""

    def visit_Global(self, node: ast.Global) -> None:
        return None

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        return None

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return node
        super().generic_visit(node)
        if getattr(node, "body", None) == []:
            node.body = [ast.copy_location(ast.Pass(), node)]  # type: ignore[attr-defined]
        return node


def convert_function(node: ast.FunctionDef, namer: t.Namer) -> bool:
    """Steps 2-4 on one (already expression-converted) function, in place. Nested functions are
    converted too. False when the function must stay as it is (a generator)."""
    if _is_generator(node):
        return False
    globals_, nonlocals = declared_names(node.body)
    docstring = _pop_docstring(node)
    for stmt in node.body:
        _DeclarationHoister().generic_visit(stmt)
    node.body = [s for s in node.body if not isinstance(s, (ast.Global, ast.Nonlocal))]
    if not node.body:
        node.body = [ast.Pass()]
    initialized = lower_function(node, namer)
    annotate_liveness(node.body, globals_ | nonlocals)
    converter = _FunctionConverter(namer, globals_, parameter_names(node.args) | initialized)
    body = converter.function_body(node.body)
    local = converter.needs_init - globals_ - nonlocals
    prologue: list[ast.stmt] = [
        t.located(t.assign(n, t.ag_call("Undefined", t.constant(n))), node.body[0])
        for n in sorted(local)
    ]
    declarations: list[ast.stmt] = []
    if globals_:
        declarations.append(ast.Global(names=sorted(globals_)))
    if nonlocals:
        declarations.append(ast.Nonlocal(names=sorted(nonlocals)))
    for decl in declarations:
        t.located(decl, node.body[0])
    node.body = docstring + declarations + prologue + body
    return True


def _pop_docstring(node: ast.FunctionDef) -> list[ast.stmt]:
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        node.body = node.body[1:] or [ast.copy_location(ast.Pass(), first)]
        return [first]
    return []


class _FunctionConverter:
    """Step 4 for one function body (nested functions get their own converter)."""

    def __init__(self, namer: t.Namer, globals_: set[str], defined: set[str]) -> None:
        self.namer = namer
        self.globals = globals_
        # Names certainly bound when the current top-level statement starts; names a converted
        # statement passes around that are not need an `Undefined` binding up front.
        self.defined = set(defined)
        self.needs_init: set[str] = set()

    def function_body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            out += self.statement(stmt)
            if isinstance(stmt, ast.Delete):
                self.defined -= bound_names(stmt)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is None:
                pass  # `x: int` declares x without binding it
            elif isinstance(stmt, (ast.If, ast.While, ast.For)) or not t.python_blocks(stmt):
                self.defined |= bound_names(stmt)
        return out

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            out += self.statement(stmt)
        return out

    def statement(self, stmt: ast.stmt) -> list[ast.stmt]:
        if isinstance(stmt, ast.If):
            return self.if_statement(stmt)
        if isinstance(stmt, ast.While):
            return self.while_statement(stmt)
        if isinstance(stmt, ast.For):
            return self.for_statement(stmt)
        if isinstance(stmt, ast.FunctionDef):
            convert_function(stmt, self.namer)
            return [stmt]
        for owner, attr in t.python_blocks(stmt):
            setattr(owner, attr, self.block(getattr(owner, attr)))
        return [stmt]

    def declare(self, names: list[str]) -> list[ast.stmt]:
        local = [n for n in names if n not in self.globals]
        shared = [n for n in names if n in self.globals]
        decls: list[ast.stmt] = [ast.Nonlocal(names=local)] if local else []
        return decls + ([ast.Global(names=shared)] if shared else [])

    def state_functions(self, names: list[str]) -> tuple[list[ast.stmt], str, str]:
        get_name = self.namer.new("get_state", helper=True)
        set_name = self.namer.new("set_state", helper=True)
        values = self.namer.fixed("vars_")
        getter = t.function_def(get_name, [], [ast.Return(t.names_tuple(names, ast.Load()))])
        unpack = ast.Assign(targets=[t.names_tuple(names, ast.Store())], value=t.load(values))
        setter_body = self.declare(names) + [unpack] if names else [ast.Pass()]
        setter = t.function_def(set_name, [values], setter_body)
        return [getter, setter], get_name, set_name

    def _ordered(self, assigned: set[str], live: frozenset[str]) -> tuple[list[str], int]:
        """Live names first (outputs / carried), then the others; sorted for stable code."""
        self.needs_init |= assigned - self.defined
        first = sorted(n for n in assigned if n in live)
        return first + sorted(n for n in assigned if n not in live), len(first)

    def _emit(
        self, stmt: ast.stmt, defs: list[ast.stmt], operator: str, args: list[ast.expr]
    ) -> list[ast.stmt]:
        call = ast.Expr(t.ag_call(operator, *args))
        return [t.located(s, stmt) for s in [*defs, call]]  # type: ignore[misc]

    def if_statement(self, stmt: ast.If) -> list[ast.stmt]:
        names, outputs = self._ordered(bound_names(stmt.body + stmt.orelse), stmt.ag_live_out)  # type: ignore[attr-defined]
        body, orelse = self.block(stmt.body), self.block(stmt.orelse)
        body_name = self.namer.new("if_body", helper=True)
        else_name = self.namer.new("else_body", helper=True)
        defs = [
            t.function_def(body_name, [], self.declare(names) + body),
            t.function_def(else_name, [], self.declare(names) + orelse),
        ]
        state, get_name, set_name = self.state_functions(names)
        args = [stmt.test, t.load(body_name), t.load(else_name), t.load(get_name)]
        args += [t.load(set_name), t.constant(tuple(names)), t.constant(outputs)]
        return self._emit(stmt, defs + state, "if_stmt", args)

    def while_statement(self, stmt: ast.While) -> list[ast.stmt]:
        in_test = bound_names(stmt.test)  # `:=` in the test
        assigned = bound_names(stmt.body) | in_test
        names, carried = self._ordered(assigned, stmt.ag_live_head)  # type: ignore[attr-defined]
        test_name = self.namer.new("loop_test", helper=True)
        body_name = self.namer.new("loop_body", helper=True)
        test_body = self.declare(sorted(in_test)) + [ast.Return(stmt.test)]
        defs = [
            t.function_def(test_name, [], test_body),
            t.function_def(body_name, [], self.declare(names) + self.block(stmt.body)),
        ]
        state, get_name, set_name = self.state_functions(names)
        args = [t.load(test_name), t.load(body_name), t.load(get_name), t.load(set_name)]
        args += [t.constant(tuple(names)), t.constant(carried)]
        return self._emit(stmt, defs + state, "while_stmt", args)

    def for_statement(self, stmt: ast.For) -> list[ast.stmt]:
        assigned = bound_names(stmt.target) | bound_names(stmt.body)
        names, carried = self._ordered(assigned, stmt.ag_live_head)  # type: ignore[attr-defined]
        body_name = self.namer.new("loop_body", helper=True)
        item = self.namer.new("itr")
        bind_target = t.located(ast.Assign(targets=[stmt.target], value=t.load(item)), stmt)
        body = self.declare(names) + [bind_target] + self.block(stmt.body)
        defs = [t.function_def(body_name, [item], body)]
        extra: ast.expr = t.constant(None)
        if getattr(stmt, "ag_extra_test", None) is not None:
            extra_name = self.namer.new("extra_test", helper=True)
            defs.append(t.function_def(extra_name, [], [ast.Return(stmt.ag_extra_test)]))  # type: ignore[attr-defined]
            extra = t.load(extra_name)
        state, get_name, set_name = self.state_functions(names)
        args = [stmt.iter, extra, t.load(body_name), t.load(get_name), t.load(set_name)]
        args += [t.constant(tuple(names)), t.constant(carried)]
        return self._emit(stmt, defs + state, "for_stmt", args)


def thunk_spans(tree: ast.AST) -> set[tuple[int, int, int, int]]:
    """Source spans of the bodies of the lambdas passed to and_/or_/if_exp (their compiled code
    objects are found by these spans and renamed after the user's function)."""
    spans = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == t.AG
            and node.func.attr in _THUNK_OPERATORS
        ):
            for arg in node.args:
                if isinstance(arg, ast.Lambda):
                    body = arg.body
                    spans.add((body.lineno, body.end_lineno, body.col_offset, body.end_col_offset))
    return spans  # type: ignore[return-value]


def transform(node: ast.FunctionDef | ast.Lambda, namer: t.Namer) -> ast.AST:
    """Convert a parsed user function (or lambda) in place and return it."""
    node = ExpressionConverter().visit(node)
    if isinstance(node, ast.FunctionDef):
        node.decorator_list = []
        node.returns = None
        for arg in ast.walk(node.args):
            if isinstance(arg, ast.arg):
                arg.annotation = None
        convert_function(node, namer)
    ast.fix_missing_locations(node)
    return node
