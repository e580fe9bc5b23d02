"""Workflows the engine tests drive event by event (no ``run_inline``).

The action bodies never run here: the tests play the store's part and feed the engine
``ActionCompleted``/``ActionFailed``/``TimerFired`` events themselves.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from rappelx import BackoffPolicy, RetryPolicy, Workflow, action, workflow


@action(
    retry=RetryPolicy(attempts=5, exceptions=(ConnectionError,)),
    backoff=BackoffPolicy(base_delay=1.0, factor=2.0, max_delay=3.0, jitter=0.1),
    timeout=10,
    queue="net",
)
async def flaky(x: int) -> int:
    return x


@action
async def once(x: int) -> int:
    return x


@action(retry=RetryPolicy(attempts=2))
async def timed(x: int) -> int:
    return x


@workflow
class EngSequence(Workflow):
    async def run(self, x: int) -> int:
        a = await flaky(x)
        b = await once(a + 1)
        return a + b


@workflow
class EngCaught(Workflow):
    async def run(self) -> str:
        try:
            await once(1)
        except LookupError as e:
            return f"caught {type(e).__name__}"
        return "no error"


@workflow
class EngTimed(Workflow):
    async def run(self) -> int:
        return await timed(1)


@workflow
class EngOverride(Workflow):
    async def run(self, base: float) -> int:
        return await self.run_action(
            flaky(1),
            retry=RetryPolicy(attempts=2, exceptions=(KeyError,)),
            backoff=BackoffPolicy(base_delay=base, jitter=0.0),
            timeout=2.5,
        )


@workflow
class EngSleep(Workflow):
    async def run(self, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return await once(1)


@workflow
class EngGather(Workflow):
    async def run(self) -> object:
        return await asyncio.gather(once(1), once(2), once(3))


@workflow
class EngUnpersistable(Workflow):
    async def run(self) -> int:
        guard = threading.Lock()
        value = await once(1)
        return value + int(guard.locked())


@workflow
class EngAliasing(Workflow):
    async def run(self) -> tuple[list[int], bool, bool, bool]:
        a = [1]
        b = a
        self.kept = a
        nested = {"inner": a}
        await once(1)
        b.append(2)
        return a, a is b, self.kept is a, nested["inner"] is a


@workflow
class EngHelperLambda(Workflow):
    async def helper(self, n: int) -> int:
        scale: Callable[[int], int] = lambda v: v * n  # noqa: E731 - cannot live across an await
        value = await once(n)
        return scale(value)

    async def run(self) -> int:
        return await self.helper(2)
