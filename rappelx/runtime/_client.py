"""The client side: queue instances, wait for their results, cancel them.

``Client`` is what application code (a web server, say) holds. Waiting uses one LISTEN
connection per process and event loop, shared by every waiter: a notification names the
instances that finished and the waiter fetches their outcomes in one query.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from rappelx.exceptions import CodecError, RappelxError, WorkflowFailed
from rappelx.runtime._coalesce import Coalescer
from rappelx.runtime._codec import dumps, loads
from rappelx.runtime._embedded import ensure_embedded
from rappelx.runtime._listen import Listener
from rappelx.runtime._pgstore import TRANSIENT_ERRORS, NewInstance, Outcome, PgStore

_log = logging.getLogger("rappelx.client")

#: Seconds between re-checks of awaited instances, in case a notification was missed.
RECHECK_INTERVAL = 10.0
#: Most starts written, or outcomes looked up, in one statement.
_MAX_BATCH = 1000


class WorkflowStatus(enum.StrEnum):
    """Where an instance is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


_FINISHED = {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED}


class InstanceNotFound(RappelxError, LookupError):
    """No instance with this id exists in the database."""


class _Definition(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def ir_json(self) -> str: ...

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]: ...


def database_url() -> str:
    """``RAPPELX_DATABASE_URL``, or else the embedded Postgres (booted if needed)."""
    return os.environ.get("RAPPELX_DATABASE_URL") or ensure_embedded()


class Client:
    """Starts workflow instances in Postgres and waits for their results.

    Args:
        dsn: The database; ``None`` reads ``RAPPELX_DATABASE_URL`` and, without it, uses
            the embedded local Postgres.

    Connections are opened on first use, per event loop, and shared by every client of
    the same database in that loop. ``await client.close()`` (or ``async with``) closes
    them.
    """

    def __init__(self, dsn: str | None = None) -> None:
        self._dsn = dsn
        self._resolved = dsn

    async def start(self, workflow: Any, /, *args: Any, **kwargs: Any) -> WorkflowHandle:
        """Queue an instance of ``workflow`` (a ``@workflow`` class) and return its handle.

        Raises:
            WorkflowArgumentsError: The arguments do not fit the workflow's ``run``.
            CodecError: An argument cannot be stored; nothing was queued.
        """
        definition = _definition(workflow)
        args, kwargs = definition.bind(tuple(args), dict(kwargs))
        try:
            data = dumps((args, kwargs))
        except CodecError as exc:
            raise CodecError(
                f"cannot start {definition.name}: its arguments cannot be stored ({exc}); "
                "pass values the rappelx codec supports (see DESIGN.md section 4)",
                path=exc.path,
            ) from exc
        instance = NewInstance(
            uuid.uuid4(), definition.name, definition.version, definition.ir_json, data
        )
        resources = await self._resources()
        await resources.inserts.submit(instance)
        return WorkflowHandle(self, instance.id, definition.name)

    async def run(self, workflow: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Start an instance and wait for its result (or raise its exception)."""
        handle = await self.start(workflow, *args, **kwargs)
        return await handle.result()

    def get_handle(self, instance_id: str | uuid.UUID) -> WorkflowHandle:
        """A handle on an existing instance, by id."""
        if not isinstance(instance_id, uuid.UUID):
            instance_id = uuid.UUID(instance_id)
        return WorkflowHandle(self, instance_id, None)

    async def close(self) -> None:
        """Close this loop's connections to the client's database."""
        if self._resolved is None:
            return
        shared = _RESOURCES.get(asyncio.get_running_loop(), {})
        pending = shared.pop(self._resolved, None)
        if pending is not None:
            with contextlib.suppress(Exception):
                await (await pending).close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _resources(self) -> _Resources:
        dsn = self._resolved
        if dsn is None:
            dsn = self._resolved = await asyncio.to_thread(database_url)
        shared = _shared_resources()
        pending = shared.get(dsn)
        if pending is None:
            pending = shared[dsn] = asyncio.ensure_future(_Resources.open(dsn))
        try:
            return await asyncio.shield(pending)
        except BaseException:
            if pending.done() and shared.get(dsn) is pending:
                del shared[dsn]
            raise

    def __repr__(self) -> str:
        return f"Client(dsn={self._dsn!r})"


class WorkflowHandle:
    """One workflow instance, started earlier (possibly by another process).

    Attributes:
        id: The instance id (a UUID string).
        workflow: The workflow's name, when the handle was made by ``start()``.
    """

    def __init__(self, client: Client, instance_id: uuid.UUID, workflow: str | None) -> None:
        self._client = client
        self._uuid = instance_id
        self.id = str(instance_id)
        self.workflow = workflow

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the instance to finish; return its value or raise its exception.

        The exception is of the workflow's own class when that class is importable
        here, else :class:`WorkflowFailed`.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the instance keeps running).
            InstanceNotFound: There is no such instance.
        """
        resources = await self._client._resources()
        outcome = await resources.waiter.wait(self._uuid, timeout)
        return _unpack(outcome, self.id)

    async def status(self) -> WorkflowStatus:
        """The instance's current status."""
        resources = await self._client._resources()
        outcome = await resources.store.outcome(self._uuid)
        if outcome is None:
            raise InstanceNotFound(f"no workflow instance {self.id} in the database")
        return WorkflowStatus(outcome.status)

    async def cancel(self) -> bool:
        """Ask the instance to stop. ``False`` when it had already finished.

        A dispatcher delivers the cancellation; the instance ends with
        ``WorkflowCancelled``, which :meth:`result` then raises.
        """
        resources = await self._client._resources()
        if await resources.store.request_cancel(self._uuid):
            return True
        if await resources.store.outcome(self._uuid) is None:
            raise InstanceNotFound(f"no workflow instance {self.id} in the database")
        return False

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.workflow or 'workflow'} {self.id}>"


