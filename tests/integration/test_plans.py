"""Instance rows wanted by id are found by their key, whatever the statistics say.

Autovacuum analyzes a table tens of seconds after it grows. Until then the planner
believes what it last saw: here, a few hundred instances, all completed. Asked for
``id = x AND status = 'running'``, it may then walk the status index over every running
instance for each id instead of probing the primary key; with 100,000 sleepers that
made each dispatcher tick take eight seconds. These tests build that situation (stale
statistics, autovacuum off so it stays stale) and read the plans Postgres picks, custom
and generic, for each query that looks instances up by id.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from rappelx.runtime._sql import query

pytestmark = pytest.mark.postgres

WORKFLOW, VERSION = "tests.plans.Sleeper", "v1"
#: Instances the statistics know about (all completed) and instances they do not.
ANALYZED, RUNNING = 300, 20_000
#: Instances each probing query is asked about.
BATCH = 50
#: A condition on an instance's id, as EXPLAIN prints it.
_ID_CONDITION = re.compile(r"\bid = ")


@pytest.fixture
async def stale(pg_dsn: str) -> AsyncIterator[tuple[asyncpg.Connection, list[uuid.UUID]]]:
    """A connection to a database whose statistics predate its running instances."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        for table in ("rappelx_instances", "rappelx_timers", "rappelx_actions"):
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        await conn.execute(
            "INSERT INTO rappelx_workflow_versions (name, version, ir) VALUES ($1, $2, '{}')",
            WORKFLOW, VERSION,
        )  # fmt: skip
        await _insert(conn, ANALYZED, "completed")
        await conn.execute("ANALYZE rappelx_instances, rappelx_timers, rappelx_actions")
        await _insert(conn, RUNNING, "running")
        await conn.execute(
            "INSERT INTO rappelx_timers (instance_id, timer_id, version, due_at) "
            "SELECT id, 1, version, now() - interval '1 second' FROM rappelx_instances "
            "WHERE status = 'running'"
        )
        rows = await conn.fetch(
            "SELECT id FROM rappelx_instances WHERE status = 'running' ORDER BY id LIMIT $1",
            BATCH,
        )
        yield conn, [r["id"] for r in rows]
    finally:
        await conn.close()


async def _insert(conn: asyncpg.Connection, count: int, status: str) -> None:
    await conn.execute(
        "INSERT INTO rappelx_instances (id, workflow, version, input, status) "
        "SELECT gen_random_uuid(), $1, $2, '\\x'::bytea, $3 FROM generate_series(1, $4)",
        WORKFLOW, VERSION, status, count,
    )  # fmt: skip


def _arguments(name: str, ids: list[uuid.UUID]) -> list[Any]:
    n = len(ids)
    if name in ("find_due_work", "lock_due_work"):
        return [[VERSION], 1000]
    if name in ("finished_outcomes", "instance_outcomes", "instance_states"):
        return [ids]
    if name == "request_cancel":
        return [ids[0]]
    if name == "cancel_pending":
        return [ids, b"error"]
    if name == "lock_and_record":
        return [ids, [], [], [], [], [], 5, [-1] * n]
    if name == "apply_if_current":
        instances = [ids, ["running"] * n, [b""] * n, [None] * n, [None] * n, [0] * n, [0] * n]
        actions: list[Any] = [[]] * 10
        timers: list[Any] = [[]] * 4
        context: list[Any] = [uuid.uuid4(), 5.0, []]
        reports: list[Any] = [[]] * 7
        chunks: list[Any] = [[]] * 4
        return instances + actions + timers + context + reports + chunks
    raise AssertionError(f"no arguments for {name}")


PROBING = [
    "find_due_work",
    "lock_due_work",
    "finished_outcomes",
    "instance_outcomes",
    "instance_states",
    "request_cancel",
    "cancel_pending",
    "lock_and_record",
    "apply_if_current",
]


def _scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if plan.get("Relation Name") == "rappelx_instances":
        yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


def _by_id(scan: dict[str, Any]) -> bool:
    conditions = (scan.get(k, "") for k in ("Index Cond", "Recheck Cond", "Filter"))
    return any(_ID_CONDITION.search(c) for c in conditions)


def _indexes(scan: dict[str, Any]) -> set[str]:
    """The indexes a scan reads: its own, or its bitmap's."""
    if "Index Name" in scan:
        return {scan["Index Name"]}
    return {i for child in scan.get("Plans", []) for i in _indexes(child)}


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("name", PROBING)
async def test_instances_wanted_by_id_are_probed_by_key(
    stale: tuple[asyncpg.Connection, list[uuid.UUID]], name: str, mode: str
) -> None:
    conn, ids = stale
    await conn.execute(f"SET plan_cache_mode = {mode}")
    text = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query(name)}", *_arguments(name, ids))
    probes = [s for s in _scans(json.loads(text)[0]["Plan"]) if _by_id(s)]
    assert probes, f"{name}: the plan reads no instance by id"
    for scan in probes:
        found = (scan["Node Type"], _indexes(scan), scan.get("Filter"))
        assert _indexes(scan) == {"rappelx_instances_pkey"}, (name, found)
        assert not _ID_CONDITION.search(scan.get("Filter", "")), (name, found)
