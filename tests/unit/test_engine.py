"""The engine driven directly, event by event: the tests play the store.

``Engine.start`` and ``Engine.step`` are pure: commands out for events in. Nothing here
runs an action or waits for a timer; the tests decide what each action returned.
"""

from __future__ import annotations

from typing import Any

import pytest

from rappelx._workflow import definition
from rappelx.exceptions import StateError, WorkflowCancelled
from rappelx.runtime._engine import Engine
from rappelx.runtime._events import (
    ActionCompleted,
    ActionFailed,
    Cancelled,
    Command,
    CompleteWorkflow,
    DispatchAction,
    FailWorkflow,
    StartTimer,
    TimerFired,
)
from rappelx.runtime._state import InstanceState
from tests.unit.compile_samples import engine_flows as flows

JITTER = 0.1  # flaky's BackoffPolicy(base_delay=1, factor=2, max_delay=3, jitter=0.1)


def engine(cls: type) -> Engine:
    found: Engine = definition(cls).engine
    return found


def only(commands: list[Command], kind: type) -> Any:
    assert len(commands) == 1, commands
    (command,) = commands
    assert isinstance(command, kind), command
    return command


def first_id(commands: list[Command]) -> int:
    """The action id of the one dispatch ``commands`` holds."""
    action_id: int = only(commands, DispatchAction).action_id
    return action_id


def dispatches(commands: list[Command]) -> list[DispatchAction]:
    assert all(isinstance(c, DispatchAction) for c in commands), commands
    return list(commands)  # type: ignore[arg-type]


# ------------------------------------------------------------------ commands
def test_start_dispatches_the_first_action_with_its_policies() -> None:
    _, commands = engine(flows.EngSequence).start((5,), {})
    first = only(commands, DispatchAction)
    assert first.action == "tests.unit.compile_samples.engine_flows.flaky"
    assert (first.args, first.kwargs) == ((5,), {})
    assert (first.queue, first.timeout, first.attempt, first.delay) == ("net", 10.0, 1, 0.0)


def test_completions_advance_to_the_next_action_then_complete() -> None:
    eng = engine(flows.EngSequence)
    state, commands = eng.start((5,), {})
    state, commands = eng.step(state, ActionCompleted(only(commands, DispatchAction).action_id, 5))
    second = only(commands, DispatchAction)
    assert second.action.endswith(".once") and second.args == (6,)
    assert second.queue == "default" and second.timeout is None
    state, commands = eng.step(state, ActionCompleted(second.action_id, 6))
    assert only(commands, CompleteWorkflow).value == 11
    assert state.finished


def test_uncaught_action_failure_fails_the_workflow() -> None:
    eng = engine(flows.EngSequence)
    state, commands = eng.start((5,), {})
    error = ValueError("not retryable")  # flaky retries ConnectionError only
    state, commands = eng.step(state, ActionFailed(first_id(commands), error))
    failed = only(commands, FailWorkflow)
    assert type(failed.error) is ValueError and failed.error.args == ("not retryable",)


def test_failure_caught_by_class_hierarchy() -> None:
    eng = engine(flows.EngCaught)
    state, commands = eng.start((), {})
    state, commands = eng.step(state, ActionFailed(first_id(commands), KeyError("k")))
    assert only(commands, CompleteWorkflow).value == "caught KeyError"


# ------------------------------------------------------------------ retries and backoff
def expected_delay(retry: int) -> float:
    return min(3.0, 1.0 * 2.0 ** (retry - 1))


def fail_until_exhausted(seed: int) -> tuple[list[DispatchAction], list[Command]]:
    """Fail every attempt of flaky with ConnectionError; return the retries and the end."""
    eng = engine(flows.EngSequence)
    state, commands = eng.start((5,), {}, seed=seed)
    action_id = first_id(commands)
    retries: list[DispatchAction] = []
    while True:
        state, commands = eng.step(state, ActionFailed(action_id, ConnectionError("down")))
        if not (len(commands) == 1 and isinstance(commands[0], DispatchAction)):
            return retries, commands
        retries.append(commands[0])


def test_retries_follow_attempts_and_the_backoff_formula() -> None:
    retries, end = fail_until_exhausted(seed=0)
    # attempts=5 counts every try: four retries, then the error reaches the workflow.
    assert [r.attempt for r in retries] == [2, 3, 4, 5]
    assert {r.action_id for r in retries} == {1}
    for retry, command in enumerate(retries, start=1):
        base = expected_delay(retry)  # 1, 2, then capped at max_delay=3
        assert base * (1 - JITTER) <= command.delay <= base * (1 + JITTER), (retry, command)
        assert (command.queue, command.timeout, command.args) == ("net", 10.0, (5,))
    error = only(end, FailWorkflow).error
    assert type(error) is ConnectionError


def test_backoff_jitter_is_deterministic_per_seed_and_spread_across_seeds() -> None:
    first = [r.delay for r in fail_until_exhausted(seed=7)[0]]
    assert [r.delay for r in fail_until_exhausted(seed=7)[0]] == first
    spread = {fail_until_exhausted(seed=s)[0][0].delay for s in range(20)}
    assert len(spread) > 1
    assert all(0.9 <= d <= 1.1 for d in spread)


