"""``asyncio.gather`` of ``self.run_action(...)`` calls carrying per-call policies.

Kept apart from ``gather`` so that a compiler rejecting this shape does not stop the
other gather cases from running.
"""

from __future__ import annotations

import asyncio

from rappelx import BackoffPolicy, RetryPolicy, Workflow, action, workflow
from tests.parity_cases import Case, Returns, _counters

FAST = BackoffPolicy(base_delay=0.001, factor=1.0, max_delay=0.001, jitter=0.0)


@action
async def double(x: int) -> int:
    return 2 * x


@action
async def flaky(key: str, failures: int) -> int:
    """Fail ``failures`` times for ``key``, then return the attempt number."""
    attempt = _counters.bump(key)
    if attempt <= failures:
        raise ValueError(f"{key} failed on attempt {attempt}")
    return attempt


@workflow
class GatherRunActionComprehension(Workflow):
    """``gather(*[self.run_action(a(x), retry=...) for x in xs])``."""

    async def run(self, xs: list[int]) -> list[int]:
        results = await asyncio.gather(
            *[self.run_action(double(x), retry=RetryPolicy(attempts=2)) for x in xs]
        )
        single = await self.run_action(double(results[-1]), timeout=30)
        return [*results, single]


@workflow
class GatherRunActionPositional(Workflow):
    """``gather(self.run_action(...), self.run_action(...))`` without a comprehension."""

    async def run(self) -> list[int]:
        results = await asyncio.gather(
            self.run_action(double(1), timeout=30),
            self.run_action(double(2), retry=RetryPolicy(attempts=2), backoff=FAST),
        )
        return list(results)


@workflow
class GatherRetryEach(Workflow):
    """Each element of a gather retries on its own."""

    async def run(self, n: int) -> list[int]:
        results = await asyncio.gather(
            *[
                self.run_action(
                    flaky(f"gather-{i}", i), retry=RetryPolicy(attempts=3), backoff=FAST
                )
                for i in range(n)
            ]
        )
        return list(results)


CASES = [
    Case("run_action_comprehension", GatherRunActionComprehension, ([4, 5],)),
    Case("run_action_positional", GatherRunActionPositional),
    Case(
        "retry_each",
        GatherRetryEach,
        (3,),
        expected=Returns([1, 2, 3]),
        note="plain Python has no retries, so the expected outcome is explicit",
    ),
]
