"""Turning locked instance rows and events into one batch of writes (no I/O here).

The Postgres store locks a set of instances, hands each one's events to :func:`advance`,
and writes the accumulated :class:`StepBatch` with the single ``apply_steps`` query. An
instance's failure to step (an engine or codec error) fails that instance only.
"""

from __future__ import annotations

import collections
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rappelx.exceptions import (
    CodecError,
    RappelxError,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowRuntimeError,
)
from rappelx.runtime._codec import dumps, loads
from rappelx.runtime._events import (
    ActionCompleted,
    ActionFailed,
    Cancelled,
    CompleteWorkflow,
    DispatchAction,
    Event,
    FailWorkflow,
    StartTimer,
)
from rappelx.runtime._state import Chunk

_log = logging.getLogger("rappelx.dispatcher")

FINISHED = frozenset({"completed", "failed", "cancelled"})
# Ids per LISTEN/NOTIFY payload: 36 characters and a comma each, under the 8000-byte cap.
_IDS_PER_NOTIFICATION = 200
# An instance that keeps turning its own commands into failures is stuck in a loop.
_MAX_INTERNAL_STEPS = 1000


class ActionLost(RappelxError):
    """An action's worker or dispatcher was lost too many times in a row.

    Each loss (worker crash, lease expiry) is retried without using up an attempt; after
    the safety cap the attempt fails with this error, which the action's retry policy
    may retry like any other exception.
    """


class EngineLike(Protocol):
    """The part of the engine the store drives (see ``_engine.py``)."""

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, seed: int) -> Any: ...

    def step(self, state: Any, event: Event) -> Any: ...

    def dumps(self, state: Any) -> bytes: ...

    def dumps_logged(self, state: Any, chunks: list[Chunk]) -> bytes: ...

    def loads(self, data: bytes, chunks: list[Chunk] | None = None) -> Any: ...


