"""Fault tests: real workflows, real worker subprocesses, crashes on purpose.

Executions are counted by ``durable_app.step`` in files, so counts include every worker
subprocess of every dispatcher process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from rappelx.runtime._client import Client, WorkflowStatus
from rappelx.runtime._pgstore import PgStore
from tests.integration._durable import workers
from tests.integration.conftest import APP
from tests.integration.durable_app import Chain, all_executions, chain_result, executions

pytestmark = pytest.mark.postgres


async def until(predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 30) -> None:
    """Poll ``predicate`` until it is true (a test set-up helper, not an assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not reached in {timeout}s")
        await asyncio.sleep(0.05)


async def query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_sigkilled_worker_mid_action_is_retried_and_nothing_else_reruns(
    pg_dsn: str, client: Client, counters: Path
) -> None:
    async with workers(pg_dsn, [APP], processes=1) as (_, pools):
        handle = await client.start(Chain, "k", 4, 2, 2.0)
        await until(lambda: executions("k-2") == 1)
        (pid,) = pools[0].pids
        os.kill(pid, signal.SIGKILL)
        assert await asyncio.wait_for(handle.result(), 30) == chain_result(4)
        assert pools[0].pids != [pid]
    assert all_executions() == {"k-0": 1, "k-1": 1, "k-2": 2, "k-3": 1}
    rows = await query(
        pg_dsn, "SELECT attempt, infra_retries, status FROM rappelx_actions ORDER BY created_at"
    )
    assert [(r["attempt"], r["infra_retries"], r["status"]) for r in rows] == [
        (1, 0, "completed"),
        (1, 0, "completed"),
        (1, 1, "completed"),
        (1, 0, "completed"),
    ]


# ------------------------------------------------------------- whole processes


async def _dispatcher_ids(dsn: str, procs: list[subprocess.Popen[bytes]]) -> dict[int, uuid.UUID]:
    async def registered() -> bool:
        rows = await query(dsn, "SELECT pid FROM rappelx_dispatchers")
        return {r["pid"] for r in rows} >= {p.pid for p in procs}

    await until(registered, 60)
    rows = await query(dsn, "SELECT id, pid FROM rappelx_dispatchers")
    return {r["pid"]: r["id"] for r in rows}


async def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(proc.wait, 30)


async def test_two_workers_processes_run_1000_instances_exactly_once(
    pg_dsn: str, client: Client, spawn: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    procs = [spawn(pg_dsn), spawn(pg_dsn)]
    ids = await _dispatcher_ids(pg_dsn, procs)
    # An instance of a version no process has loaded: it must stay exactly as queued.
    foreign = await _start_foreign(client)
    handles = [await client.start(Chain, f"i{k}", 2) for k in range(1000)]
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 120)
    assert results == [chain_result(2)] * 1000
    counts = all_executions()
    assert len(counts) == 2000 and set(counts.values()) == {1}
    seqs = await query(pg_dsn, "SELECT seq, count(*) FROM rappelx_instances GROUP BY seq")
    assert sorted((r["seq"], r["count"]) for r in seqs) == [(0, 1), (3, 1000)]
    owners = await query(pg_dsn, "SELECT DISTINCT lease_owner FROM rappelx_actions")
    assert {r["lease_owner"] for r in owners} == set(ids.values())
    assert await foreign.status() == WorkflowStatus.PENDING
    store = await PgStore.connect(pg_dsn)
    try:
        reports = await store.unknown_versions()
    finally:
        await store.close()
    assert [(r.workflow, r.instances) for r in reports] == [("Chain", 1)]
    assert [await _stop(p) for p in procs] == [0, 0]
    assert await query(pg_dsn, "SELECT id FROM rappelx_dispatchers") == []


async def _start_foreign(client: Client) -> Any:
    from rappelx._workflow import definition

    real = definition(Chain)

    class OldChain:
        name = real.name
        version = "0000000000000000"
        ir_json = real.ir_json
        bind = staticmethod(real.bind)

    return await client.start(OldChain(), "foreign", 1)


async def test_a_killed_workers_process_is_taken_over_and_instances_finish_once(
    pg_dsn: str, client: Client, spawn: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    # The victim runs alone until it holds actions (with two from the start, the other
    # may take every start and the victim never hold one); it is killed at once, while
    # the survivor is still starting up.
    victim = spawn(pg_dsn)
    ids = await _dispatcher_ids(pg_dsn, [victim])
    handles = [await client.start(Chain, f"c{k}", 3, -2, 0.5) for k in range(20)]
    held = "SELECT count(*) FROM rappelx_actions WHERE lease_owner = $1 AND status = 'running'"

    async def victim_busy() -> bool:
        return (await query(pg_dsn, held, ids[victim.pid]))[0]["count"] > 0

    await until(victim_busy)
    survivor = spawn(pg_dsn)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    lost = (await query(pg_dsn, held, ids[victim.pid]))[0]["count"]
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
    assert results == [chain_result(3)] * 20
    counts = all_executions()
    assert len(counts) == 60 and min(counts.values()) == 1
    # Only what the dead process had in hand ran twice.
    assert lost >= 1 and sum(c - 1 for c in counts.values()) <= lost
    seqs = await query(pg_dsn, "SELECT DISTINCT seq FROM rappelx_instances")
    assert [r["seq"] for r in seqs] == [4]
    assert await _stop(survivor) == 0


async def test_postgres_restart_mid_flight_loses_nothing(
    pg_dsn: str,
    client: Client,
    counters: Path,
    pg_restart: Callable[[], Awaitable[None]],
) -> None:
    async with workers(pg_dsn, [APP]):
        handles = [await client.start(Chain, f"r{k}", 3, -2, 0.3) for k in range(30)]
        await until(lambda: len(all_executions()) >= 20)
        await pg_restart()
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
    assert results == [chain_result(3)] * 30
    counts = all_executions()
    assert len(counts) == 90 and min(counts.values()) == 1
    seqs = await query(pg_dsn, "SELECT DISTINCT seq FROM rappelx_instances")
    assert [r["seq"] for r in seqs] == [4]
