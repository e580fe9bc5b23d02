"""Log lists through Postgres: chunk rows beside the state, and a crash in the middle.

``Collect`` appends each action's result to a list, which the engine keeps as a log
(``compiler/_appends.py``): each step writes one ``rappelx_state_logs`` row with the new
item, and the state itself stays the same size. A dispatcher that starts after a crash
has no cached states, so it reads every state back with its chunks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from rappelx.runtime._client import Client
from tests.integration._durable import workers
from tests.integration.conftest import APP
from tests.integration.durable_app import Collect, all_executions, executions
from tests.integration.test_faults import query, until

pytestmark = pytest.mark.postgres


async def test_each_step_adds_a_chunk_and_the_state_stays_small(
    pg_dsn: str, client: Client, counters: Path
) -> None:
    n = 40
    async with workers(pg_dsn, [APP], processes=1):
        handle = await client.start(Collect, "s", n, n - 1, 1.0)
        await until(lambda: executions(f"s-{n - 1}") == 1)
        rows = await query(
            pg_dsn,
            "SELECT log_id, start, octet_length(items) AS size FROM rappelx_state_logs "
            "WHERE instance_id = $1 ORDER BY start",
            uuid.UUID(handle.id),
        )
        (state,) = await query(
            pg_dsn,
            "SELECT octet_length(state) AS size, seq FROM rappelx_instances WHERE id = $1",
            uuid.UUID(handle.id),
        )
        assert await asyncio.wait_for(handle.result(), 30) == [2 * i for i in range(n)]
    # One chunk per item so far (39 results), each holding one small int.
    assert [(r["log_id"], r["start"]) for r in rows] == [(0, i) for i in range(n - 1)]
    assert max(r["size"] for r in rows) <= 4
    assert state["size"] < 400
    leftover = await query(
        pg_dsn, "SELECT count(*) FROM rappelx_state_logs WHERE instance_id = $1",
        uuid.UUID(handle.id),
    )  # fmt: skip
    assert leftover[0]["count"] == 0  # deleted with the instance's end


async def test_a_crashed_dispatcher_s_successor_reads_the_lists_back_from_their_chunks(
    pg_dsn: str, client: Client, spawn: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    n, count = 30, 8
    victim = spawn(pg_dsn)
    handles = [await client.start(Collect, f"c{k}", n, -2, 0.02) for k in range(count)]

    async def halfway() -> bool:
        rows = await query(pg_dsn, "SELECT count(*) FROM rappelx_state_logs")
        return rows[0]["count"] >= count * n // 3

    await until(halfway, 60)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    progress = await query(pg_dsn, "SELECT min(seq) AS low FROM rappelx_instances")
    successor = spawn(pg_dsn)
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
    assert results == [[2 * i for i in range(n)]] * count
    assert progress[0]["low"] > 1  # every instance was part-way through at the crash
    counts = all_executions()
    assert len(counts) == n * count and min(counts.values()) == 1
    successor.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(successor.wait, 30) == 0
