"""Closures, lambdas, aliasing and lists mutated while a loop walks them."""

from __future__ import annotations

from collections.abc import Callable

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import rec


@workflow
class CsLateBinding(Workflow):
    async def run(self) -> tuple[int, int]:
        base = await rec("base", 1)
        get: Callable[[], int] = lambda: base  # noqa: E731
        early = get()
        base = 2
        late = get()
        del get
        await rec("after")
        return early, late


@workflow
class CsLambdaAfterLast(Workflow):
    async def run(self, xs: list[int]) -> list[int]:
        sign = await rec("sign", -1)
        return sorted(xs, key=lambda v: v * sign)


@workflow
class CsAliasing(Workflow):
    async def run(self) -> tuple[list[int], bool, bool]:
        a = [1]
        b = a
        holder = {"list": a}
        await rec("x")
        b.append(2)
        await rec("y")
        return a, a is b, holder["list"] is a


@workflow
class CsLoopAppend(Workflow):
    async def run(self) -> list[int]:
        xs = [1, 2]
        seen = []
        for x in xs:
            seen.append(await rec(f"i{x}", x))
            if x < 3:
                xs.append(x + 2)
        return seen


@workflow
class CsLoopRemove(Workflow):
    async def run(self) -> tuple[list[int], list[int]]:
        xs = [1, 2, 3, 4]
        seen = []
        for x in xs:
            seen.append(await rec(f"i{x}", x))
            xs.remove(x)
        return seen, xs
