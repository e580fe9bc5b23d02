"""The client: one shared LISTEN connection, timeouts, handles, the default client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from rappelx.runtime._client import (
    Client,
    InstanceNotFound,
    WorkflowStatus,
    close_default_client,
    default_client,
)
from tests.integration import durable_app
from tests.integration._durable import workers
from tests.integration.durable_app import Chain, chain_result
from tests.integration.test_dispatcher import LINE, dispatcher

pytestmark = pytest.mark.postgres


async def _listeners(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'rappelx-client-listen'"
        )
    finally:
        await conn.close()


async def test_every_waiter_shares_one_listen_connection(pg_dsn: str) -> None:
    async with Client(pg_dsn) as first, Client(pg_dsn) as second:
        handles = [await c.start(LINE, 1, k) for k in range(25) for c in (first, second)]
        waits = [asyncio.ensure_future(h.result()) for h in handles]
        await asyncio.sleep(0.3)
        assert not any(w.done() for w in waits)
        assert await _listeners(pg_dsn) == 1
        async with dispatcher(pg_dsn):
            results = await asyncio.wait_for(asyncio.gather(*waits), 30)
    assert results == [2 * k for k in range(25) for _ in range(2)]
    assert await _listeners(pg_dsn) == 0


async def test_result_timeout_leaves_the_instance_running(pg_dsn: str) -> None:
    async with Client(pg_dsn) as client:
        handle = await client.start(LINE, 1, 3)
        with pytest.raises(TimeoutError):
            await handle.result(timeout=0.2)
        assert await handle.status() == WorkflowStatus.PENDING
        async with dispatcher(pg_dsn):
            again = client.get_handle(handle.id)
            assert await asyncio.wait_for(again.result(), 20) == 6
        assert await again.status() == WorkflowStatus.COMPLETED


async def test_unknown_instance(pg_dsn: str) -> None:
    async with Client(pg_dsn) as client:
        handle = client.get_handle(uuid.uuid4())
        with pytest.raises(InstanceNotFound):
            await handle.status()
        with pytest.raises(InstanceNotFound):
            await handle.result(timeout=5)
        with pytest.raises(InstanceNotFound):
            await handle.cancel()


async def test_waiting_survives_a_postgres_restart(
    pg_dsn: str, pg_restart: Callable[[], Awaitable[None]]
) -> None:
    async with Client(pg_dsn) as client:
        handle = await client.start(LINE, 2, 1)
        waiting = asyncio.ensure_future(handle.result())
        await asyncio.sleep(0.2)
        await pg_restart()
        async with dispatcher(pg_dsn):
            assert await asyncio.wait_for(waiting, 30) == 2 * (1 + 2)


async def test_workflow_run_uses_the_default_client(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAPPELX_DATABASE_URL", pg_dsn)
    monkeypatch.setenv(durable_app.COUNTERS_ENV, str(tmp_path))
    try:
        async with workers(pg_dsn, ["tests.integration.durable_app"], processes=1):
            assert await asyncio.wait_for(Chain().run("d", 3), 30) == chain_result(3)
            handle = await Chain().start("e", 2)
            assert await asyncio.wait_for(handle.result(), 30) == chain_result(2)
        assert handle.workflow == "Chain"
        assert default_client() is default_client()
    finally:
        await close_default_client()
    assert durable_app.all_executions() == {"d-0": 1, "d-1": 1, "d-2": 1, "e-0": 1, "e-1": 1}
