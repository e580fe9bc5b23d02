"""The store, dispatcher and client on real Postgres, driven by a hand-written engine."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from rappelx.exceptions import ActionTimeout, CodecError, WorkflowCancelled
from rappelx.runtime._client import Client, WorkflowStatus
from rappelx.runtime._dispatcher import Dispatcher, DispatcherConfig
from rappelx.runtime._pgsteps import ActionLost
from rappelx.runtime._pgstore import PgStore
from tests.integration._fakes import InProcessExecutor, LineEngine, LineWorkflow

pytestmark = pytest.mark.postgres

FAST = DispatcherConfig(
    poll_interval=0.2, lease=3.0, grace=1.0, report_interval=0.5, drain_timeout=1.0
)


async def double(x: int) -> int:
    return 2 * x


async def slow(x: int) -> int:
    await asyncio.sleep(30)
    return x


async def missing(x: int) -> int:
    raise KeyError(f"no item {x}")


async def nap(x: int) -> int:
    await asyncio.sleep(0.05)
    return 2 * x


ACTIONS = {"double": double, "slow": slow, "missing": missing, "nap": nap}
LINE = LineWorkflow("Line", LineEngine("double"))


@contextlib.asynccontextmanager
async def dispatcher(
    dsn: str,
    *workflows: LineWorkflow,
    config: DispatcherConfig = FAST,
    **executor_options: Any,
) -> AsyncIterator[tuple[Dispatcher, InProcessExecutor]]:
    made: list[InProcessExecutor] = []

    def factory(on_results: Any) -> InProcessExecutor:
        made.append(InProcessExecutor(ACTIONS, on_results, **executor_options))
        return made[0]

    d = Dispatcher(dsn, factory, {w.version: w for w in workflows or (LINE,)}, config)
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    ready = asyncio.create_task(d.ready.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield d, made[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_a_line_of_actions_runs_to_completion(pg_dsn: str, client: Client) -> None:
    async with dispatcher(pg_dsn) as (_, executor):
        result = await asyncio.wait_for(client.run(LINE, 5, 10), 20)
    assert result == 2 * (10 + 11 + 12 + 13 + 14)
    assert executor.count() == 5
    rows = await _fetch(
        pg_dsn, "SELECT status, attempt, action_id FROM rappelx_actions ORDER BY action_id"
    )
    assert [(r["status"], r["attempt"], r["action_id"]) for r in rows] == [
        ("completed", 1, i) for i in range(5)
    ]
    (instance,) = await _fetch(pg_dsn, "SELECT status, seq, finished_at FROM rappelx_instances")
    assert instance["status"] == "completed" and instance["finished_at"] is not None
    assert instance["seq"] == 6  # started, then one transition per action


async def test_many_instances_each_run_every_action_once(pg_dsn: str, client: Client) -> None:
    async with dispatcher(pg_dsn) as (_, executor):
        handles = [await client.start(LINE, 3, k * 100) for k in range(200)]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
    assert results == [2 * (3 * k * 100 + 3) for k in range(200)]
    assert executor.count() == 600
    assert set(executor.executions.values()) == {1}


async def test_a_durable_sleep_holds_only_a_timer_row(pg_dsn: str, client: Client) -> None:
    sleepy = LineWorkflow("Sleepy", LineEngine("double", sleep=0.5))
    async with dispatcher(pg_dsn, sleepy):
        handle = await client.start(sleepy, 1, 4)
        for _ in range(50):
            timers = await _fetch(pg_dsn, "SELECT timer_id FROM rappelx_timers")
            if timers:
                break
            await asyncio.sleep(0.02)
        assert [t["timer_id"] for t in timers] == [0]
        assert await handle.status() == WorkflowStatus.RUNNING
        assert await asyncio.wait_for(handle.result(), 20) == 8
    assert await _fetch(pg_dsn, "SELECT * FROM rappelx_timers") == []


async def test_retry_waits_its_backoff_and_counts_attempts(pg_dsn: str, client: Client) -> None:
    flaky_calls: list[float] = []

    async def flaky(x: int) -> int:
        flaky_calls.append(asyncio.get_running_loop().time())
        if len(flaky_calls) < 3:
            raise ConnectionError("try again")
        return x

    ACTIONS["flaky"] = flaky
    retrying = LineWorkflow("Retrying", LineEngine("flaky", attempts=3, backoff=0.3))
    try:
        async with dispatcher(pg_dsn, retrying):
            assert await asyncio.wait_for(client.run(retrying, 1, 7), 20) == 7
    finally:
        del ACTIONS["flaky"]
    assert len(flaky_calls) == 3
    gaps = [b - a for a, b in zip(flaky_calls, flaky_calls[1:])]
    assert min(gaps) >= 0.29
    rows = await _fetch(pg_dsn, "SELECT attempt, status FROM rappelx_actions ORDER BY attempt")
    assert [(r["attempt"], r["status"]) for r in rows] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]


async def test_a_failing_workflow_raises_its_exception_class(pg_dsn: str, client: Client) -> None:
    failing = LineWorkflow("Failing", LineEngine("missing"))
    async with dispatcher(pg_dsn, failing):
        with pytest.raises(KeyError, match="no item 3"):
            await asyncio.wait_for(client.run(failing, 1, 3), 20)


async def test_unencodable_arguments_fail_at_start_and_queue_nothing(
    pg_dsn: str, client: Client
) -> None:
    with pytest.raises(CodecError, match="cannot start Line"):
        await client.start(LINE, 1, object())
    assert await _fetch(pg_dsn, "SELECT id FROM rappelx_instances") == []


async def test_cancel_ends_a_running_instance(pg_dsn: str, client: Client) -> None:
    stuck = LineWorkflow("Stuck", LineEngine("slow"))
    async with dispatcher(pg_dsn, stuck):
        handle = await client.start(stuck, 1, 0)
        for _ in range(100):
            if await _fetch(pg_dsn, "SELECT 1 FROM rappelx_actions WHERE status = 'running'"):
                break
            await asyncio.sleep(0.02)
        assert await handle.cancel() is True
        with pytest.raises(WorkflowCancelled):
            await asyncio.wait_for(handle.result(), 20)
        assert await handle.status() == WorkflowStatus.CANCELLED
        assert await handle.cancel() is False
    rows = await _fetch(pg_dsn, "SELECT status FROM rappelx_actions")
    assert [r["status"] for r in rows] == ["cancelled"]


async def test_cancel_before_start(pg_dsn: str, client: Client) -> None:
    handle = await client.start(LINE, 1, 0)
    assert await handle.cancel() is True
    async with dispatcher(pg_dsn) as (_, executor):
        with pytest.raises(WorkflowCancelled):
            await asyncio.wait_for(handle.result(), 20)
    assert executor.count() == 0


async def test_unknown_version_is_left_untouched_and_reported(pg_dsn: str, client: Client) -> None:
    other = LineWorkflow("Line", LineEngine("double"), version="not-loaded-anywhere")
    foreign = await client.start(other, 2, 0)
    async with dispatcher(pg_dsn) as (d, executor):
        assert await asyncio.wait_for(client.run(LINE, 1, 1), 20) == 2
        await asyncio.sleep(0.6)  # a tick and a report happen meanwhile
        store = await PgStore.connect(pg_dsn)
        try:
            reports = await store.unknown_versions()
            mine = await store.foreign_versions(["Line"], [LINE.version])
        finally:
            await store.close()
    assert await foreign.status() == WorkflowStatus.PENDING
    assert [(r.workflow, r.version, r.instances) for r in reports] == [
        ("Line", "not-loaded-anywhere", 1)
    ]
    assert [(r.workflow, r.version) for r in mine] == [("Line", "not-loaded-anywhere")]
    assert executor.count() == 1
    (row,) = await _fetch(
        pg_dsn, "SELECT state, seq FROM rappelx_instances WHERE id = $1", uuid.UUID(foreign.id)
    )
    assert row["state"] is None and row["seq"] == 0


async def test_lost_worker_is_retried_without_using_an_attempt(pg_dsn: str, client: Client) -> None:
    async with dispatcher(pg_dsn, infra_failures=2) as (_, executor):
        assert await asyncio.wait_for(client.run(LINE, 2, 5), 20) == 2 * (5 + 6)
    assert executor.count() == 4
    rows = await _fetch(
        pg_dsn, "SELECT action_id, attempt, infra_retries FROM rappelx_actions ORDER BY 1"
    )
    assert [(r["action_id"], r["attempt"], r["infra_retries"]) for r in rows] == [
        (0, 1, 2),
        (1, 1, 0),
    ]


class CrashingDispatcher(Dispatcher):
    """Stops like a killed process: no draining, no releasing, no unregistering."""

    async def _shutdown(self, store: Any, executor: Any, applier: Any) -> None:
        applier.cancel()


async def test_a_dead_dispatchers_leases_are_reclaimed(pg_dsn: str, client: Client) -> None:
    stuck = LineWorkflow("Stuck", LineEngine("slow"))
    handle = await client.start(stuck, 1, 0)
    made: list[InProcessExecutor] = []

    def factory(on_results: Any) -> InProcessExecutor:
        made.append(InProcessExecutor({"slow": slow}, on_results))
        return made[0]

    dead = CrashingDispatcher(pg_dsn, factory, {stuck.version: stuck}, FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(dead.run(stop))
    for _ in range(200):
        if await _fetch(pg_dsn, "SELECT 1 FROM rappelx_actions WHERE status = 'running'"):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    (row,) = await _fetch(pg_dsn, "SELECT lease_owner FROM rappelx_actions")
    assert row["lease_owner"] == dead.id
    ACTIONS["slow"], saved = double, ACTIONS["slow"]
    try:
        async with dispatcher(pg_dsn, stuck) as (_, executor):
            # The dead one's heartbeat lease (3 s) must run out first.
            assert await asyncio.wait_for(handle.result(), 20) == 0
    finally:
        ACTIONS["slow"] = saved
        await made[0].close()
    assert executor.count() == 1
    rows = await _fetch(pg_dsn, "SELECT status, infra_retries, attempt FROM rappelx_actions")
    assert [(r["status"], r["infra_retries"], r["attempt"]) for r in rows] == [("completed", 1, 1)]


async def test_shutdown_releases_leases(pg_dsn: str, client: Client) -> None:
    stuck = LineWorkflow("Stuck", LineEngine("slow"))
    config = DispatcherConfig(poll_interval=0.2, lease=3.0, grace=1.0, drain_timeout=0.2)
    await client.start(stuck, 1, 0)
    async with dispatcher(pg_dsn, stuck, config=config):
        for _ in range(100):
            if await _fetch(pg_dsn, "SELECT 1 FROM rappelx_actions WHERE status = 'running'"):
                break
            await asyncio.sleep(0.02)
    (row,) = await _fetch(pg_dsn, "SELECT status, lease_owner FROM rappelx_actions")
    assert (row["status"], row["lease_owner"]) == ("ready", None)
    assert await _fetch(pg_dsn, "SELECT id FROM rappelx_dispatchers") == []


async def test_two_dispatchers_share_the_work_exactly_once(pg_dsn: str, client: Client) -> None:
    async with dispatcher(pg_dsn) as (_, first), dispatcher(pg_dsn) as (_, second):
        handles = [await client.start(LINE, 4, k * 10) for k in range(300)]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
    assert results == [2 * (4 * k * 10 + 6) for k in range(300)]
    both = first.executions + second.executions
    assert sum(both.values()) == 1200 and set(both.values()) == {1}
    assert first.count() > 0 and second.count() > 0
    rows = await _fetch(pg_dsn, "SELECT seq, count(*) FROM rappelx_instances GROUP BY seq")
    assert [(r["seq"], r["count"]) for r in rows] == [(5, 300)]


async def test_an_action_past_its_deadline_times_out(pg_dsn: str, client: Client) -> None:
    # The executor does not enforce the timeout (a worker blocked by a sync call), so
    # the lease deadline (timeout + grace) has to: each attempt ends in ActionTimeout.
    overrun = LineWorkflow("Overrun", LineEngine("slow", attempts=2, timeout=0.2))
    config = replace(FAST, lease=1.5, grace=0.2)
    async with dispatcher(pg_dsn, overrun, config=config, enforce_timeouts=False) as (_, ex):
        with pytest.raises(ActionTimeout, match="ran past its timeout of 0.2s"):
            await asyncio.wait_for(client.run(overrun, 1, 0), 20)
    assert ex.count() == 2
    rows = await _fetch(
        pg_dsn, "SELECT attempt, status, infra_retries FROM rappelx_actions ORDER BY attempt"
    )
    assert [tuple(r) for r in rows] == [(1, "failed", 0), (2, "failed", 0)]


async def test_an_attempt_that_keeps_losing_its_worker_gives_up(
    pg_dsn: str, client: Client
) -> None:
    config = replace(FAST, infra_cap=3)
    async with dispatcher(pg_dsn, config=config, infra_failures=5) as (_, executor):
        with pytest.raises(ActionLost, match="lost its worker or dispatcher 3 times"):
            await asyncio.wait_for(client.run(LINE, 1, 0), 20)
    assert executor.count() == 3
    rows = await _fetch(pg_dsn, "SELECT attempt, status, infra_retries FROM rappelx_actions")
    assert [tuple(r) for r in rows] == [(1, "failed", 3)]


async def test_stopping_finishes_running_actions_and_leases_nothing_new(
    pg_dsn: str, client: Client
) -> None:
    napping = LineWorkflow("Napping", LineEngine("nap"))
    handle = await client.start(napping, 40, 0)
    async with dispatcher(pg_dsn, napping) as (_, first):
        done = "SELECT count(*) FROM rappelx_actions WHERE status = 'completed'"
        for _ in range(200):
            if (await _fetch(pg_dsn, done))[0]["count"] >= 3:
                break
            await asyncio.sleep(0.02)
        started_when_stopping = first.count()
    # Only the action in hand when asked to stop ran to its end.
    assert first.count() == started_when_stopping
    # Stopped: what ran finished and was recorded; the next step waits, unleased.
    rows = await _fetch(pg_dsn, "SELECT status, count(*) FROM rappelx_actions GROUP BY 1")
    counts = {r["status"]: r["count"] for r in rows}
    assert counts == {"completed": first.count(), "ready": 1}
    assert first.count() < 40
    async with dispatcher(pg_dsn, napping) as (_, second):
        assert await asyncio.wait_for(handle.result(), 30) == 2 * sum(range(40))
    assert first.count() + second.count() == 40
