"""The in-memory store and executor behind ``rappelx.testing.run_inline``.

It drives the same :class:`Engine` as production. Actions run in this process as
asyncio tasks, with their arguments and results passed through the codec exactly as they
would cross to a worker; durable sleeps and retry backoff use a virtual clock, so a
workflow that sleeps for a day finishes at once; actions' own sleeps and timeouts are real.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
from collections.abc import Callable, Mapping
from types import CoroutineType
from typing import Any, Final

from rappelx._action import ActionDef, lookup_action
from rappelx.exceptions import ActionTimeout, RappelxError
from rappelx.runtime import _codec
from rappelx.runtime._events import (
    ActionCompleted,
    ActionFailed,
    Command,
    CompleteWorkflow,
    DispatchAction,
    Event,
    FailWorkflow,
    StartTimer,
    TimerFired,
)
from rappelx.runtime._state import Chunk, InstanceState

Overrides = Mapping[Any, Callable[..., Any]]


class InlineRunner:
    """Runs one instance to completion in-process.

    With ``restore_each_step``, the state is written and read back (with its log chunks,
    as the Postgres store keeps them) at every suspension, and the instance goes on from
    what was read, as it would after a crash at each step.
    """

    def __init__(
        self,
        definition: Any,
        overrides: Overrides | None = None,
        *,
        restore_each_step: bool = False,
    ) -> None:
        self.definition = definition
        self.restore_each_step = restore_each_step
        self._chunks: list[Chunk] = []
        self.engine = definition.engine
        self.overrides = _normalize_overrides(overrides or {})
        self.now = 0.0
        self._seq = 0
        self._timers: list[tuple[float, int, Command]] = []
        self._running: dict[asyncio.Task[Event], int] = {}
        self._functions: dict[str, Callable[..., Any]] = dict(self.overrides)

    async def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        engine = self.engine
        state, commands = engine.start(args, kwargs, seed=0)
        try:
            while True:
                if self.restore_each_step:
                    state = engine.loads(engine.dumps_logged(state, self._chunks), self._chunks)
                else:
                    engine.dumps(state)  # every step is persistable, as in production
                if len(commands) == 1 and not self._running and not self._timers:
                    # One action to run, nothing else going on: run it here and now.
                    command = commands[0]
                    if isinstance(command, DispatchAction) and command.delay <= 0:
                        event = await self._execute(command)
                        state, commands = engine.step(state, event)
                        continue
                outcome = self._apply(commands)
                if outcome is not None:
                    return (
                        outcome.value if isinstance(outcome, CompleteWorkflow) else _raise(outcome)
                    )
                state, commands = await self._next(state)
        finally:
            for task in self._running:
                task.cancel()

    def _apply(self, commands: list[Command]) -> CompleteWorkflow | FailWorkflow | None:
        for command in commands:
            if isinstance(command, CompleteWorkflow | FailWorkflow):
                return command
            if isinstance(command, StartTimer):
                self._push(self.now + command.delay, command)
            elif isinstance(command, DispatchAction):
                if command.delay > 0:
                    self._push(self.now + command.delay, command)
                else:
                    self._spawn(command)
        return None

    async def _next(self, state: InstanceState) -> tuple[InstanceState, list[Command]]:
        if self._running:
            done, _ = await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
            commands: list[Command] = []
            for task in sorted(done, key=self._running.__getitem__):
                del self._running[task]
                state, more = self.engine.step(state, task.result())
                commands.extend(more)
            return state, commands
        if not self._timers:
            raise RappelxError("internal error: the instance waits for nothing")
        due, _, command = heapq.heappop(self._timers)
        self.now = max(self.now, due)
        if isinstance(command, DispatchAction):
            return state, [command.__class__(**{**_fields(command), "delay": 0.0})]
        assert isinstance(command, StartTimer)
        return self.engine.step(state, TimerFired(command.timer_id))  # type: ignore[no-any-return]

    def _push(self, due: float, command: Command) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, command))

    def _spawn(self, command: DispatchAction) -> None:
        task = asyncio.ensure_future(self._execute(command))
        self._running[task] = command.action_id

    async def _execute(self, command: DispatchAction) -> Event:
        try:
            fn = self._functions.get(command.action) or self._function(command.action)
            args, kwargs = _copied_arguments(command.args, command.kwargs)
            result = fn(*args, **kwargs)
            if type(result) is CoroutineType and command.timeout is None:
                value = await result
            else:
                value = await _settle(result, command)
            if type(value) not in _SAME_AFTER_CODEC and not _ascii(value):
                value = _codec.loads(_codec.dumps(value))
            return ActionCompleted(command.action_id, value)
        except Exception as exc:
            return ActionFailed(command.action_id, _roundtrip_error(exc))

    def _function(self, name: str) -> Callable[..., Any]:
        if name in self.overrides:
            return self.overrides[name]
        defn = lookup_action(name)
        if defn is None:
            raise RappelxError(f"action {name!r} is not registered; import its module")
        self._functions[name] = defn.fn  # found once per instance run
        return defn.fn


async def _settle(result: Any, command: DispatchAction) -> Any:
    """The value of an action's call: awaited (within its timeout) if it is awaitable."""
    if not inspect.isawaitable(result):
        return result
    if command.timeout is None:
        return await result
    try:
        async with asyncio.timeout(command.timeout) as scope:
            return await result
    except TimeoutError:
        if scope.expired():
            raise ActionTimeout(
                f"action {command.action} exceeded its timeout of {command.timeout}s"
            ) from None
        raise


# Values the codec round trip gives back equal, of the same type, and immutable: passed as
# they are (str only when ASCII: other strings may hold what UTF-8 cannot encode).
_SAME_AFTER_CODEC: Final = frozenset({type(None), bool, int, float, bytes})


def _ascii(value: object) -> bool:
    return type(value) is str and value.isascii()


def _copied_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` as a worker would receive them (through the codec).

    Arguments that are all immutable atomic values come through unchanged, so they are
    passed as they are (the call binds its own copy of ``kwargs``).
    """
    for value in args:
        if type(value) not in _SAME_AFTER_CODEC and not _ascii(value):
            break
    else:
        for value in kwargs.values():
            if type(value) not in _SAME_AFTER_CODEC and not _ascii(value):
                break
        else:
            return args, kwargs
    copied: Any = _codec.loads(_codec.dumps((args, kwargs)))
    return copied  # type: ignore[no-any-return]


def _roundtrip_error(exc: Exception) -> BaseException:
    try:
        error = _codec.loads(_codec.dumps(exc))
    except Exception as codec_error:
        return codec_error
    assert isinstance(error, BaseException)
    return error


def _normalize_overrides(overrides: Overrides) -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {}
    for key, replacement in overrides.items():
        if isinstance(key, ActionDef):
            out[key.name] = replacement
        elif isinstance(key, str):
            out[key] = replacement
        else:
            raise RappelxError(f"overrides keys are @action functions or action names, not {key!r}")
    return out


def _fields(command: DispatchAction) -> dict[str, Any]:
    return {f: getattr(command, f) for f in command.__slots__}


def _raise(outcome: FailWorkflow) -> Any:
    raise outcome.error