def test_per_call_policies_override_the_action_defaults() -> None:
    eng = engine(flows.EngOverride)
    state, commands = eng.start((10.0,), {})
    first = only(commands, DispatchAction)
    assert first.timeout == 2.5
    state, commands = eng.step(state, ActionFailed(first.action_id, KeyError("again")))
    retry = only(commands, DispatchAction)
    assert (retry.attempt, retry.delay, retry.timeout) == (2, 10.0, 2.5)  # jitter=0
    state, commands = eng.step(state, ActionFailed(first.action_id, KeyError("last")))
    assert only(commands, FailWorkflow).error.args == ("last",)


def test_per_call_retry_only_retries_its_own_exceptions() -> None:
    eng = engine(flows.EngOverride)
    state, commands = eng.start((10.0,), {})
    # flaky's own policy retries ConnectionError; the per-call policy replaces it.
    state, commands = eng.step(state, ActionFailed(first_id(commands), ConnectionError()))
    assert type(only(commands, FailWorkflow).error) is ConnectionError


def test_action_timeout_is_retried_like_any_listed_exception() -> None:
    from rappelx import ActionTimeout

    eng = engine(flows.EngTimed)
    state, commands = eng.start((), {})
    action_id = first_id(commands)
    state, commands = eng.step(state, ActionFailed(action_id, ActionTimeout("slow")))
    assert only(commands, DispatchAction).attempt == 2
    state, commands = eng.step(state, ActionFailed(action_id, ActionTimeout("slow again")))
    assert isinstance(only(commands, FailWorkflow).error, ActionTimeout)


# ------------------------------------------------------------------ timers and gathers
def test_sleep_starts_a_timer_and_firing_it_resumes() -> None:
    eng = engine(flows.EngSleep)
    state, commands = eng.start((3600,), {})
    timer = only(commands, StartTimer)
    assert timer.delay == 3600.0
    state, commands = eng.step(state, TimerFired(timer.timer_id))
    action = only(commands, DispatchAction)
    state, commands = eng.step(state, ActionCompleted(action.action_id, 1))
    assert only(commands, CompleteWorkflow).value == 1


def test_sleep_of_zero_starts_no_timer() -> None:
    _, commands = engine(flows.EngSleep).start((0,), {})
    assert only(commands, DispatchAction).args == (1,)


def test_gather_dispatches_every_element_and_keeps_positions() -> None:
    eng = engine(flows.EngGather)
    state, commands = eng.start((), {})
    sent = dispatches(commands)
    assert [c.args for c in sent] == [(1,), (2,), (3,)]
    assert len({c.action_id for c in sent}) == 3
    for command in (sent[2], sent[0]):
        state, commands = eng.step(state, ActionCompleted(command.action_id, command.args[0] * 10))
        assert commands == []
    state, commands = eng.step(state, ActionCompleted(sent[1].action_id, 20))
    assert only(commands, CompleteWorkflow).value == [10, 20, 30]


def test_gather_raises_the_lowest_position_failure_once_all_finished() -> None:
    eng = engine(flows.EngGather)
    state, commands = eng.start((), {})
    sent = dispatches(commands)
    state, commands = eng.step(state, ActionFailed(sent[2].action_id, KeyError("third")))
    assert commands == []
    state, commands = eng.step(state, ActionFailed(sent[1].action_id, ValueError("second")))
    assert commands == []
    state, commands = eng.step(state, ActionCompleted(sent[0].action_id, 1))
    error = only(commands, FailWorkflow).error
    assert (type(error), error.args) == (ValueError, ("second",))


# ------------------------------------------------------------------ duplicates, unknowns
def test_duplicate_and_unknown_events_are_ignored() -> None:
    eng = engine(flows.EngGather)
    state, commands = eng.start((), {})
    sent = dispatches(commands)
    state, commands = eng.step(state, ActionCompleted(sent[0].action_id, 1))
    snapshot = eng.dumps(state)
    for event in (
        ActionCompleted(sent[0].action_id, 999),  # duplicate delivery
        ActionFailed(sent[0].action_id, ValueError("late")),  # after it completed
        ActionCompleted(12345, 0),  # never dispatched
        ActionFailed(12345, ValueError("unknown")),
        TimerFired(12345),
    ):
        state, commands = eng.step(state, event)
        assert commands == []
        assert eng.dumps(state) == snapshot
    state, _ = eng.step(state, ActionCompleted(sent[1].action_id, 2))
    state, commands = eng.step(state, ActionCompleted(sent[2].action_id, 3))
    assert only(commands, CompleteWorkflow).value == [1, 2, 3]


def test_duplicate_timer_is_ignored() -> None:
    eng = engine(flows.EngSleep)
    state, commands = eng.start((5,), {})
    timer = only(commands, StartTimer)
    state, commands = eng.step(state, TimerFired(timer.timer_id))
    only(commands, DispatchAction)
    state, commands = eng.step(state, TimerFired(timer.timer_id))
    assert commands == []


