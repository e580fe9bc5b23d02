"""Which of a function's lists only ever grow at the end: they can be persisted as logs.

A step persists an instance's whole state, so a list that a loop appends to costs more
to write at every step as it grows. A list that nothing can touch but ``append`` need
not be rewritten: the store keeps the items already written and adds the new ones.
This module finds such lists, from the lowered nodes' sources (the code that runs, with
awaits already hoisted into temporaries). A local qualifies when, in its function, the
name is only ever

* bound to a fresh empty list: ``name = []`` (or ``name: T = []``),
* appended to: ``name.append(X)`` as a statement, where X does not mention ``name``,
* measured: ``len(name)``, where ``len`` is the builtin,
* used in a ``return`` outside any ``try/finally``, in any way: the frame ends there,
  before anything is persisted (inside a ``try/finally``, a pending return holds the
  list while the finally body may still run, suspend and append to it).

Anything else (a subscript, iteration, passing it anywhere, a parameter of that name,
``locals()``) leaves the list to be written whole, as before. So while the frame lives,
the list is reachable from no other name, and no code but ``append`` changes it.

That is not yet enough for its items: ``r = await f(); out.append(r)`` leaves ``r``
bound to the item, and a later ``r["k"] = 1`` changes it after it was logged. So for
each log list this also says whether every append's argument is *fresh*: the hoisted
temporary of an awaited action (a value just decoded from the worker's result, read by
nothing but this append). The runtime logs the items of other lists only when they are
immutable (None, bool, int, float, str, bytes, and tuples and frozensets of those).
"""

from __future__ import annotations

import ast
import builtins
from collections import Counter
from collections.abc import Iterator, Mapping

from rappelx.compiler._ir import Await, Branch, Catch, Exec, FinallyExit, Function, Return
from rappelx.compiler._symbols import _COMPREHENSIONS, _NESTED_SCOPES, bound_names

#: Calls that can reach a function's variables without naming them.
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "globals", "dir"})
#: Code that has a scope of its own (a name inside may be another variable, or a closure).
_OWN_SCOPES = (*_NESTED_SCOPES, *_COMPREHENSIONS)
#: The compiler's own temporaries (hoisted awaits).
_TEMP_PREFIX = "_rx_t"


def log_lists(function: Function) -> Mapping[str, bool]:
    """The locals of ``function`` that can be persisted as logs, each with its freshness.

    ``True``: every item appended is a fresh action result (log any item); ``False``:
    log only immutable items.
    """
    sources: list[tuple[object, ast.AST]] = []
    for node in function.nodes.values():
        tree = _parsed(node)
        if tree is not None:
            sources.append((node, tree))
    names_used = Counter(
        n.id for _, tree in sources for n in ast.walk(tree) if isinstance(n, ast.Name)
    )
    if _INTROSPECTION.intersection(names_used):
        return {}
    nested = {
        n.id
        for _, tree in sources
        for scope in ast.walk(tree)
        if isinstance(scope, _OWN_SCOPES)
        for n in ast.walk(scope)
        if isinstance(n, ast.Name)
    }
    candidates = {
        t.id
        for _, tree in sources
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.Assign | ast.AnnAssign)
        for t in _targets(stmt)
        if isinstance(t, ast.Name) and _is_empty_list(stmt.value)
    }
    candidates -= set(function.params) | nested
    for node in function.nodes.values():
        for bound in _bound_by(node):
            candidates.discard(bound)
    if not candidates:
        return {}
    len_is_builtin = _len_is_builtin(function, sources)
    fresh_temps = {
        node.target
        for node in function.nodes.values()
        if isinstance(node, Await) and node.what == "action" and node.target is not None
        and node.target.startswith(_TEMP_PREFIX)
    }  # fmt: skip
    result: dict[str, bool] = {}
    for name in sorted(candidates):
        fresh = _uses(name, sources, fresh_temps, names_used, len_is_builtin)
        if fresh is not None:
            result[name] = fresh
    return result


def _len_is_builtin(function: Function, sources: list[tuple[object, ast.AST]]) -> bool:
    """Whether ``len`` in this function's code is the builtin (not rebound anywhere)."""
    if "len" in function.params or "len" in bound_names(tree for _, tree in sources):
        return False
    for node in function.nodes.values():
        fn = getattr(node, "fn", None)
        namespace = getattr(fn, "__globals__", None)
        if namespace is not None and namespace.get("len", builtins.len) is not builtins.len:
            return False
    return True


def _parsed(node: object) -> ast.AST | None:
    source = getattr(node, "source", None)
    if not isinstance(node, Exec | Branch | Await | Return) or not source:
        return None
    mode = "eval" if isinstance(node, Branch | Await) else "exec"
    return ast.parse(source, mode=mode)


def _bound_by(node: object) -> Iterator[str]:
    """Names a node binds without code of its own: an await's target, an except's name."""
    if isinstance(node, Await) and node.target is not None:
        yield node.target
    if isinstance(node, Catch | FinallyExit):
        yield node.var
    context = getattr(node, "context", None)
    if context is not None:
        yield context


def _targets(stmt: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]


def _is_empty_list(value: ast.expr | None) -> bool:
    return isinstance(value, ast.List) and not value.elts


def _uses(
    name: str,
    sources: list[tuple[object, ast.AST]],
    fresh_temps: set[str],
    names_used: Counter[str],
    len_is_builtin: bool,
) -> bool | None:
    """None if ``name`` is used in a way that disqualifies it; else whether appends are fresh.

    Every occurrence of the name must be accounted for by an allowed form; the forms are
    counted and compared with all occurrences, so one that is missed disqualifies.
    """
    allowed = 0
    fresh = True
    for node, tree in sources:
        if isinstance(node, Return):
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree)):
                if node.finally_stack:
                    return None
                allowed += sum(
                    1 for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name
                )
            continue
        for stmt in ast.walk(tree):
            if _is_len(stmt, name):
                if not len_is_builtin:
                    return None
                allowed += 1
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = _targets(stmt)
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    if len(targets) != 1 or not _is_empty_list(stmt.value):
                        return None
                    allowed += 1
            elif isinstance(stmt, ast.Expr) and _is_append(stmt.value, name):
                assert isinstance(stmt.value, ast.Call)
                arg = stmt.value.args[0]
                if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(arg)):
                    return None
                allowed += 1
                if not (
                    isinstance(arg, ast.Name)
                    and arg.id in fresh_temps
                    and names_used[arg.id] == 1  # read by this append alone
                ):
                    fresh = False
    return fresh if allowed == names_used[name] else None


def _is_len(expr: ast.AST, name: str) -> bool:
    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and expr.func.id == "len"
        and len(expr.args) == 1
        and not expr.keywords
        and isinstance(expr.args[0], ast.Name)
        and expr.args[0].id == name
    )


def _is_append(expr: ast.expr, name: str) -> bool:
    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "append"
        and isinstance(expr.func.value, ast.Name)
        and expr.func.value.id == name
        and len(expr.args) == 1
        and not expr.keywords
        and not isinstance(expr.args[0], ast.Starred)
    )
