"""asyncio.gather of actions, run_action calls, helpers and comprehensions; sleep."""

from __future__ import annotations

import asyncio

from rappelx import RetryPolicy, Workflow, workflow
from tests.unit.compile_samples.actions import fail, fail_key, rec


@workflow
class CsGatherActions(Workflow):
    async def run(self) -> tuple[object, object]:
        a, b = await asyncio.gather(rec("a", 1), rec("b", 2))
        return a, b


@workflow
class CsGatherStar(Workflow):
    async def run(self, n: int) -> list[int]:
        return await asyncio.gather(*[rec(f"x{i}", i * i) for i in range(n) if i != 1])


@workflow
class CsGatherEmpty(Workflow):
    async def run(self) -> list[object]:
        nothing: list[str] = []
        return await asyncio.gather(*[rec(x) for x in nothing])


@workflow
class CsGatherHelpers(Workflow):
    async def double(self, x: int) -> int:
        first = await rec(f"d{x}", x)
        return first + await rec(f"e{x}", x)

    async def label(self, x: int) -> str:
        if x < 0:
            return "negative"
        return await rec(f"l{x}", f"#{x}")

    async def run(self) -> object:
        return await asyncio.gather(self.double(1), self.label(2), self.label(-1), rec("z", 0))


@workflow
class CsGatherReturnExceptions(Workflow):
    async def run(self) -> list[object]:
        results = await asyncio.gather(
            rec("ok", 1), fail("bad"), fail_key("worse"), return_exceptions=True
        )
        return [type(r).__name__ if isinstance(r, BaseException) else r for r in results]


@workflow
class CsGatherLowestFailure(Workflow):
    async def run(self) -> str:
        try:
            await asyncio.gather(rec("ok"), fail_key("first"), fail("second"))
        except Exception as e:
            return type(e).__name__
        return "no error"


@workflow
class CsGatherRunAction(Workflow):
    async def run(self) -> object:
        return await asyncio.gather(
            self.run_action(rec("policy", 1), retry=RetryPolicy(attempts=2), timeout=5),
            rec("plain", 2),
        )


@workflow
class CsSleep(Workflow):
    async def run(self, delay: float) -> tuple[object, object]:
        woke = await asyncio.sleep(await rec("delay", delay), result="woke")
        none = await asyncio.sleep(0)  # type: ignore[func-returns-value]
        return woke, none
