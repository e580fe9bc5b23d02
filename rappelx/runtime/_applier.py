"""Applying worker results: batches as large as the load, several transactions at once.

Results wait here until a transaction takes them. A batch starts as soon as a result
arrives and a transaction slot is free, so an idle dispatcher adds no latency; while
every slot is busy, what arrives meanwhile piles up and goes out together in the next
batch, so batches grow with the load. Transactions in flight at once hold disjoint sets
of instances: a result for an instance that a running batch holds waits for that batch
to commit, so batches of one dispatcher never wait for each other's row locks and each
finds the instance state it cached still current.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from rappelx.runtime._pool import TaskResult

ApplyBatch = Callable[[list[TaskResult]], Coroutine[Any, Any, None]]
InstanceOf = Callable[[int], "uuid.UUID | None"]


class Applier:
    """Feeds queued results to ``apply`` in batches, up to ``concurrency`` at once.

    Args:
        apply: Applies one batch (retrying as it sees fit); its exceptions are fatal.
        instance_of: The instance a result's token belongs to, ``None`` if unknown.
        batch_size: Most results per batch.
        concurrency: Most batches in flight at once.
    """

    def __init__(
        self, apply: ApplyBatch, instance_of: InstanceOf, *, batch_size: int, concurrency: int
    ) -> None:
        self._apply = apply
        self._instance_of = instance_of
        self._batch_size = max(1, batch_size)
        self._concurrency = max(1, concurrency)
        self._queued: list[TaskResult] = []
        self._held: set[uuid.UUID] = set()
        self._active: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None
        self._closing = False

    @property
    def queued(self) -> int:
        """Results not yet taken by a batch."""
        return len(self._queued)

    def add(self, results: list[TaskResult]) -> None:
        """Queue results; a free slot takes them in this loop iteration or the next."""
        self._queued.extend(results)
        self._wake.set()

    def close(self) -> None:
        """Start no new batch; :meth:`run` returns once the running ones end."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        """Start batches as results and slots allow, until :meth:`close`.

        Raises:
            BaseException: Whatever a batch raised (the first one).
        """
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._failure is not None:
                raise self._failure
            if self._closing:
                if not self._active:
                    return
                continue
            while len(self._active) < self._concurrency and self._start_batch():
                pass

    def take_batch(self) -> list[TaskResult]:
        """Take up to a batch of queued results to apply by hand (after :meth:`close`)."""
        return self._take()

    def _start_batch(self) -> bool:
        taken = self._take()
        if not taken:
            return False
        held = {i for i in map(self._instance_of, (r.token for r in taken)) if i is not None}
        self._held |= held
        task = asyncio.get_running_loop().create_task(self._apply(taken))
        self._active.add(task)
        task.add_done_callback(lambda t: self._finished(t, held))
        return True

    def _take(self) -> list[TaskResult]:
        """Up to a batch of queued results, none for an instance a running batch holds."""
        taken: list[TaskResult] = []
        left: list[TaskResult] = []
        for result in self._queued:
            if len(taken) >= self._batch_size or self._instance_of(result.token) in self._held:
                left.append(result)
            else:
                taken.append(result)
        self._queued = left
        return taken

    def _finished(self, task: asyncio.Task[None], held: set[uuid.UUID]) -> None:
        self._active.discard(task)
        self._held -= held
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
        self._wake.set()
