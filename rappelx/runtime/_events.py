"""What flows into and out of the engine: events in, commands out.

Events and commands are plain slotted dataclasses (not frozen: they are created on every
step, and frozen construction costs four times as much); treat them as immutable.

The engine (``_engine.py``) is a pure function ``(program, state, event) -> (state,
commands)``. Stores (in-memory for ``run_inline``, Postgres for production) turn commands
into I/O and the outcomes of that I/O back into events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


# ---------------------------------------------------------------- events (store -> engine)
@dataclass(slots=True)
class ActionCompleted:
    """The action ``action_id`` returned ``value`` (already decoded)."""

    action_id: int
    value: Any


@dataclass(slots=True)
class ActionFailed:
    """The action ``action_id`` raised ``error`` (already decoded; may be ActionTimeout)."""

    action_id: int
    error: BaseException


@dataclass(slots=True)
class TimerFired:
    """The durable timer ``timer_id`` (a sleep or a retry backoff) is due."""

    timer_id: int


@dataclass(slots=True)
class Cancelled:
    """Someone asked for the instance to stop."""


Event = ActionCompleted | ActionFailed | TimerFired | Cancelled


# ------------------------------------------------------------ commands (engine -> store)
@dataclass(slots=True)
class DispatchAction:
    """Run ``action`` (registered name) with these arguments as ``action_id``.

    ``attempt`` starts at 1. ``delay`` is how many seconds to wait before it may run
    (0 for a first attempt, the backoff for a retry). ``timeout`` is per attempt.
    """

    action_id: int
    action: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str = "default"
    timeout: float | None = None
    attempt: int = 1
    delay: float = 0.0


@dataclass(slots=True)
class StartTimer:
    """Fire ``TimerFired(timer_id)`` after ``delay`` seconds (a durable sleep)."""

    timer_id: int
    delay: float


@dataclass(slots=True)
class CompleteWorkflow:
    """The instance returned ``value``."""

    value: Any


@dataclass(slots=True)
class FailWorkflow:
    """The instance ended by raising ``error``."""

    error: BaseException


Command = DispatchAction | StartTimer | CompleteWorkflow | FailWorkflow
