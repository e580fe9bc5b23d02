"""The Postgres store: every read and write rappelx makes, one method per operation.

Each method runs named queries from ``sql/queries.sql``. The two that advance instances
(:meth:`PgStore.apply_results`, :meth:`PgStore.advance_due`) live in ``_pgapply.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg

from rappelx.runtime._pgapply import advance_due, apply_results
from rappelx.runtime._pgtypes import (
    STEP_SETTINGS,
    TRANSIENT_ERRORS,
    Applied,
    Claimed,
    Completion,
    LeaseGrant,
    NewInstance,
    Outcome,
    StepContext,
    VersionReport,
)
from rappelx.runtime._sql import migrate, query

__all__ = [
    "STEP_SETTINGS",
    "TRANSIENT_ERRORS",
    "Applied",
    "Claimed",
    "Completion",
    "LeaseGrant",
    "NewInstance",
    "Outcome",
    "PgStore",
    "StepContext",
    "VersionReport",
]


class PgStore:
    """rappelx's tables, reached through an ``asyncpg`` pool.

    Args:
        pool: The connection pool; :meth:`connect` makes one and migrates the database.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        application_name: str = "rappelx",
        settings: Mapping[str, str] | None = None,
    ) -> PgStore:
        """Open a pool on ``dsn`` and apply any missing migrations.

        Args:
            dsn: The database.
            min_size: Connections kept open.
            max_size: Most connections open at once.
            application_name: How the connections show in ``pg_stat_activity``.
            settings: Session settings of every connection (see :data:`STEP_SETTINGS`).
        """
        # No reset on release: rappelx keeps no session state on pooled connections,
        # and the reset would cost a round trip per transaction.
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            reset=_no_reset,
            server_settings={**(settings or {}), "application_name": application_name},
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()

    # ------------------------------------------------------------------ client side
    async def insert_instances(self, instances: Sequence[NewInstance]) -> None:
        """Queue new instances, in one statement (and one commit)."""
        versions = {(i.workflow, i.version): i.ir_json for i in instances}
        await self._pool.execute(
            query("insert_instances"),
            [i.id for i in instances], [i.workflow for i in instances],
            [i.version for i in instances], [i.input for i in instances],
            [name for name, _ in versions], [version for _, version in versions],
            list(versions.values()),
        )  # fmt: skip

    async def outcomes(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Outcome]:
        """The status, and result or error, of those of ``ids`` that exist."""
        rows = await self._pool.fetch(query("instance_outcomes"), list(ids))
        return {r["id"]: Outcome(r["status"], r["result"], r["error"]) for r in rows}

    async def outcome(self, instance_id: uuid.UUID) -> Outcome | None:
        """The instance's status and result or error; ``None`` if there is no such one."""
        row = await self._pool.fetchrow(query("instance_outcome"), instance_id)
        return Outcome(row["status"], row["result"], row["error"]) if row else None

    async def finished_outcomes(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Outcome]:
        """The outcomes of those of ``ids`` that have finished."""
        rows = await self._pool.fetch(query("finished_outcomes"), list(ids))
        return {r["id"]: Outcome(r["status"], r["result"], r["error"]) for r in rows}

    async def request_cancel(self, instance_id: uuid.UUID) -> bool:
        """Ask for the instance to stop; ``False`` if it is unknown or finished."""
        row = await self._pool.fetchrow(query("request_cancel"), instance_id)
        return row is not None

    # -------------------------------------------------------------- dispatcher rows
    async def register(
        self,
        owner: uuid.UUID,
        hostname: str,
        pid: int,
        queues: Iterable[str],
        versions: Iterable[str],
        lease: float,
    ) -> int:
        """Announce a live dispatcher; return how many others share some of its versions."""
        peers: int = await self._pool.fetchval(
            query("register_dispatcher"), owner, hostname, pid, list(queues), list(versions),
            lease,
        )  # fmt: skip
        return peers

    async def heartbeat(self, owner: uuid.UUID, lease: float) -> int | None:
        """Extend the dispatcher's lease; return how many others share some of its
        versions, or ``None`` when its row has disappeared."""
        peers: int | None = await self._pool.fetchval(query("heartbeat"), owner, lease)
        return peers

    async def unregister(self, owner: uuid.UUID) -> None:
        """Remove the dispatcher's row."""
        await self._pool.execute(query("unregister_dispatcher"), owner)

    # ------------------------------------------------------------------- leases
    async def claim(self, ctx: StepContext, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` ready actions of the context's queues and versions."""
        rows = await self._pool.fetch(
            query("claim_actions"), list(ctx.queues), ctx.versions, limit, ctx.owner, ctx.grace
        )
        return [_claimed(r) for r in rows]

    async def hand_back(self, owner: uuid.UUID, lease_ids: Sequence[int]) -> None:
        """Put claimed attempts that found no free slot back in the queue, unchanged."""
        await self._pool.execute(query("hand_back_claims"), owner, list(lease_ids))

    async def reclaim_lost(self, ctx: StepContext) -> set[str]:
        """Take back actions whose lease was lost; return the queues of those taken."""
        rows = await self._pool.fetch(query("reclaim_lost"), ctx.versions, ctx.infra_cap)
        return {r["queue"] for r in rows}

    async def release_orphans(
        self, owner: uuid.UUID, tracked: Iterable[int], min_age: float
    ) -> set[str]:
        """Put back our leases we do not track (an unknown commit outcome left them)."""
        rows = await self._pool.fetch(query("release_orphans"), owner, list(tracked), min_age)
        return {r["queue"] for r in rows}

    async def release_leases(self, owner: uuid.UUID) -> set[str]:
        """Put back every action still leased to ``owner``; return their queues."""
        rows = await self._pool.fetch(query("release_leases"), owner)
        return {r["queue"] for r in rows}

    async def notify_ready(self, queues: Iterable[str]) -> None:
        """Wake the dispatchers serving ``queues``."""
        await self._pool.execute(query("notify_ready"), sorted(queues))

    # ----------------------------------------------------------- advancing instances
    async def apply_results(self, completions: Sequence[Completion], ctx: StepContext) -> Applied:
        """Record worker results and advance their instances (see :func:`apply_results`)."""
        return await apply_results(self._pool, completions, ctx)

    async def advance_due(self, ctx: StepContext, limit: int) -> Applied:
        """Advance instances with work found in the database (see :func:`advance_due`)."""
        return await advance_due(self._pool, ctx, limit)

    # ------------------------------------------------------------------ reports
    async def unknown_versions(self) -> list[VersionReport]:
        """Unfinished instances pinned to versions no live dispatcher has loaded."""
        rows = await self._pool.fetch(query("unknown_versions"))
        return [VersionReport(r["workflow"], r["version"], r["instances"]) for r in rows]

    async def foreign_versions(
        self, workflows: Iterable[str], versions: Iterable[str]
    ) -> list[VersionReport]:
        """Unfinished instances of ``workflows`` pinned to versions not in ``versions``."""
        rows = await self._pool.fetch(query("foreign_versions"), list(workflows), list(versions))
        return [VersionReport(r["workflow"], r["version"], r["instances"]) for r in rows]


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


def _claimed(row: Mapping[str, Any]) -> Claimed:
    return Claimed(
        lease_id=row["lease_id"],
        instance_id=row["instance_id"],
        action_id=row["action_id"],
        attempt=row["attempt"],
        name=row["name"],
        payload=row["payload"],
        timeout=row["timeout"],
        version=row["version"],
    )
