"""The values the Postgres store and the dispatcher pass each other."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from rappelx.runtime._pgsteps import StateCache, WorkflowLike

#: Session settings for connections that advance instances. Every statement there
#: reaches a handful of rows by key, through index probes written into the SQL, so:
#: no sequential scans (on a young table whose statistics lag behind its growth the
#: planner picks them, and a cached plan keeps them while the table grows to millions
#: of rows); generic plans, made once per connection, since planning these statements
#: costs more than running them for a small batch (0.7 ms against 0.6 ms for one
#: result) and their arrays' lengths would not change the plan; and no JIT.
STEP_SETTINGS: Mapping[str, str] = {
    "enable_seqscan": "off",
    "plan_cache_mode": "force_generic_plan",
    "jit": "off",
}

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


# Not frozen: one is built per action on the hot path, and a frozen dataclass's
# __init__ costs five times as much (each field set through object.__setattr__).
@dataclass(slots=True)
class Claimed:
    """An action attempt leased to this dispatcher; ``lease_id`` is the pool token."""

    lease_id: int
    instance_id: uuid.UUID
    action_id: int
    attempt: int
    name: str
    payload: bytes
    timeout: float | None
    version: str


# Not frozen: one is built per action on the hot path, and a frozen dataclass's
# __init__ costs five times as much (each field set through object.__setattr__).
@dataclass(slots=True)
class Completion:
    """What a worker reported for the lease ``lease_id`` (of an attempt of ``action_id``
    of an instance of workflow ``version``)."""

    lease_id: int
    instance_id: uuid.UUID
    action_id: int
    version: str
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
        alone: No other live dispatcher advances any of its versions, so starts and
            timers it reads need no locks to keep two from doing the same work.
    """

    owner: uuid.UUID
    workflows: Mapping[str, WorkflowLike]
    queues: frozenset[str]
    grace: float
    infra_cap: int
    grant: LeaseGrant | None = None
    states: StateCache | None = None
    alone: bool = False

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