def _definition(workflow: Any) -> _Definition:
    if isinstance(workflow, type):
        from rappelx._workflow import definition

        return definition(workflow)
    if all(hasattr(workflow, a) for a in ("name", "version", "ir_json", "bind")):
        return workflow  # type: ignore[no-any-return]
    raise RappelxError(f"expected a @workflow class, got {workflow!r}")


def _unpack(outcome: Outcome, instance_id: str) -> Any:
    if outcome.status == WorkflowStatus.COMPLETED:
        return loads(outcome.result) if outcome.result is not None else None
    error = loads(outcome.error) if outcome.error is not None else None
    if isinstance(error, WorkflowFailed) and error.instance_id is None:
        error.instance_id = instance_id
    if not isinstance(error, BaseException):
        error = WorkflowFailed("unknown", f"instance {instance_id} ended with {error!r}")
    raise error


@dataclass(slots=True)
class _Resources:
    """What all clients of one database share within one event loop.

    Starts that arrive while another is being written are queued together in one
    statement, so a burst of ``start()`` calls costs a few commits, not one each.
    """

    store: PgStore
    waiter: _ResultWaiter
    inserts: Coalescer[NewInstance, None]

    @classmethod
    async def open(cls, dsn: str) -> _Resources:
        store = await PgStore.connect(dsn, application_name="rappelx-client")
        inserts = Coalescer(
            functools.partial(_insert, store), max_batch=_MAX_BATCH, max_in_flight=2
        )
        return cls(store, _ResultWaiter(dsn, store), inserts)

    async def close(self) -> None:
        await self.waiter.close()
        await self.store.close()


async def _insert(store: PgStore, instances: list[NewInstance]) -> list[None]:
    await store.insert_instances(instances)
    return [None] * len(instances)


async def _lookup(store: PgStore, ids: list[uuid.UUID]) -> list[Outcome | None]:
    found = await store.outcomes(ids)
    return [found.get(i) for i in ids]


_RESOURCES: dict[asyncio.AbstractEventLoop, dict[str, asyncio.Future[_Resources]]] = {}


