"""Batches of many instances written in one statement: each row goes to its own instance.

``apply_if_current`` names an instance by its position in the batch; these tests check
that actions, timers and results land on the right rows when a batch mixes instances it
writes with some it must leave alone, and that due timers fire exactly once.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from rappelx import Workflow, action, workflow
from rappelx._workflow import definition
from rappelx.runtime._codec import dumps
from rappelx.runtime._pgapply import advance_due, apply_results
from rappelx.runtime._pgsteps import StateCache
from rappelx.runtime._pgstore import (
    LeaseGrant,
    NewInstance,
    PgStore,
    StepContext,
)
from tests.integration._fakes import completed
from tests.integration.test_dispatcher import LINE, _fetch

pytestmark = pytest.mark.postgres


@action(name="tests.store_batches.echo")
async def echo(x: int) -> int:
    return x


@workflow(name="tests.store_batches.Nap")
class Nap(Workflow):
    """Sleep ``seconds``, then one action with ``x``."""

    async def run(self, x: int, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return await echo(x)


NAP = definition(Nap)


def _context(*workflows: object) -> StepContext:
    return StepContext(
        owner=uuid.uuid4(),
        workflows={w.version: w for w in workflows},  # type: ignore[attr-defined]
        queues=frozenset({"default"}),
        grace=5.0,
        infra_cap=5,
        grant=LeaseGrant(lambda: 1000, lambda held: None),
        states=StateCache(),
        alone=True,
    )


async def test_a_batch_writes_each_current_instance_and_leaves_a_stale_one(
    pg_dsn: str, store: PgStore
) -> None:
    ctx = _context(LINE)
    await store.register(ctx.owner, "host", 1, ["default"], [LINE.version], 30.0)
    ids = [uuid.uuid4() for _ in range(6)]
    await store.insert_instances(
        [NewInstance(i, LINE.name, LINE.version, LINE.ir_json, dumps(((2, n), {})))
         for n, i in enumerate(ids)]
    )  # fmt: skip
    first = {c.instance_id: c for c in (await advance_due(store._pool, ctx, 10)).leased}
    assert set(first) == set(ids)
    # The third instance's lease was taken back and leased again meanwhile.
    stale = sorted(ids)[2]
    await _fetch(
        pg_dsn,
        "UPDATE rappelx_actions SET lease_id = nextval('rappelx_lease_ids') WHERE instance_id = $1",
        stale,
    )
    applied = await apply_results(
        store._pool, [completed(first[i], 100 + n) for n, i in enumerate(ids)], ctx
    )
    assert applied.advanced == 5
    assert sorted(c.instance_id for c in applied.leased) == sorted(set(ids) - {stale})
    assert all(c.action_id == 1 for c in applied.leased)
    rows = await _fetch(
        pg_dsn, "SELECT instance_id, action_id, status, result FROM rappelx_actions"
    )
    got = {(r["instance_id"], r["action_id"]): (r["status"], r["result"]) for r in rows}
    for n, i in enumerate(ids):
        if i == stale:
            assert got[(i, 0)] == ("running", None) and (i, 1) not in got
        else:
            assert got[(i, 0)] == ("completed", dumps(100 + n))
            assert got[(i, 1)] == ("running", None)
    seqs = {
        r["id"]: r["seq"] for r in await _fetch(pg_dsn, "SELECT id, seq FROM rappelx_instances")
    }
    assert seqs == {i: 1 if i == stale else 2 for i in ids}


async def test_due_timers_of_a_batch_fire_once_each_into_their_own_instance(
    pg_dsn: str, store: PgStore
) -> None:
    ctx = _context(NAP)
    await store.register(ctx.owner, "host", 1, ["default"], [NAP.version], 30.0)
    ids = [uuid.uuid4() for _ in range(8)]
    await store.insert_instances(
        [NewInstance(i, NAP.name, NAP.version, NAP.ir_json, dumps(((n, 0.2), {})))
         for n, i in enumerate(ids)]
    )  # fmt: skip
    started = await advance_due(store._pool, ctx, 100)
    assert started.advanced == 8 and started.leased == []
    assert started.next_due is not None and 0 < started.next_due <= 0.2
    # Nothing is due yet: no timer fires early.
    early = await advance_due(store._pool, ctx, 100)
    assert early.advanced == 0
    assert len(await _fetch(pg_dsn, "SELECT 1 FROM rappelx_timers")) == 8
    await asyncio.sleep(0.25)
    fired = await advance_due(store._pool, ctx, 100)
    assert fired.advanced == 8
    assert await _fetch(pg_dsn, "SELECT 1 FROM rappelx_timers") == []
    assert (await advance_due(store._pool, ctx, 100)).advanced == 0
    by_instance = {c.instance_id: c for c in fired.leased}
    assert set(by_instance) == set(ids)
    for n, i in enumerate(ids):
        assert by_instance[i].payload == dumps(((n,), {}))
    done = await apply_results(
        store._pool, [completed(by_instance[i], n) for n, i in enumerate(ids)], ctx
    )
    assert done.advanced == 8
    rows = await _fetch(pg_dsn, "SELECT id, status, result FROM rappelx_instances")
    assert {r["id"]: (r["status"], r["result"]) for r in rows} == {
        i: ("completed", dumps(n)) for n, i in enumerate(ids)
    }
