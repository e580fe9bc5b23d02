"""Lower one workflow function's statements into IR nodes.

Statements are lowered back to front: each handler receives the id of the node that
runs after it and returns the id of its own entry, so every node is created with its
successors known. Runs of statements that do not await (and do not ``return``,
``break`` or ``continue`` out of themselves) become one inline node that runs them as
ordinary Python — exception handling, loops and all.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rappelx.compiler import _diagnostics as diag
from rappelx.compiler._codegen import BlockCompiler, BlockRef
from rappelx.compiler._hoist import Hoister, Slot, assign, name
from rappelx.compiler._ir import (
    Await,
    Branch,
    Catch,
    Exec,
    FinallyExit,
    FinallyStack,
    Jump,
    Node,
    Return,
)
from rappelx.compiler._resolve import Env, classify
from rappelx.compiler._symbols import contains_await, walk_scope


@dataclass(frozen=True, slots=True)
class Loop:
    """Where ``break``/``continue`` go, and how many finally blocks enclose the loop."""

    break_to: int
    continue_to: int
    depth: int


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a statement is nested in."""

    handler: int | None = None
    finally_stack: FinallyStack = ()
    loop: Loop | None = None
    exc_var: str | None = None  # the exception a bare `raise` re-raises
    fin_var: str | None = None  # in a finally body: its pending completion (see _reraise)

    def reraise(self) -> ast.expr | None:
        """What a bare ``raise`` here re-raises, or None to leave it as written."""
        if self.fin_var is not None:
            outer = name(self.exc_var) if self.exc_var else ast.Constant(None)
            return ast.Call(func=name("_rx_reraise"), args=[name(self.fin_var), outer], keywords=[])
        return name(self.exc_var) if self.exc_var else None


# Statements _checks.py reports; lowering skips them rather than report them twice.
_REJECTED_BY_CHECKS = (
    ast.AsyncWith,
    ast.AsyncFor,
    ast.TryStar,
    ast.Global,
    ast.Nonlocal,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)

Handler = Callable[["FunctionLowerer", Any, int, Ctx], int]
_HANDLERS: dict[type[ast.stmt], Handler] = {}


def register(*kinds: type[ast.stmt]) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for kind in kinds:
            _HANDLERS[kind] = fn
        return fn

    return deco


def _label(node: ast.AST) -> str:
    shown = getattr(node, "rx_label", None)  # set on statements rappelx writes itself
    if shown is not None:
        return str(shown)
    text = ast.unparse(node).splitlines()[0] if node else ""
    return _shorten(text)


