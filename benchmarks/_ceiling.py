"""The ceiling: a raw asyncpg ``FOR UPDATE SKIP LOCKED`` job queue with no engine.

What Postgres on this machine can do for the same workloads when nothing but a queue
table stands between jobs: each consumer transaction locks up to ``batch`` ready jobs,
runs them (no-ops that stamp their start time), marks them done and queues each chain's
next step, then commits. ``batch=1`` is one job per transaction; ``batch=50`` amortizes
the commit. Idle consumers sleep on a NOTIFY that each enqueue sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import asyncpg

from benchmarks._stats import gaps, percentile

Figures = dict[str, float]

_SCHEMA = """
CREATE TABLE ceiling_jobs (
    id     bigserial        PRIMARY KEY,
    chain  integer          NOT NULL,
    step   integer          NOT NULL,
    steps  integer          NOT NULL,
    status text             NOT NULL DEFAULT 'ready',
    ran_at double precision
);
CREATE INDEX ceiling_jobs_ready ON ceiling_jobs (id) WHERE status = 'ready';
"""
_CLAIM = """
SELECT id, chain, step, steps FROM ceiling_jobs
WHERE status = 'ready' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_FINISH = """
UPDATE ceiling_jobs AS j SET status = 'done', ran_at = d.ran_at
FROM unnest($1::bigint[], $2::float8[]) AS d (id, ran_at) WHERE j.id = d.id
"""
_NEXT = """
INSERT INTO ceiling_jobs (chain, step, steps)
SELECT * FROM unnest($1::integer[], $2::integer[], $3::integer[])
"""
_ENQUEUE = """
WITH queued AS (
    INSERT INTO ceiling_jobs (chain, step, steps)
    SELECT c, 0, $2 FROM unnest($1::integer[]) AS c
)
SELECT pg_notify('ceiling_jobs', '')
"""
_IDLE_POLL = 0.05


@dataclass
class _Queue:
    """The consumers' shared view: chains still open and what their steps stamped."""

    batch: int
    stamps: dict[int, list[float]] = field(default_factory=dict)
    finished: dict[int, asyncio.Future[list[float]]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, chain: int) -> asyncio.Future[list[float]]:
        """A future that gets ``chain``'s step stamps once its last step has run."""
        future = asyncio.get_running_loop().create_future()
        self.finished[chain] = future
        self.stamps[chain] = []
        return future

    def ran(self, chain: int, step: int, steps: int, at: float) -> None:
        self.stamps[chain].append(at)
        if step + 1 == steps:
            self.finished.pop(chain).set_result(self.stamps.pop(chain))


async def _consume(conn: asyncpg.Connection, queue: _Queue) -> None:
    while True:
        async with conn.transaction():
            jobs = await conn.fetch(_CLAIM, queue.batch)
            if jobs:
                await _run_jobs(conn, queue, jobs)
                continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queue.wake.wait(), _IDLE_POLL)
        queue.wake.clear()


async def _run_jobs(
    conn: asyncpg.Connection, queue: _Queue, jobs: Sequence[asyncpg.Record]
) -> None:
    ran_at = []
    for _ in jobs:
        ran_at.append(time.time())
        await _noop()
    await conn.execute(_FINISH, [j["id"] for j in jobs], ran_at)
    following = [j for j in jobs if j["step"] + 1 < j["steps"]]
    if following:
        columns = ([j["chain"] for j in following], [j["step"] + 1 for j in following],
                   [j["steps"] for j in following])  # fmt: skip
        await conn.execute(_NEXT, *columns)
    # Tell the waiters only once the transaction has committed (after this returns).
    asyncio.get_running_loop().call_soon(_report, queue, jobs, ran_at)


def _report(queue: _Queue, jobs: Sequence[asyncpg.Record], ran_at: list[float]) -> None:
    for job, at in zip(jobs, ran_at, strict=True):
        queue.ran(job["chain"], job["step"], job["steps"], at)


async def _noop() -> None:
    return None


@contextlib.asynccontextmanager
async def _consumers(
    dsn: str, batch: int, count: int
) -> AsyncIterator[tuple[_Queue, asyncpg.Connection]]:
    """``count`` consumer connections looping on the queue; yields it and a producer."""
    producer = await asyncpg.connect(dsn)
    await producer.execute(_SCHEMA)
    queue = _Queue(batch)
    await producer.add_listener("ceiling_jobs", lambda *_: queue.wake.set())
    conns = [await asyncpg.connect(dsn) for _ in range(count)]
    tasks = [asyncio.create_task(_consume(c, queue)) for c in conns]
    try:
        yield queue, producer
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in [*conns, producer]:
            await conn.close()


async def _enqueue(
    producer: asyncpg.Connection, queue: _Queue, chains: range, steps: int
) -> list[asyncio.Future[list[float]]]:
    futures = [queue.expect(c) for c in chains]
    await producer.execute(_ENQUEUE, list(chains), steps)
    return futures


async def chain(dsn: str, batch: int, consumers: int, instances: int, steps: int) -> Figures:
    """``instances`` chains of ``steps`` jobs: jobs per second."""
    async with _consumers(dsn, batch, consumers) as (queue, producer):
        started = time.perf_counter()
        await asyncio.gather(*await _enqueue(producer, queue, range(instances), steps))
        elapsed = time.perf_counter() - started
    # Jobs are queued in one statement: the figure is a backlog's rate either way.
    rate = instances * steps / elapsed
    return {"actions_per_s": rate, "backlog_actions_per_s": rate, "seconds": elapsed}


async def latency(dsn: str, batch: int, consumers: int, steps: int, fresh: int) -> Figures:
    """Job-to-job gaps of one ``steps``-long chain; enqueue-to-first-job of new chains."""
    async with _consumers(dsn, batch, consumers) as (queue, producer):
        (long_chain,) = await _enqueue(producer, queue, range(1), steps)
        between = gaps(await long_chain)
        first = []
        for index in range(1, fresh + 1):
            enqueued = time.time()
            (single,) = await _enqueue(producer, queue, range(index, index + 1), 1)
            first.append((await single)[0] - enqueued)
    return {
        "a2a_p50_ms": percentile(between, 0.5) * 1e3,
        "a2a_p99_ms": percentile(between, 0.99) * 1e3,
        "e2f_p50_ms": percentile(first, 0.5) * 1e3,
        "e2f_p99_ms": percentile(first, 0.99) * 1e3,
    }
