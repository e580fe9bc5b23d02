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

from rappelx.compiler._symbols import bound_names, names_used

SCOPE = "_rx_s"
RUNTIME_HELPERS = ("_rx_act", "_rx_with", "_rx_helper", "_rx_seq", "_rx_sleep")


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
        stores = sorted(bound_names(body) & locals_)
        inner: list[ast.stmt] = list(body) or [ast.Pass()]
        if stores:
            inner = [ast.Try(body=inner, handlers=[], orelse=[], finalbody=_store(stores))]
        return self._add(body, inner, anchor, locals_)

    def expression(self, expr: ast.expr, anchor: ast.AST, locals_: set[str]) -> BlockRef:
        """A block returning the value of ``expr`` (walrus targets are written back)."""
        stores = sorted(bound_names([expr]) & locals_)
        inner: list[ast.stmt] = [ast.Return(value=expr)]
        if stores:
            inner = [ast.Try(body=inner, handlers=[], orelse=[], finalbody=_store(stores))]
        return self._add([expr], inner, anchor, locals_)

    def _add(
        self,
        source: Sequence[ast.AST],
        inner: list[ast.stmt],
        anchor: ast.AST,
        locals_: set[str],
    ) -> BlockRef:
        loads = sorted(names_used(source) & locals_)
        fn = ast.FunctionDef(
            name=f"_rx_b{len(self.defs)}",
            args=ast.arguments(
                posonlyargs=[],
                args=[ast.arg(arg=SCOPE)],
                kwonlyargs=[],
                kw_defaults=[],
                defaults=[],
            ),
            body=[*_load(loads), *inner],
            decorator_list=[],
            returns=None,
        )
        _no_type_params(fn)
        _locate(fn, anchor)
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
        _locate(factory, self.defs[0] if self.defs else None)
        ast.fix_missing_locations(module)
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


def _load(names: Sequence[str]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for name in names:
        out.append(
            ast.Try(
                body=[ast.Assign(targets=[_name(name, ast.Store())], value=_item(name))],
                handlers=[
                    ast.ExceptHandler(
                        type=ast.Name(id="KeyError", ctx=ast.Load()), name=None, body=[ast.Pass()]
                    )
                ],
                orelse=[],
                finalbody=[],
            )
        )
    return out


def _store(names: Sequence[str]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for name in names:
        target = ast.Subscript(
            value=ast.Name(id=SCOPE, ctx=ast.Load()), slice=ast.Constant(name), ctx=ast.Store()
        )
        pop = ast.Expr(
            value=ast.Call(
                func=ast.Attribute(
                    value=ast.Name(id=SCOPE, ctx=ast.Load()), attr="pop", ctx=ast.Load()
                ),
                args=[ast.Constant(name), ast.Constant(None)],
                keywords=[],
            )
        )
        out.append(
            ast.Try(
                body=[ast.Assign(targets=[target], value=_name(name, ast.Load()))],
                handlers=[
                    ast.ExceptHandler(
                        type=ast.Name(id="NameError", ctx=ast.Load()), name=None, body=[pop]
                    )
                ],
                orelse=[],
                finalbody=[],
            )
        )
    return out


def _name(name: str, ctx: ast.expr_context) -> ast.Name:
    return ast.Name(id=name, ctx=ctx)


def _item(name: str) -> ast.Subscript:
    return ast.Subscript(
        value=ast.Name(id=SCOPE, ctx=ast.Load()), slice=ast.Constant(name), ctx=ast.Load()
    )


def _locate(node: ast.AST, anchor: ast.AST | None) -> None:
    """Give generated nodes the anchor's position; user nodes keep their own."""
    lineno = getattr(anchor, "lineno", 1) or 1
    col = getattr(anchor, "col_offset", 0) or 0
    for sub in ast.walk(node):
        if "lineno" in sub._attributes and not hasattr(sub, "lineno"):
            sub.lineno = lineno  # type: ignore[attr-defined]
            sub.col_offset = col  # type: ignore[attr-defined]
            sub.end_lineno = lineno  # type: ignore[attr-defined]
            sub.end_col_offset = col  # type: ignore[attr-defined]
