"""A hand-written engine and an in-process executor, to prove the store on its own.

``LineWorkflow`` is a straight line of ``n`` calls of one action, optionally after a
durable sleep, with a retry policy of ``attempts`` tries. ``InProcessExecutor`` runs
actions as coroutines in the test's own loop and counts every execution.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rappelx.exceptions import WorkflowCancelled
from rappelx.runtime._codec import dumps, loads
from rappelx.runtime._events import (
    ActionCompleted,
    ActionFailed,
    Cancelled,
    CompleteWorkflow,
    DispatchAction,
    FailWorkflow,
    StartTimer,
    TimerFired,
)
from rappelx.runtime._pgstore import Claimed, Completion
from rappelx.runtime._pool import Task, TaskResult


class LineEngine:
    """``total = sum(action(x + i) for i in range(n))``, one action at a time."""

    def __init__(
        self,
        action: str,
        *,
        sleep: float = 0.0,
        attempts: int = 1,
        backoff: float = 0.0,
        queue: str = "default",
        timeout: float | None = None,
    ):
        self.action = action
        self.sleep = sleep
        self.attempts = attempts
        self.backoff = backoff
        self.queue = queue
        self.timeout = timeout

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, seed: int) -> Any:
        n, x = args
        state = {"n": n, "x": x, "i": 0, "total": 0, "attempt": 1, "seed": seed}
        if self.sleep:
            return state, [StartTimer(0, self.sleep)]
        return state, self._next(state)

    def step(self, state: dict[str, Any], event: Any) -> Any:
        if isinstance(event, TimerFired):
            return state, self._next(state)
        if isinstance(event, Cancelled):
            return state, [FailWorkflow(WorkflowCancelled("the workflow was cancelled"))]
        if isinstance(event, ActionFailed):
            if state["attempt"] < self.attempts:
                state["attempt"] += 1
                return state, [self._dispatch(state, delay=self.backoff)]
            return state, [FailWorkflow(event.error)]
        assert isinstance(event, ActionCompleted) and event.action_id == state["i"]
        state["total"] += event.value
        state["i"] += 1
        state["attempt"] = 1
        return state, self._next(state)

    def _next(self, state: dict[str, Any]) -> list[Any]:
        if state["i"] >= state["n"]:
            return [CompleteWorkflow(state["total"])]
        return [self._dispatch(state)]

    def _dispatch(self, state: dict[str, Any], delay: float = 0.0) -> DispatchAction:
        return DispatchAction(
            action_id=state["i"],
            action=self.action,
            args=(state["x"] + state["i"],),
            kwargs={},
            queue=self.queue,
            timeout=self.timeout,
            attempt=state["attempt"],
            delay=delay,
        )

    def dumps(self, state: dict[str, Any]) -> bytes:
        return dumps(state)

    def dumps_logged(self, state: dict[str, Any], chunks: list[Any]) -> bytes:
        return dumps(state)  # (no log lists)

    def loads(self, data: bytes, chunks: list[Any] | None = None) -> dict[str, Any]:
        return loads(data)  # type: ignore[return-value]


@dataclass
class LineWorkflow:
    """A stand-in for ``WorkflowDef``: name, version, IR, argument check, engine."""

    name: str
    engine: LineEngine
    version: str = ""
    ir_json: str = ""

    def __post_init__(self) -> None:
        description = {
            "workflow": self.name,
            "action": self.engine.action,
            "sleep": self.engine.sleep,
            "attempts": self.engine.attempts,
        }
        self.ir_json = json.dumps(description)
        self.version = self.version or hashlib.sha256(self.ir_json.encode()).hexdigest()[:16]

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if len(args) != 2 or kwargs:
            raise TypeError(f"{self.name}.run(n, x) takes two arguments")
        return args, kwargs


ActionFn = Callable[..., Awaitable[Any]]


@dataclass
class InProcessExecutor:
    """Runs actions as tasks of the current loop; a stand-in for ``WorkerPool``."""

    actions: dict[str, ActionFn]
    on_results: Callable[[list[TaskResult]], None]
    slots: int = 64
    executions: collections.Counter[tuple[str, Any]] = field(default_factory=collections.Counter)
    running: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    infra_failures: int = 0  # the first N tasks "lose their worker"
    enforce_timeouts: bool = True  # False: like a worker whose loop is blocked

    @property
    def capacity(self) -> int:
        return max(0, self.slots - len(self.running))

    @property
    def in_flight(self) -> int:
        return len(self.running)

    async def start(self) -> None:
        pass

    def submit(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            assert task.token not in self.running, "token submitted twice"
            self.running[task.token] = asyncio.create_task(self._run(task))

    async def _run(self, task: Task) -> None:
        args, kwargs = loads(task.payload)  # type: ignore[misc]
        self.executions[(task.action, args)] += 1
        begin = time.perf_counter()
        if self.infra_failures > 0:
            self.infra_failures -= 1
            result = TaskResult(task.token, False, dumps(RuntimeError("lost")), 0.0, infra=True)
        else:
            try:
                timeout = task.timeout if self.enforce_timeouts else None
                value = await asyncio.wait_for(self.actions[task.action](*args, **kwargs), timeout)
            except Exception as exc:
                result = TaskResult(task.token, False, dumps(exc), time.perf_counter() - begin)
            else:
                result = TaskResult(task.token, True, dumps(value), time.perf_counter() - begin)
        del self.running[task.token]
        self.on_results([result])

    async def drain(self, timeout: float | None = None) -> None:
        if self.running:
            await asyncio.wait_for(
                asyncio.gather(*self.running.values(), return_exceptions=True), timeout
            )

    async def close(self) -> None:
        for token, task in list(self.running.items()):
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)
        lost = [
            TaskResult(t, False, dumps(RuntimeError("closed")), 0.0, infra=True)
            for t in self.running
        ]
        self.running.clear()
        if lost:
            self.on_results(lost)

    def count(self) -> int:
        return sum(self.executions.values())


def completed(claimed: Claimed, value: int) -> Completion:
    """A worker's successful result ``value`` for the claimed attempt ``claimed``."""
    return Completion(
        lease_id=claimed.lease_id, instance_id=claimed.instance_id,
        action_id=claimed.action_id, version=claimed.version, ok=True,
        payload=dumps(value), duration=0.001, infra=False,
    )  # fmt: skip
