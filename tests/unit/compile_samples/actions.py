"""Actions and plain functions that record what ran, in order, in :data:`LOG`.

``run_inline`` runs actions in the test's own process, and inline code runs in the
engine, so one module-level list sees every side effect of both. The tests clear it
before each run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from rappelx import action

T = TypeVar("T")
U = TypeVar("U")

LOG: list[str] = []


def note(tag: str, value: T = None) -> T:  # type: ignore[assignment]
    """A plain (inline) function: record ``tag`` and return ``value``."""
    LOG.append(tag)
    return value


def combine(*parts: Any) -> tuple[Any, ...]:
    """A plain function that records that it was called after its arguments."""
    LOG.append("combine")
    return parts


@dataclass
class Box:
    """A mutable object for attribute assignment (the codec persists dataclasses)."""

    n: int = 0


@action
async def rec(tag: str, value: T = None) -> T:  # type: ignore[assignment]
    """Record ``tag`` and return ``value``."""
    LOG.append(tag)
    return value


@action
async def pair(a: T, b: U) -> tuple[T, U]:
    """Record ``pair`` and return both arguments."""
    LOG.append("pair")
    return a, b


@action
async def fail(tag: str) -> Any:
    """Record ``tag`` and raise ``ValueError(tag)``."""
    LOG.append(tag)
    raise ValueError(tag)


@action
async def fail_key(tag: str) -> Any:
    """Record ``tag`` and raise ``KeyError(tag)`` (a ``LookupError``)."""
    LOG.append(tag)
    raise KeyError(tag)
