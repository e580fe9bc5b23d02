"""The actions generated parity programs call (imported by every generated module).

All are deterministic and finish without suspending, so plain asyncio gives the
lowest-position failure of a gather, as rappelx does. Results stay below 1000 so values
do not grow without bound in loops.
"""

from __future__ import annotations

from rappelx import BackoffPolicy, action

FAST = BackoffPolicy(base_delay=0.0, factor=1.0, max_delay=0.0, jitter=0.0)


class GenError(Exception):
    """A custom exception with its own constructor signature."""

    def __init__(self, code: int, where: str) -> None:
        super().__init__(f"gen {code} at {where}")
        self.code = code
        self.where = where


@action
async def add(a: int, b: int) -> int:
    return (a + b) % 1000


@action
async def mul(a: int, b: int) -> int:
    return (a * b) % 1000


@action
async def is_even(a: int) -> bool:
    return a % 2 == 0


@action
async def probe(value: int, kind: int) -> int:
    """Raise for some values (which class depends on ``kind``), else return a number."""
    if kind == 0 and value % 5 == 0:
        raise ValueError(value)
    if kind == 1 and value % 6 == 1:
        raise KeyError(value)
    if kind == 2 and value % 7 == 2:
        raise GenError(value, "probe")
    return (value * 7 + kind) % 1000
