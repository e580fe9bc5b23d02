"""The benchmark's workloads written for rappelx, served by ``rappelx workers``.

Every action is a no-op; ``stamp`` returns the wall-clock time at which it started, so
latencies are measured by the actions themselves rather than by the client.
"""

from __future__ import annotations

import asyncio
import time

from rappelx import Workflow, action, workflow


@action(name="bench.noop")
async def noop() -> None:
    """Do nothing: the cost measured is the engine's."""
    return None


@action(name="bench.stamp")
async def stamp() -> float:
    """The wall-clock time at which this action started running."""
    return time.time()


@workflow(name="bench.Chain")
class Chain(Workflow):
    """``steps`` sequential no-op actions."""

    async def run(self, steps: int) -> int:
        for _ in range(steps):
            await noop()
        return steps


@workflow(name="bench.StampedChain")
class StampedChain(Workflow):
    """``steps`` sequential actions (at least 2); the start times of the first and last."""

    async def run(self, steps: int) -> tuple[float, float]:
        first = await stamp()
        for _ in range(steps - 2):
            await noop()
        last = await stamp()
        return first, last


@workflow(name="bench.Fanout")
class Fanout(Workflow):
    """One gather of ``width`` no-op actions."""

    async def run(self, width: int) -> int:
        results = await asyncio.gather(*[noop() for _ in range(width)])
        return len(results)


@workflow(name="bench.Stamps")
class Stamps(Workflow):
    """``steps`` sequential actions, returning each one's start time."""

    async def run(self, steps: int) -> list[float]:
        stamps = []
        for _ in range(steps):
            stamps.append(await stamp())
        return stamps


@workflow(name="bench.First")
class First(Workflow):
    """One action: its start time, to set against the time the instance was enqueued."""

    async def run(self) -> float:
        return await stamp()


@workflow(name="bench.Sleeper")
class Sleeper(Workflow):
    """A durable sleep until ``until`` (epoch seconds), then one action.

    Returns how late that action started against ``until``, and whether the instance only
    began after ``until`` had passed (its lateness is then not the timer's).
    """

    async def run(self, until: float) -> tuple[float, bool]:
        now = time.time()
        await asyncio.sleep(max(0.0, until - now))
        woke = await stamp()
        return woke - until, now > until


@workflow(name="bench.History")
class History(Workflow):
    """``steps`` sequential actions; the start times of two windows of ``window`` actions.

    The first window starts at action ``early``, the second holds the last ``window``
    actions, so the two show what an action costs young and old. With ``grow``, every
    action also appends to a list the instance keeps, so its state grows by one value per
    action (a loop collecting results); without, the state stays the same size.
    """

    async def run(
        self, steps: int, early: int, window: int, grow: bool
    ) -> tuple[list[float], list[float], int]:
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
