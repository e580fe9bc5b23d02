"""An instance's state: the data the engine advances, and how it is persisted.

The engine's own bookkeeping (fibers, frames, program counters, outstanding actions) is
packed as plain msgpack; the user's values (every frame's variables, action arguments,
gather results, the workflow object's attributes) go through the codec in one call, so
they are one object graph and two names bound to one list still share it after a restart.

Lists that only ever grow at the end (``compiler._appends``) can be kept apart, as logs:
the state then holds ``[name, log id, length]`` in place of such a list, and each write
carries only the items appended since the last one, as a :data:`Chunk` the store keeps
beside the state. A state with logs is written in format 3 (format 2 otherwise, byte for
byte as before); :func:`needs_logs` tells the store which states to read chunks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from rappelx.exceptions import StateError
from rappelx.runtime import _codec
from rappelx.runtime._codec_classes import ATOMIC

FORMAT = 2
#: The format of states that refer to logs (frames list their logged names).
FORMAT_LOGS = 3
#: ``(log id, index of the first item, the items encoded as one list)``.
Chunk = tuple[int, int, bytes]
#: Per function, its log lists and whether every item appended to each is fresh.
LogLists = Mapping[str, Mapping[str, bool]]


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
    #: Log ids handed out so far (persisted: a chunk's key is never reused).
    next_log: int = 0
    #: The log lists as last written, by ``id()`` of the list (not persisted as such).
    logs: dict[int, LogMark] = field(default_factory=dict)


@dataclass(slots=True)
class LogMark:
    """A list kept as a log: its first ``length`` items are in the store under ``log_id``.

    ``length`` is -1 once an item that cannot be logged was appended: the list is then
    written whole, like any other value, until its name is bound to a new list.
    """

    items: list[Any]
    log_id: int
    length: int


def encode_state(
    state: InstanceState,
    self_names: dict[str, str | None],
    log_lists: LogLists | None = None,
    chunks: list[Chunk] | None = None,
) -> bytes:
    """Bytes for ``state``; raises the codec's error for a value it cannot persist.

    With ``log_lists`` and ``chunks``, the log lists among the frames' variables are
    left out and the items appended to them since the last write go to ``chunks`` (the
    state's log marks move on: a state whose write did not commit must not be written
    again). Without, every list is in the bytes and the marks are dropped.
    """
    if log_lists is None or chunks is None:
        if state.logs:
            state.logs = {}
        log_lists, chunks = {}, []
    marks: dict[int, LogMark] = {}
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
            logged = log_lists.get(frame.func)
            refs = _log_refs(state, scope, logged, marks, chunks) if logged else None
            if bound or refs:
                scope = scope.copy()  # a C copy, then the few names out: keeps the order
                for name in bound:
                    del scope[name]
                if refs:
                    for ref in refs:
                        del scope[ref[0]]
            append(scope)
            frames.append(
                [frame.func, frame.pc, bound, refs] if refs else [frame.func, frame.pc, bound]
            )
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
    if log_lists:
        state.logs = marks
    skeleton = [FORMAT, state.seed, state.counter, state.finished, fibers, joins, actions, timers]
    if state.next_log:  # (frames with log lists have a fourth item: their refs)
        skeleton[0] = FORMAT_LOGS
        skeleton.append(state.next_log)
    return _pack([skeleton, _codec.dumps(values)])


def _log_refs(
    state: InstanceState,
    scope: dict[str, Any],
    logged: Mapping[str, bool],
    marks: dict[int, LogMark],
    chunks: list[Chunk],
) -> list[list[Any]]:
    """``[name, log id, length]`` for each log list bound in ``scope``; new items to chunks."""
    refs = []
    for name, fresh in logged.items():
        items = scope.get(name)
        if type(items) is not list:
            continue
        key = id(items)
        mark = state.logs.get(key)
        if mark is None or mark.items is not items:
            mark = LogMark(items, state.next_log, 0)
            state.next_log += 1
        marks[key] = mark
        if mark.length < 0:
            continue
        size = len(items)
        if size < mark.length:  # cannot happen (only appends reach it): write it whole
            mark.length = -1
            continue
        if size > mark.length:
            new = items[mark.length :]
            if not fresh and not _immutable(new):
                mark.length = -1
                continue
            chunks.append((mark.log_id, mark.length, _codec.dumps(new)))
            mark.length = size
        refs.append([name, mark.log_id, size])
    return refs


def _immutable(items: list[Any] | tuple[Any, ...] | frozenset[Any]) -> bool:
    """Whether no code can change ``items`` after they are logged (atoms, and tuples of them)."""
    for item in items:
        cls = type(item)
        if cls in ATOMIC:
            continue
        if (cls is tuple or cls is frozenset) and _immutable(item):
            continue
        return False
    return True


def needs_logs(data: bytes) -> bool:
    """Whether a state written by :func:`encode_state` refers to logs (format 3).

    Read from the bytes' head without decoding: ``[skeleton, values]`` packs as a fixarray
    of two, then the skeleton's fixarray header, then its first item, the format.
    """
    return len(data) > 2 and data[2] == FORMAT_LOGS


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
    data: bytes,
    workflow_cls: type,
    self_names: dict[str, str | None],
    chunks: list[Chunk] | None = None,
) -> InstanceState:
    """The inverse of :func:`encode_state`; ``chunks``: every chunk the store keeps for it."""
    skeleton, encoded = msgpack.unpackb(data, raw=False, use_list=True)
    next_log = 0
    if skeleton[0] == FORMAT_LOGS and len(skeleton) == 9:
        next_log = skeleton.pop()
    elif skeleton[0] != FORMAT:
        raise StateError(
            f"instance state was written in format {skeleton[0]}, this rappelx reads formats "
            f"{FORMAT} and {FORMAT_LOGS}; finish those instances with the rappelx version "
            "that started them"
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
        next_log=next_log,
    )
    logs = _by_log(chunks) if next_log else {}
    for fiber_id, join, slot, frames in fibers:
        made = []
        for func, pc, bound, *refs in frames:
            scope = next(position)
            for name in bound:
                scope[name] = workflow
            for name, log_id, length in refs[0] if refs else ():
                items = _rebuilt(logs, log_id, length)
                scope[name] = items
                state.logs[id(items)] = LogMark(items, log_id, length)
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


def _by_log(chunks: list[Chunk] | None) -> dict[int, list[tuple[int, bytes]]]:
    logs: dict[int, list[tuple[int, bytes]]] = {}
    for log_id, start, data in chunks or ():
        logs.setdefault(log_id, []).append((start, data))
    return logs


def _rebuilt(logs: dict[int, list[tuple[int, bytes]]], log_id: int, length: int) -> list[Any]:
    """The first ``length`` items of log ``log_id``, from its chunks."""
    items: list[Any] = []
    for start, data in sorted(logs.get(log_id, ()), key=lambda chunk: chunk[0]):
        if start >= length or start != len(items):  # (chunks past the length, or a gap)
            break
        items.extend(_codec.loads(data))  # type: ignore[arg-type]
    if len(items) < length:
        raise StateError(
            f"the instance state refers to {length} items of its log {log_id}, but the "
            f"store holds {len(items)}; the rappelx_state_logs rows of this instance are "
            "missing or were changed outside rappelx"
        )
    del items[length:]
    return items
