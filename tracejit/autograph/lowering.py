"""Lower ``return``, ``break`` and ``continue`` to assignments of boolean flags.

A converted branch or loop body is a Python function, and a tensor loop runs its body as a
traced subgraph: neither can jump out. So, before control flow is converted, every jump becomes
a flag assignment and the statements a jump would skip are guarded by ``if not flag``:

    while i < n:                         break_1 = False
        if x[i] < 0:                     while ag__.and_(lambda: ag__.not_(break_1),
            break                                        lambda: i < n):
        i += 1                               if x[i] < 0:
                                                 break_1 = True
                                             else:
                                                 i += 1

A loop stops when one of its flags is set (the flags join its test, or the ``extra_test`` of a
``for``); ``return v`` sets ``do_return``/``retval_`` and the function ends with
``return ag__.retval(retval_)``. When one branch of an ``if`` always jumps, the statements after
the ``if`` move into the other branch instead of being guarded, so an early ``return`` in a
tensor ``if`` gives both branches a return value.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from tracejit.autograph import templates as t

_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_LOOPS = (ast.While, ast.For, ast.AsyncFor)
_BLOCK_ITEMS = (ast.stmt, ast.excepthandler, ast.match_case)


def _contains(stmts: list[ast.stmt], kind: type, *, into_loops: bool) -> bool:
    """Whether ``stmts`` hold a ``kind`` statement of this scope (and this loop unless
    ``into_loops``)."""
    stack: list[ast.AST] = list(stmts)
    while stack:
        node = stack.pop()
        if isinstance(node, kind):
            return True
        if isinstance(node, _NESTED) or (not into_loops and isinstance(node, _LOOPS)):
            if isinstance(node, _LOOPS):
                stack.extend(node.orelse)  # a loop's else belongs to the enclosing loop
            continue
        stack.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, _BLOCK_ITEMS))
    return False


def _always_jumps(stmts: list[ast.stmt]) -> bool:
    """Whether every path through ``stmts`` ends in a return, break or continue."""
    for stmt in stmts:
        if isinstance(stmt, (ast.Return, ast.Break, ast.Continue)):
            return True
        if isinstance(stmt, ast.If) and _always_jumps(stmt.body) and _always_jumps(stmt.orelse):
            return True
    return False


def needs_return_lowering(body: list[ast.stmt]) -> bool:
    """True unless the only ``return`` is the function's last statement."""
    for index, stmt in enumerate(body):
        if isinstance(stmt, ast.Return):
            if index != len(body) - 1:
                return True
        elif _contains([stmt], ast.Return, into_loops=True):
            return True
    return False


@dataclass
class _Loop:
    break_flag: str | None
    continue_flag: str | None


@dataclass
class _Context:
    namer: t.Namer
    do_return: str | None
    retval: str | None
    loop: _Loop | None = None
    initialized: set[str] = field(default_factory=set)

    def active_flags(self) -> set[str]:
        flags = {self.do_return} if self.do_return else set()
        if self.loop is not None:
            flags |= {f for f in (self.loop.break_flag, self.loop.continue_flag) if f}
        return flags


def lower_function(node: ast.FunctionDef | ast.AsyncFunctionDef, namer: t.Namer) -> set[str]:
    """Lower the jumps of ``node``'s body in place; return the names it initializes up front
    (``do_return``, ``retval_``), which need no ``Undefined`` prologue."""
    ctx = _Context(namer, None, None)
    prologue: list[ast.stmt] = []
    epilogue: list[ast.stmt] = []
    if needs_return_lowering(node.body):
        ctx.do_return = namer.new("do_return", numbered=False)
        ctx.retval = namer.new("retval_", numbered=False)
        prologue = [
            t.assign(ctx.do_return, t.constant(False)),
            t.assign(ctx.retval, t.ag_call("UndefinedReturnValue")),
        ]
        epilogue = [ast.Return(value=t.ag_call("retval", t.load(ctx.retval)))]
        ctx.initialized = {ctx.do_return, ctx.retval}
    body, _, _ = _lower_block(node.body, ctx)
    end = node.body[-1]
    for stmt in prologue:
        t.located(stmt, node.body[0])
    for stmt in epilogue:
        t.located(stmt, end)
    node.body = prologue + body + epilogue
    return ctx.initialized


def _lower_block(stmts: list[ast.stmt], ctx: _Context) -> tuple[list[ast.stmt], set[str], bool]:
    """The lowered statements, the flags they may set, and whether they always jump."""
    pending = list(stmts)
    out: list[ast.stmt] = []
    may: set[str] = set()
    while pending:
        stmt = pending.pop(0)
        if isinstance(stmt, _LOOPS) and stmt.orelse:
            stmt, after = _split_loop_else(stmt, ctx)
            pending = after + pending
        if isinstance(stmt, ast.If) and pending:
            stmt, pending = _merge_rest(stmt, pending)
        new, sets, always = _lower_statement(stmt, ctx)
        out += new
        may |= sets
        if always:
            return out, may, True
        guard_flags = sorted(sets & ctx.active_flags())
        if guard_flags and pending:
            rest, rest_sets, _ = _lower_block(pending, ctx)
            guard = ast.If(test=t.negate_any(guard_flags), body=rest, orelse=[])
            out.append(t.located(guard, pending[0]))
            return out, may | rest_sets, False
    return out, may, False


