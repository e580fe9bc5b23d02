"""Resolve ``MODULE:Class`` arguments the way a user means them."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from rappelx._workflow import WorkflowDef, registered_workflows
from rappelx.cli._errors import CliError
from rappelx.exceptions import CompileError

__all__ = ["import_module", "load_workflow"]


def load_workflow(spec: str) -> WorkflowDef:
    """The compiled workflow named by ``spec`` (``package.module:ClassName``).

    The current directory is put on ``sys.path`` first, as ``python -m`` would.

    Raises:
        CliError: ``spec`` is malformed, the module cannot be imported (its cause is
            chained), it has no such class, or the class is not a ``@workflow``.
    """
    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name:
        raise CliError(
            f"expected MODULE:Class, got {spec!r}; for example my_app.workflows:Greeting"
        )
    module = import_module(module_name)
    found = getattr(module, class_name, None)
    if found is None:
        raise CliError(
            f"module {module.__name__!r} has no attribute {class_name!r}; {_workflows_in(module)}"
        )
    wf = found.__dict__.get("__rappelx__") if isinstance(found, type) else None
    if not isinstance(wf, WorkflowDef):
        raise CliError(
            f"{module.__name__}:{class_name} is not a workflow; decorate a Workflow "
            f"subclass with @workflow ({_workflows_in(module)})"
        )
    return wf


def import_module(name: str) -> ModuleType:
    """Import ``name`` (a dotted module name, or a ``.py`` path under the current
    directory) with the current directory on ``sys.path``.

    Raises:
        CliError: The module does not exist or raised while importing (chained).
    """
    dotted = _dotted(name)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(dotted)
    except CompileError as exc:
        raise CliError(
            f"module {dotted!r} defines a workflow rappelx cannot compile; "
            "fix the construct named below"
        ) from exc
    except ModuleNotFoundError as exc:
        if exc.name is not None and (dotted == exc.name or dotted.startswith(exc.name + ".")):
            raise CliError(
                f"no module named {dotted!r} (looked in the current directory {cwd} and "
                "on sys.path); pass a dotted module name such as my_app.workflows, from "
                "the directory that contains my_app"
            ) from exc
        raise CliError(f"importing module {dotted!r} failed") from exc
    except Exception as exc:
        # Any exception at import time is the user's module failing, not a CLI bug.
        raise CliError(f"importing module {dotted!r} failed") from exc


def _dotted(name: str) -> str:
    if not name.endswith(".py"):
        return name
    path = Path(name).resolve()
    try:
        relative = path.with_suffix("").relative_to(Path.cwd())
    except ValueError:
        raise CliError(
            f"{name} is outside the current directory; run rappelx from the directory "
            "that contains it, or pass a dotted module name"
        ) from None
    return ".".join(relative.parts)


def _workflows_in(module: ModuleType) -> str:
    names = sorted(
        attr
        for attr, value in vars(module).items()
        if isinstance(value, type)
        and isinstance(value.__dict__.get("__rappelx__"), WorkflowDef)
        and value.__module__ == module.__name__
    )
    if names:
        return "workflows defined there: " + ", ".join(names)
    count = len(registered_workflows())
    return f"it defines no workflows ({count} registered in other modules)"
