"""Lists that only grow at the end, which the engine persists as logs (compiler/_appends).

Each case appends in a way that either keeps the list a log or must send it back to
being written whole: items that change after they were appended, rebinding, helpers,
gathers. The restored-at-every-step run of the parity test reads every log back from its
chunks, so an item logged too early would show there as a difference.
"""

from __future__ import annotations

import asyncio

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


@action
async def square(x: int) -> int:
    return x * x


@action
async def record(i: int) -> dict[str, int]:
    return {"i": i, "sq": i * i}


@action
async def fails_on(i: int, bad: int) -> int:
    if i == bad:
        raise ValueError(f"bad {i}")
    return i


@workflow
class LogFreshResults(Workflow):
    """Action results appended straight from the await: any item may be logged."""

    async def run(self, n: int) -> list[dict[str, int]]:
        out = []
        for i in range(n):
            out.append(await record(i))
        return out


@workflow
class LogItemChangedAfterAppend(Workflow):
    """A result kept in a local and changed after the append: the list must see it."""

    async def run(self, n: int) -> list[dict[str, int]]:
        out = []
        for i in range(n):
            r = await record(i)
            out.append(r)
            r["later"] = i + 100
            await square(i)
            r["after_await"] = i
        return out


@workflow
class LogAtomsThenMutable(Workflow):
    """Ints (loggable) until a list is appended and changed later: written whole after."""

    async def run(self, n: int) -> tuple[list[object], int]:
        out: list[object] = []
        for i in range(n):
            out.append(await square(i))
            if i == 2:
                box = [i]
                out.append(box)
                await square(i)
                box.append(99)
        return out, len(out)


@workflow
class LogRebound(Workflow):
    """The name bound to a new list each round: each list is a log of its own."""

    async def run(self, rounds: int) -> tuple[int, list[int]]:
        total = 0
        out: list[int] = []
        for r in range(rounds):
            out = []
            for i in range(3):
                out.append(await square(r * 10 + i))
            total += len(out)
        return total, out


@workflow
class LogTuplesAndOddAtoms(Workflow):
    """Tuples of atoms, big ints, non-ASCII str, bytes, frozensets: immutable, all logged."""

    async def run(self, n: int) -> list[object]:
        out: list[object] = []
        for i in range(n):
            v = await square(i)
            out.append((i, v, (str(v), None)))
            out.append(2**70 + v)
            out.append("é" + str(i))
            out.append(bytes([i]))
            out.append(frozenset({i, v}))
        return out


@workflow
class LogLenDrivesLoop(Workflow):
    """``len`` of the list in the loop condition and in the awaited call."""

    async def run(self, n: int) -> list[int]:
        out = []
        while len(out) < n:
            out.append(await square(len(out)))
        return out


@workflow
class LogWithSleeps(Workflow):
    """Durable sleeps between appends (the instance wakes from a timer)."""

    async def run(self, n: int) -> list[int]:
        out = []
        for i in range(n):
            out.append(await square(i))
            if i % 2:
                await asyncio.sleep(0.01)
        return out


@workflow
class LogExceptions(Workflow):
    """Appends in try and except; a failed action appends nothing."""

    async def run(self, n: int, bad: int) -> list[int]:
        out = []
        for i in range(n):
            try:
                out.append(await fails_on(i, bad))
            except ValueError:
                out.append(-i)
        return out


@workflow
class LogFromHelpersAndGathers(Workflow):
    """A helper's own log list returned to the caller; gathered lists as items."""

    async def collect(self, n: int) -> list[int]:
        part = []
        for i in range(n):
            part.append(await square(i))
        return part

    async def run(self, n: int) -> list[object]:
        out: list[object] = []
        for i in range(n):
            out.append(await self.collect(i))
            out.append(await asyncio.gather(square(i), square(i + 1)))
        return out


@workflow
class LogReturnedInsideFinally(Workflow):
    """``return out`` inside try/finally whose finally appends after a suspension."""

    async def run(self, n: int) -> list[int]:
        out = []
        try:
            for i in range(n):
                out.append(await square(i))
            return out
        finally:
            await asyncio.sleep(0.01)
            out.append(-1)


CASES = [
    Case("fresh_results", LogFreshResults, (5,)),
    Case("fresh_results_empty", LogFreshResults, (0,)),
    Case("item_changed_after_append", LogItemChangedAfterAppend, (4,)),
    Case("atoms_then_mutable", LogAtomsThenMutable, (5,)),
    Case("rebound", LogRebound, (3,)),
    Case("tuples_and_odd_atoms", LogTuplesAndOddAtoms, (3,)),
    Case("len_drives_loop", LogLenDrivesLoop, (4,)),
    Case("with_sleeps", LogWithSleeps, (5,)),
    Case("exceptions", LogExceptions, (4, 2)),
    Case("helpers_and_gathers", LogFromHelpersAndGathers, (3,)),
    Case("returned_inside_finally", LogReturnedInsideFinally, (3,)),
]
