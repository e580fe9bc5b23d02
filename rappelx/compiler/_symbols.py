"""Which names a workflow function binds, and which a piece of code reads or writes."""

from __future__ import annotations

import ast
from collections.abc import Iterable

_NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Binder(ast.NodeVisitor):
    """Collect names bound in the current scope (Python's rules, walrus included)."""

    def __init__(self) -> None:
        self.bound: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.bound.add(node.id)

    def _bind_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.bound.add(node.name)
        for deco in node.decorator_list:
            self.visit(deco)
        if isinstance(node, ast.ClassDef):
            for base in [*node.bases, *(k.value for k in node.keywords)]:
                self.visit(base)
        else:
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    self.visit(default)

    visit_FunctionDef = _bind_def
    visit_AsyncFunctionDef = _bind_def
    visit_ClassDef = _bind_def

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)

    def _comprehension(self, node: ast.AST) -> None:
        # Only walrus targets leak out of a comprehension; iteration variables do not.
        for sub in ast.walk(node):
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                self.bound.add(sub.target.id)
        generators = getattr(node, "generators", [])
        if generators:
            self.visit(generators[0].iter)

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> None:
        if node.name != "*":
            self.bound.add((node.asname or node.name).split(".")[0])

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.bound.add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.bound.add(node.rest)
        self.generic_visit(node)


def bound_names(nodes: Iterable[ast.AST]) -> set[str]:
    """Names that ``nodes`` bind (assign, delete, import, def...) in their own scope."""
    binder = _Binder()
    for node in nodes:
        binder.visit(node)
    return binder.bound


def parameter_names(args: ast.arguments) -> list[str]:
    """Parameter names in signature order."""
    names = [a.arg for a in [*args.posonlyargs, *args.args]]
    if args.vararg:
        names.append(args.vararg.arg)
    names.extend(a.arg for a in args.kwonlyargs)
    if args.kwarg:
        names.append(args.kwarg.arg)
    return names


def function_locals(fn: ast.AsyncFunctionDef) -> set[str]:
    """Every local variable of ``fn``: its parameters and every name it binds."""
    return set(parameter_names(fn.args)) | bound_names(fn.body)


def names_used(nodes: Iterable[ast.AST]) -> set[str]:
    """Every identifier that appears as a name anywhere inside ``nodes``."""
    used: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                used.add(sub.id)
    return used


def contains_await(node: ast.AST) -> bool:
    """Whether ``node`` awaits in the current function (nested defs do not count)."""
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Await):
            return True
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, _NESTED_SCOPES):
                stack.append(child)
    return False


def walk_scope(node: ast.AST) -> Iterable[ast.AST]:
    """Walk ``node`` without descending into nested functions, lambdas or classes."""
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, _NESTED_SCOPES):
                stack.append(child)
