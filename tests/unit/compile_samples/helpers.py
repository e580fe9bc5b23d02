"""Async helper methods: early returns, helpers calling helpers, default arguments."""

from __future__ import annotations

from datetime import timedelta

from rappelx import BackoffPolicy, RetryPolicy, Workflow, workflow
from tests.unit.compile_samples.actions import rec


@workflow
class CsHelperEarlyReturn(Workflow):
    async def pick(self, n: int) -> int:
        if n > 0:
            return await rec(f"pos{n}", n)
        return -1

    async def run(self) -> list[int]:
        return [await self.pick(2), await self.pick(0)]


@workflow
class CsHelperChain(Workflow):
    async def inner(self, x: int, scale: int = 10) -> int:
        return await rec(f"inner{x}", x * scale)

    async def outer(self, x: int) -> int:
        value = await self.inner(x)
        return value + await self.inner(x, scale=1)

    async def run(self) -> int:
        return await self.outer(3)


@workflow
class CsRunAction(Workflow):
    async def run(self, attempts: int) -> int:
        return await self.run_action(
            rec("policy", attempts),
            retry=RetryPolicy(attempts=attempts),
            backoff=BackoffPolicy(base_delay=0.5),
            timeout=timedelta(seconds=30),
        )
