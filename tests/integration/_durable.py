"""Running a real dispatcher with a real worker pool inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from rappelx.runtime._dispatcher import Dispatcher, DispatcherConfig
from rappelx.runtime._pool import WorkerPool
from rappelx.runtime._serve import load_workflows

TEST_CONFIG = DispatcherConfig(
    poll_interval=0.2, lease=3.0, grace=2.0, drain_timeout=5.0, report_interval=1.0
)


@contextlib.asynccontextmanager
async def workers(
    dsn: str,
    modules: Sequence[str],
    *,
    processes: int = 2,
    concurrency: int = 64,
    config: DispatcherConfig = TEST_CONFIG,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[Dispatcher, list[WorkerPool]]]:
    """A dispatcher and its ``WorkerPool`` for ``modules``, stopped gracefully on exit."""
    pools: list[WorkerPool] = []

    def make_pool(on_results: Any) -> WorkerPool:
        pool = WorkerPool(
            modules, processes=processes, concurrency=concurrency, on_results=on_results, env=env
        )
        pools.append(pool)
        return pool

    dispatcher = Dispatcher(dsn, make_pool, load_workflows(modules), config)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    ready = asyncio.create_task(dispatcher.ready.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()
    try:
        yield dispatcher, pools
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