def test_events_after_the_end_are_ignored() -> None:
    eng = engine(flows.EngCaught)
    state, commands = eng.start((), {})
    action_id = first_id(commands)
    state, commands = eng.step(state, ActionCompleted(action_id, 1))
    only(commands, CompleteWorkflow)
    for event in (ActionCompleted(action_id, 1), Cancelled(), TimerFired(1)):
        state, commands = eng.step(state, event)
        assert commands == []


# ------------------------------------------------------------------ persistence
def roundtrip(eng: Engine, state: InstanceState) -> InstanceState:
    return eng.loads(eng.dumps(state))


def test_dumps_loads_mid_flight_then_continue() -> None:
    eng = engine(flows.EngSequence)
    state, commands = eng.start((5,), {})
    state = roundtrip(eng, state)
    state, commands = eng.step(state, ActionCompleted(first_id(commands), 5))
    restored = Engine(definition(flows.EngSequence).compiled.program, flows.EngSequence)
    state = restored.loads(eng.dumps(state))  # as another process would
    state, commands = restored.step(state, ActionCompleted(first_id(commands), 6))
    assert only(commands, CompleteWorkflow).value == 11


def test_dumps_loads_keeps_retry_progress() -> None:
    eng = engine(flows.EngSequence)
    state, commands = eng.start((5,), {})
    action_id = first_id(commands)
    state, commands = eng.step(state, ActionFailed(action_id, ConnectionError()))
    state = roundtrip(eng, state)
    state, commands = eng.step(state, ActionFailed(action_id, ConnectionError()))
    assert only(commands, DispatchAction).attempt == 3


def test_dumps_loads_mid_gather() -> None:
    eng = engine(flows.EngGather)
    state, commands = eng.start((), {})
    sent = dispatches(commands)
    state, _ = eng.step(state, ActionCompleted(sent[1].action_id, 20))
    state = roundtrip(eng, state)
    state, _ = eng.step(state, ActionCompleted(sent[0].action_id, 10))
    state = roundtrip(eng, state)
    state, commands = eng.step(state, ActionCompleted(sent[2].action_id, 30))
    assert only(commands, CompleteWorkflow).value == [10, 20, 30]


def test_dumps_loads_while_sleeping() -> None:
    eng = engine(flows.EngSleep)
    state, commands = eng.start((60,), {})
    timer = only(commands, StartTimer)
    state = roundtrip(eng, state)
    state, commands = eng.step(state, TimerFired(timer.timer_id))
    assert only(commands, DispatchAction).args == (1,)


def test_unpersistable_variable_is_a_state_error_naming_it() -> None:
    eng = engine(flows.EngUnpersistable)
    state, _ = eng.start((), {})
    with pytest.raises(StateError) as info:
        eng.dumps(state)
    assert info.value.variable == "guard"
    assert "variable 'guard'" in str(info.value)
    assert info.value.line > 0
    assert f":{info.value.line}:" in str(info.value)
    assert "guard" in state.fibers[0].frames[0].scope  # the lock itself is left in place


# ------------------------------------------------------------------ cancellation
def test_cancel_fails_the_workflow_and_ignores_what_follows() -> None:
    eng = engine(flows.EngSequence)
    state, commands = eng.start((5,), {})
    action_id = first_id(commands)
    state, commands = eng.step(state, Cancelled())
    assert isinstance(only(commands, FailWorkflow).error, WorkflowCancelled)
    assert state.finished
    state, commands = eng.step(state, ActionCompleted(action_id, 5))
    assert commands == []


def test_cancel_while_sleeping() -> None:
    eng = engine(flows.EngSleep)
    state, commands = eng.start((60,), {})
    timer = only(commands, StartTimer)
    state, commands = eng.step(state, Cancelled())
    assert isinstance(only(commands, FailWorkflow).error, WorkflowCancelled)
    state, commands = eng.step(state, TimerFired(timer.timer_id))
    assert commands == []


# ------------------------------------------------------------------ purity
def test_same_events_give_the_same_commands() -> None:
    def play() -> list[list[Command]]:
        eng = engine(flows.EngSequence)
        state, commands = eng.start((5,), {}, seed=3)
        out = [commands]
        action_id = first_id(commands)
        for event in (
            ActionFailed(action_id, ConnectionError("a")),
            ActionFailed(action_id, ConnectionError("b")),
            ActionCompleted(action_id, 5),
        ):
            state, commands = eng.step(state, event)
            out.append(commands)
        return out

    assert play() == play()


def test_aliasing_survives_dumps_loads() -> None:
    """Two names (and the workflow object) bound to one list still share it after a restart."""
    eng = engine(flows.EngAliasing)
    state, commands = eng.start((), {})
    state = roundtrip(eng, state)
    state, commands = eng.step(state, ActionCompleted(first_id(commands), 1))
    assert only(commands, CompleteWorkflow).value == ([1, 2], True, True, True)


def test_state_error_names_a_helper_variable() -> None:
    eng = engine(flows.EngHelperLambda)
    state, _ = eng.start((), {})
    with pytest.raises(StateError) as info:
        eng.dumps(state)
    assert info.value.variable == "scale"
    assert "variable 'scale'" in str(info.value) and "helper()" in str(info.value)
