"""The inspection API behind ``rappelx runs`` and ``rappelx db migrate``."""

from __future__ import annotations

import asyncio

import pytest

from rappelx.runtime._client import Client
from rappelx.runtime._runs import (
    describe_payload,
    list_runs,
    migrate_database,
    show_run,
    unknown_versions,
)
from rappelx.runtime._sql import migrations
from tests.integration.test_dispatcher import LINE, dispatcher

pytestmark = pytest.mark.postgres


async def test_migrate_database_applies_once(pg_empty_dsn: str) -> None:
    assert await migrate_database(pg_empty_dsn) == [m.id for m in migrations()]
    assert await migrate_database(pg_empty_dsn) == []


async def test_list_and_show_runs(pg_dsn: str) -> None:
    async with Client(pg_dsn) as client:
        async with dispatcher(pg_dsn):
            done = await client.start(LINE, 2, 1)
            assert await asyncio.wait_for(done.result(), 20) == 2 * (1 + 2)
        queued = await client.start(LINE, 1, 5)
    runs = await list_runs(pg_dsn)
    assert [(str(r.id), r.status) for r in runs] == [(queued.id, "pending"), (done.id, "completed")]
    assert [str(r.id) for r in await list_runs(pg_dsn, status="completed")] == [done.id]
    detail = await show_run(done.id, pg_dsn)
    assert detail is not None
    assert detail.summary.workflow == "Line" and detail.seq == 3
    assert describe_payload(detail.input) == "((2, 1), {})"
    assert describe_payload(detail.result) == "6"
    assert describe_payload(detail.error) == "-"
    assert [
        (a.action_id, a.attempt, a.status, describe_payload(a.result)) for a in detail.actions
    ] == [
        (0, 1, "completed", "2"),
        (1, 1, "completed", "4"),
    ]
    assert all(a.duration is not None and a.duration >= 0 for a in detail.actions)
    assert await show_run("00000000-0000-0000-0000-000000000000", pg_dsn) is None
    # No dispatcher is alive now, so the queued run's version is reported.
    assert [(r.workflow, r.instances) for r in await unknown_versions(pg_dsn)] == [("Line", 1)]


def test_describe_payload_of_an_undecodable_value() -> None:
    assert describe_payload(b"\xc1").startswith("<cannot decode in this process")
