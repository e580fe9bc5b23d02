"""``and``/``or``, conditional expressions and chained comparisons with awaits.

An action in the branch Python skips must not run: the samples tag it ``never``.
"""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import note, rec


@workflow
class CsAndSkips(Workflow):
    async def run(self) -> object:
        value = await rec("a", 0) and await rec("never", 1)
        return value


@workflow
class CsAndRuns(Workflow):
    async def run(self) -> object:
        value = await rec("a", 2) and await rec("b", 3)
        return value


@workflow
class CsOrSkips(Workflow):
    async def run(self) -> object:
        value = await rec("a", 3) or await rec("never", 5)
        return value


@workflow
class CsOrRuns(Workflow):
    async def run(self) -> object:
        value = await rec("a", 0) or await rec("b", 5)
        return value


@workflow
class CsBoolNested(Workflow):
    async def run(self) -> object:
        value = (await rec("a", 1) and await rec("b", 0)) or await rec("c", 7)
        return value


@workflow
class CsTernary(Workflow):
    async def run(self, cond: bool) -> object:
        value = await rec("yes", 1) if await rec("cond", cond) else await rec("no", 2)
        return value


@workflow
class CsChainAll(Workflow):
    async def run(self) -> bool:
        ordered = await rec("a", 1) < await rec("b", 2) < await rec("c", 3)
        return ordered


@workflow
class CsChainStops(Workflow):
    async def run(self) -> bool:
        ordered = await rec("a", 3) < await rec("b", 2) < await rec("never", 9)
        return ordered


@workflow
class CsChainMixed(Workflow):
    async def run(self) -> bool:
        # The middle operand is evaluated once, though two comparisons use it.
        inside = note("low", 0) <= await rec("mid", 5) < note("high", 10)
        return inside
