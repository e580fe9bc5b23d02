"""The store's two ways of advancing: without locks when nothing changed, else locked."""

from __future__ import annotations

import uuid

import pytest

from rappelx.runtime._codec import dumps
from rappelx.runtime._pgapply import advance_due, apply_results
from rappelx.runtime._pgsteps import StateCache
from rappelx.runtime._pgstore import (
    Claimed,
    LeaseGrant,
    NewInstance,
    PgStore,
    StepContext,
)
from tests.integration._fakes import completed
from tests.integration.test_dispatcher import LINE, _fetch

pytestmark = pytest.mark.postgres


def _context(states: StateCache, *, slots: int = 0, alone: bool = True) -> StepContext:
    return StepContext(
        owner=uuid.uuid4(),
        workflows={LINE.version: LINE},
        queues=frozenset({"default"}),
        grace=5.0,
        infra_cap=5,
        grant=LeaseGrant(lambda: slots, lambda held: None),
        states=states,
        alone=alone,
    )


def _line(n: int, x: int) -> NewInstance:
    return NewInstance(uuid.uuid4(), LINE.name, LINE.version, LINE.ir_json, dumps(((n, x), {})))


async def _started(store: PgStore, ctx: StepContext) -> Claimed:
    """Queue one Line(2, 10) instance and start it: its first action, leased."""
    await store.insert_instances([_line(2, 10)])
    await store.register(ctx.owner, "host", 1, ["default"], [LINE.version], 30.0)
    (claimed,) = (await advance_due(store._pool, ctx, 10)).leased
    return claimed


@pytest.mark.parametrize("alone", [True, False], ids=["alone", "shared"])
async def test_a_result_applies_in_one_statement_from_the_cached_state(
    pg_dsn: str, store: PgStore, alone: bool
) -> None:
    # Alone, the start is read without locks and written if still pending; shared, it
    # is locked first (SKIP LOCKED splits starts between dispatchers). Either way the
    # state it wrote is cached, and the result is applied from the cache.
    states = StateCache()
    ctx = _context(states, slots=10, alone=alone)
    first = await _started(store, ctx)
    assert states.seq_of(first.instance_id) == 1  # the start was cached
    applied = await apply_results(store._pool, [completed(first, 20)], ctx)
    assert applied.advanced == 1 and [c.action_id for c in applied.leased] == [1]
    assert states.seq_of(first.instance_id) == 2
    rows = await _fetch(pg_dsn, "SELECT action_id, status, result FROM rappelx_actions ORDER BY 1")
    assert [(r["action_id"], r["status"], r["result"]) for r in rows] == [
        (0, "completed", dumps(20)),
        (1, "running", None),
    ]


async def test_an_instance_changed_meanwhile_is_applied_under_its_lock(
    pg_dsn: str, store: PgStore
) -> None:
    states = StateCache()
    ctx = _context(states, slots=10)
    first = await _started(store, ctx)
    # Someone else wrote the instance since it was cached: a state whose running total
    # is 100 (the cached one has 0), at the next seq.
    state, _ = LINE.engine.start((2, 10), {}, seed=0)
    state["total"] = 100
    await _fetch(
        pg_dsn, "UPDATE rappelx_instances SET seq = seq + 1, state = $1",
        LINE.engine.dumps(state),
    )  # fmt: skip
    applied = await apply_results(store._pool, [completed(first, 20)], ctx)
    (second,) = applied.leased
    applied = await apply_results(store._pool, [completed(second, 22)], ctx)
    (instance,) = await _fetch(pg_dsn, "SELECT status, seq, result FROM rappelx_instances")
    # Stepped from the row's state, not the stale cached one (which would give 42).
    assert (instance["status"], instance["seq"], instance["result"]) == ("completed", 4, dumps(142))
    rows = await _fetch(pg_dsn, "SELECT action_id, attempt, status FROM rappelx_actions ORDER BY 1")
    assert [(r["action_id"], r["attempt"], r["status"]) for r in rows] == [
        (0, 1, "completed"),
        (1, 1, "completed"),
    ]


async def test_a_result_of_a_reclaimed_lease_is_dropped(pg_dsn: str, store: PgStore) -> None:
    states = StateCache()
    ctx = _context(states, slots=10)
    first = await _started(store, ctx)
    # The lease was taken back (its dispatcher looked dead) and leased again.
    await _fetch(pg_dsn, "UPDATE rappelx_actions SET lease_id = nextval('rappelx_lease_ids')")
    applied = await apply_results(store._pool, [completed(first, 20)], ctx)
    assert applied.advanced == 0 and applied.leased == []
    rows = await _fetch(pg_dsn, "SELECT status, result FROM rappelx_actions")
    assert [(r["status"], r["result"]) for r in rows] == [("running", None)]
    (instance,) = await _fetch(pg_dsn, "SELECT seq FROM rappelx_instances")
    assert instance["seq"] == 1


async def test_claimed_attempts_handed_back_keep_their_turn(pg_dsn: str, store: PgStore) -> None:
    ctx = _context(StateCache())
    await store.register(ctx.owner, "host", 1, ["default"], [LINE.version], 30.0)
    await store.insert_instances([_line(1, k) for k in range(3)])
    # Started with no free slot: the first actions wait in the queue.
    assert (await advance_due(store._pool, ctx, 10)).leased == []
    before = await _fetch(pg_dsn, "SELECT instance_id, ready_at FROM rappelx_actions")
    claimed = await store.claim(ctx, 10)
    assert len(claimed) == 3
    await store.hand_back(ctx.owner, [c.lease_id for c in claimed[1:]])
    rows = await _fetch(
        pg_dsn, "SELECT instance_id, status, ready_at, lease_id FROM rappelx_actions"
    )
    by_id = {r["instance_id"]: r for r in rows}
    assert by_id[claimed[0].instance_id]["status"] == "running"
    for c in claimed[1:]:
        assert by_id[c.instance_id]["status"] == "ready"
        assert by_id[c.instance_id]["lease_id"] is None
    assert {r["instance_id"]: r["ready_at"] for r in before} == {
        r["instance_id"]: r["ready_at"] for r in rows
    }
    again = await store.claim(ctx, 10)
    assert {c.instance_id for c in again} == {c.instance_id for c in claimed[1:]}
