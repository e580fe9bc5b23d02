"""Run a workflow one way, capture what came out, and describe how two outcomes differ.

"Same" is stricter than ``==``: types must match exactly (1 is not 1.0 or True, a tuple
is not a list), dict key order and time zone offsets count, and exceptions match on class,
``args``, instance attributes and the ``__cause__`` chain.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from rappelx import testing
from tests.parity_cases import Case, Raises, Returns, _counters


@dataclass(frozen=True)
class Outcome:
    """What one run produced: a value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__qualname__}{self.error.args!r}"
        return f"returned {self.value!r}"


async def capture(run: Awaitable[Any]) -> Outcome:
    """Await ``run`` and keep its result or its exception."""
    try:
        return Outcome(value=await run)
    except Exception as exc:
        return Outcome(error=exc)


async def oracle_difference(case: Case, actual: Outcome) -> str | None:
    """How ``actual`` differs from what ``case`` must give: its expectation, else plain Python."""
    if case.expected is not None:
        return expectation_difference(case.expected, actual)
    _counters.reset()
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    return outcome_difference(
        await capture(testing.run_plain(case.workflow, *args, **kwargs)), actual
    )


def outcome_difference(expected: Outcome, actual: Outcome) -> str | None:
    """``None`` when the outcomes are the same, else what differs first."""
    if (expected.error is None) != (actual.error is None):
        return f"expected {expected}, got {actual}"
    if expected.error is not None and actual.error is not None:
        return exception_difference(expected.error, actual.error, "exception")
    return value_difference(expected.value, actual.value, "result")


def expectation_difference(expected: Returns | Raises, actual: Outcome) -> str | None:
    """``None`` when ``actual`` meets an explicit expectation, else how it does not."""
    if isinstance(expected, Returns):
        return outcome_difference(Outcome(value=expected.value), actual)
    error = actual.error
    if error is None or type(error) is not expected.exc_type:
        return f"expected to raise {expected.exc_type.__qualname__}, got {actual}"
    if expected.args is not None:
        return value_difference(expected.args, error.args, "exception.args")
    return None


def exception_difference(a: BaseException, b: BaseException, path: str) -> str | None:
    """Compare class, args, attributes and the explicit cause chain."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__qualname__}{a.args!r} != {type(b).__qualname__}{b.args!r}"
    problem = value_difference(a.args, b.args, f"{path}.args")
    problem = problem or value_difference(vars(a), vars(b), f"{path}.__dict__")
    if problem or (a.__cause__ is None and b.__cause__ is None):
        return problem
    if a.__cause__ is None or b.__cause__ is None:
        return f"{path}.__cause__: {a.__cause__!r} != {b.__cause__!r}"
    return exception_difference(a.__cause__, b.__cause__, f"{path}.__cause__")


def value_difference(a: Any, b: Any, path: str) -> str | None:
    """Structural comparison with exact types; ``None`` when ``a`` and ``b`` are the same."""
    if isinstance(a, BaseException) and isinstance(b, BaseException):
        return exception_difference(a, b, path)
    if type(a) is not type(b):
        return f"{path}: type {type(a).__qualname__} != {type(b).__qualname__} ({a!r} vs {b!r})"
    if isinstance(a, list | tuple):
        return _sequence_difference(a, b, path)
    if isinstance(a, dict):
        keys = value_difference(list(a), list(b), f"{path}.keys()")
        return keys or _sequence_difference(list(a.values()), list(b.values()), f"{path}.values()")
    if isinstance(a, set | frozenset):
        return _set_difference(a, b, path)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        fields = [f.name for f in dataclasses.fields(a)]
        return _sequence_difference(
            [getattr(a, f) for f in fields], [getattr(b, f) for f in fields], f"{path}<fields>"
        )
    if isinstance(a, datetime | time) and a.utcoffset() != b.utcoffset():
        return f"{path}: offset {a.utcoffset()!r} != {b.utcoffset()!r}"
    if a != b:
        return f"{path}: {a!r} != {b!r}"
    return None


def _sequence_difference(a: Any, b: Any, path: str) -> str | None:
    if len(a) != len(b):
        return f"{path}: length {len(a)} != {len(b)} ({a!r} vs {b!r})"
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        problem = value_difference(x, y, f"{path}[{index}]")
        if problem:
            return problem
    return None


def _set_difference(a: Any, b: Any, path: str) -> str | None:
    if a != b:
        return f"{path}: {a!r} != {b!r}"
    types_a = sorted(type(x).__qualname__ for x in a)
    types_b = sorted(type(x).__qualname__ for x in b)
    if types_a != types_b:
        return f"{path}: element types {types_a} != {types_b}"
    return None
