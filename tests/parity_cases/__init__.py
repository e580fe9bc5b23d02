"""Parity cases: workflows whose rappelx result must equal their plain-Python result.

Each theme module defines its own ``@action``s and workflows at module level (so worker
subprocesses can import them with ``--module tests.parity_cases.<module>``) and exports
``CASES``. This package does not import the theme modules itself: a module the compiler
rejects must fail on its own, not hide every other case.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

MODULES: tuple[str, ...] = (
    "basics",
    "nested_awaits",
    "branches",
    "loops",
    "exceptions",
    "try_finally",
    "gather",
    "gather_policies",
    "helpers",
    "inline",
    "methods",
    "inheritance",
    "sleep_retry",
    "edges",
    "dead_code",
    "logs",
)


@dataclass(frozen=True)
class Returns:
    """The workflow must return ``value`` (compared with ``==`` and exact types)."""

    value: Any


@dataclass(frozen=True)
class Raises:
    """The workflow must raise ``exc_type`` with exactly ``args`` (``None``: any args)."""

    exc_type: type[BaseException]
    args: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Case:
    """One parity check: run ``workflow`` with ``args``/``kwargs`` both ways and compare.

    Args:
        name: Unique, readable id (used as the pytest parameter id).
        workflow: The ``@workflow`` class.
        args: Positional arguments for ``run``.
        kwargs: Keyword arguments for ``run``.
        expected: ``None`` compares rappelx with plain Python. Cases whose meaning
            differs from plain Python on purpose (retries, timeouts: plain Python has
            neither) give the expected outcome explicitly and say why in ``note``.
        note: Why the case exists, or why it has an explicit ``expected``.
    """

    name: str
    workflow: type[Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    expected: Returns | Raises | None = None
    note: str = ""


def load_module(name: str) -> ModuleType:
    """Import ``tests.parity_cases.<name>``."""
    return importlib.import_module(f"{__name__}.{name}")


def all_cases() -> list[Case]:
    """Every case of every theme module (raises if a module fails to import)."""
    cases: list[Case] = []
    for name in MODULES:
        cases.extend(load_module(name).CASES)
    return cases
