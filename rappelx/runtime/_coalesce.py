"""Turning many concurrent single-item calls into a few batch calls.

A caller that finds a free slot is served at once, alone, so an idle process adds no
latency; callers that arrive while every slot is busy wait and go out together in the
next batch, so under load one round trip (and one commit) serves many of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchCall = Callable[[list[T]], Awaitable[Sequence[R]]]


class Coalescer(Generic[T, R]):
    """Runs ``call`` on batches of submitted items; each submitter gets its own result.

    Args:
        call: Takes a list of items and returns one result per item, in order. If it
            raises, every submitter of that batch gets the exception.
        max_batch: Most items per call.
        max_in_flight: Most calls running at once.
    """

    def __init__(self, call: BatchCall[T, R], *, max_batch: int, max_in_flight: int = 1) -> None:
        self._call = call
        self._max_batch = max(1, max_batch)
        self._max_in_flight = max(1, max_in_flight)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0

    async def submit(self, item: T) -> R:
        """Have ``item`` processed in the next batch; return its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._drain())
        # Shielded: a cancelled caller stops waiting, the batch it joined goes on.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._run(batch)
        finally:
            self._in_flight -= 1

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._call([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