def _shared_resources() -> dict[str, asyncio.Future[_Resources]]:
    """This loop's shared resources, by DSN; those of closed loops are forgotten."""
    for loop in [loop for loop in _RESOURCES if loop.is_closed()]:
        del _RESOURCES[loop]
    return _RESOURCES.setdefault(asyncio.get_running_loop(), {})


class _ResultWaiter:
    """Fans ``rappelx_done`` notifications from one LISTEN connection out to futures."""

    def __init__(self, dsn: str, store: PgStore) -> None:
        self._store = store
        self._lookups = Coalescer(
            functools.partial(_lookup, store), max_batch=_MAX_BATCH, max_in_flight=2
        )
        self._waiting: dict[uuid.UUID, set[asyncio.Future[Outcome]]] = {}
        self._to_fetch: set[uuid.UUID] = set()
        self._fetcher: asyncio.Task[None] | None = None
        self._rechecker: asyncio.Task[None] | None = None
        self._listener = Listener(
            dsn,
            {"rappelx_done": self._on_done},
            on_connect=self._recheck,
            application_name="rappelx-client-listen",
        )

    async def wait(self, instance_id: uuid.UUID, timeout: float | None) -> Outcome:
        """The instance's outcome once it has finished.

        Raises:
            TimeoutError: Not finished within ``timeout`` seconds.
        """
        return await asyncio.wait_for(self._wait(instance_id), timeout)

    async def _wait(self, instance_id: uuid.UUID) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(instance_id, set()).add(future)
        try:
            # Listen first, then look: a finish in between is caught by one or the other.
            await self._listener.start()
            self._ensure_rechecker()
            outcome = await self._lookups.submit(instance_id)
            if outcome is None:
                raise InstanceNotFound(f"no workflow instance {instance_id} in the database")
            if outcome.status in _FINISHED:
                return outcome
            return await future
        finally:
            futures = self._waiting.get(instance_id)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._waiting[instance_id]

    async def close(self) -> None:
        """Stop listening; pending waits are cancelled."""
        for task in (self._fetcher, self._rechecker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._listener.close()
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()

    def _on_done(self, payload: str) -> None:
        for text in payload.split(","):
            with contextlib.suppress(ValueError):
                instance_id = uuid.UUID(text)
                if instance_id in self._waiting:
                    self._to_fetch.add(instance_id)
        self._schedule_fetch()

    def _recheck(self) -> None:
        self._to_fetch.update(self._waiting)
        self._schedule_fetch()

    def _schedule_fetch(self) -> None:
        if self._to_fetch and (self._fetcher is None or self._fetcher.done()):
            self._fetcher = asyncio.create_task(self._fetch(), name="rappelx-result-fetch")

    async def _fetch(self) -> None:
        while self._to_fetch:
            ids, self._to_fetch = list(self._to_fetch), set()
            try:
                outcomes = await self._store.finished_outcomes(ids)
            except TRANSIENT_ERRORS as exc:
                _log.warning("cannot fetch results (%s); will retry", exc)
                self._to_fetch.update(ids)
                await asyncio.sleep(0.5)
                continue
            for instance_id, outcome in outcomes.items():
                for future in self._waiting.get(instance_id, ()):
                    if not future.done():
                        future.set_result(outcome)

    def _ensure_rechecker(self) -> None:
        if self._rechecker is None or self._rechecker.done():
            self._rechecker = asyncio.create_task(self._recheck_forever())

    async def _recheck_forever(self) -> None:
        # A safety net only: notifications are not lost while the connection is up, and
        # every reconnect re-checks at once.
        while True:
            await asyncio.sleep(RECHECK_INTERVAL)
            if self._waiting:
                self._recheck()


_DEFAULT: Client | None = None


def default_client() -> Client:
    """The process-wide client used by ``Workflow.run()`` and ``Workflow.start()``.

    It reads ``RAPPELX_DATABASE_URL`` and, without it, uses the embedded Postgres.
    """
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Client()
    return _DEFAULT


async def close_default_client() -> None:
    """Close the default client's connections in the running event loop."""
    if _DEFAULT is not None:
        await _DEFAULT.close()
