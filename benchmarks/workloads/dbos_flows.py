"""The benchmark's workloads written the DBOS Transact way.

Workflows are ``@DBOS.workflow()`` coroutines whose actions are ``@DBOS.step()``
coroutines; the fan-out enqueues child workflows on a DBOS queue and waits for their
handles, as DBOS's documentation recommends for parallel work. Importing this module
registers the functions; ``benchmarks._dbos_side`` configures and launches DBOS.
"""

from __future__ import annotations

import time

from dbos import DBOS

#: The queue the fan-out's children run on (registered after launch).
FANOUT_QUEUE = "bench_fanout"


@DBOS.step()
async def noop() -> None:
    """Do nothing: the cost measured is the engine's."""
    return None


@DBOS.step()
async def stamp() -> float:
    """The wall-clock time at which this step started running."""
    return time.time()


@DBOS.workflow()
async def chain(steps: int) -> int:
    """``steps`` sequential no-op steps."""
    for _ in range(steps):
        await noop()
    return steps


@DBOS.workflow()
async def fanout_child() -> None:
    """One no-op step, as a queued child workflow of :func:`fanout`."""
    await noop()


@DBOS.workflow()
async def fanout(width: int) -> int:
    """Enqueue ``width`` children on the fan-out queue and wait for them all."""
    queue = await DBOS.retrieve_queue_async(FANOUT_QUEUE)
    assert queue is not None, "the fan-out queue is registered before any workflow runs"
    handles = [await queue.enqueue_async(fanout_child) for _ in range(width)]
    for handle in handles:
        await handle.get_result()
    return len(handles)


@DBOS.workflow()
async def stamps(steps: int) -> list[float]:
    """``steps`` sequential steps, returning each one's start time."""
    return [await stamp() for _ in range(steps)]


@DBOS.workflow()
async def first() -> float:
    """One step: its start time, to set against the time the workflow was started."""
    return await stamp()


@DBOS.workflow()
async def sleeper(until: float) -> tuple[float, bool]:
    """A durable sleep until ``until`` (epoch seconds), then one step.

    Returns how late that step started against ``until``, and whether the workflow only
    began after ``until`` had passed.
    """
    now = time.time()
    await DBOS.sleep_async(max(0.0, until - now))
    woke = await stamp()
    return woke - until, now > until


@DBOS.workflow()
async def history(
    steps: int, early: int, window: int, grow: bool
) -> tuple[list[float], list[float], int]:
    """``steps`` sequential steps; the start times of two windows (see rappelx's History)."""
    young: list[float] = []
    old: list[float] = []
    kept: list[int] = []
    for i in range(steps):
        if early <= i < early + window:
            young.append(await stamp())
        elif i >= steps - window:
            old.append(await stamp())
        else:
            await noop()
        if grow:
            kept.append(i)
    return young, old, len(kept)
