"""The Postgres store: every read and write rappelx makes, one method per operation.

Each method runs named queries from ``sql/queries.sql``. The two that advance instances
(:meth:`PgStore.apply_results`, :meth:`PgStore.advance_due`) are one transaction per
batch: lock the instances, record what happened, step the engine for each, write the
new states, actions and timers with one ``apply_steps`` statement.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

from rappelx.exceptions import ActionTimeout
from rappelx.runtime._events import ActionFailed, Cancelled, Event, TimerFired
from rappelx.runtime._pgsteps import (
    ActionLost,
    LockedInstance,
    StateCache,
    StepBatch,
    WorkflowLike,
    advance,
    decode_result,
)
from rappelx.runtime._sql import migrate, query

#: Most new actions one batch leases to its own dispatcher (more go through the queue).
_MAX_DIRECT_LEASES = 4096

#: Session settings for connections that advance instances. Every statement there
#: reaches a handful of rows by key through an index, so a sequential scan is never the
#: right plan; but on a young table whose statistics lag behind its growth the planner
#: picks one, and a cached generic plan keeps it while the table grows to millions of
#: rows. Without sequential scans, the planner has no cost worth compiling with JIT.
STEP_SETTINGS: Mapping[str, str] = {"enable_seqscan": "off", "jit": "off"}

#: Errors after which an operation is worth retrying on a fresh connection.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TransactionRollbackError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """An instance's status and, once finished, its encoded result or error."""

    status: str
    result: bytes | None
    error: bytes | None


@dataclass(frozen=True, slots=True)
class NewInstance:
    """An instance to queue: its workflow version (with the IR) and encoded input."""

    id: uuid.UUID
    workflow: str
    version: str
    ir_json: str
    input: bytes


@dataclass(frozen=True, slots=True)
class Claimed:
    """An action attempt leased to this dispatcher; ``lease_id`` is the pool token."""

    lease_id: int
    instance_id: uuid.UUID
    action_id: int
    attempt: int
    name: str
    payload: bytes
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Completion:
    """What a worker reported for the lease ``lease_id``."""

    lease_id: int
    instance_id: uuid.UUID
    ok: bool
    payload: bytes
    duration: float
    infra: bool


