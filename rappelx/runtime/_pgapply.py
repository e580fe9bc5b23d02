"""Advancing instances in Postgres: worker results and due work, a batch at a time.

:func:`apply_results` and :func:`advance_due` lock the instances of a batch, record
what happened, step the engine for each (``_pgsteps.advance``) and write the new
states, actions and timers with one ``apply_steps`` statement, in one transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
    advance,
    decode_result,
)
from rappelx.runtime._pgtypes import Applied, Claimed, Completion, StepContext
from rappelx.runtime._sql import query
from rappelx.runtime._state import Chunk, needs_logs

#: Most new actions one batch leases to its own dispatcher (more go through the queue).
_MAX_DIRECT_LEASES = 4096


async def apply_results(
    pool: asyncpg.Pool, completions: Sequence[Completion], ctx: StepContext
) -> Applied:
    """Record worker results and advance their instances.

    The results of instances whose current state this dispatcher has cached are
    stepped first and written in one statement (``apply_cached``: one round trip, one
    commit), which writes only the instances still at the cached seq with every lease
    current; the rest, and any it found changed, take :func:`_apply_locked`.
    """
    cached, others = _partition(completions, ctx)
    applied = Applied()
    if cached:
        plan = _Unlocked()
        for instance_id, reports in _by_instance(cached).items():
            plan.add(_cached_instance(instance_id, reports[0].version, ctx), reports=reports)
        applied, written = await _apply_if_current(pool, plan, ctx)
        others.extend(c for c in cached if c.instance_id not in written)
    if others:
        _merge(applied, await _apply_locked(pool, others, ctx))
    return applied


def _partition(
    completions: Sequence[Completion], ctx: StepContext
) -> tuple[list[Completion], list[Completion]]:
    """Split off the results of instances that can take the cached path."""
    states = ctx.states
    if states is None:
        return [], list(completions)
    unusable = {
        c.instance_id
        for c in completions
        if c.infra or c.version not in ctx.workflows or states.seq_of(c.instance_id) < 0
    }
    cached = [c for c in completions if c.instance_id not in unusable]
    return cached, [c for c in completions if c.instance_id in unusable]


def _by_instance(completions: list[Completion]) -> dict[uuid.UUID, list[Completion]]:
    grouped: dict[uuid.UUID, list[Completion]] = defaultdict(list)
    for c in completions:
        grouped[c.instance_id].append(c)
    return grouped


def _cached_instance(instance_id: uuid.UUID, version: str, ctx: StepContext) -> LockedInstance:
    """The instance as this dispatcher last wrote it (its state is in the cache)."""
    assert ctx.states is not None
    workflow = ctx.workflows[version]
    seq = ctx.states.seq_of(instance_id)
    return LockedInstance(instance_id, workflow.name, version, "running", None, None, False, seq)


@dataclass(slots=True)
class _Unlocked:
    """Instances to step without their locks, with what happened to each."""

    instances: dict[uuid.UUID, LockedInstance] = field(default_factory=dict)
    events: dict[uuid.UUID, list[Event]] = field(default_factory=lambda: defaultdict(list))
    reports: dict[uuid.UUID, list[Completion]] = field(default_factory=dict)
    fired: list[tuple[uuid.UUID, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.instances)

    def add(self, instance: LockedInstance, *, reports: Sequence[Completion] = ()) -> None:
        """Step ``instance`` with the results ``reports`` (events may follow)."""
        self.instances[instance.id] = instance
        self.reports[instance.id] = list(reports)
        self.events[instance.id].extend(
            decode_result(c.action_id, c.ok, c.payload) for c in reports
        )

    def fire(self, instance: LockedInstance, timer_id: int) -> None:
        """Step ``instance`` with its due timer ``timer_id`` (in due order)."""
        if instance.id not in self.instances:
            self.add(instance)
        self.events[instance.id].append(TimerFired(timer_id))
        self.fired.append((instance.id, timer_id))


async def _apply_if_current(
    pool: asyncpg.Pool, plan: _Unlocked, ctx: StepContext
) -> tuple[Applied, set[uuid.UUID]]:
    """Step the plan's instances, then write those still current; return which."""
    budget = ctx.grant.take(_MAX_DIRECT_LEASES) if ctx.grant is not None else 0
    batch = StepBatch(queues=ctx.queues, lease_budget=budget)
    for instance_id in sorted(plan.instances):
        instance = plan.instances[instance_id]
        workflow = ctx.workflows[instance.version]
        advance(instance, plan.events[instance_id], workflow, batch, ctx.states)
    if ctx.grant is not None:
        ctx.grant.give_back(batch.lease_budget)
    row = await pool.fetchrow(query("apply_if_current"), *_unlocked_params(batch, ctx, plan))
    written = set(row["applied"] or ())
    applied = Applied(advanced=len(written), next_due=batch.next_due)
    applied.cached = [entry for entry in batch.cached if entry[0] in written]
    applied.wake_queues = set(batch.wake_queues)
    if row["lease_ids"]:
        applied.leased = _direct_leases(batch, row)
    _remember(ctx, applied)
    return applied, written


