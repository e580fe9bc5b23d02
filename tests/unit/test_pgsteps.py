"""Stepping locked instances into a write batch: no database involved."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from rappelx.exceptions import CodecError, WorkflowCancelled, WorkflowRuntimeError
from rappelx.runtime._codec import dumps, loads
from rappelx.runtime._events import ActionCompleted, ActionFailed, DispatchAction
from rappelx.runtime._pgsteps import (
    LockedInstance,
    StateCache,
    StepBatch,
    advance,
    decode_result,
    notification_payloads,
)
from tests.integration._fakes import LineEngine, LineWorkflow

LINE = LineWorkflow("Line", LineEngine("double"))


def pending(args: tuple[Any, ...] = (2, 1), **changes: Any) -> LockedInstance:
    values: dict[str, Any] = dict(
        id=uuid.uuid4(), workflow="Line", version=LINE.version, status="pending", state=None,
        input=dumps((args, {})), cancel_requested=False, seq=0,
    )  # fmt: skip
    values.update(changes)
    return LockedInstance(**values)


def test_starting_dispatches_the_first_action_and_leases_within_budget() -> None:
    batch = StepBatch(queues=frozenset({"default"}), lease_budget=1)
    first, second = pending(), pending()
    advance(first, [], LINE, batch)
    advance(second, [], LINE, batch)
    assert batch.statuses == ["running", "running"]
    assert [(a.action_id, a.name, a.lease) for a in batch.actions] == [
        (0, "double", True),
        (0, "double", False),
    ]
    assert loads(batch.actions[0].payload) == ((1,), {})
    # The one it could not lease itself is announced to the queue.
    assert batch.wake_queues == {"default"}
    assert len(batch.params(uuid.uuid4(), 1.0)) == 29


def test_an_action_elsewhere_is_not_leased_but_announced() -> None:
    other = LineWorkflow("Other", LineEngine("double", queue="gpu"))
    batch = StepBatch(queues=frozenset({"default"}), lease_budget=10)
    advance(pending(), [], other, batch)
    assert [a.lease for a in batch.actions] == [False]
    assert batch.wake_queues == {"gpu"}


def test_running_instance_completes_and_is_listed_as_finished() -> None:
    engine = LINE.engine
    state, _ = engine.start((1, 5), {}, seed=0)
    instance = pending(status="running", state=engine.dumps(state), seq=1)
    batch = StepBatch(queues=frozenset({"default"}))
    advance(instance, [ActionCompleted(0, 10)], LINE, batch)
    assert batch.statuses == ["completed"]
    assert loads(batch.results[0]) == 10  # type: ignore[arg-type]
    assert batch.finished == [instance.id] and batch.cached == []
    assert notification_payloads(batch.finished) == [str(instance.id)]


def test_unencodable_action_arguments_fail_at_the_await() -> None:
    class Opaque:
        pass

    engine = LineEngine("double")
    original = engine._dispatch

    def dispatch(state: dict[str, Any], delay: float = 0.0) -> DispatchAction:
        command = original(state, delay)
        return DispatchAction(command.action_id, command.action, (Opaque(),), {})

    engine._dispatch = dispatch  # type: ignore[method-assign]
    batch = StepBatch(queues=frozenset({"default"}))
    advance(pending(), [], LineWorkflow("Line", engine), batch)
    assert batch.statuses == ["failed"] and batch.actions == []
    error = loads(batch.errors[0])  # type: ignore[arg-type]
    assert isinstance(error, CodecError)


def test_an_engine_crash_fails_only_that_instance() -> None:
    class Broken(LineEngine):
        def start(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, seed: int) -> Any:
            raise ZeroDivisionError("engine bug")

    batch = StepBatch(queues=frozenset({"default"}))
    advance(pending(), [], LineWorkflow("Broken", Broken("double")), batch)
    advance(pending(), [], LINE, batch)
    assert batch.statuses == ["failed", "running"]
    error = loads(batch.errors[0])  # type: ignore[arg-type]
    assert isinstance(error, WorkflowRuntimeError) and "ZeroDivisionError" in str(error)


def test_cancelling_a_pending_instance_does_not_start_it() -> None:
    from rappelx.runtime._events import Cancelled

    batch = StepBatch(queues=frozenset({"default"}))
    advance(pending(), [Cancelled()], LINE, batch)
    assert batch.statuses == ["cancelled"] and batch.actions == []
    assert isinstance(loads(batch.errors[0]), WorkflowCancelled)  # type: ignore[arg-type]


def test_state_cache_is_valid_only_at_its_seq() -> None:
    cache = StateCache(limit=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put_all([(a, 3, "state-a"), (b, 1, "state-b")])
    assert cache.take(a, 2) is None  # someone else advanced it meanwhile
    assert cache.take(a, 3) is None  # and the stale entry is gone
    cache.put_all([(a, 4, "a4"), (c, 1, "c1")])
    assert len(cache) == 2 and cache.take(b, 1) is None  # evicted, oldest first
    assert cache.take(a, 4) == "a4" and cache.take(a, 4) is None


def test_cached_state_skips_decoding() -> None:
    engine = LINE.engine
    state, _ = engine.start((2, 5), {}, seed=0)
    instance = pending(status="running", state=b"not a state", seq=7)
    cache = StateCache()
    cache.put_all([(instance.id, 7, state)])
    batch = StepBatch(queues=frozenset({"default"}))
    advance(instance, [ActionCompleted(0, 10)], LINE, batch, cache)
    assert batch.statuses == ["running"]
    assert [(i, seq) for i, seq, _ in batch.cached] == [(instance.id, 8)]


def test_notification_payloads_fit_in_a_notify() -> None:
    ids = [uuid.uuid4() for _ in range(450)]
    payloads = notification_payloads(ids)
    assert [len(p.split(",")) for p in payloads] == [200, 200, 50]
    assert max(len(p) for p in payloads) < 8000
    assert [uuid.UUID(x) for p in payloads for x in p.split(",")] == ids


@pytest.mark.parametrize(
    ("ok", "payload", "kind"),
    [(True, dumps(3), ActionCompleted), (False, dumps(KeyError("k")), ActionFailed),
     (True, b"\xc1", ActionFailed), (False, dumps("not an exception"), ActionFailed)],
)  # fmt: skip
def test_decode_result(ok: bool, payload: bytes, kind: type) -> None:
    event = decode_result(4, ok, payload)
    assert isinstance(event, kind) and event.action_id == 4
    if isinstance(event, ActionFailed):
        assert isinstance(event.error, BaseException)