class WorkflowLike(Protocol):
    """A compiled workflow: name, version and engine (``rappelx._workflow.WorkflowDef``)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def engine(self) -> EngineLike: ...


# Not frozen: one is built per action on the hot path, and a frozen dataclass's
# __init__ costs five times as much (each field set through object.__setattr__).
@dataclass(slots=True)
class LockedInstance:
    """An unfinished instance row this transaction holds the lock of."""

    id: uuid.UUID
    workflow: str
    version: str
    status: str
    state: bytes | None
    input: bytes | None
    cancel_requested: bool
    seq: int
    #: The chunks of the state's logs (read only for states that have them).
    chunks: list[Chunk] | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LockedInstance:
        """Build from a row of ``lock_instances`` or ``lock_due_work``."""
        return cls(
            id=row["id"],
            workflow=row["workflow"],
            version=row["version"],
            status=row["status"],
            state=row["state"],
            input=row["input"],
            cancel_requested=row["cancel_requested"],
            seq=row["seq"],
        )


class StateCache:
    """The engine states this process wrote last, so its next step skips decoding them.

    An entry is valid only for the ``seq`` it was written at: if anyone else advanced
    the instance since, the row's ``seq`` differs and the state is decoded from the row.
    Entries are taken out while a transaction uses them and put back only after it
    commits, so a step that fails half-way never leaves a mutated state behind.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._entries: collections.OrderedDict[uuid.UUID, tuple[int, Any]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def seq_of(self, instance_id: uuid.UUID) -> int:
        """The seq the cached state of ``instance_id`` is at; -1 when none is cached."""
        entry = self._entries.get(instance_id)
        return entry[0] if entry is not None else -1

    def take(self, instance_id: uuid.UUID, seq: int) -> Any | None:
        """Remove and return the state cached for ``instance_id`` at ``seq``, if any."""
        entry = self._entries.pop(instance_id, None)
        return entry[1] if entry is not None and entry[0] == seq else None

    def put_all(self, entries: list[tuple[uuid.UUID, int, Any]]) -> None:
        """Remember committed states ``(instance_id, seq, state)``."""
        for instance_id, seq, state in entries:
            self._entries[instance_id] = (seq, state)
            self._entries.move_to_end(instance_id)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


# Not frozen: one is built per action on the hot path, and a frozen dataclass's
# __init__ costs five times as much (each field set through object.__setattr__).
@dataclass(slots=True)
class NewAction:
    """An action attempt that the batch inserts."""

    instance_id: uuid.UUID
    action_id: int
    attempt: int
    name: str
    queue: str
    version: str
    payload: bytes
    timeout: float | None
    delay: float
    lease: bool


@dataclass(slots=True)
class StepBatch:
    """The writes of one transaction, as the parallel arrays ``apply_steps`` takes.

    Args:
        queues: Queues this dispatcher serves; only their actions may be leased at once.
        lease_budget: How many new, immediately runnable actions to lease to ourselves.
    """

    queues: frozenset[str]
    lease_budget: int = 0
    ids: list[uuid.UUID] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    states: list[bytes | None] = field(default_factory=list)
    results: list[bytes | None] = field(default_factory=list)
    errors: list[bytes | None] = field(default_factory=list)
    cancel_seen: list[bool] = field(default_factory=list)
    actions: list[NewAction] = field(default_factory=list)
    timer_instances: list[uuid.UUID] = field(default_factory=list)
    timer_ids: list[int] = field(default_factory=list)
    timer_versions: list[str] = field(default_factory=list)
    timer_delays: list[float] = field(default_factory=list)
    finished: list[uuid.UUID] = field(default_factory=list)
    #: New chunks of the states' logs: the instance of each, and the chunk.
    chunk_instances: list[uuid.UUID] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    cached: list[tuple[uuid.UUID, int, Any]] = field(default_factory=list)
    wake_queues: set[str] = field(default_factory=set)
    next_due: float | None = None

    def __bool__(self) -> bool:
        return bool(self.ids)

    def add_action(self, instance: LockedInstance, command: DispatchAction, payload: bytes) -> None:
        """Queue one dispatched attempt, leasing it at once when budget allows."""
        runnable = command.delay <= 0 and command.queue in self.queues
        lease = runnable and self.lease_budget > 0
        if lease:
            self.lease_budget -= 1
        elif command.delay <= 0:
            self.wake_queues.add(command.queue)
        if command.delay > 0:
            self._due_in(command.delay)
        self.actions.append(
            NewAction(
                instance_id=instance.id,
                action_id=command.action_id,
                attempt=command.attempt,
                name=command.action,
                queue=command.queue,
                version=instance.version,
                payload=payload,
                timeout=command.timeout,
                delay=max(0.0, command.delay),
                lease=lease,
            )
        )

    def add_timer(self, instance: LockedInstance, command: StartTimer) -> None:
        """Queue one durable timer."""
        self.timer_instances.append(instance.id)
        self.timer_ids.append(command.timer_id)
        self.timer_versions.append(instance.version)
        self.timer_delays.append(max(0.0, command.delay))
        self._due_in(command.delay)

    def add_instance(
        self,
        instance: LockedInstance,
        status: str,
        *,
        state: bytes | None = None,
        result: bytes | None = None,
        error: bytes | None = None,
        cancel_seen: bool = False,
    ) -> None:
        """Record an instance's new row values."""
        self.ids.append(instance.id)
        self.statuses.append(status)
        self.states.append(state)
        self.results.append(result)
        self.errors.append(error)
        self.cancel_seen.append(cancel_seen)
        if status in FINISHED:
            self.finished.append(instance.id)

    def add_chunks(self, instance: LockedInstance, chunks: list[Chunk]) -> None:
        """Record new chunks of ``instance``'s logs (written with its state, or not at all)."""
        self.chunk_instances.extend([instance.id] * len(chunks))
        self.chunks.extend(chunks)

    def _due_in(self, delay: float) -> None:
        if self.next_due is None or delay < self.next_due:
            self.next_due = delay

    def params(self, owner: uuid.UUID, grace: float) -> tuple[Any, ...]:
        """The 28 parameters of ``apply_steps``, in order."""
        a = self.actions
        return (
            self.ids, self.statuses, self.states, self.results, self.errors,
            self.cancel_seen,
            [x.instance_id for x in a], [x.action_id for x in a], [x.attempt for x in a],
            [x.name for x in a], [x.queue for x in a], [x.version for x in a],
            [x.payload for x in a], [x.timeout for x in a], [x.lease for x in a],
            [x.delay for x in a],
            self.timer_instances, self.timer_ids, self.timer_versions,
            owner, grace, self.timer_delays,
            self.finished, sorted(self.wake_queues), notification_payloads(self.finished),
            self.chunk_instances, [c[0] for c in self.chunks], [c[1] for c in self.chunks],
            [c[2] for c in self.chunks],
        )  # fmt: skip


def notification_payloads(ids: list[uuid.UUID]) -> list[str]:
    """Comma-separated id lists, each small enough for one NOTIFY payload."""
    step = _IDS_PER_NOTIFICATION
    return [",".join(str(i) for i in ids[n : n + step]) for n in range(0, len(ids), step)]


def seed_for(instance_id: uuid.UUID) -> int:
    """The engine's random seed for an instance: stable across restarts."""
    return instance_id.int & ((1 << 63) - 1)


def decode_result(action_id: int, ok: bool, payload: bytes | None) -> Event:
    """The engine event for a worker's reported outcome of ``action_id``."""
    try:
        value = loads(payload) if payload is not None else None
    except CodecError as exc:
        return ActionFailed(action_id, exc)
    if ok:
        return ActionCompleted(action_id, value)
    if not isinstance(value, BaseException):
        value = WorkflowRuntimeError(f"action {action_id} failed with a non-exception {value!r}")
    return ActionFailed(action_id, value)


def encode_error(error: BaseException) -> bytes:
    """Encode a workflow's final exception; fall back to a description of it."""
    try:
        return dumps(error)
    except CodecError:
        cls = type(error)
        return dumps(WorkflowFailed(f"{cls.__module__}.{cls.__qualname__}", str(error)))


def advance(
    instance: LockedInstance,
    events: list[Event],
    workflow: WorkflowLike,
    batch: StepBatch,
    states: StateCache | None = None,
) -> None:
    """Step ``instance`` through ``events`` (a pending one is started first) into ``batch``.

    A pending instance with no events is just started. Errors of the engine or codec fail
    this instance, never the batch.
    """
    cancel_seen = any(isinstance(e, Cancelled) for e in events)
    if instance.status == "pending" and cancel_seen:
        error = WorkflowCancelled(f"instance {instance.id} was cancelled before it started")
        batch.add_instance(instance, "cancelled", error=encode_error(error), cancel_seen=True)
        return
    try:
        _advance(instance, list(events), workflow, batch, cancel_seen, states)
    except Exception as exc:
        _log.exception("instance %s of %s cannot continue", instance.id, instance.workflow)
        failure = exc if isinstance(exc, RappelxError) else WorkflowRuntimeError(
            f"rappelx could not advance instance {instance.id} of workflow "
            f"{instance.workflow!r}: {type(exc).__name__}: {exc}. This is a bug in rappelx "
            "or in the workflow's values; the instance was failed so others can go on.",
            workflow=instance.workflow, instance_id=str(instance.id),
        )  # fmt: skip
        if failure is not exc:
            failure.__cause__ = exc
        batch.add_instance(instance, "failed", error=encode_error(failure), cancel_seen=cancel_seen)


def _advance(
    instance: LockedInstance,
    events: list[Event],
    workflow: WorkflowLike,
    batch: StepBatch,
    cancel_seen: bool,
    states: StateCache | None,
) -> None:
    engine = workflow.engine
    commands: list[Any] = []
    if instance.status == "pending":
        args, kwargs = _decode_input(instance)
        state, commands = engine.start(args, kwargs, seed=seed_for(instance.id))
    else:
        state = states.take(instance.id, instance.seq) if states is not None else None
        if state is None:
            assert instance.state is not None, "a running instance always has a state"
            state = engine.loads(instance.state, instance.chunks)
    pending_actions: list[tuple[DispatchAction, bytes]] = []
    steps = 0
    while True:
        for command in commands:
            outcome = _collect(instance, command, batch, pending_actions, events)
            if outcome is not None:
                _finish(instance, batch, outcome, cancel_seen)
                return
        if not events:
            break
        steps += 1
        if steps > _MAX_INTERNAL_STEPS:
            raise WorkflowRuntimeError(
                f"instance {instance.id} kept failing its own commands; giving up",
                workflow=instance.workflow, instance_id=str(instance.id),
            )  # fmt: skip
        state, commands = engine.step(state, events.pop(0))
    for command, payload in pending_actions:
        batch.add_action(instance, command, payload)
    chunks: list[Chunk] = []
    data = engine.dumps_logged(state, chunks)
    batch.add_instance(instance, "running", state=data, cancel_seen=cancel_seen)
    if chunks:
        batch.add_chunks(instance, chunks)
    batch.cached.append((instance.id, instance.seq + 1, state))


def _decode_input(instance: LockedInstance) -> tuple[tuple[Any, ...], dict[str, Any]]:
    assert instance.input is not None, "a pending instance's row always has its input"
    decoded = loads(instance.input)
    if not (isinstance(decoded, tuple) and len(decoded) == 2):
        raise WorkflowRuntimeError(
            f"instance {instance.id} has malformed input {decoded!r}; it was not queued by "
            "a rappelx client", workflow=instance.workflow, instance_id=str(instance.id),
        )  # fmt: skip
    args, kwargs = decoded
    return tuple(args), dict(kwargs)


def _collect(
    instance: LockedInstance,
    command: Any,
    batch: StepBatch,
    pending_actions: list[tuple[DispatchAction, bytes]],
    events: list[Event],
) -> CompleteWorkflow | FailWorkflow | None:
    """Stage one command; return it when it ends the instance."""
    if isinstance(command, DispatchAction):
        try:
            payload = dumps((command.args, command.kwargs))
        except CodecError as exc:
            # Raised at the workflow's await, as a bad argument would be in plain Python.
            events.insert(0, ActionFailed(command.action_id, exc))
        else:
            pending_actions.append((command, payload))
    elif isinstance(command, StartTimer):
        batch.add_timer(instance, command)
    elif isinstance(command, CompleteWorkflow | FailWorkflow):
        return command
    else:
        raise WorkflowRuntimeError(f"the engine emitted an unknown command {command!r}")
    return None


def _finish(
    instance: LockedInstance,
    batch: StepBatch,
    outcome: CompleteWorkflow | FailWorkflow,
    cancel_seen: bool,
) -> None:
    if isinstance(outcome, CompleteWorkflow):
        try:
            result = dumps(outcome.value)
        except CodecError as exc:
            batch.add_instance(instance, "failed", error=encode_error(exc), cancel_seen=cancel_seen)
            return
        batch.add_instance(instance, "completed", result=result, cancel_seen=cancel_seen)
        return
    status = "cancelled" if cancel_seen else "failed"
    batch.add_instance(instance, status, error=encode_error(outcome.error), cancel_seen=cancel_seen)
