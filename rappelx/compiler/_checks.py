"""Reject what a workflow cannot run durably, before lowering starts."""

from __future__ import annotations

import ast
from collections.abc import Callable

from rappelx.compiler import _diagnostics as diag
from rappelx.compiler._symbols import contains_await, walk_scope

_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
Report = Callable[..., None]


def check_function(fn: ast.AsyncFunctionDef, report: Report) -> None:
    """Report every unsupported construct in ``fn``'s own scope (RX102-RX115)."""
    for arg in ast.walk(fn.args):
        if isinstance(arg, ast.arg) and arg.arg.startswith("_rx_"):
            report(arg, diag.RESERVED_NAME, name=arg.arg)
    for stmt in fn.body:
        for node in walk_scope(stmt):
            _check_node(node, report)
        for node in _outermost_nested(stmt):
            if _awaits_inside(node):
                kind = {ast.Lambda: "lambda", ast.ClassDef: "class"}.get(type(node), "function")
                report(node, diag.NESTED_AWAIT, kind=kind)


def _outermost_nested(stmt: ast.stmt) -> list[ast.AST]:
    """Nested functions, lambdas and classes in ``stmt``, not those nested in them."""
    if isinstance(stmt, _NESTED):
        return [stmt]
    found: list[ast.AST] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, _NESTED) and node is not stmt:
            found.append(node)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _awaits_inside(node: ast.AST) -> bool:
    body = node.body if isinstance(node.body, list) else [node.body]  # type: ignore[attr-defined]
    return any(isinstance(sub, ast.Await) for part in body for sub in ast.walk(part))


def _check_node(node: ast.AST, report: Report) -> None:
    if isinstance(node, ast.AsyncWith):
        report(node, diag.ASYNC_WITH)
    elif isinstance(node, ast.AsyncFor):
        report(node, diag.ASYNC_FOR)
    elif isinstance(node, ast.comprehension) and node.is_async:
        report(node.target, diag.ASYNC_FOR)
    elif isinstance(node, ast.Yield | ast.YieldFrom):
        report(node, diag.YIELD, kind="yield" if isinstance(node, ast.Yield) else "yield from")
    elif isinstance(node, ast.Global | ast.Nonlocal):
        report(node, diag.SCOPE_DECL, kind=type(node).__name__.lower())
    elif isinstance(node, ast.With) and any(contains_await(s) for s in node.body):
        report(node, diag.WITH_AWAIT)
    elif isinstance(node, ast.With) and any(contains_await(i.context_expr) for i in node.items):
        report(node, diag.WITH_AWAIT)
    elif isinstance(node, ast.Match) and contains_await(node):
        report(node, diag.MATCH_AWAIT)
    elif isinstance(node, ast.TryStar):
        report(node, diag.TRY_STAR)
    elif isinstance(node, ast.Name) and node.id.startswith("_rx_"):
        report(node, diag.RESERVED_NAME, name=node.id)
    elif (
        isinstance(node, ast.ExceptHandler) and node.type is not None and contains_await(node.type)
    ):
        report(
            node.type,
            diag.UNSUPPORTED,
            what="an await in an except clause's type",
            hint="; await into a variable before the try",
        )