def _unlocked_params(batch: StepBatch, ctx: StepContext, plan: _Unlocked) -> tuple[Any, ...]:
    """The 35 parameters of ``apply_if_current``, in order.

    Actions, timers and reports name their instance by its position in ``batch.ids``
    (from 1), which the statement looks up by subscript instead of a join.
    """
    a = batch.actions
    position = {instance_id: n for n, instance_id in enumerate(batch.ids, 1)}
    seqs = [plan.instances[i].seq for i in batch.ids]
    counts = [len(plan.reports[i]) for i in batch.ids]
    reports = [(n, c) for n, i in enumerate(batch.ids, 1) for c in plan.reports[i]]
    return (
        batch.ids, batch.statuses, batch.states, batch.results, batch.errors, seqs, counts,
        [position[x.instance_id] for x in a], [x.action_id for x in a],
        [x.attempt for x in a], [x.name for x in a], [x.queue for x in a],
        [x.version for x in a], [x.payload for x in a], [x.timeout for x in a],
        [x.lease for x in a], [x.delay for x in a],
        [position[i] for i in batch.timer_instances], batch.timer_ids,
        batch.timer_versions, batch.timer_delays,
        ctx.owner, ctx.grace, sorted(batch.wake_queues),
        [c.lease_id for _, c in reports], [n for n, _ in reports],
        [c.ok for _, c in reports], [c.payload for _, c in reports],
        [c.duration for _, c in reports],
        [position[i] for i, _ in plan.fired], [t for _, t in plan.fired],
        [position[i] for i in batch.chunk_instances], [c[0] for c in batch.chunks],
        [c[1] for c in batch.chunks], [c[2] for c in batch.chunks],
    )  # fmt: skip


def _merge(into: Applied, other: Applied) -> None:
    into.advanced += other.advanced
    into.leased.extend(other.leased)
    into.wake_queues |= other.wake_queues
    into.cached.extend(other.cached)
    if other.next_due is not None and (into.next_due is None or other.next_due < into.next_due):
        into.next_due = other.next_due


async def _apply_locked(
    pool: asyncpg.Pool, completions: Sequence[Completion], ctx: StepContext
) -> Applied:
    """Lock the instances, record the results, step and write, in one transaction."""
    ids = sorted({c.instance_id for c in completions})
    cached = [ctx.states.seq_of(i) if ctx.states is not None else -1 for i in ids]
    by_lease = {c.lease_id: c for c in completions}
    async with pool.acquire() as conn, conn.transaction():
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
        await _read_chunks(conn, locked.values())
        applied = await _step_and_write(conn, locked, events, ctx, wake=requeued)
    _remember(ctx, applied)
    return applied


