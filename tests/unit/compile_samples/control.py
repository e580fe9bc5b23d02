"""if/elif/else, for over every kind of iterable, while, break/continue, loop else."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import rec


@workflow
class CsElif(Workflow):
    async def run(self, n: int) -> str:
        if await rec("big?", n > 5):
            kind = await rec("big", "big")
        elif n > 2:
            kind = await rec("mid", "mid")
        else:
            kind = "small"
        return kind


@workflow
class CsForRange(Workflow):
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await rec(f"r{i}", i)
        return total


@workflow
class CsForIterables(Workflow):
    async def run(self, data: dict[str, int]) -> list[object]:
        out: list[object] = []
        for i, key in enumerate(sorted(data)):
            out.append(await rec(f"e{i}", (i, key)))
        for key, value in data.items():
            out.append(await rec(f"d{key}", value))
        for left, right in zip("ab", [1, 2]):
            out.append(await rec(f"z{left}", right))
        for ch in reversed("xy"):
            out.append(await rec(ch, ch))
        for doubled in (n * 2 for n in range(2)):
            out.append(await rec(f"g{doubled}", doubled))
        return out


@workflow
class CsBreakContinueElse(Workflow):
    async def run(self, stop: int) -> tuple[list[int], str]:
        seen = []
        for i in range(5):
            if i == 1:
                continue
            if await rec(f"c{i}", i) == stop:
                break
            seen.append(i)
        else:
            return seen, "exhausted"
        return seen, "broke"


@workflow
class CsWhile(Workflow):
    async def run(self) -> int:
        i = 0
        while await rec(f"w{i}", i < 3):
            pass
            i += 1
        else:
            i += 100
        return i


@workflow
class CsNestedLoops(Workflow):
    async def run(self) -> list[tuple[int, int]]:
        pairs = []
        for a in range(3):
            for b in range(3):
                if b > a:
                    break
                pairs.append(await rec(f"{a}{b}", (a, b)))
        return pairs


@workflow
class CsReturnInLoop(Workflow):
    async def run(self) -> int:
        for i in range(10):
            if await rec(f"t{i}", i) == 2:
                return i * 100
        return -1
