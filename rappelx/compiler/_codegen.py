"""Turn inline statements and expressions into Python functions over a scope dict.

Every piece of inline code becomes a real Python function compiled from the user's own
AST nodes (so tracebacks point at the user's file and line), e.g. for ``y = x + 1``::

    def _rx_b3(_rx_s):
        try: x = _rx_s["x"]
        except KeyError: pass
        try:
            y = x + 1
        finally:
            try: _rx_s["y"] = y
            except NameError: _rx_s.pop("y", None)

Loading the workflow's variables into real locals keeps closures, comprehensions and
``UnboundLocalError`` exactly as in Python. All blocks of one workflow are compiled in one
``compile()`` call, inside a factory function whose parameters give them the runtime
helpers without touching the user's module globals.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rappelx.compiler._symbols import bound_names

SCOPE = "_rx_s"
RUNTIME_HELPERS = ("_rx_act", "_rx_with", "_rx_helper", "_rx_seq", "_rx_sleep", "_rx_reraise")


@dataclass(frozen=True, slots=True)
class BlockRef:
    """Placeholder for a block function until the whole workflow is compiled."""

    index: int

    def __call__(self, scope: dict[str, Any]) -> Any:
        raise RuntimeError("internal error: a block ran before the workflow was compiled")


@dataclass(slots=True)
class BlockCompiler:
    """Accumulates blocks for one workflow and compiles them together."""

    filename: str
    defs: list[ast.FunctionDef] = field(default_factory=list)

    def statements(self, body: Sequence[ast.stmt], anchor: ast.AST, locals_: set[str]) -> BlockRef:
        """A block running ``body``; variables it binds are written back, even on raise."""
        loc = _loc(anchor)
        stores = sorted(bound_names(body) & locals_)
        inner: list[ast.stmt] = list(body) or [ast.Pass(**loc)]
        if stores:
            final = _store(stores, loc)
            inner = [ast.Try(body=inner, handlers=[], orelse=[], finalbody=final, **loc)]
        return self._add(body, inner, loc, locals_)

    def expression(self, expr: ast.expr, anchor: ast.AST, locals_: set[str]) -> BlockRef:
        """A block returning the value of ``expr`` (walrus targets are written back)."""
        loc = _loc(anchor)
        stores = sorted(bound_names([expr]) & locals_)
        inner: list[ast.stmt] = [ast.Return(value=expr, **loc)]
        if stores:
            final = _store(stores, loc)
            inner = [ast.Try(body=inner, handlers=[], orelse=[], finalbody=final, **loc)]
        return self._add([expr], inner, loc, locals_)

    def _add(
        self,
        source: Sequence[ast.AST],
        inner: list[ast.stmt],
        loc: Loc,
        locals_: set[str],
    ) -> BlockRef:
        loads = sorted(_names_and_locations(source, loc) & locals_)
        fn = ast.FunctionDef(
            name=f"_rx_b{len(self.defs)}",
            args=ast.arguments(
                posonlyargs=[],
                args=[ast.arg(arg=SCOPE, **loc)],
                kwonlyargs=[],
                kw_defaults=[],
                defaults=[],
            ),
            body=[*_load(loads, loc), *inner],
            decorator_list=[],
            returns=None,
            **loc,
        )
        _no_type_params(fn)
        self.defs.append(fn)
        return BlockRef(len(self.defs) - 1)

    def compile(
        self, module_globals: dict[str, Any], helpers: dict[str, Any]
    ) -> list[Callable[..., Any]]:
        """Compile every block; return the functions in the order they were added."""
        names = [ast.Name(id=d.name, ctx=ast.Load()) for d in self.defs]
        factory = ast.FunctionDef(
            name="_rx_factory",
            args=ast.arguments(
                posonlyargs=[],
                args=[ast.arg(arg=h) for h in RUNTIME_HELPERS],
                kwonlyargs=[],
                kw_defaults=[],
                defaults=[],
            ),
            body=[*self.defs, ast.Return(value=ast.List(elts=list(names), ctx=ast.Load()))],
            decorator_list=[],
            returns=None,
        )
        _no_type_params(factory)
        module = ast.Module(body=[factory], type_ignores=[])
        _locate(factory, self.defs[0] if self.defs else None, stop={id(d) for d in self.defs})
        code = compile(module, self.filename, "exec", dont_inherit=True)
        namespace: dict[str, Any] = {}
        exec(code, module_globals, namespace)
        made: list[Callable[..., Any]] = namespace["_rx_factory"](
            *(helpers[h] for h in RUNTIME_HELPERS)
        )
        return made


def _no_type_params(fn: ast.FunctionDef) -> None:
    if sys.version_info >= (3, 12):
        fn.type_params = []


Loc = dict[str, Any]


def _loc(anchor: ast.AST | None) -> Loc:
    lineno = getattr(anchor, "lineno", 1) or 1
    col = getattr(anchor, "col_offset", 0) or 0
    return {"lineno": lineno, "col_offset": col, "end_lineno": lineno, "end_col_offset": col}


def _load(names: Sequence[str], loc: Loc) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for name in names:
        item = ast.Subscript(
            value=ast.Name(id=SCOPE, ctx=ast.Load(), **loc),
            slice=ast.Constant(name, **loc),
            ctx=ast.Load(),
            **loc,
        )
        assign = ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store(), **loc)], value=item, **loc)
        missing = ast.ExceptHandler(
            type=ast.Name(id="KeyError", ctx=ast.Load(), **loc),
            name=None,
            body=[ast.Pass(**loc)],
            **loc,
        )
        out.append(ast.Try(body=[assign], handlers=[missing], orelse=[], finalbody=[], **loc))
    return out


def _store(names: Sequence[str], loc: Loc) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for name in names:
        target = ast.Subscript(
            value=ast.Name(id=SCOPE, ctx=ast.Load(), **loc),
            slice=ast.Constant(name, **loc),
            ctx=ast.Store(),
            **loc,
        )
        pop = ast.Expr(
            value=ast.Call(
                func=ast.Attribute(
                    value=ast.Name(id=SCOPE, ctx=ast.Load(), **loc),
                    attr="pop",
                    ctx=ast.Load(),
                    **loc,
                ),
                args=[ast.Constant(name, **loc), ast.Constant(None, **loc)],
                keywords=[],
                **loc,
            ),
            **loc,
        )
        write = ast.Assign(targets=[target], value=ast.Name(id=name, ctx=ast.Load(), **loc), **loc)
        unbound = ast.ExceptHandler(
            type=ast.Name(id="NameError", ctx=ast.Load(), **loc), name=None, body=[pop], **loc
        )
        out.append(ast.Try(body=[write], handlers=[unbound], orelse=[], finalbody=[], **loc))
    return out


def _locate(node: ast.AST, anchor: ast.AST | None, stop: set[int]) -> None:
    """Give rappelx's generated nodes the anchor's position (user nodes in ``stop`` and
    below them are already located)."""
    lineno = getattr(anchor, "lineno", 1) or 1
    col = getattr(anchor, "col_offset", 0) or 0
    stack = [node]
    while stack:
        sub = stack.pop()
        if "lineno" in sub._attributes and not hasattr(sub, "lineno"):
            sub.lineno = lineno  # type: ignore[attr-defined]
            sub.col_offset = col  # type: ignore[attr-defined]
            sub.end_lineno = lineno  # type: ignore[attr-defined]
            sub.end_col_offset = col  # type: ignore[attr-defined]
        stack.extend(c for c in ast.iter_child_nodes(sub) if id(c) not in stop)


def _names_and_locations(nodes: Sequence[ast.AST], loc: Loc) -> set[str]:
    """Every name used in ``nodes``; nodes the hoister made get their parent's position."""
    names: set[str] = set()
    root = (loc["lineno"], loc["col_offset"])
    stack: list[tuple[ast.AST, tuple[int, int]]] = [(n, root) for n in nodes]
    while stack:
        node, (lineno, col) = stack.pop()
        if isinstance(node, ast.Name):
            names.add(node.id)
        if "lineno" in node._attributes:
            if hasattr(node, "lineno"):
                lineno, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
            else:
                node.lineno = lineno  # type: ignore[attr-defined]
                node.col_offset = col  # type: ignore[attr-defined]
                node.end_lineno = lineno  # type: ignore[attr-defined]
                node.end_col_offset = col  # type: ignore[attr-defined]
        for child in ast.iter_child_nodes(node):
            stack.append((child, (lineno, col)))
    return names
