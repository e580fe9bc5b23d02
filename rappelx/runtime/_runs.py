"""Inspecting and maintaining the database, for the CLI (``rappelx runs``, ``db migrate``).

Each function opens a short-lived connection on ``dsn`` (``None``: the default database,
see :func:`rappelx.runtime._client.database_url`), does one job and closes it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from rappelx.exceptions import CodecError
from rappelx.runtime._codec import loads
from rappelx.runtime._pgstore import VersionReport
from rappelx.runtime._sql import migrate, query


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One line of ``rappelx runs list``."""

    id: uuid.UUID
    workflow: str
    version: str
    status: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ActionAttempt:
    """One attempt of one action call of a run."""

    action_id: int
    attempt: int
    name: str
    queue: str
    status: str
    infra_retries: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    result: bytes | None


@dataclass(frozen=True, slots=True)
class RunDetail:
    """Everything ``rappelx runs show`` prints: the run, its input and outcome, its actions.

    ``input``, ``result`` and ``error`` are codec payloads; :func:`describe_payload` turns
    them into text.
    """

    summary: RunSummary
    seq: int
    cancel_requested: bool
    input: bytes
    result: bytes | None
    error: bytes | None
    actions: list[ActionAttempt]


async def _connect(dsn: str | None) -> asyncpg.Connection:
    if dsn is None:
        from rappelx.runtime._client import database_url

        dsn = await asyncio.to_thread(database_url)
    return await asyncpg.connect(dsn)


async def migrate_database(dsn: str | None = None) -> list[int]:
    """Apply missing migrations; return the ids applied (empty when up to date)."""
    conn = await _connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def list_runs(
    dsn: str | None = None, *, status: str | None = None, limit: int = 50
) -> list[RunSummary]:
    """The newest runs, optionally only those with ``status``."""
    conn = await _connect(dsn)
    try:
        await migrate(conn)
        rows = await conn.fetch(query("list_instances"), status, limit)
    finally:
        await conn.close()
    return [_summary(r) for r in rows]


async def show_run(run_id: str | uuid.UUID, dsn: str | None = None) -> RunDetail | None:
    """One run with its action timeline; ``None`` when there is no such run."""
    instance_id = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id))
    conn = await _connect(dsn)
    try:
        await migrate(conn)
        row = await conn.fetchrow(query("instance_detail"), instance_id)
        actions = await conn.fetch(query("instance_actions"), instance_id) if row else []
    finally:
        await conn.close()
    if row is None:
        return None
    return RunDetail(
        summary=_summary(row),
        seq=row["seq"],
        cancel_requested=row["cancel_requested"],
        input=row["input"],
        result=row["result"],
        error=row["error"],
        actions=[ActionAttempt(**dict(a)) for a in actions],
    )


async def unknown_versions(dsn: str | None = None) -> list[VersionReport]:
    """Unfinished runs pinned to a version that no live ``rappelx workers`` has loaded."""
    conn = await _connect(dsn)
    try:
        await migrate(conn)
        rows = await conn.fetch(query("unknown_versions"))
    finally:
        await conn.close()
    return [VersionReport(r["workflow"], r["version"], r["instances"]) for r in rows]


def describe_payload(payload: bytes | None) -> str:
    """``repr`` of a decoded payload, or a note saying why it cannot be decoded here."""
    if payload is None:
        return "-"
    try:
        value: Any = loads(payload)
    except CodecError as exc:
        return f"<cannot decode in this process: {exc}>"
    if isinstance(value, BaseException):
        return f"{type(value).__qualname__}: {value}"
    return repr(value)


def _summary(row: Mapping[str, Any]) -> RunSummary:
    return RunSummary(
        id=row["id"],
        workflow=row["workflow"],
        version=row["version"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )
