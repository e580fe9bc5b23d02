"""A workflow whose async helper and plain methods are inherited from a base class.

Kept in its own module so that a compiler rejecting inherited helpers does not stop other
cases from running.
"""

from __future__ import annotations

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


@action
async def fetch(key: str) -> dict[str, int]:
    return {"a": 1, "b": 2} if key == "both" else {"a": 1}


@action
async def inc(x: int) -> int:
    return x + 1


class Base(Workflow):
    """Not a workflow itself: shares an async helper and a plain method with subclasses."""

    async def load_total(self, key: str) -> int:
        values = await fetch(key)
        return sum(values.values())

    def describe(self, total: int) -> str:
        return f"total={total}"

    @staticmethod
    def clamp(value: int, limit: int) -> int:
        return min(value, limit)


@workflow
class InheritedHelper(Base):
    """An async helper inherited from a base class, plus sync methods called inline."""

    async def run(self, key: str) -> str:
        total = await self.load_total(key)
        clamped = self.clamp(await inc(total), 2)
        return f"{self.describe(total)} clamped={clamped}"


CASES = [
    Case("inherited_helper_both", InheritedHelper, ("both",)),
    Case("inherited_helper_one", InheritedHelper, ("one",)),
]
