"""An instance's state: the data the engine advances, and how it is persisted.

The engine's own bookkeeping (fibers, frames, program counters, outstanding actions) is
packed as plain msgpack; the user's values (every frame's variables, action arguments,
gather results, the workflow object's attributes) go through the codec in one call, so
they are one object graph and two names bound to one list still share it after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from rappelx.exceptions import StateError
from rappelx.runtime import _codec

FORMAT = 2


@dataclass(slots=True)
class Frame:
    """One activation of a workflow function."""

    func: str
    pc: int
    scope: dict[str, Any]


@dataclass(slots=True)
class Fiber:
    """A thread of workflow execution; ``join``/``slot`` say where its result goes."""

    frames: list[Frame]
    join: int | None = None
    slot: int = 0


@dataclass(slots=True)
class Join:
    """An ``asyncio.gather`` waiting for its elements."""

    fiber: int
    results: list[Any]
    failed: list[bool]
    remaining: int


@dataclass(slots=True)
class Pending:
    """An action dispatched and not yet finished."""

    fiber: int
    join: int | None
    slot: int
    action: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    timeout: float | None
    attempt: int = 1
    attempts: int | None = None  # per-call RetryPolicy override
    retry_on: tuple[str, ...] | None = None
    backoff: tuple[float, float, float, float] | None = None


@dataclass(slots=True)
class Sleeper:
    """A fiber in ``asyncio.sleep``; ``result`` is what the await returns."""

    fiber: int
    result: Any


@dataclass(slots=True)
class InstanceState:
    """Everything about one running instance (besides its program)."""

    seed: int
    counter: int
    fibers: dict[int, Fiber]
    joins: dict[int, Join]
    actions: dict[int, Pending]
    timers: dict[int, Sleeper]
    workflow: Any
    finished: bool = False


def encode_state(state: InstanceState, self_names: dict[str, str | None]) -> bytes:
    """Bytes for ``state``; raises the codec's error for a value it cannot persist."""
    workflow = state.workflow
    values: list[Any] = []
    append = values.append
    fibers = []
    for fiber_id, fiber in state.fibers.items():
        frames = []
        for frame in fiber.frames:
            # The workflow object is persisted once, as its attributes; names bound to it
            # (`self`, or a temporary holding `self`) are recorded and re-bound on load.
            scope = frame.scope
            bound = []
            for name, value in scope.items():  # a loop, not a comprehension: no call
                if value is workflow:
                    bound.append(name)
            if bound:
                scope = scope.copy()  # a C copy, then the few names out: keeps the order
                for name in bound:
                    del scope[name]
            append(scope)
            frames.append([frame.func, frame.pc, bound])
        fibers.append([fiber_id, fiber.join, fiber.slot, frames])
    joins = []
    if state.joins:  # (the guards skip a loop's setup: most states have neither)
        for join_id, join in state.joins.items():
            append(join.results)
            joins.append([join_id, join.fiber, join.remaining, join.failed])
    actions = []
    for action_id, p in state.actions.items():
        append(p.args)
        append(p.kwargs)
        actions.append(
            [
                action_id,
                p.fiber,
                p.join,
                p.slot,
                p.action,
                p.queue,
                p.timeout,
                p.attempt,
                p.attempts,
                p.retry_on,
                p.backoff,
            ]
        )
    timers = []
    if state.timers:
        for timer_id, sleeper in state.timers.items():
            append(sleeper.result)
            timers.append([timer_id, sleeper.fiber])
    append(workflow.__dict__.copy() if workflow is not None else {})
    skeleton = [FORMAT, state.seed, state.counter, state.finished, fibers, joins, actions, timers]
    return _pack([skeleton, _codec.dumps(values)])


# The skeleton's packers: strict, so that its lists pack without isinstance checks (its
# tuples go through _as_array, to the same bytes). Kept for reuse, as the codec's are.
_IDLE: list[msgpack.Packer] = []
_MAX_IDLE = 4
_MAX_KEPT = 64 * 1024  # a packer keeps the largest buffer it ever needed


def _pack(value: object) -> bytes:
    try:
        packer = _IDLE.pop()
    except IndexError:
        packer = msgpack.Packer(
            default=_as_array, strict_types=True, use_bin_type=True, buf_size=4096
        )
    data: bytes = packer.pack(value)  # if it raises, the packer is dropped
    if len(data) <= _MAX_KEPT and len(_IDLE) < _MAX_IDLE:
        _IDLE.append(packer)
    return data


def _as_array(value: object) -> object:
    """Tuples (policies in the skeleton) pack as arrays, as a non-strict packer packs them."""
    if type(value) is tuple:
        return list(value)
    raise TypeError(f"can not serialize {type(value).__name__!r} object")


def decode_state(
    data: bytes, workflow_cls: type, self_names: dict[str, str | None]
) -> InstanceState:
    """The inverse of :func:`encode_state`."""
    skeleton, encoded = msgpack.unpackb(data, raw=False, use_list=True)
    if skeleton[0] != FORMAT:
        raise StateError(
            f"instance state was written in format {skeleton[0]}, this rappelx reads format "
            f"{FORMAT}; finish those instances with the rappelx version that started them"
        )
    _, seed, counter, finished, fibers, joins, actions, timers = skeleton
    values: Any = _codec.loads(encoded)
    position = iter(values)
    workflow: Any = object.__new__(workflow_cls)
    vars(workflow).update(values[-1])
    state = InstanceState(
        seed=seed,
        counter=counter,
        fibers={},
        joins={},
        actions={},
        timers={},
        workflow=workflow,
        finished=finished,
    )
    for fiber_id, join, slot, frames in fibers:
        made = []
        for func, pc, bound in frames:
            scope = next(position)
            for name in bound:
                scope[name] = workflow
            made.append(Frame(func, pc, scope))
        state.fibers[fiber_id] = Fiber(made, join, slot)
    for join_id, fiber, remaining, failed in joins:
        state.joins[join_id] = Join(fiber, next(position), failed, remaining)
    for (
        action_id,
        fiber,
        join,
        slot,
        action,
        queue,
        timeout,
        attempt,
        attempts,
        retry_on,
        backoff,
    ) in actions:
        args, kwargs = next(position), next(position)
        state.actions[action_id] = Pending(
            fiber=fiber,
            join=join,
            slot=slot,
            action=action,
            args=args,
            kwargs=kwargs,
            queue=queue,
            timeout=timeout,
            attempt=attempt,
            attempts=attempts,
            retry_on=tuple(retry_on) if retry_on is not None else None,
            backoff=tuple(backoff) if backoff is not None else None,
        )
    for timer_id, fiber in timers:
        state.timers[timer_id] = Sleeper(fiber, next(position))
    return state
