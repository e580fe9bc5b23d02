"""Batching: coalesced client calls, concurrent apply batches, lease slots, wake-ups."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from rappelx.runtime._applier import Applier
from rappelx.runtime._client import Client
from rappelx.runtime._coalesce import Coalescer
from rappelx.runtime._pgstore import LeaseGrant
from rappelx.runtime._pool import TaskResult
from rappelx.runtime._wakeups import Wakeups
from tests.integration.test_dispatcher import FAST, LINE, _fetch, dispatcher


async def test_calls_arriving_together_share_one_batch() -> None:
    batches: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [2 * i for i in items]

    coalescer: Coalescer[int, int] = Coalescer(double, max_batch=4, max_in_flight=1)
    assert await coalescer.submit(1) == 2  # alone: no waiting for company
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(10)))
    assert results == [2 * i for i in range(10)]
    assert batches == [[1], [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_a_failed_batch_fails_each_of_its_callers() -> None:
    async def broken(items: list[str]) -> list[str]:
        raise ConnectionResetError("database gone")

    coalescer: Coalescer[str, str] = Coalescer(broken, max_batch=10)
    outcomes = await asyncio.gather(*(coalescer.submit(x) for x in "abc"), return_exceptions=True)
    assert [type(o) for o in outcomes] == [ConnectionResetError] * 3


def _result(token: int) -> TaskResult:
    return TaskResult(token, True, b"\xc0", 0.0)


async def test_applier_never_runs_two_batches_for_one_instance() -> None:
    instance_of = {t: uuid.UUID(int=t % 3) for t in range(12)}  # 3 instances
    running: set[uuid.UUID] = set()
    overlaps: list[uuid.UUID] = []
    applied: list[list[int]] = []

    async def apply(batch: list[TaskResult]) -> None:
        mine = {instance_of[r.token] for r in batch}
        overlaps.extend(mine & running)
        running.update(mine)
        applied.append([r.token for r in batch])
        await asyncio.sleep(0.01)
        running.difference_update(mine)

    applier = Applier(apply, instance_of.get, batch_size=2, concurrency=3)
    task = asyncio.create_task(applier.run())
    applier.add([_result(t) for t in range(12)])
    while sum(map(len, applied)) < 12:
        await asyncio.sleep(0.005)
    applier.close()
    await task
    assert overlaps == []
    assert sorted(t for batch in applied for t in batch) == list(range(12))
    assert max(map(len, applied)) == 2
    # Both first batches start at once; the second skips what the first holds.
    assert applied[:2] == [[0, 1], [2, 5]]


async def test_applier_failure_stops_it() -> None:
    async def apply(batch: list[TaskResult]) -> None:
        raise ValueError("bug")

    applier = Applier(apply, lambda token: None, batch_size=8, concurrency=2)
    task = asyncio.create_task(applier.run())
    applier.add([_result(1)])
    with pytest.raises(ValueError, match="bug"):
        await asyncio.wait_for(task, 5)


def test_lease_grant_holds_only_what_it_keeps() -> None:
    held = [0]
    capacity = 10

    def free() -> int:
        return capacity - held[0]

    def hold(slots: int) -> None:
        held[0] += slots

    first, second = LeaseGrant(free, hold), LeaseGrant(free, hold)
    assert first.take(6) == 6 and second.take(6) == 4 and held == [10]
    first.give_back(5)  # stepped its batch: it needed one
    assert held == [5] and second.take(9) == 5
    first.release()
    second.release()
    assert held == [0] and first.taken == second.taken == 0


async def test_queued_work_takes_freed_slots_without_waiting_for_a_poll(
    pg_dsn: str,
) -> None:
    # Never polls: only wake-ups can move the work along.
    config = replace(FAST, poll_interval=3600.0)
    async with Client(pg_dsn) as client, dispatcher(pg_dsn, config=config, slots=3) as (_, ex):
        handles = await asyncio.gather(*(client.start(LINE, 2, k) for k in range(12)))
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
    assert results == [2 * (2 * k + 1) for k in range(12)]
    assert ex.count() == 24
    rows = await _fetch(
        pg_dsn, "SELECT count(*) AS n FROM rappelx_actions WHERE status = 'completed'"
    )
    assert rows[0]["n"] == 24


async def test_wakeups_share_one_timer_and_skip_the_far_future() -> None:
    woken: list[float] = []
    loop = asyncio.get_running_loop()
    wakeups = Wakeups(lambda: woken.append(loop.time()), horizon=10.0)
    start = loop.time()
    wakeups.add(0.06)
    wakeups.add(0.02)
    wakeups.add(0.02)  # the same moment: one wake-up
    wakeups.add(60.0)  # beyond the horizon: polling's job
    assert len(wakeups) == 2
    await asyncio.sleep(0.15)
    assert len(woken) == 2 and len(wakeups) == 0
    assert woken[0] - start >= 0.02 and woken[1] - start >= 0.06
    wakeups.add(0.01)
    wakeups.cancel()
    await asyncio.sleep(0.05)
    assert len(woken) == 2
