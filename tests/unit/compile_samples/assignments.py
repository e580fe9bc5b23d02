"""Assignments of every shape around awaits: augmented, unpacking, walrus, del, mangling."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import Box, note, rec


def clobber(data: dict[str, int]) -> int:
    """Overwrite ``data['a']`` while the right-hand side is being evaluated."""
    data["a"] = 100
    return 0


@workflow
class CsAugSubscript(Workflow):
    async def run(self) -> dict[str, int]:
        data = {"a": 1}
        # Python reads data["a"] before it evaluates the right-hand side, so the
        # clobbered 100 is overwritten by 1 + 10 + 0.
        data[note("key", "a")] += await rec("inc", 10) + clobber(data)
        return data


@workflow
class CsAugAttribute(Workflow):
    async def run(self) -> int:
        box = Box(1)
        note("obj", box).n += await rec("inc", 5)
        return box.n


@workflow
class CsUnpack(Workflow):
    async def run(self) -> tuple[object, ...]:
        a, (b, *c) = await rec("t", (1, (2, 3, 4)))
        return a, b, c


@workflow
class CsChainedAssign(Workflow):
    async def run(self) -> tuple[list[int], bool]:
        first = second = await rec("v", [1])
        second.append(2)
        return first, first is second


@workflow
class CsWalrusIf(Workflow):
    async def run(self) -> int:
        if (n := await rec("n", 3)) > 2:
            return n * 2
        return n


@workflow
class CsWalrusInline(Workflow):
    async def run(self, xs: list[int]) -> tuple[list[int], int]:
        doubled = [y for x in xs if (y := x * 2) > 2]
        await rec("between")
        return doubled, y


@workflow
class CsDelName(Workflow):
    async def run(self) -> str:
        x = await rec("x", 1)
        del x
        await rec("after")
        try:
            return str(x)  # type: ignore[misc]  # deleted on purpose
        except NameError as exc:
            return type(exc).__name__


@workflow
class CsDelSubscript(Workflow):
    async def run(self) -> dict[str, int]:
        data = {"a": 1, "b": 2}
        key = await rec("k", "a")
        del data[key], key
        await rec("after")
        return data


@workflow
class CsAugSelfAttribute(Workflow):
    async def run(self) -> int:
        self.count = 0
        while self.count < 3:
            self.count += await rec(f"c{self.count}", 1)
        return self.count
