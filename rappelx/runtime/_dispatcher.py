"""The dispatcher: moves work between Postgres and a worker pool.

Four loops share one store and one executor (normally a :class:`WorkerPool`):

- *claim*: leases ready actions in batches (``FOR UPDATE SKIP LOCKED``) when woken by a
  NOTIFY, a local event or the polling fallback, and submits them to the executor;
- *apply*: takes every result that came back since its last turn and applies them in
  one transaction; newly runnable actions of those instances are leased in the same
  statement and submitted at once;
- *tick*: starts queued instances, delivers cancellations, fires due timers and gives
  up on actions lost too often;
- *upkeep*: heartbeats, reclaims leases that other (dead) dispatchers lost, returns
  orphaned leases, reports instances pinned to versions this process lacks.

Database errors that a reconnect can cure are retried with backoff; results stay in
memory until the transaction that applies them commits, so a Postgres restart loses
nothing (a lease that expired meanwhile is re-run by whoever reclaims it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from rappelx.exceptions import RappelxError
from rappelx.runtime._applier import Applier
from rappelx.runtime._listen import Listener
from rappelx.runtime._pgsteps import StateCache, WorkflowLike
from rappelx.runtime._pgstore import (
    STEP_SETTINGS,
    TRANSIENT_ERRORS,
    Applied,
    Claimed,
    Completion,
    LeaseGrant,
    PgStore,
    StepContext,
)
from rappelx.runtime._pool import Task, TaskResult
from rappelx.runtime._wakeups import Wakeups

_log = logging.getLogger("rappelx.dispatcher")
T = TypeVar("T")

ResultCallback = Callable[[list[TaskResult]], None]
#: Seconds ahead within which a dispatcher wakes itself for timers it scheduled.
_LOCAL_WAKE_HORIZON = 60.0


class DispatcherError(RappelxError):
    """The dispatcher cannot go on (the cause says why)."""


class Executor(Protocol):
    """What the dispatcher needs from a worker pool (see :class:`WorkerPool`)."""

    @property
    def capacity(self) -> int: ...

    @property
    def in_flight(self) -> int: ...

    async def start(self) -> None: ...

    def submit(self, tasks: Sequence[Task]) -> None: ...

    async def drain(self, timeout: float | None = None) -> None: ...

    async def close(self) -> None: ...


ExecutorFactory = Callable[[ResultCallback], Executor]


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherConfig:
    """Tuning of a dispatcher; the defaults suit production.

    Attributes:
        queues: Queues whose actions this dispatcher runs.
        batch_size: Most actions claimed, or results applied, per transaction.
        apply_concurrency: Most transactions applying results at once (on disjoint
            instances); concurrent commits share the log flushes.
        lease: Seconds a dispatcher stays alive without a heartbeat; after that its
            running actions are reclaimed by others.
        grace: Seconds past an action's timeout before its lease is presumed lost.
        poll_interval: Longest sleep between looks at the database without a NOTIFY.
        infra_cap: Times one attempt may lose its worker before it fails.
        drain_timeout: Seconds a stopping dispatcher waits for running actions.
        report_interval: Seconds between reports of instances it cannot advance.
    """

    queues: tuple[str, ...] = ("default",)
    batch_size: int = 512
    apply_concurrency: int = 3
    lease: float = 15.0
    grace: float = 10.0
    poll_interval: float = 1.0
    infra_cap: int = 50
    drain_timeout: float = 30.0
    report_interval: float = 60.0


class Dispatcher:
    """Advances the instances of ``workflows`` stored in the database at ``dsn``.

    Args:
        dsn: The database.
        executor_factory: Builds the executor, given the callback for its results.
        workflows: Compiled workflows by version; instances of other versions are left
            untouched and reported.
        config: Tuning.
    """

    def __init__(
        self,
        dsn: str,
        executor_factory: ExecutorFactory,
        workflows: Mapping[str, WorkflowLike],
        config: DispatcherConfig | None = None,
    ) -> None:
        self.id = uuid.uuid4()
        self._dsn = dsn
        self._factory = executor_factory
        self._config = config or DispatcherConfig()
        self._ctx = StepContext(
            owner=self.id,
            workflows=dict(workflows),
            queues=frozenset(self._config.queues),
            grace=self._config.grace,
            infra_cap=self._config.infra_cap,
            states=StateCache(),
        )
        self._inflight: dict[int, Claimed] = {}
        self._applier = Applier(
            self._apply_batch,
            self._instance_of,
            batch_size=self._config.batch_size,
            concurrency=self._config.apply_concurrency,
        )
        self._claim_wake = asyncio.Event()
        self._queue_waiting = False  # ready work was announced that we had no slots for
        self._wakeups = Wakeups(self._wake_all, horizon=_LOCAL_WAKE_HORIZON)
        self._tick_wake = asyncio.Event()
        self._reserved = 0
        self._draining = False  # stopping: lease nothing new, let running actions finish
        self._store: PgStore | None = None
        self._executor: Executor | None = None
        self.ready = asyncio.Event()

    # ------------------------------------------------------------------- lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set, then drain, release leases and return."""
        # A connection per concurrent apply, plus the claim, tick and upkeep loops.
        size = self._config.apply_concurrency + 3
        self._store = await self._retrying(
            lambda: PgStore.connect(
                self._dsn,
                max_size=size,
                application_name="rappelx-dispatcher",
                settings=STEP_SETTINGS,
            )
        )
        try:
            self._executor = self._factory(self._on_results)
            try:
                await self._executor.start()
                await self._main(self._store, self._executor, stop)
            finally:
                await self._executor.close()  # already closed after a clean shutdown
        finally:
            await self._store.close()

    async def _main(self, store: PgStore, executor: Executor, stop: asyncio.Event) -> None:
        await self._register(store)
        listener = Listener(
            self._dsn,
            {"rappelx_actions": self._on_ready_queue, "rappelx_instances": self._on_instance},
            on_connect=self._wake_all,
            application_name="rappelx-dispatcher-listen",
        )
        await listener.start(wait=False)
        loops = [self._claim_loop(), self._tick_loop(), self._upkeep_loop()]
        feeders = [asyncio.create_task(c) for c in loops]
        applier = asyncio.create_task(self._applier.run())
        self.ready.set()
        _log.info("dispatcher %s serving queues %s", self.id, ",".join(self._config.queues))
        try:
            await _until_stopped(stop, [*feeders, applier])
        finally:
            await _cancel(feeders)
            try:
                await self._shutdown(store, executor, applier)
            finally:
                await listener.close()

    async def _shutdown(
        self, store: PgStore, executor: Executor, applier: asyncio.Task[None]
    ) -> None:
        self._draining = True
        self._wakeups.cancel()
        try:
            await executor.drain(self._config.drain_timeout)
        except TimeoutError:
            _log.warning(
                "%d actions still running at shutdown; handing them back", executor.in_flight
            )
        self._applier.close()
        with contextlib.suppress(Exception):
            await applier
        await executor.close()
        await asyncio.sleep(0)  # let the pool hand back what it still had
        deadline = time.monotonic() + self._config.lease
        with contextlib.suppress(*TRANSIENT_ERRORS, TimeoutError):
            await self._flush_results(deadline)
            queues = await self._retrying(lambda: store.release_leases(self.id), deadline)
            if queues:
                await self._retrying(lambda: store.notify_ready(queues), deadline)
            await self._retrying(lambda: store.unregister(self.id), deadline)
        _log.info("dispatcher %s stopped", self.id)

    async def _register(self, store: PgStore) -> None:
        cfg = self._config
        peers = await self._retrying(
            lambda: store.register(
                self.id, socket.gethostname(), os.getpid(), cfg.queues, self._ctx.versions,
                cfg.lease,
            )
        )  # fmt: skip
        self._set_peers(peers)

    def _set_peers(self, peers: int) -> None:
        if self._ctx.alone != (peers == 0):
            self._ctx = replace(self._ctx, alone=peers == 0)

    # ------------------------------------------------------------------ the loops
    async def _claim_loop(self) -> None:
        store = self._require_store()
        while True:
            await _wait(self._claim_wake, self._config.poll_interval)
            # Until a claim comes back short, ready work may be waiting in the queue:
            # freed slots wake this loop again (see _on_results).
            self._queue_waiting = True
            while self._free() > 0:
                limit = min(self._free(), self._config.batch_size)
                claimed = await self._claim(store, limit)
                if len(claimed) < limit:
                    self._queue_waiting = False
                    break

    async def _claim(self, store: PgStore, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` queued actions and submit those that still fit.

        A claim holds no slots while it runs: batches stepping meanwhile lease their
        new actions directly (saving them the queue and this round trip), and if they
        took the slots the claim counted on, the claimed attempts that no longer fit
        are handed back to the queue, still in their turn.
        """
        claimed = await self._retrying(lambda: store.claim(self._ctx, limit))
        room = self._free()
        self._submit(claimed[:room])
        if len(claimed) > room:
            self._queue_waiting = True
            excess = [c.lease_id for c in claimed[room:]]
            await self._retrying(lambda: store.hand_back(self.id, excess))
        return claimed

    async def _tick_loop(self) -> None:
        store = self._require_store()
        while True:
            await _wait(self._tick_wake, self._config.poll_interval)
            more = True
            while more:
                applied = await self._leasing(
                    lambda grant: store.advance_due(
                        replace(self._ctx, grant=grant), self._config.batch_size
                    )
                )
                self._after(applied)
                more = applied.more

    async def _upkeep_loop(self) -> None:
        store = self._require_store()
        cfg = self._config
        last_report = 0.0
        while True:
            await asyncio.sleep(cfg.lease / 3)
            peers = await self._retrying(lambda: store.heartbeat(self.id, cfg.lease))
            if peers is None:
                await self._register(store)
            else:
                self._set_peers(peers)
            reclaimed = await self._retrying(lambda: store.reclaim_lost(self._ctx))
            orphaned = await self._retrying(
                lambda: store.release_orphans(self.id, list(self._inflight), cfg.lease)
            )
            if reclaimed | orphaned:
                self._wake_all()
            if time.monotonic() - last_report >= cfg.report_interval:
                last_report = time.monotonic()
                await self._report_foreign(store)

    # ----------------------------------------------------------------- bookkeeping
    async def _flush_results(self, deadline: float) -> None:
        """Apply what the stopped applier left, one batch after another."""
        while taken := self._applier.take_batch():
            await self._apply_batch(taken, deadline)

    async def _apply_batch(self, taken: list[TaskResult], deadline: float | None = None) -> None:
        store = self._require_store()
        applied = await self._leasing(
            functools.partial(self._apply, store, self._completions(taken)), deadline=deadline
        )
        for result in taken:
            self._inflight.pop(result.token, None)
        self._after(applied)

    async def _leasing(
        self,
        operation: Callable[[LeaseGrant], Awaitable[T]],
        *,
        deadline: float | None = None,
    ) -> T:
        """Run ``operation(grant)``; the slots it takes from ``grant`` stay held meanwhile.

        The caller submits what it leased before the next ``await``, so a concurrent
        loop never counts the same slots.
        """
        grant = LeaseGrant(self._free, self._hold)

        def attempt() -> Awaitable[T]:
            grant.release()  # what a failed attempt took was never leased
            return operation(grant)

        try:
            return await self._retrying(attempt, deadline)
        finally:
            grant.release()

    def _apply(
        self, store: PgStore, completions: list[Completion], grant: LeaseGrant
    ) -> Awaitable[Applied]:
        return store.apply_results(completions, replace(self._ctx, grant=grant))

    def _completions(self, results: list[TaskResult]) -> list[Completion]:
        completions = []
        for r in results:
            claimed = self._inflight.get(r.token)
            if claimed is None:
                _log.error("result for unknown lease %d dropped", r.token)
                continue
            completions.append(
                Completion(
                    lease_id=r.token,
                    instance_id=claimed.instance_id,
                    action_id=claimed.action_id,
                    version=claimed.version,
                    ok=r.ok,
                    payload=r.payload,
                    duration=r.duration,
                    infra=r.infra,
                )
            )
        return completions

    def _after(self, applied: Applied) -> None:
        self._submit(applied.leased)
        if applied.wake_queues & self._ctx.queues:
            self._claim_wake.set()
        if applied.next_due is not None:
            # Timers and retry backoffs: look again when due rather than at the next
            # poll. Those further ahead than the horizon are left to polling.
            self._wakeups.add(applied.next_due)

    def _submit(self, claimed: list[Claimed]) -> None:
        if not claimed:
            return
        executor = self._require_executor()
        if self._draining:
            # Leased while stopping: release_leases hands these back.
            return
        for c in claimed:
            self._inflight[c.lease_id] = c
        executor.submit([Task(c.lease_id, c.name, c.payload, c.timeout) for c in claimed])

    def _free(self) -> int:
        if self._draining or self._executor is None:
            return 0
        return max(0, self._executor.capacity - self._reserved)

    def _hold(self, slots: int) -> None:
        self._reserved += slots

    def _on_results(self, results: list[TaskResult]) -> None:
        self._applier.add(results)
        if self._queue_waiting:
            self._claim_wake.set()  # the slots these results freed can take queued work

    def _instance_of(self, token: int) -> uuid.UUID | None:
        claimed = self._inflight.get(token)
        return claimed.instance_id if claimed is not None else None

    def _on_ready_queue(self, queue: str) -> None:
        if queue in self._ctx.queues:
            self._claim_wake.set()

    def _on_instance(self, version: str) -> None:
        if version in self._ctx.workflows:
            self._tick_wake.set()

    def _wake_all(self) -> None:
        self._claim_wake.set()
        self._tick_wake.set()

    async def _report_foreign(self, store: PgStore) -> None:
        names = {w.name for w in self._ctx.workflows.values()}
        reports = await self._retrying(lambda: store.foreign_versions(names, self._ctx.versions))
        for r in reports:
            _log.warning(
                "%d unfinished instances of workflow %r are pinned to version %s, which this "
                "process does not have; they are left untouched until a process with that "
                "code runs", r.instances, r.workflow, r.version,
            )  # fmt: skip

    async def _retrying(
        self, operation: Callable[[], Awaitable[T]], deadline: float | None = None
    ) -> T:
        """Run ``operation``, retrying through connection loss until ``deadline``."""
        delay = 0.05
        while True:
            try:
                return await operation()
            except TRANSIENT_ERRORS as exc:
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise
                _log.warning("database unavailable (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _require_store(self) -> PgStore:
        assert self._store is not None, "the dispatcher is not running"
        return self._store

    def _require_executor(self) -> Executor:
        assert self._executor is not None, "the dispatcher is not running"
        return self._executor


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    event.clear()


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for ``stop``; a loop that dies first takes the dispatcher down with it."""
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    for task in done:
        if task is not stopper:
            task.result()
            raise DispatcherError(f"dispatcher loop {task.get_name()} returned unexpectedly")


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        # A loop that failed has already raised through _until_stopped.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
