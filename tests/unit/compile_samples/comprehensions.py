"""List comprehensions whose element awaits run one element after another."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import note, rec


def keep(x: int) -> bool:
    """A filter that records which element it was asked about."""
    note(f"p{x}")
    return x % 2 == 0


@workflow
class CsCompFilter(Workflow):
    async def run(self, xs: list[int]) -> list[int]:
        return [await rec(f"x{x}", x * 10) for x in xs if keep(x)]


@workflow
class CsCompNested(Workflow):
    async def run(self) -> list[str]:
        return [await rec(a + b, a + b) for a in "ab" for b in "xy" if b != "y"]


@workflow
class CsCompNoLeak(Workflow):
    async def run(self) -> tuple[str, list[int]]:
        x = "outer"
        ys = [await rec(str(x), x) for x in [1, 2]]
        return x, ys


@workflow
class CsCompInline(Workflow):
    async def run(self) -> dict[str, object]:
        base = await rec("base", 3)
        # No await inside: these stay ordinary Python comprehensions in one inline node.
        squares = {n: n * base for n in range(3)}
        odd = {n for n in range(base * 2) if n % 2}
        total = sum(n for n in range(base))
        return {"squares": squares, "odd": odd, "total": total}