def _merge_rest(stmt: ast.If, rest: list[ast.stmt]) -> tuple[ast.If, list[ast.stmt]]:
    """``if c: return a`` + rest  ->  ``if c: return a else: rest`` (no guard needed)."""
    body_jumps, else_jumps = _always_jumps(stmt.body), _always_jumps(stmt.orelse)
    if body_jumps == else_jumps:
        return stmt, rest
    merged = ast.If(
        test=stmt.test,
        body=stmt.body if body_jumps else stmt.body + rest,
        orelse=stmt.orelse + rest if body_jumps else stmt.orelse,
    )
    return ast.copy_location(merged, stmt), []


def _split_loop_else(loop: ast.stmt, ctx: _Context) -> tuple[ast.stmt, list[ast.stmt]]:
    """``while c: ... else: e``  ->  the loop, then ``if not break_: e`` (``e`` alone when the
    loop has no ``break``)."""
    orelse = loop.orelse  # type: ignore[attr-defined]
    loop.orelse = []  # type: ignore[attr-defined]
    if not _contains(loop.body, ast.Break, into_loops=False):  # type: ignore[attr-defined]
        return loop, orelse
    flag = ctx.namer.new("break")
    loop.ag_break_flag = flag  # type: ignore[attr-defined]
    guard = ast.If(test=t.ag_call("not_", t.load(flag)), body=orelse, orelse=[])
    return loop, [t.located(guard, orelse[0])]


def _lower_statement(stmt: ast.stmt, ctx: _Context) -> tuple[list[ast.stmt], set[str], bool]:
    if isinstance(stmt, ast.Return) and ctx.do_return and ctx.retval:
        value = stmt.value if stmt.value is not None else t.constant(None)
        new = [t.assign(ctx.do_return, t.constant(True)), t.assign(ctx.retval, value)]
        return [t.located(s, stmt) for s in new], {ctx.do_return}, True
    if isinstance(stmt, (ast.Break, ast.Continue)) and ctx.loop is not None:
        flag = ctx.loop.break_flag if isinstance(stmt, ast.Break) else ctx.loop.continue_flag
        assert flag is not None
        return [t.located(t.assign(flag, t.constant(True)), stmt)], {flag}, True
    if isinstance(stmt, (ast.Return, ast.Break, ast.Continue)):
        return [stmt], set(), True
    if isinstance(stmt, ast.If):
        body, body_sets, body_always = _lower_block(stmt.body, ctx)
        orelse, else_sets, else_always = _lower_block(stmt.orelse, ctx)
        stmt.body, stmt.orelse = body or [ast.Pass()], orelse
        return [stmt], body_sets | else_sets, body_always and else_always and bool(orelse)
    if isinstance(stmt, (ast.While, ast.For)):
        return _lower_loop(stmt, ctx)
    blocks = t.python_blocks(stmt)
    if not blocks:
        return [stmt], set(), False
    sets: set[str] = set()
    for owner, attr in blocks:
        lowered, block_sets, _ = _lower_block(getattr(owner, attr), ctx)
        if attr == "body" and not lowered:
            lowered = [ast.Pass()]
        setattr(owner, attr, lowered)
        sets |= block_sets
    return [stmt], sets, False


def _lower_loop(loop: ast.While | ast.For, ctx: _Context) -> tuple[list[ast.stmt], set[str], bool]:
    has_break = _contains(loop.body, ast.Break, into_loops=False)
    has_continue = _contains(loop.body, ast.Continue, into_loops=False)
    break_flag = getattr(loop, "ag_break_flag", None)
    if has_break and break_flag is None:
        break_flag = ctx.namer.new("break")
    continue_flag = ctx.namer.new("continue") if has_continue else None
    inner = _Context(ctx.namer, ctx.do_return, ctx.retval, _Loop(break_flag, continue_flag))
    body, sets, _ = _lower_block(loop.body, inner)
    if continue_flag:
        body.insert(0, t.located(t.assign(continue_flag, t.constant(False)), loop.body[0]))
    loop.body = body or [ast.Pass()]
    stops = [f for f in (break_flag, ctx.do_return) if f and f in sets]
    if stops:
        keep_going = t.located(t.negate_any(stops), loop)
        if isinstance(loop, ast.While):
            loop.test = t.ag_call("and_", t.thunk(keep_going), t.thunk(loop.test))
            t.located(loop.test, loop)
        else:
            loop.ag_extra_test = keep_going  # type: ignore[attr-defined]
    before: list[ast.stmt] = []
    if break_flag:
        before.append(t.located(t.assign(break_flag, t.constant(False)), loop))
    returns = {ctx.do_return} & sets if ctx.do_return else set()
    return before + [loop], returns, False
