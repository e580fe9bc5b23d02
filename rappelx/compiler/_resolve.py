"""Decide, at compile time, what an awaited call is.

A workflow may await an ``@action`` call, ``self.run_action(...)``, ``asyncio.gather``,
``asyncio.sleep`` and its own async helper methods. Callees are resolved against the
module's globals at decoration time; a name not defined yet (an action defined further
down the module) is resolved again when the step runs.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import types
from dataclasses import dataclass
from typing import Any

from rappelx._action import ActionDef

UNKNOWN: Any = object()  # a local variable or an expression we cannot evaluate statically
MISSING: Any = object()  # a global name that does not exist (yet)


@dataclass(frozen=True, slots=True)
class Env:
    """What resolution needs to know about the function being compiled."""

    module_globals: dict[str, Any]
    locals_: frozenset[str]
    self_name: str | None
    helpers: frozenset[str]  # async methods of the workflow class
    sync_methods: frozenset[str]


def static_value(expr: ast.expr, env: Env) -> Any:
    """The object ``expr`` names (a global or a module attribute), or UNKNOWN/MISSING."""
    if isinstance(expr, ast.Name):
        if expr.id in env.locals_:
            return UNKNOWN
        if expr.id in env.module_globals:
            return env.module_globals[expr.id]
        return getattr(builtins, expr.id, MISSING)
    if isinstance(expr, ast.Attribute):
        base = static_value(expr.value, env)
        if isinstance(base, types.ModuleType | type):
            return getattr(base, expr.attr, MISSING)
        return UNKNOWN
    return UNKNOWN


def self_method(expr: ast.expr, env: Env) -> str | None:
    """``name`` when ``expr`` is ``self.name``."""
    if (
        env.self_name is not None
        and isinstance(expr, ast.Attribute)
        and isinstance(expr.value, ast.Name)
        and expr.value.id == env.self_name
    ):
        return expr.attr
    return None


@dataclass(frozen=True, slots=True)
class Callee:
    """What a call's function position refers to."""

    kind: str  # action | run_action | gather | sleep | helper | other | missing
    name: str = ""


def classify(call: ast.Call, env: Env) -> Callee:
    """Classify the function position of ``call``."""
    method = self_method(call.func, env)
    if method is not None:
        if method == "run_action":
            return Callee("run_action")
        if method in env.helpers:
            return Callee("helper", method)
        return Callee("other", f"self.{method}")
    value = static_value(call.func, env)
    if isinstance(value, ActionDef):
        return Callee("action", value.name)
    if value is asyncio.gather:
        return Callee("gather")
    if value is asyncio.sleep:
        return Callee("sleep")
    if value is MISSING and isinstance(call.func, ast.Name):
        return Callee("missing", call.func.id)
    return Callee("other", ast.unparse(call.func))
