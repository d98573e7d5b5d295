"""Name analysis on a function's AST: the names a block binds, the names it reads, and which
names are *live* (may be read later) after each ``if`` and at the head of each loop.

The converter needs liveness to choose what becomes a branch output or a loop-carried value:
a temporary that is assigned and used only inside a loop body is not carried, and a name that is
never read after an ``if`` is not an output. The analysis runs on the structured AST after
``break``/``continue``/``return`` were lowered to flags, so there are no jumps to follow.
Results are stored on the nodes as ``ag_live_out`` (``if``, loops) and ``ag_live_head``
(loops: the names live where the loop test runs, which is what a loop must carry).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SCOPES = (*_FUNCTIONS, ast.ClassDef, *_COMPREHENSIONS)


def _as_list(nodes: ast.AST | Iterable[ast.AST] | None) -> list[ast.AST]:
    if nodes is None:
        return []
    if isinstance(nodes, ast.AST):
        return [nodes]
    return [n for n in nodes if n is not None]


def _scope_edges(node: ast.AST) -> list[ast.AST]:
    """The parts of a nested scope that are evaluated in the *enclosing* scope."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = node.args
        return [*node.decorator_list, *args.defaults, *_as_list(args.kw_defaults)]
    if isinstance(node, ast.Lambda):
        return [*node.args.defaults, *_as_list(node.args.kw_defaults)]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords]
    if isinstance(node, _COMPREHENSIONS):
        return [node.generators[0].iter]
    return []


def walk_scope(nodes: ast.AST | Iterable[ast.AST] | None) -> Iterator[ast.AST]:
    """Every node of ``nodes`` in the current scope: nested functions, classes and
    comprehensions are yielded themselves, with their enclosing-scope parts, but not entered."""
    stack = list(reversed(_as_list(nodes)))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES):
            stack.extend(reversed(_scope_edges(node)))
        else:
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def bound_names(nodes: ast.AST | Iterable[ast.AST] | None) -> set[str]:
    """Names bound (assigned, deleted, imported, defined) by ``nodes`` in the current scope."""
    names: set[str] = set()
    for node in walk_scope(nodes):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name.partition(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        elif isinstance(node, _COMPREHENSIONS):
            # PEP 572: `:=` inside a comprehension binds in the enclosing function.
            names |= {n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)}
    return names


def declared_names(body: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """The names a function body declares ``global`` and ``nonlocal``."""
    globals_: set[str] = set()
    nonlocals: set[str] = set()
    for node in walk_scope(body):
        if isinstance(node, ast.Global):
            globals_.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            nonlocals.update(node.names)
    return globals_, nonlocals


def parameter_names(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return {a.arg for a in every}


def _scope_free_reads(node: ast.AST) -> set[str]:
    """Names a nested scope reads from its enclosing scopes (over-approximated: any name it
    loads and does not bind itself)."""
    if isinstance(node, _FUNCTIONS):
        body = node.body if isinstance(node.body, list) else [node.body]
        return reads(body) - parameter_names(node.args) - bound_names(body)
    if isinstance(node, ast.ClassDef):
        return reads(node.body)
    if isinstance(node, _COMPREHENSIONS):
        targets: set[str] = set()
        parts: list[ast.AST] = []
        for generator in node.generators:
            targets |= _target_names(generator.target)
            parts += [generator.iter, *generator.ifs]
        parts += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        return reads(parts) - targets
    return set()


def reads(nodes: ast.AST | Iterable[ast.AST] | None) -> set[str]:
    """Names that evaluating ``nodes`` may read (including free reads of nested scopes)."""
    names: set[str] = set()
    for node in walk_scope(nodes):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, _SCOPES):
            names |= _scope_free_reads(node)
    return names


# Liveness -------------------------------------------------------------------------------------
def annotate_liveness(body: list[ast.stmt], live_at_exit: Iterable[str] = ()) -> None:
    """Store ``ag_live_out`` on every ``if``/``while``/``for`` of ``body`` (this scope only) and
    ``ag_live_head`` on loops. ``live_at_exit``: names read after the function returns (its
    ``global`` and ``nonlocal`` names)."""
    _Liveness(frozenset(live_at_exit)).block(body, frozenset(live_at_exit))


class _Liveness:
    def __init__(self, at_exit: frozenset[str]) -> None:
        self.at_exit = at_exit

    def block(self, stmts: list[ast.stmt], live_out: frozenset[str]) -> frozenset[str]:
        live = live_out
        for stmt in reversed(stmts):
            live = self.statement(stmt, live)
        return live

    def statement(self, stmt: ast.stmt, live_out: frozenset[str]) -> frozenset[str]:
        block = self.block
        if isinstance(stmt, ast.If):
            stmt.ag_live_out = live_out  # type: ignore[attr-defined]
            return block(stmt.body, live_out) | block(stmt.orelse, live_out) | reads(stmt.test)
        if isinstance(stmt, ast.While):
            head = live_out | block(stmt.orelse, live_out) | reads(stmt.test)
            return self.loop(stmt, head, live_out, frozenset())
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            head = live_out | block(stmt.orelse, live_out)
            targets = frozenset(_target_names(stmt.target))
            return self.loop(stmt, head, live_out, targets) | reads(stmt.iter)
        if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            after = block(stmt.finalbody, live_out)
            handlers = frozenset().union(
                *((block(h.body, after) - {h.name}) | reads(h.type) for h in stmt.handlers)
            )
            return block(stmt.body, block(stmt.orelse, after) | handlers) | handlers
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            targets = bound_names([i.optional_vars for i in stmt.items if i.optional_vars])
            entered = reads([i.context_expr for i in stmt.items])
            return (block(stmt.body, live_out) - targets) | entered
        if isinstance(stmt, (ast.Return, ast.Raise)):
            return frozenset(reads(stmt)) | self.at_exit
        if isinstance(stmt, ast.Match):
            cases = frozenset().union(*(block(case.body, live_out) for case in stmt.cases))
            return live_out | cases | reads(stmt)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return (live_out - {stmt.name}) | reads(stmt)
        kills = bound_names(stmt) if not isinstance(stmt, ast.AugAssign) else set()
        return (live_out - kills) | reads(stmt)

    def loop(
        self,
        stmt: ast.While | ast.For | ast.AsyncFor,
        head: frozenset[str],
        live_out: frozenset[str],
        targets: frozenset[str],
    ) -> frozenset[str]:
        """Iterate the loop's liveness to a fixed point; the last pass annotates the body."""
        while True:
            new_head = head | (self.block(stmt.body, head) - targets)
            if new_head == head:
                break
            head = new_head
        stmt.ag_live_out = live_out  # type: ignore[union-attr]
        stmt.ag_live_head = head  # type: ignore[union-attr]
        return head
