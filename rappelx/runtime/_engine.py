"""The engine: a pure state machine over a compiled workflow.

``Engine.step(state, event) -> (state, commands)`` advances one instance. It performs no
I/O, reads no clock and draws no random numbers (retry jitter is a hash of the instance
seed); the in-memory store of ``run_inline`` and the Postgres dispatcher drive this same
code. The state it advances is plain data (dataclasses, dicts, lists) that the codec
persists as one object graph.

An instance runs one or more *fibers*: the main fiber runs ``run``; each helper
coroutine passed to ``asyncio.gather`` runs in a fiber of its own. A fiber is a stack of
frames (``run`` or an awaited helper); each frame is a program counter into its
function's node table plus that function's variables.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
from collections import deque
from collections.abc import Mapping
from typing import Any

from rappelx._action import ActionCall, BackoffPolicy, lookup_action
from rappelx.compiler._appends import log_lists
from rappelx.compiler._ir import Await, Branch, Exec, FinallyExit, Function, Jump, Program, Return
from rappelx.exceptions import StateError, WorkflowCancelled
from rappelx.runtime import _codec
from rappelx.runtime._events import (
    ActionCompleted,
    ActionFailed,
    Cancelled,
    Command,
    CompleteWorkflow,
    DispatchAction,
    Event,
    FailWorkflow,
    StartTimer,
    TimerFired,
)
from rappelx.runtime._specs import HelperCall
from rappelx.runtime._state import (
    Chunk,
    Fiber,
    Frame,
    InstanceState,
    Join,
    Pending,
    Sleeper,
    decode_state,
    encode_state,
)

Runnable = deque[tuple[int, BaseException | None]]


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_class(name: str) -> type | None:
    """An already-imported class by qualified name (never imports anything)."""
    module_name, _, rest = name.rpartition(".")
    while module_name:
        module = sys.modules.get(module_name)
        if module is not None:
            value: Any = module
            for part in rest.split("."):
                value = getattr(value, part, None)
            return value if isinstance(value, type) else None
        module_name, _, head = module_name.rpartition(".")
        rest = f"{head}.{rest}"
    return None


def _set_context(error: BaseException, handled: Any) -> None:
    if type(handled) is tuple and handled[0] == "x":  # a finally entered by an exception
        handled = handled[1]
    if isinstance(handled, BaseException) and error.__context__ is None and error is not handled:
        error.__context__ = handled


def _unit(seed: int, action_id: int, attempt: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{action_id}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Engine:
    """Runs one compiled workflow; one instance per :class:`InstanceState`."""

    def __init__(self, program: Program, workflow_cls: type) -> None:
        self.program = program
        self.functions: dict[str, Function] = program.functions
        self.workflow_cls = workflow_cls
        self.self_names = {
            name: (f.params[0] if f.params else None) for name, f in program.functions.items()
        }

    @functools.cached_property
    def log_lists(self) -> dict[str, Mapping[str, bool]]:
        """Lists that only grow at the end, per function (persisted as logs by dumps_logged).

        Found on first use, not at import: only the Postgres store writes logs.
        """
        functions = self.program.functions
        return {name: found for name, f in functions.items() if (found := log_lists(f))}

    # ------------------------------------------------------------------ public
    def start(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, seed: int = 0
    ) -> tuple[InstanceState, list[Command]]:
        """A new instance of ``run(*args, **kwargs)`` advanced to its first suspension."""
        workflow = self.workflow_cls()
        scope = self._bind("run", workflow, args, kwargs)
        run = self.functions["run"]
        state = InstanceState(
            seed=seed,
            counter=0,
            fibers={0: Fiber([Frame("run", run.entry, scope)])},
            joins={},
            actions={},
            timers={},
            workflow=workflow,
        )
        commands: list[Command] = []
        self._run(state, deque([(0, None)]), commands)
        return state, commands

    def step(self, state: InstanceState, event: Event) -> tuple[InstanceState, list[Command]]:
        """Apply ``event``. The state passed in is advanced in place; do not reuse it."""
        commands: list[Command] = []
        if state.finished:
            return state, commands
        runnable: Runnable = deque()
        if isinstance(event, ActionCompleted):
            pending = state.actions.pop(event.action_id, None)
            if pending is not None and pending.join is None:
                # The common case, as _deliver would do it: a fiber awaiting this action
                # alone resumes at once, then whatever it made runnable runs.
                fiber_id = pending.fiber
                frame = state.fibers[fiber_id].frames[-1]
                node = self.functions[frame.func].nodes[frame.pc]
                assert isinstance(node, Await)
                if node.target is not None:
                    frame.scope[node.target] = event.value
                frame.pc = node.next
                self._run_fiber(state, fiber_id, None, runnable, commands)
            elif pending is not None:
                self._deliver(
                    state, pending.fiber, pending.join, pending.slot, event.value, True, runnable
                )
        elif isinstance(event, ActionFailed):
            pending = state.actions.get(event.action_id)
            if pending is not None:
                delay = self._retry_delay(state, event.action_id, pending, event.error)
                if delay is not None:
                    pending.attempt += 1
                    commands.append(self._dispatch_command(event.action_id, pending, delay))
                    return state, commands
                del state.actions[event.action_id]
                self._deliver(
                    state, pending.fiber, pending.join, pending.slot, event.error, False, runnable
                )
        elif isinstance(event, TimerFired):
            sleeper = state.timers.pop(event.timer_id, None)
            if sleeper is not None:
                self._deliver(state, sleeper.fiber, None, 0, sleeper.result, True, runnable)
        elif isinstance(event, Cancelled):
            state.finished = True
            commands.append(FailWorkflow(WorkflowCancelled("the workflow was cancelled")))
            return state, commands
        if runnable:
            self._run(state, runnable, commands)
        return state, commands

    def dumps(self, state: InstanceState) -> bytes:
        """Persist ``state`` (one object graph); StateError names a variable that can't be."""
        try:
            return encode_state(state, self.self_names)
        except Exception as exc:
            raise self._state_error(state, exc) from exc

    def dumps_logged(self, state: InstanceState, chunks: list[Chunk]) -> bytes:
        """:meth:`dumps`, with the items new to log lists put in ``chunks`` instead.

        The state's log marks move on with it: if the write does not commit, drop
        ``state`` (decode it again from what was committed).
        """
        if not self.log_lists:
            return self.dumps(state)
        try:
            return encode_state(state, self.self_names, self.log_lists, chunks)
        except Exception as exc:
            raise self._state_error(state, exc) from exc

    def loads(self, data: bytes, chunks: list[Chunk] | None = None) -> InstanceState:
        """The inverse of :meth:`dumps` (and of :meth:`dumps_logged`, given every chunk)."""
        return decode_state(data, self.workflow_cls, self.self_names, chunks)

    # ------------------------------------------------------------------ running
    def _run(self, state: InstanceState, runnable: Runnable, commands: list[Command]) -> None:
        while runnable and not state.finished:
            fiber_id, error = runnable.popleft()
            self._run_fiber(state, fiber_id, error, runnable, commands)

    def _run_fiber(
        self,
        state: InstanceState,
        fiber_id: int,
        error: BaseException | None,
        runnable: Runnable,
        commands: list[Command],
    ) -> None:
        frames = state.fibers[fiber_id].frames
        functions = self.functions
        frame = frames[-1]
        nodes = functions[frame.func].nodes
        while True:
            if frames[-1] is not frame:  # a call pushed a frame, or a frame was left
                frame = frames[-1]
                nodes = functions[frame.func].nodes
            node = nodes[frame.pc]
            if error is not None:
                if node.context is not None:
                    _set_context(error, frame.scope.get(node.context))
                handler = node.handler
                if handler is not None:
                    catch = nodes[handler]
                    frame.scope[catch.var] = error  # type: ignore[attr-defined]
                    frame.pc = catch.next  # type: ignore[attr-defined]
                    error = None
                    continue
                frames.pop()
                if frames:
                    continue
                self._finish_fiber(state, fiber_id, error, False, runnable, commands)
                return
            try:
                kind = type(node)
                if kind is Exec:
                    node.fn(frame.scope)  # type: ignore[attr-defined]
                    frame.pc = node.next  # type: ignore[attr-defined]
                elif kind is Branch:
                    frame.pc = node.true if node.fn(frame.scope) else node.false  # type: ignore[attr-defined]
                elif kind is Await:
                    if node.what == "action":  # type: ignore[attr-defined]
                        call = node.fn(frame.scope)  # type: ignore[attr-defined]
                        self._start_action(state, fiber_id, None, 0, call, commands)
                        return
                    if self._await(state, fiber_id, frame, node, runnable, commands):  # type: ignore[arg-type]
                        return
                elif kind is Return:
                    value = node.fn(frame.scope) if node.fn is not None else None  # type: ignore[attr-defined]
                    stack = node.finally_stack  # type: ignore[attr-defined]
                    if stack:
                        frame.scope[stack[-1][0]] = ("r", value)
                        frame.pc = stack[-1][1]
                    elif self._return(state, fiber_id, value, runnable, commands):
                        return
                elif kind is Jump:
                    var, entry = node.finally_stack[-1]  # type: ignore[attr-defined]
                    frame.scope[var] = ("j", node.target, node.depth)  # type: ignore[attr-defined]
                    frame.pc = entry
                else:
                    assert kind is FinallyExit, kind
                    finished = self._finally_exit(state, fiber_id, frame, node, runnable, commands)  # type: ignore[arg-type]
                    if finished is True:
                        return
                    error = finished or None
            except Exception as exc:
                error = exc

    def _finally_exit(
        self,
        state: InstanceState,
        fiber_id: int,
        frame: Frame,
        node: FinallyExit,
        runnable: Runnable,
        commands: list[Command],
    ) -> bool | BaseException:
        """Resume the completion pending at the end of a finally block.

        Returns True when the fiber finished, an exception to raise, or False.
        """
        pending = frame.scope.pop(node.var, None)
        if pending is None:
            frame.pc = node.next
            return False
        tag = pending[0]
        if tag == "x":
            error: BaseException = pending[1]
            return error
        if tag == "r":
            if node.outer:
                frame.scope[node.outer[-1][0]] = pending
                frame.pc = node.outer[-1][1]
                return False
            return self._return(state, fiber_id, pending[1], runnable, commands)
        _, target, depth = pending
        if len(node.outer) > depth:
            frame.scope[node.outer[-1][0]] = pending
            frame.pc = node.outer[-1][1]
        else:
            frame.pc = target
        return False

    def _return(
        self,
        state: InstanceState,
        fiber_id: int,
        value: Any,
        runnable: Runnable,
        commands: list[Command],
    ) -> bool:
        """Pop a frame returning ``value``; True when the fiber itself finished."""
        frames = state.fibers[fiber_id].frames
        frames.pop()
        if not frames:
            self._finish_fiber(state, fiber_id, value, True, runnable, commands)
            return True
        caller = frames[-1]
        call = self.functions[caller.func].nodes[caller.pc]
        assert isinstance(call, Await)
        if call.target is not None:
            caller.scope[call.target] = value
        caller.pc = call.next
        return False

    def _finish_fiber(
        self,
        state: InstanceState,
        fiber_id: int,
        value: Any,
        ok: bool,
        runnable: Runnable,
        commands: list[Command],
    ) -> None:
        fiber = state.fibers.pop(fiber_id)
        if fiber_id == 0:
            state.finished = True
            state.fibers.clear()
            commands.append(CompleteWorkflow(value) if ok else FailWorkflow(value))
            return
        assert fiber.join is not None
        self._fill_join(state, fiber.join, fiber.slot, value, ok, runnable)

    # ------------------------------------------------------------------ awaits
    def _await(
        self,
        state: InstanceState,
        fiber_id: int,
        frame: Frame,
        node: Await,
        runnable: Runnable,
        commands: list[Command],
    ) -> bool:
        """Start what ``node`` awaits; True when the fiber is now suspended."""
        spec = node.fn(frame.scope)
        what = node.what
        if what == "action":
            self._start_action(state, fiber_id, None, 0, spec, commands)
            return True
        if what == "call":
            frame_scope = dict(spec.scope)
            function = self.functions[spec.name]
            state.fibers[fiber_id].frames.append(Frame(spec.name, function.entry, frame_scope))
            return False
        if what == "sleep":
            delay, result = spec
            if delay <= 0:
                if node.target is not None:
                    frame.scope[node.target] = result
                frame.pc = node.next
                return False
            timer_id = self._next_id(state)
            state.timers[timer_id] = Sleeper(fiber_id, result)
            commands.append(StartTimer(timer_id, float(delay)))
            return True
        assert what == "gather"
        elements: list[Any] = list(spec)
        if not elements:
            if node.target is not None:
                frame.scope[node.target] = []
            frame.pc = node.next
            return False
        join_id = self._next_id(state)
        count = len(elements)
        state.joins[join_id] = Join(fiber_id, [None] * count, [False] * count, count)
        for slot, element in enumerate(elements):
            if isinstance(element, HelperCall):
                child = self._next_id(state)
                entry = self.functions[element.name].entry
                frames = [Frame(element.name, entry, dict(element.scope))]
                state.fibers[child] = Fiber(frames, join_id, slot)
                runnable.append((child, None))
            else:
                self._start_action(state, fiber_id, join_id, slot, element, commands)
        return True

    def _start_action(
        self,
        state: InstanceState,
        fiber_id: int,
        join: int | None,
        slot: int,
        call: ActionCall,
        commands: list[Command],
    ) -> None:
        defn = call.action
        state.counter += 1  # _next_id, inline: this runs once per action
        action_id = state.counter
        timeout = call.timeout
        pending = Pending(
            fiber_id,
            join,
            slot,
            defn.name,
            call.args,
            call.kwargs,
            defn.queue,
            timeout if timeout is not None else defn.timeout,
        )
        if call.retry is not None:
            pending.attempts = call.retry.attempts
            pending.retry_on = tuple(qualified_name(c) for c in call.retry.exceptions)
        if call.backoff is not None:
            b = call.backoff
            pending.backoff = (b.base_delay, b.factor, b.max_delay, b.jitter)
        state.actions[action_id] = pending
        commands.append(
            DispatchAction(
                action_id,
                pending.action,
                pending.args,
                pending.kwargs,
                pending.queue,
                pending.timeout,
                1,  # pending.attempt: a new action's first
                0.0,
            )
        )

    @staticmethod
    def _dispatch_command(action_id: int, pending: Pending, delay: float) -> DispatchAction:
        return DispatchAction(
            action_id,
            pending.action,
            pending.args,
            pending.kwargs,
            pending.queue,
            pending.timeout,
            pending.attempt,
            delay,
        )

    def _retry_delay(
        self, state: InstanceState, action_id: int, pending: Pending, error: BaseException
    ) -> float | None:
        defn = lookup_action(pending.action)
        attempts = pending.attempts
        if attempts is None:
            attempts = defn.retry.attempts if defn is not None else 1
        if pending.attempt >= attempts:
            return None
        if pending.retry_on is not None:
            classes = tuple(c for c in map(resolve_class, pending.retry_on) if c is not None)
        else:
            classes = defn.retry.exceptions if defn is not None else (Exception,)
        if not isinstance(error, classes):
            return None
        if pending.backoff is not None:
            base, factor, most, jitter = pending.backoff
            backoff = BackoffPolicy(base_delay=base, factor=factor, max_delay=most, jitter=jitter)
        else:
            backoff = defn.backoff if defn is not None else BackoffPolicy()
        return backoff.delay(pending.attempt, _unit(state.seed, action_id, pending.attempt))

    def _deliver(
        self,
        state: InstanceState,
        fiber_id: int,
        join: int | None,
        slot: int,
        value: Any,
        ok: bool,
        runnable: Runnable,
    ) -> None:
        if join is not None:
            self._fill_join(state, join, slot, value, ok, runnable)
            return
        frame = state.fibers[fiber_id].frames[-1]
        node = self.functions[frame.func].nodes[frame.pc]
        assert isinstance(node, Await)
        if not ok:
            runnable.append((fiber_id, value))
            return
        if node.target is not None:
            frame.scope[node.target] = value
        frame.pc = node.next
        runnable.append((fiber_id, None))

    def _fill_join(
        self,
        state: InstanceState,
        join_id: int,
        slot: int,
        value: Any,
        ok: bool,
        runnable: Runnable,
    ) -> None:
        join = state.joins[join_id]
        join.results[slot] = value
        join.failed[slot] = not ok
        join.remaining -= 1
        if join.remaining:
            return
        del state.joins[join_id]
        frame = state.fibers[join.fiber].frames[-1]
        node = self.functions[frame.func].nodes[frame.pc]
        assert isinstance(node, Await)
        if not node.return_exceptions and any(join.failed):
            runnable.append((join.fiber, join.results[join.failed.index(True)]))
            return
        if node.target is not None:
            frame.scope[node.target] = join.results
        frame.pc = node.next
        runnable.append((join.fiber, None))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _next_id(state: InstanceState) -> int:
        state.counter += 1
        return state.counter

    def _bind(
        self, function: str, workflow: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        run = self.workflow_cls.__dict__.get("__rappelx_run__") or getattr(self.workflow_cls, "run")  # noqa: B009
        bound = _signature(run).bind(workflow, *args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _state_error(self, state: InstanceState, exc: Exception) -> StateError:
        for fiber in state.fibers.values():
            for frame in fiber.frames:
                node = self.functions[frame.func].nodes.get(frame.pc)
                line = node.line if node is not None else 0
                for name, value in frame.scope.items():
                    if value is state.workflow:
                        continue
                    try:
                        _codec.dumps(value)
                    except Exception as inner:
                        what = (
                            f"variable '{name}'"
                            if not name.startswith("_rx_")
                            else "a value computed before the await"
                        )
                        return StateError(
                            f"{self.program.filename}:{line}: {what} in {frame.func}() cannot "
                            f"be persisted across the await at line {line}: {inner}. Keep only "
                            "plain data, dataclasses, pydantic models and enums in variables "
                            "that live across an await (or delete it before the await).",
                            variable=name,
                            line=line,
                        )
        return StateError(
            f"the state of workflow {self.program.workflow} cannot be persisted: {exc}"
        )


@functools.lru_cache(maxsize=1024)
def _signature(run: Any) -> inspect.Signature:
    """``run``'s signature, worked out once (it costs more than the rest of a start)."""
    return inspect.signature(run)
