"""What passes between the dispatcher, the worker pool and the workers: tasks, their
results, and the errors of running them in a subprocess.

Kept apart from :mod:`._pool` so that worker processes (:mod:`._worker`) import these
without the parent's side of the pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rappelx.exceptions import RappelxError

__all__ = [
    "DrainTimeout",
    "Task",
    "TaskResult",
    "UnknownActionError",
    "WorkerImportError",
    "WorkerLost",
    "WorkerStartError",
]


# Not frozen: one is built per action on the hot path, and a frozen dataclass's
# __init__ costs five times as much (each field set through object.__setattr__).
@dataclass(slots=True)
class Task:
    """One attempt of one action, as the pool runs it.

    Attributes:
        token: Identifies the task in its :class:`TaskResult`; unique among the pool's
            in-flight tasks, chosen by the caller.
        action: Registered action name.
        payload: ``codec.dumps((args_tuple, kwargs_dict))``.
        timeout: Seconds for this attempt; ``None`` uses the action's own default.
    """

    token: int
    action: str
    payload: bytes
    timeout: float | None


# Not frozen: one is built per action on the hot path, and a frozen dataclass's
# __init__ costs five times as much (each field set through object.__setattr__).
@dataclass(slots=True)
class TaskResult:
    """What became of a :class:`Task`.

    Attributes:
        token: The task's token.
        ok: ``True``: ``payload`` is ``codec.dumps(return value)``; ``False``: it is
            ``codec.dumps(exception)``.
        payload: The encoded value or exception.
        duration: Seconds the action ran in the worker.
        infra: The worker died or could not run the task at all; retry it without
            counting an attempt.
    """

    token: int
    ok: bool
    payload: bytes
    duration: float
    infra: bool = False


class WorkerLost(RappelxError):
    """The worker process running an action died before the action finished.

    An infrastructure fault, not the action's: the task is retried without using up an
    attempt. If it keeps happening, the action probably crashes its process (a segfault
    in an extension, ``os._exit``, running out of memory); the worker's stderr says more.

    Attributes:
        pid: The worker's process id.
        returncode: Its exit status; negative for the signal that killed it.
    """

    def __init__(
        self, message: str, *, pid: int | None = None, returncode: int | None = None
    ) -> None:
        super().__init__(message)
        self.pid = pid
        self.returncode = returncode


class WorkerStartError(RappelxError):
    """A worker process could not start (see its stderr for details)."""


class WorkerImportError(WorkerStartError):
    """A worker could not import one of the user modules.

    Attributes:
        module: The module that failed to import.
        traceback: The worker's traceback text for the failure.
    """

    def __init__(self, module: str, traceback: str) -> None:
        last = traceback.strip().splitlines()[-1] if traceback.strip() else "unknown error"
        super().__init__(
            f"worker could not import module {module!r}: {last}\n"
            "Check the --module names and that the module imports cleanly from the "
            f"working directory {os.getcwd()}. Worker traceback:\n{traceback}"
        )
        self.module = module
        self.traceback = traceback


class UnknownActionError(RappelxError):
    """A task named an action that no module imported by the worker registers."""

    @classmethod
    def for_action(cls, name: str) -> UnknownActionError:
        """The error for action ``name``, telling the user which module to add."""
        module = name.rpartition(".")[0] or name
        return cls(
            f"no action named {name!r} is registered in the worker; start the workers "
            f"with --module {module} (or the module that defines it, if it was "
            "registered with name=)"
        )


class DrainTimeout(RappelxError, TimeoutError):
    """:meth:`WorkerPool.drain` gave up before every in-flight task finished."""