class LeaseGrant:
    """Free worker slots that one batch may lease to its dispatcher.

    A batch takes slots only once it knows how many it can use (after its instances are
    stepped), so concurrent batches of one dispatcher do not starve each other by
    setting aside slots they never fill. Slots taken stay held until the dispatcher has
    submitted what the batch leased, then :meth:`release` frees them.

    Args:
        free: How many slots are free right now, net of those held by every grant.
        hold: Adds its argument (negative to free) to the slots held by every grant.
    """

    __slots__ = ("_free", "_hold", "taken")

    def __init__(self, free: Callable[[], int], hold: Callable[[int], None]) -> None:
        self._free = free
        self._hold = hold
        self.taken = 0

    def take(self, wanted: int) -> int:
        """Hold up to ``wanted`` free slots; return how many were granted."""
        granted = max(0, min(wanted, self._free()))
        self._hold(granted)
        self.taken += granted
        return granted

    def give_back(self, unused: int) -> None:
        """Free ``unused`` of the slots this grant took."""
        unused = min(unused, self.taken)
        self._hold(-unused)
        self.taken -= unused

    def release(self) -> None:
        """Free every slot this grant still holds."""
        self.give_back(self.taken)


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a dispatcher brings to a batch.

    Attributes:
        owner: The dispatcher's id, the owner of leases it takes.
        workflows: Compiled workflows by version; only these instances are advanced.
        queues: Queues it serves.
        grace: Seconds past an action's timeout before its lease counts as lost.
        infra_cap: Losses of one attempt before it fails with :class:`ActionLost`.
        grant: Where the batch takes worker slots for the new runnable actions it
            leases to its dispatcher at once; ``None`` leases nothing.
        states: Its cache of engine states, if it keeps one.
    """

    owner: uuid.UUID
    workflows: Mapping[str, WorkflowLike]
    queues: frozenset[str]
    grace: float
    infra_cap: int
    grant: LeaseGrant | None = None
    states: StateCache | None = None

    @property
    def versions(self) -> list[str]:
        """The versions this dispatcher can advance."""
        return list(self.workflows)


@dataclass(slots=True)
class Applied:
    """What a batch did, for the dispatcher's bookkeeping."""

    advanced: int = 0
    leased: list[Claimed] = field(default_factory=list)
    wake_queues: set[str] = field(default_factory=set)
    next_due: float | None = None
    more: bool = False
    cached: list[tuple[uuid.UUID, int, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VersionReport:
    """Unfinished instances pinned to a version that nobody (or not we) can advance."""

    workflow: str
    version: str
    instances: int


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
    ) -> None:
        """Announce a live dispatcher."""
        await self._pool.execute(
            query("register_dispatcher"), owner, hostname, pid, list(queues), list(versions),
            lease,
        )  # fmt: skip

    async def heartbeat(self, owner: uuid.UUID, lease: float) -> bool:
        """Extend the dispatcher's lease; ``False`` when its row has disappeared."""
        return await self._pool.fetchval(query("heartbeat"), owner, lease) is not None

    async def unregister(self, owner: uuid.UUID) -> None:
        """Remove the dispatcher's row."""
        await self._pool.execute(query("unregister_dispatcher"), owner)

    # ------------------------------------------------------------------- leases
    async def claim(self, ctx: StepContext, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` ready actions of the context's queues and versions.

        The caller has set aside ``limit`` worker slots for them.
        """
        rows = await self._pool.fetch(
            query("claim_actions"), list(ctx.queues), ctx.versions, limit, ctx.owner, ctx.grace
        )
        return [_claimed(r) for r in rows]

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
        """Record worker results and advance their instances, in one transaction."""
        ids = sorted({c.instance_id for c in completions})
        cached = [ctx.states.seq_of(i) if ctx.states is not None else -1 for i in ids]
        by_lease = {c.lease_id: c for c in completions}
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                query("lock_and_record"), ids,
                [c.lease_id for c in completions], [c.ok for c in completions],
                [c.payload for c in completions], [c.duration for c in completions],
                [c.infra for c in completions], ctx.infra_cap, cached,
            )  # fmt: skip
            locked = {r["id"]: LockedInstance.from_row(r) for r in rows if r["kind"] == "instance"}
            events: dict[uuid.UUID, list[Event]] = defaultdict(list)
            requeued: set[str] = set()
            for r in rows:
                if r["kind"] != "result":
                    continue
                if r["status"] == "ready":
                    requeued.add(r["queue"])
                else:
                    events[r["id"]].append(_reported_event(r, by_lease[r["lease_id"]]))
            await _load_uncached_states(conn, locked, ctx.states)
            applied = await _step_and_write(conn, locked, events, ctx, wake=requeued)
        _remember(ctx, applied)
        return applied

    async def advance_due(self, ctx: StepContext, limit: int) -> Applied:
        """Advance instances with work found in the database, in one transaction.

        That work is: queued starts, cancellation requests, due timers and actions lost
        past the retry cap. ``Applied.more`` says a kind filled ``limit``: call again.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(query("lock_due_work"), ctx.versions, limit)
            locked: dict[uuid.UUID, LockedInstance] = {}
            upcoming: float | None = None
            for r in rows:
                if r["kind"] == "instance":
                    locked.setdefault(r["id"], LockedInstance.from_row(r))
                else:
                    upcoming = r["next_due"]
            events = await _due_events(conn, locked)
            applied = await _step_and_write(conn, locked, events, ctx)
        _remember(ctx, applied)
        applied.more = len(rows) - 1 >= limit
        if upcoming is not None and (applied.next_due is None or upcoming < applied.next_due):
            applied.next_due = upcoming
        return applied

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


def _remember(ctx: StepContext, applied: Applied) -> None:
    """Cache the states of a batch that has committed."""
    if ctx.states is not None:
        ctx.states.put_all(applied.cached)


def _claimed(row: Mapping[str, Any]) -> Claimed:
    return Claimed(
        lease_id=row["lease_id"],
        instance_id=row["instance_id"],
        action_id=row["action_id"],
        attempt=row["attempt"],
        name=row["name"],
        payload=row["payload"],
        timeout=row["timeout"],
    )


def _reported_event(row: Mapping[str, Any], completion: Completion) -> Event:
    """The event for a recorded result (a ``lock_and_record`` row of kind 'result')."""
    if completion.infra:
        return _lost_event(row["action_id"], row["attempt"], row["infra_retries"], row["id"])
    return decode_result(row["action_id"], completion.ok, completion.payload)


def _lost_event(action_id: int, attempt: int, losses: int, instance_id: uuid.UUID) -> Event:
    return ActionFailed(
        action_id,
        ActionLost(
            f"attempt {attempt} of action {action_id} of instance {instance_id} lost its "
            f"worker or dispatcher {losses} times; giving up on it. The action probably "
            "crashes its worker process (see the worker logs)."
        ),
    )


def _stranded_event(row: Mapping[str, Any]) -> Event:
    if row["was"] == "lost":
        return _lost_event(
            row["action_id"], row["attempt"], row["infra_retries"], row["instance_id"]
        )
    return ActionFailed(
        row["action_id"],
        ActionTimeout(
            f"action {row['name']} ran past its timeout of {row['timeout']}s and its worker "
            "did not stop it (a blocking call in an async action?); the attempt timed out"
        ),
    )


async def _load_uncached_states(
    conn: asyncpg.Connection,
    locked: dict[uuid.UUID, LockedInstance],
    states: StateCache | None,
) -> None:
    """Read the states ``lock_and_record`` left out for a cache entry gone meanwhile.

    The row leaves its state out when the cache held it at the row's seq; a batch that
    took the entry and then rolled back (it only puts entries back on commit) leaves
    neither. The instance is locked, so the state read here is current.
    """
    missing = [
        i.id
        for i in locked.values()
        if i.status == "running" and i.state is None
        and (states is None or states.seq_of(i.id) != i.seq)
    ]  # fmt: skip
    if not missing:
        return
    for row in await conn.fetch(query("instance_states"), missing):
        locked[row["id"]] = replace(locked[row["id"]], state=row["state"])


async def _due_events(
    conn: asyncpg.Connection, locked: Mapping[uuid.UUID, LockedInstance]
) -> dict[uuid.UUID, list[Event]]:
    events: dict[uuid.UUID, list[Event]] = defaultdict(list)
    running = [i for i, inst in locked.items() if inst.status == "running"]
    if running:
        timers = await conn.fetch(query("take_due_timers"), running)
        for t in sorted(timers, key=_due_key):
            events[t["instance_id"]].append(TimerFired(t["timer_id"]))
        for lost in await conn.fetch(query("take_lost_actions"), running):
            events[lost["instance_id"]].append(_stranded_event(lost))
    for instance_id, instance in locked.items():
        if instance.cancel_requested:
            events[instance_id].append(Cancelled())
        elif instance.status == "pending":
            events.setdefault(instance_id, [])
    return events


def _due_key(row: Mapping[str, Any]) -> tuple[datetime, int]:
    return row["due_at"], row["timer_id"]


async def _step_and_write(
    conn: asyncpg.Connection,
    locked: Mapping[uuid.UUID, LockedInstance],
    events: Mapping[uuid.UUID, list[Event]],
    ctx: StepContext,
    *,
    wake: set[str] | frozenset[str] = frozenset(),
) -> Applied:
    """Step every instance with events and write the batch; also wake ``wake`` queues."""
    # Slots are taken now and the unused ones handed back before the next await, so
    # concurrent batches only ever hold what they lease.
    budget = ctx.grant.take(_MAX_DIRECT_LEASES) if ctx.grant is not None else 0
    batch = StepBatch(queues=ctx.queues, lease_budget=budget)
    batch.wake_queues |= wake
    for instance_id, instance_events in events.items():
        instance = locked[instance_id]
        workflow = ctx.workflows.get(instance.version)
        if workflow is None or workflow.name != instance.workflow:
            # Claims are filtered by version, so only a hash shared by two workflows
            # gets here; leave such an instance to a process that has it.
            continue
        advance(instance, instance_events, workflow, batch, ctx.states)
    if ctx.grant is not None:
        ctx.grant.give_back(batch.lease_budget)
    applied = Applied(advanced=len(batch.ids), next_due=batch.next_due, cached=batch.cached)
    applied.wake_queues = set(batch.wake_queues)
    if not batch:
        if wake:
            await conn.execute(query("notify_ready"), sorted(wake))
        return applied
    row = await conn.fetchrow(query("apply_steps"), *batch.params(ctx.owner, ctx.grace))
    if row["lease_ids"]:
        applied.leased = _direct_leases(batch, row)
    return applied


def _direct_leases(batch: StepBatch, row: Mapping[str, Any]) -> list[Claimed]:
    by_key = {(a.instance_id, a.action_id, a.attempt): a for a in batch.actions if a.lease}
    leases = zip(
        row["lease_ids"], row["lease_instances"], row["lease_actions"], row["lease_attempts"],
        strict=True,
    )  # fmt: skip
    claimed = []
    for lease_id, instance_id, action_id, attempt in leases:
        action = by_key[(instance_id, action_id, attempt)]
        claimed.append(
            Claimed(lease_id, instance_id, action_id, attempt, action.name, action.payload,
                    action.timeout)
        )  # fmt: skip
    return claimed