def _shorten(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


_TEMPORARY = re.compile(r"\b_rx_\w+")
# A temporary being set: the label shows the value computed.
_DEFINITION = re.compile(r"^_rx_[tc]\d+ = ")
# An item appended to the list a comprehension that awaits builds.
_COLLECT = re.compile(r"^_rx_c\d+\.append\((.*)\)$")
# A bare ``raise`` in a handler, as _rewrite_bare_raise spelled it out.
_RERAISE = re.compile(r"\braise (?:_rx_e\d+|_rx_reraise\(_rx_f\d+, (?:_rx_e\d+|None)\))")
# Expressions that read the same in any operand position; others get parentheses.
_ATOMS = (ast.Await, ast.Call, ast.Name, ast.Attribute, ast.Subscript, ast.Constant,
          ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp)  # fmt: skip


def _unhoisted(label: str, shown: dict[str, ast.expr]) -> str:
    """``label`` with the temporaries hoisting made shown as the source they stand for."""

    def source(match: re.Match[str]) -> str:
        expr = shown.get(match.group())
        if expr is None:
            return match.group()
        text = _TEMPORARY.sub(source, ast.unparse(expr))
        return text if isinstance(expr, _ATOMS) else f"({text})"

    if "_rx_" not in label:
        return label
    label = _COLLECT.sub(r"list item: \1", _DEFINITION.sub("", _RERAISE.sub("raise", label)))
    return _shorten(_TEMPORARY.sub(source, label))


@dataclass(slots=True)
class FunctionLowerer:
    """Builds the node table of one function."""

    env: Env
    locals_: set[str]
    blocks: BlockCompiler
    report: Callable[..., None]
    fresh_name: Callable[[str], str]
    nodes: dict[int, Node] = field(default_factory=dict)
    calls: list[tuple[str, ast.AST]] = field(default_factory=list)  # helper calls made
    context: str | None = None  # the handled exception while lowering a handler body
    shown: dict[str, ast.expr] = field(default_factory=dict)  # temporaries' sources
    _count: int = 0

    # ------------------------------------------------------------------ plumbing
    def reserve(self) -> int:
        self._count += 1
        return self._count

    def emit(self, node: Node) -> int:
        if self.context is not None and node.context is None:
            node = replace(node, context=self.context)
        label = _unhoisted(node.label, self.shown)
        if label is not node.label:
            node = replace(node, label=label)
        self.nodes[node.id] = node
        return node.id

    def fresh(self, kind: str) -> str:
        ident = self.fresh_name(kind)
        self.locals_.add(ident)
        return ident

    @property
    def hoister(self) -> Hoister:
        return Hoister(fresh=self.fresh, report=self.report, shown=self.shown)

    def expr_block(self, expr: ast.expr, anchor: ast.AST) -> BlockRef:
        self.check_inline(expr)
        return self.blocks.expression(expr, anchor, self.locals_)

    def code(self, source: str, anchor: ast.AST, next_id: int, ctx: Ctx, label: str) -> int:
        """An inline node running generated ``source`` (rappelx's own bookkeeping);
        ``label`` says in words what it does, for drawings."""
        body = ast.parse(source).body
        for stmt in body:
            ast.copy_location(stmt, anchor)
            for sub in ast.walk(stmt):
                ast.copy_location(sub, anchor)
        fn = self.blocks.statements(body, anchor, self.locals_)
        return self.emit(
            Exec(
                id=self.reserve(),
                line=_line(anchor),
                label=label,
                handler=ctx.handler,
                fn=fn,
                next=next_id,
                source=source,
                raises=isinstance(body[-1], ast.Raise),
            )
        )

    # ------------------------------------------------------------------ blocks
    def block(self, stmts: list[ast.stmt], next_id: int, ctx: Ctx) -> int:
        """Lower ``stmts`` to run before ``next_id``; return the entry id."""
        entry = next_id
        end = len(stmts)
        while end > 0:
            start = end
            while start > 0 and self.inline_ok(stmts[start - 1]):
                start -= 1
            if start < end:
                entry = self.inline(stmts[start:end], entry, ctx)
                end = start
                continue
            stmt = stmts[end - 1]
            handler = _HANDLERS.get(type(stmt))
            if handler is None:
                reported = isinstance(stmt, _REJECTED_BY_CHECKS) or contains_await(stmt)
                if not reported:
                    what = f"'{type(stmt).__name__.lower()}' containing return/break/continue"
                    self.report(
                        stmt, diag.UNSUPPORTED, what=what, hint="; move the return out of the block"
                    )
            else:
                entry = handler(self, stmt, entry, ctx)
            end -= 1
        return entry

    def inline_ok(self, stmt: ast.stmt) -> bool:
        """Whether ``stmt`` can run as plain Python inside one inline node."""
        if contains_await(stmt):
            return False
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return True  # its returns are its own; awaiting inside is RX109
        loops = 0
        for sub in walk_scope(stmt):
            if isinstance(sub, ast.Return):
                return False
            if isinstance(sub, ast.For | ast.While):
                loops += 1
        if isinstance(stmt, ast.Break | ast.Continue):
            return False
        if loops == 0:
            return not any(isinstance(s, ast.Break | ast.Continue) for s in walk_scope(stmt))
        return not _escaping_jump(stmt)

    def inline(self, stmts: list[ast.stmt], next_id: int, ctx: Ctx) -> int:
        if ctx.reraise() is not None:
            for stmt in stmts:
                _rewrite_bare_raise(stmt, ctx)
        for stmt in stmts:
            self.check_inline(stmt)
        fn = self.blocks.statements(stmts, stmts[0], self.locals_)
        source = "\n".join(ast.unparse(s) for s in stmts)
        return self.emit(
            Exec(
                id=self.reserve(),
                line=stmts[0].lineno,
                label=_label(stmts[0]),
                handler=ctx.handler,
                fn=fn,
                next=next_id,
                source=source,
                raises=isinstance(stmts[-1], ast.Raise),
            )
        )

    def check_inline(self, node: ast.AST) -> None:
        """Report calls that would create a coroutine nobody awaits (RX110)."""
        awaited: set[int] = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Await):
                awaited.add(id(sub.value))  # reported where the await itself is rejected
            if isinstance(sub, ast.Call) and id(sub) not in awaited:
                callee = classify(sub, self.env)
                if callee.kind in ("action", "helper", "run_action", "gather", "sleep"):
                    what = {
                        "action": f"the @action '{callee.name}'",
                        "helper": f"the async method 'self.{callee.name}'",
                        "run_action": "self.run_action(...)",
                        "gather": "asyncio.gather(...)",
                        "sleep": "asyncio.sleep(...)",
                    }[callee.kind]
                    self.report(sub, diag.BARE_COROUTINE, what=what)

    # ------------------------------------------------------------------ awaits
    def awaiting(
        self, call: ast.Call, target: str | None, next_id: int, ctx: Ctx, anchor: ast.stmt
    ) -> int:
        """The node for ``[target =] await call``."""
        callee = classify(call, self.env)
        return_exceptions = False
        callees: tuple[str, ...] = ()
        if callee.kind in ("action", "missing", "run_action", "helper"):
            spec = self.call_spec(call)
            what = "call" if callee.kind == "helper" else "action"
            if callee.kind == "helper":
                callees = (callee.name,)
        elif callee.kind == "gather":
            spec, return_exceptions, callees = self.gather_spec(call)
            what = "gather"
        elif callee.kind == "sleep":
            keywords = {k.arg for k in call.keywords}
            count = len(call.args) + len(keywords)
            if not 1 <= count <= 2 or not keywords <= {"delay", "result"}:
                self.report(call, diag.SLEEP_ARGS, found=f"'{ast.unparse(call)}'")
                return next_id
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                self.check_inline(arg)
            spec = ast.Call(func=name("_rx_sleep"), args=call.args, keywords=call.keywords)
            what = "sleep"
        elif callee.name.startswith("self."):
            self.report(call, diag.UNKNOWN_HELPER, name=callee.name[5:])
            return next_id
        else:
            self.report(call, diag.NOT_AN_ACTION, found=f"'{callee.name}'")
            return next_id
        if spec is None:
            return next_id
        ast.copy_location(spec, call)
        fn = self.blocks.expression(spec, anchor, self.locals_)
        if what == "call":
            self.calls.append((callees[0], call))
        return self.emit(
            Await(
                id=self.reserve(),
                line=call.lineno,
                label=_label(call),
                handler=ctx.handler,
                fn=fn,
                what=what,
                target=target,
                next=next_id,
                source=ast.unparse(call),
                return_exceptions=return_exceptions,
                callees=callees,
            )
        )

    def call_spec(self, call: ast.Call) -> ast.expr | None:
        """``_rx_act(...)``, ``_rx_with(...)`` or ``_rx_helper(...)`` for one call."""
        callee = classify(call, self.env)
        if callee.kind == "run_action":
            return self.run_action_spec(call)
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            self.check_inline(arg)
        if callee.kind in ("action", "missing"):
            return ast.Call(
                func=name("_rx_act"), args=[call.func, *call.args], keywords=call.keywords
            )
        if callee.kind == "helper":
            assert isinstance(call.func, ast.Attribute)
            return ast.Call(
                func=name("_rx_helper"),
                args=[ast.Constant(callee.name), call.func.value, *call.args],
                keywords=call.keywords,
            )
        return None

    def run_action_spec(self, call: ast.Call) -> ast.expr | None:
        allowed = {"retry", "backoff", "timeout"}
        bad = [k for k in call.keywords if k.arg not in allowed]
        if len(call.args) != 1 or bad or not isinstance(call.args[0], ast.Call):
            self.report(call, diag.RUN_ACTION_ARG, found=f"'{ast.unparse(call)}'")
            return None
        inner = call.args[0]
        for keyword in call.keywords:
            self.check_inline(keyword.value)
        if classify(inner, self.env).kind not in ("action", "missing"):
            self.report(inner, diag.NOT_AN_ACTION, found=f"'{ast.unparse(inner.func)}'")
            return None
        spec = self.call_spec(inner)
        assert spec is not None
        return ast.Call(func=name("_rx_with"), args=[spec], keywords=call.keywords)

    def gather_spec(self, call: ast.Call) -> tuple[ast.expr | None, bool, tuple[str, ...]]:
        return_exceptions = False
        for keyword in call.keywords:
            value = keyword.value
            if (
                keyword.arg == "return_exceptions"
                and isinstance(value, ast.Constant)
                and isinstance(value.value, bool)
            ):
                return_exceptions = value.value
            else:
                self.report(keyword.value, diag.GATHER_OPTION, found=f"'{ast.unparse(keyword)}'")
        elements: list[ast.expr] = []
        callees: list[str] = []
        for arg in call.args:
            element = self.gather_element(arg, callees)
            if element is not None:
                elements.append(element)
        return ast.List(elts=elements, ctx=ast.Load()), return_exceptions, tuple(callees)

    def gather_element(self, arg: ast.expr, callees: list[str]) -> ast.expr | None:
        if isinstance(arg, ast.Starred):
            comp = arg.value
            if isinstance(comp, ast.ListComp | ast.GeneratorExp) and isinstance(comp.elt, ast.Call):
                spec = self.gather_element(comp.elt, callees)
                if spec is None:
                    return None
                for generator in comp.generators:
                    self.check_inline(generator.iter)
                    for cond in generator.ifs:
                        self.check_inline(cond)
                made = ast.ListComp(elt=spec, generators=comp.generators)
                return ast.copy_location(ast.Starred(value=made, ctx=ast.Load()), arg)
            self.report(arg, diag.GATHER_STARRED, found=ast.unparse(comp))
            return None
        if isinstance(arg, ast.Call):
            callee = classify(arg, self.env)
            if callee.kind in ("action", "missing", "run_action", "helper"):
                if callee.kind == "helper":
                    callees.append(callee.name)
                    self.calls.append((callee.name, arg))
                return self.call_spec(arg)
        self.report(arg, diag.GATHER_ELEMENT, found=f"'{ast.unparse(arg)}'")
        return None