async def advance_due(pool: asyncpg.Pool, ctx: StepContext, limit: int) -> Applied:
    """Advance instances with work found in the database.

    A dispatcher alone with its versions reads queued starts and due timers without
    locks, steps them and writes them with ``apply_if_current`` (two round trips);
    cancellation requests and actions lost past the retry cap, rarer, take
    :func:`_advance_locked`. Dispatchers that share versions take that path for all of
    it, so that SKIP LOCKED splits the work between them instead of each doing it all
    and all but one write being refused. ``Applied.more`` says a kind filled ``limit``:
    call again.
    """
    if not ctx.alone:
        return await _advance_locked(pool, ctx, limit)
    rows = await pool.fetch(query("find_due_work"), ctx.versions, limit)
    plan = _Unlocked()
    kinds: dict[str, int] = defaultdict(int)
    upcoming: float | None = None
    for r in rows:
        kinds[r["kind"]] += 1
        if r["kind"] == "start":
            plan.add(_unlocked_instance(r, "pending"))
        elif r["kind"] == "next":
            upcoming = r["next_due"]
    for r in sorted((r for r in rows if r["kind"] == "timer"), key=_due_key):
        plan.fire(plan.instances.get(r["id"]) or _unlocked_instance(r, "running"), r["timer_id"])
    applied = Applied()
    if plan:
        # Read without a lock, like the states: chunks are only ever added, and a state
        # reads only those up to the lengths it recorded, so a newer chunk is ignored
        # (and a write from a state that has moved on is refused by its seq anyway).
        await _read_chunks(pool, plan.instances.values())
        applied, _ = await _apply_if_current(pool, plan, ctx)
    more = kinds["start"] >= limit or kinds["timer"] >= limit
    if kinds["other"]:
        locked = await _advance_locked(pool, ctx, limit)
        _merge(applied, locked)
        more = more or locked.more
    applied.more = more
    if upcoming is not None and (applied.next_due is None or upcoming < applied.next_due):
        applied.next_due = upcoming
    return applied


def _unlocked_instance(row: Mapping[str, Any], status: str) -> LockedInstance:
    """An instance as ``find_due_work`` read it (not locked: its seq is checked on write)."""
    return LockedInstance.from_row({**row, "status": status, "cancel_requested": False})


async def _advance_locked(pool: asyncpg.Pool, ctx: StepContext, limit: int) -> Applied:
    """Lock instances with any work found in the database, step and write them."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(query("lock_due_work"), ctx.versions, limit)
        locked: dict[uuid.UUID, LockedInstance] = {}
        upcoming: float | None = None
        for r in rows:
            if r["kind"] == "instance":
                locked.setdefault(r["id"], LockedInstance.from_row(r))
            else:
                upcoming = r["next_due"]
        events = await _due_events(conn, locked)
        await _read_chunks(conn, locked.values())
        applied = await _step_and_write(conn, locked, events, ctx)
    _remember(ctx, applied)
    applied.more = len(rows) - 1 >= limit
    if upcoming is not None and (applied.next_due is None or upcoming < applied.next_due):
        applied.next_due = upcoming
    return applied


def _remember(ctx: StepContext, applied: Applied) -> None:
    """Cache the states of a batch that has committed."""
    if ctx.states is not None:
        ctx.states.put_all(applied.cached)


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


async def _read_chunks(
    conn: asyncpg.Connection | asyncpg.Pool, instances: Iterable[LockedInstance]
) -> None:
    """Give the instances whose states refer to logs their chunks (one query, if any)."""
    wanted = {i.id: i for i in instances if i.state is not None and needs_logs(i.state)}
    if not wanted:
        return
    chunks: dict[uuid.UUID, list[Chunk]] = {i: [] for i in wanted}
    for row in await conn.fetch(query("state_chunks"), list(wanted)):
        chunks[row["instance_id"]].append((row["log_id"], row["start"], row["items"]))
    for instance_id, instance in wanted.items():
        instance.chunks = chunks[instance_id]


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
                    action.timeout, action.version)
        )  # fmt: skip
    return claimed
