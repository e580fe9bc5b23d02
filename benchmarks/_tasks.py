"""Running many coroutines with a bound on how many are in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def bounded(call: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int) -> list[R]:
    """``[await call(item) for item in items]`` with at most ``limit`` calls at once.

    Results keep the order of ``items``. The first failure cancels the rest and is raised.
    """
    pending = deque(enumerate(items))
    total = len(pending)
    results: dict[int, R] = {}

    async def lane() -> None:
        while pending:
            index, item = pending.popleft()
            results[index] = await call(item)

    lanes = [asyncio.create_task(lane()) for _ in range(max(1, min(limit, total)))]
    try:
        await asyncio.gather(*lanes)
    finally:
        for task in lanes:
            task.cancel()
    return [results[index] for index in range(total)]