def _line(node: ast.AST) -> int:
    return getattr(node, "lineno", 0) or 0


def _escaping_jump(stmt: ast.stmt) -> bool:
    """A break/continue in ``stmt`` that targets a loop outside it."""

    def visit(node: ast.AST, in_loop: bool) -> bool:
        if isinstance(node, ast.Break | ast.Continue):
            return not in_loop
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            return False
        for fld, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            inner = in_loop or (isinstance(node, ast.For | ast.While) and fld == "body")
            for child in children:
                if isinstance(child, ast.AST) and visit(child, inner):
                    return True
        return False

    return visit(stmt, False)


def _rewrite_bare_raise(stmt: ast.stmt, ctx: Ctx) -> None:
    """``raise`` inside a lowered handler re-raises the handled exception by name."""

    def visit(node: ast.AST) -> None:
        if isinstance(
            node, ast.ExceptHandler | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        ):
            return
        if isinstance(node, ast.Raise) and node.exc is None:
            replacement = ctx.reraise()
            assert replacement is not None
            node.exc = ast.copy_location(replacement, node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(stmt)


# ====================================================================== statements
def _direct_await(stmt: ast.stmt) -> tuple[ast.Call, str | None] | None:
    value: ast.expr | None = None
    target: str | None = None
    if isinstance(stmt, ast.Expr):
        value = stmt.value
    elif (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
    ):
        value, target = stmt.value, stmt.targets[0].id
    if isinstance(value, ast.Await) and isinstance(value.value, ast.Call):
        call = value.value
        if not any(contains_await(a) for a in [*call.args, *(k.value for k in call.keywords)]):
            return call, target
    return None


# expr_stmt: (await call) | target = (await call) | anything else with awaits inside
@register(ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Raise, ast.Assert, ast.Delete)
def lower_simple(lw: FunctionLowerer, stmt: ast.stmt, next_id: int, ctx: Ctx) -> int:
    direct = _direct_await(stmt)
    if direct is not None:
        return lw.awaiting(direct[0], direct[1], next_id, ctx, stmt)
    if isinstance(stmt, ast.Raise) and ctx.reraise() is not None:
        _rewrite_bare_raise(stmt, ctx)
    stmts = normalize(lw, stmt)
    if len(stmts) == 1 and stmts[0] is stmt:
        lw.report(stmt, diag.UNSUPPORTED, what="this use of await", hint="")
        return next_id
    return lw.block(stmts, next_id, ctx)


def normalize(lw: FunctionLowerer, stmt: ast.stmt) -> list[ast.stmt]:
    """Rewrite a simple statement that awaits into direct awaits plus inline code."""
    hoist = lw.hoister
    if isinstance(stmt, ast.Expr):
        pre, value = hoist.expr(stmt.value)
        if isinstance(value, ast.Name | ast.Constant):
            return pre
        return [*pre, ast.copy_location(ast.Expr(value=value), stmt)]
    if isinstance(stmt, ast.AnnAssign):
        if stmt.value is None:
            return [stmt]
        plain = ast.copy_location(ast.Assign(targets=[stmt.target], value=stmt.value), stmt)
        return normalize(lw, plain)
    if isinstance(stmt, ast.Assign):
        if any(contains_await(t) for t in stmt.targets):
            # Python evaluates the value first, then each target's sub-expressions.
            pre, value = hoist.expr(stmt.value)
            temp = lw.fresh("t")
            lw.shown[temp] = value
            pre.append(assign(temp, value, stmt))
            for target in stmt.targets:
                pre.extend(_hoist_target(hoist, target))
            plain = ast.Assign(targets=stmt.targets, value=name(temp))
            return [*pre, ast.copy_location(plain, stmt)]
        direct = _direct_await(stmt)
        if direct is not None:
            return [stmt]
        if isinstance(stmt.value, ast.Await) and isinstance(stmt.value.value, ast.Call):
            pre, call = hoist.call_args(stmt.value.value)
            if len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                stmt.value.value = call
                return [*pre, stmt]
        pre, value = hoist.expr(stmt.value)
        return [*pre, ast.copy_location(ast.Assign(targets=stmt.targets, value=value), stmt)]
    if isinstance(stmt, ast.AugAssign):
        return _normalize_augassign(lw, stmt)
    if isinstance(stmt, ast.Raise):
        pre = []
        exc = stmt.exc
        if exc is not None:
            pre, exc = hoist.expr(exc)
            if (
                stmt.cause is not None
                and contains_await(stmt.cause)
                and not isinstance(exc, ast.Name)
            ):
                temp = lw.fresh("t")
                pre.append(assign(temp, exc, stmt))
                exc = name(temp)
        cause_pre, cause = hoist.expr(stmt.cause) if stmt.cause is not None else ([], None)
        return [*pre, *cause_pre, ast.copy_location(ast.Raise(exc=exc, cause=cause), stmt)]
    if isinstance(stmt, ast.Assert):
        pre, test = hoist.expr(stmt.test)
        if stmt.msg is not None and contains_await(stmt.msg):
            msg_pre, msg = hoist.expr(stmt.msg)
            fail = ast.Raise(
                exc=ast.Call(func=name("AssertionError"), args=[msg], keywords=[]), cause=None
            )
            body = [*msg_pre, ast.copy_location(fail, stmt)]
            check = ast.If(test=ast.UnaryOp(op=ast.Not(), operand=test), body=body, orelse=[])
            return [*pre, ast.copy_location(check, stmt)]
        return [*pre, ast.copy_location(ast.Assert(test=test, msg=stmt.msg), stmt)]
    lw.report(
        stmt,
        diag.UNSUPPORTED,
        what=f"an await inside '{type(stmt).__name__.lower()}'",
        hint="; await into a variable on the line before",
    )
    return []


def _hoist_target(hoist: Hoister, target: ast.expr) -> list[ast.stmt]:
    if isinstance(target, ast.Subscript):
        return hoist.slots([Slot(target, "value"), Slot(target, "slice")])
    if isinstance(target, ast.Attribute):
        return hoist.slots([Slot(target, "value")])
    if isinstance(target, ast.Starred):
        return _hoist_target(hoist, target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [stmt for elt in target.elts for stmt in _hoist_target(hoist, elt)]
    return []


def _hoisted(
    lw: FunctionLowerer, expr: ast.expr, pre: list[ast.stmt], anchor: ast.stmt
) -> ast.expr:
    """``expr`` evaluated once, before what follows: a temporary unless it is a plain name
    or a constant (``self`` in ``self.n += await f()`` stays ``self``)."""
    if isinstance(expr, ast.Name | ast.Constant):
        return expr
    temp = lw.fresh("t")
    lw.shown[temp] = expr
    pre.append(assign(temp, expr, anchor))
    return name(temp)


def _normalize_augassign(lw: FunctionLowerer, stmt: ast.AugAssign) -> list[ast.stmt]:
    # Python reads the target before it evaluates the right-hand side.
    pre: list[ast.stmt] = []
    target = stmt.target
    if isinstance(target, ast.Name):
        load: ast.expr = name(target.id)
        store: ast.expr = name(target.id, store=True)
    elif isinstance(target, ast.Attribute):
        obj = _hoisted(lw, target.value, pre, stmt)
        load = ast.Attribute(value=obj, attr=target.attr, ctx=ast.Load())
        store = ast.Attribute(value=obj, attr=target.attr, ctx=ast.Store())
    else:
        assert isinstance(target, ast.Subscript)
        obj = _hoisted(lw, target.value, pre, stmt)
        key = _hoisted(lw, target.slice, pre, stmt)
        load = ast.Subscript(value=obj, slice=key, ctx=ast.Load())
        store = ast.Subscript(value=obj, slice=key, ctx=ast.Store())
    current = lw.fresh("t")
    lw.shown[current] = load
    pre.append(assign(current, load, stmt))
    value_pre, value = lw.hoister.expr(stmt.value)
    update = ast.AugAssign(target=name(current, store=True), op=stmt.op, value=value)
    write = ast.Assign(targets=[store], value=name(current))
    return [*pre, *value_pre, ast.copy_location(update, stmt), ast.copy_location(write, stmt)]


# return_stmt: 'return' [expr]
@register(ast.Return)
def lower_return(lw: FunctionLowerer, stmt: ast.Return, next_id: int, ctx: Ctx) -> int:
    if stmt.value is not None and contains_await(stmt.value):
        pre, value = lw.hoister.expr(stmt.value)
        plain = ast.copy_location(ast.Return(value=value), stmt)
        return lw.block([*pre, plain], next_id, ctx)
    fn = lw.expr_block(stmt.value, stmt) if stmt.value is not None else None
    return lw.emit(
        Return(
            id=lw.reserve(),
            line=stmt.lineno,
            label=_label(stmt),
            handler=ctx.handler,
            fn=fn,
            finally_stack=ctx.finally_stack,
            source=ast.unparse(stmt),
        )
    )


# break_stmt: 'break' | continue_stmt: 'continue'
@register(ast.Break, ast.Continue)
def lower_jump(lw: FunctionLowerer, stmt: ast.stmt, next_id: int, ctx: Ctx) -> int:
    assert ctx.loop is not None  # Python's parser rejects break/continue outside loops
    loop = ctx.loop
    target = loop.break_to if isinstance(stmt, ast.Break) else loop.continue_to
    if len(ctx.finally_stack) <= loop.depth:
        return target
    return lw.emit(
        Jump(
            id=lw.reserve(),
            line=stmt.lineno,
            label=_label(stmt),
            handler=ctx.handler,
            target=target,
            depth=loop.depth,
            finally_stack=ctx.finally_stack,
        )
    )


# if_stmt: 'if' expr ':' block ('elif' expr ':' block)* ['else' ':' block]
@register(ast.If)
def lower_if(lw: FunctionLowerer, stmt: ast.If, next_id: int, ctx: Ctx) -> int:
    true = lw.block(stmt.body, next_id, ctx)
    false = lw.block(stmt.orelse, next_id, ctx)
    pre, test = lw.hoister.expr(stmt.test)
    branch = lw.emit(
        Branch(
            id=lw.reserve(),
            line=stmt.lineno,
            label=f"if {_label(test)}",
            handler=ctx.handler,
            fn=lw.expr_block(test, stmt),
            true=true,
            false=false,
            source=ast.unparse(test),
        )
    )
    return lw.block(pre, branch, ctx)


# while_stmt: 'while' expr ':' block ['else' ':' block]
@register(ast.While)
def lower_while(lw: FunctionLowerer, stmt: ast.While, next_id: int, ctx: Ctx) -> int:
    after_else = lw.block(stmt.orelse, next_id, ctx)
    branch_id = lw.reserve()
    pre, test = lw.hoister.expr(stmt.test)
    head = lw.block(pre, branch_id, ctx)
    loop = Loop(break_to=next_id, continue_to=head, depth=len(ctx.finally_stack))
    body = lw.block(stmt.body, head, replace(ctx, loop=loop))
    lw.emit(
        Branch(
            id=branch_id,
            line=stmt.lineno,
            label=f"while {_label(test)}",
            handler=ctx.handler,
            fn=lw.expr_block(test, stmt),
            true=body,
            false=after_else,
            source=ast.unparse(test),
        )
    )
    return head


# for_stmt: 'for' targets 'in' expr ':' block ['else' ':' block]
@register(ast.For)
def lower_for(lw: FunctionLowerer, stmt: ast.For, next_id: int, ctx: Ctx) -> int:
    seq, index = lw.fresh("seq"), lw.fresh("i")
    after_else = lw.block(stmt.orelse, next_id, ctx)
    head = lw.reserve()
    loop = Loop(break_to=next_id, continue_to=head, depth=len(ctx.finally_stack))
    item = ast.Subscript(value=name(seq), slice=name(index), ctx=ast.Load())
    take = ast.copy_location(ast.Assign(targets=[stmt.target], value=item), stmt)
    take.rx_label = f"{_label(stmt.target)} = next item of {_label(stmt.iter)}"  # type: ignore[attr-defined]
    bind: list[ast.stmt] = [
        take,
        assign(index, ast.BinOp(left=name(index), op=ast.Add(), right=ast.Constant(1)), stmt),
    ]
    body = lw.block([*bind, *stmt.body], head, replace(ctx, loop=loop))
    condition = ast.Compare(
        left=name(index),
        ops=[ast.Lt()],
        comparators=[ast.Call(func=name("len"), args=[name(seq)], keywords=[])],
    )
    ast.copy_location(condition, stmt)
    lw.emit(
        Branch(
            id=head,
            line=stmt.lineno,
            label=f"for {_label(stmt.target)} in {_label(stmt.iter)}",
            handler=ctx.handler,
            fn=lw.blocks.expression(condition, stmt, lw.locals_),
            true=body,
            false=after_else,
            source=ast.unparse(condition),
        )
    )
    pre, iterable = lw.hoister.expr(stmt.iter)
    start = ast.Call(func=name("_rx_seq"), args=[iterable], keywords=[])
    init = [assign(seq, start, stmt.iter), assign(index, ast.Constant(0), stmt)]
    lw.check_inline(iterable)
    fn = lw.blocks.statements(init, stmt, lw.locals_)
    init_id = lw.emit(
        Exec(
            id=lw.reserve(),
            line=stmt.lineno,
            label=f"iter({_label(stmt.iter)})",
            handler=ctx.handler,
            fn=fn,
            next=head,
            source=ast.unparse(stmt.iter),
        )
    )
    return lw.block(pre, init_id, ctx)


# try_stmt: 'try' ':' block except_block* ['else' ':' block] ['finally' ':' block]
@register(ast.Try)
def lower_try(lw: FunctionLowerer, stmt: ast.Try, next_id: int, ctx: Ctx) -> int:
    cont, inner = next_id, ctx
    if stmt.finalbody:
        pending, caught = lw.fresh("f"), lw.fresh("x")
        anchor = stmt.finalbody[0]
        exit_id = lw.emit(
            FinallyExit(
                id=lw.reserve(),
                line=_line(stmt.finalbody[-1]),
                label="end of finally",
                handler=ctx.handler,
                var=pending,
                outer=ctx.finally_stack,
                next=next_id,
            )
        )
        # Inside the finally body, the pending completion supplies __context__ when the
        # body was entered by an exception.
        outer_context, lw.context = lw.context, pending
        entry = lw.block(stmt.finalbody, exit_id, replace(ctx, fin_var=pending))
        lw.context = outer_context
        cont = lw.code(f"{pending} = None", anchor, entry, ctx, "into finally")
        land = lw.code(f"{pending} = ('x', {caught})", anchor, entry, ctx,
                       "into finally, exception pending")  # fmt: skip
        catch = lw.emit(
            Catch(
                id=lw.reserve(),
                line=stmt.lineno,
                label="finally",
                handler=ctx.handler,
                var=caught,
                next=land,
            )
        )
        inner = replace(ctx, handler=catch, finally_stack=(*ctx.finally_stack, (pending, entry)))
    body_ctx = inner
    if stmt.handlers:
        body_ctx = replace(inner, handler=_lower_handlers(lw, stmt, cont, inner))
    else_entry = lw.block(stmt.orelse, cont, inner)
    return lw.block(stmt.body, else_entry, body_ctx)


def _lower_handlers(lw: FunctionLowerer, stmt: ast.Try, cont: int, inner: Ctx) -> int:
    caught = lw.fresh("e")
    unmatched = "no except matched: raise"
    dispatch = lw.code(f"raise {caught}", stmt.handlers[-1], cont, inner, unmatched)
    for handler in reversed(stmt.handlers):
        cleanup = f"{handler.name} = None\ndel {handler.name}\n" if handler.name else ""
        clause = f"except {_label(handler.type)}" if handler.type else "except"
        end = lw.code(f"{cleanup}{caught} = None", handler, cont, inner, f"end of {clause}")
        outer_context, lw.context = lw.context, caught
        entry = lw.block(handler.body, end, replace(inner, exc_var=caught, fin_var=None))
        lw.context = outer_context
        if handler.name:
            entry = lw.code(
                f"{handler.name} = {caught}", handler, entry, inner, f"{clause} as {handler.name}"
            )
        if handler.type is None:
            dispatch = entry
            continue
        if contains_await(handler.type):
            continue  # rejected by _checks.py
        test = ast.Call(func=name("isinstance"), args=[name(caught), handler.type], keywords=[])
        ast.copy_location(test, handler.type)
        dispatch = lw.emit(
            Branch(
                id=lw.reserve(),
                line=handler.lineno,
                label=f"except {_label(handler.type)}",
                handler=inner.handler,
                fn=lw.expr_block(test, handler),
                true=entry,
                false=dispatch,
                source=ast.unparse(handler.type),
            )
        )
    return lw.emit(
        Catch(
            id=lw.reserve(),
            line=stmt.lineno,
            label="except",
            handler=inner.handler,
            var=caught,
            next=dispatch,
        )
    )
