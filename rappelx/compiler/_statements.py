"""How each kind of statement is lowered (registered with :func:`~._lower.register`).

Each handler gets the statement, the id of the node that runs after it and the context
(enclosing handler, loop, finally blocks), and returns the id of its own entry node.
The grammar line of each construct is the comment above its handler.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from rappelx.compiler import _diagnostics as diag
from rappelx.compiler._hoist import Hoister, Slot, assign, name
from rappelx.compiler._ir import Branch, Catch, Exec, FinallyExit, Jump, Return
from rappelx.compiler._labels import label_of
from rappelx.compiler._lower import (
    Ctx,
    FunctionLowerer,
    Loop,
    first_line,
    register,
    rewrite_bare_raise,
)
from rappelx.compiler._symbols import contains_await


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
        rewrite_bare_raise(stmt, ctx)
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
            label=label_of(stmt),
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
            label=label_of(stmt),
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
            label=f"if {label_of(test)}",
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
            label=f"while {label_of(test)}",
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
    take.rx_label = f"{label_of(stmt.target)} = next item of {label_of(stmt.iter)}"  # type: ignore[attr-defined]
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
            label=f"for {label_of(stmt.target)} in {label_of(stmt.iter)}",
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
            label=f"iter({label_of(stmt.iter)})",
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
                line=first_line(stmt.finalbody[-1]),
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
        clause = f"except {label_of(handler.type)}" if handler.type else "except"
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
                label=f"except {label_of(handler.type)}",
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
