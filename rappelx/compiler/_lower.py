"""Lower one workflow function's statements into IR nodes.

Statements are lowered back to front: each handler receives the id of the node that
runs after it and returns the id of its own entry, so every node is created with its
successors known. Runs of statements that do not await (and do not ``return``,
``break`` or ``continue`` out of themselves) become one inline node that runs them as
ordinary Python — exception handling, loops and all.

This module holds the lowerer and its context; the handler of each statement kind is in
:mod:`._statements`, and node labels for drawings come from :mod:`._labels`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rappelx.compiler import _diagnostics as diag
from rappelx.compiler._codegen import BlockCompiler, BlockRef
from rappelx.compiler._hoist import Hoister, name
from rappelx.compiler._ir import Await, Exec, FinallyStack, Node
from rappelx.compiler._labels import label_of, unhoisted
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
        label = unhoisted(node.label, self.shown)
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
                line=first_line(anchor),
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
                rewrite_bare_raise(stmt, ctx)
        for stmt in stmts:
            self.check_inline(stmt)
        fn = self.blocks.statements(stmts, stmts[0], self.locals_)
        source = "\n".join(ast.unparse(s) for s in stmts)
        return self.emit(
            Exec(
                id=self.reserve(),
                line=stmts[0].lineno,
                label=label_of(stmts[0]),
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
                label=label_of(call),
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


def first_line(node: ast.AST) -> int:
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


def rewrite_bare_raise(stmt: ast.stmt, ctx: Ctx) -> None:
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
