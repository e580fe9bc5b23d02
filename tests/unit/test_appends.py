"""Which lists the engine may persist as logs (``compiler/_appends.py``).

A list qualifies only when no code but ``append`` can change it while its frame lives;
each case below is one way a list escapes that, or one allowed use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rappelx import Workflow, action, workflow
from rappelx._workflow import definition


@action
async def one(x: int) -> int:
    return x


@action
async def many(xs: list[int]) -> int:
    return len(xs)


def log_lists(cls: type, function: str = "run") -> dict[str, bool]:
    return dict(definition(cls).engine.log_lists.get(function, {}))


@workflow
class ApFresh(Workflow):
    async def run(self, n: int) -> list[int]:
        out = []
        for i in range(n):
            out.append(await one(i))
        return out


@workflow
class ApThroughLocal(Workflow):
    async def run(self, n: int) -> list[int]:
        out: list[int] = []
        for i in range(n):
            r = await one(i)
            out.append(r)
        return out


@workflow
class ApLenAndReturnExpression(Workflow):
    async def run(self, n: int) -> dict[str, Any]:
        out = []
        while len(out) < n:
            out.append(await one(len(out)))
        return {"items": sorted(out), "n": len(out)}


@workflow
class ApAppendsInBranchesAndHandlers(Workflow):
    async def run(self, n: int) -> list[int]:
        out = []
        for i in range(n):
            if i % 2:
                out.append(i)
            else:
                try:
                    out.append(await one(i))
                except ValueError:
                    out.append(-1)
        return out


def test_a_list_built_from_awaited_results_is_a_fresh_log() -> None:
    assert log_lists(ApFresh) == {"out": True}


def test_items_that_pass_through_a_local_are_logged_only_if_immutable() -> None:
    # `r` stays bound to the item after the append, so the item may still change.
    assert log_lists(ApThroughLocal) == {"out": False}
    assert log_lists(ApAppendsInBranchesAndHandlers) == {"out": False}


def test_len_and_any_use_in_a_plain_return_are_allowed() -> None:
    assert log_lists(ApLenAndReturnExpression) == {"out": True}


@workflow
class ApSubscripted(Workflow):
    async def run(self, n: int) -> int:
        out = []
        for i in range(n):
            out.append(await one(i))
            out[-1] += 1
        return sum(out)


@workflow
class ApIterated(Workflow):
    async def run(self, n: int) -> int:
        out = []
        for i in range(n):
            out.append(await one(i))
        total = 0
        for x in out:
            total += await one(x)
        return total


@workflow
class ApAliased(Workflow):
    async def run(self, n: int) -> list[int]:
        out = []
        other = out
        for i in range(n):
            out.append(await one(i))
        other.clear()
        return out


@workflow
class ApPassedToAction(Workflow):
    async def run(self, n: int) -> int:
        out = []
        for i in range(n):
            out.append(await one(i))
            await many(out)
        return len(out)


@workflow
class ApExtended(Workflow):
    async def run(self, n: int) -> list[int]:
        out = []
        for i in range(n):
            out.extend([await one(i)])
        return out


@workflow
class ApNotALiteral(Workflow):
    async def run(self, n: int) -> list[int]:
        out = list()
        for i in range(n):
            out.append(await one(i))
        return out


@workflow
class ApParameter(Workflow):
    async def run(self, out: list[int]) -> list[int]:
        out = []
        out.append(await one(1))
        return out


@workflow
class ApIntrospected(Workflow):
    async def run(self, n: int) -> int:
        out = []
        for i in range(n):
            out.append(await one(i))
        return len(locals())


@workflow
class ApReturnedInFinally(Workflow):
    async def run(self, n: int) -> list[int]:
        out = []
        try:
            out.append(await one(n))
            return out
        finally:
            await asyncio.sleep(0)


@workflow
class ApAppendsItself(Workflow):
    async def run(self, n: int) -> int:
        out: list[object] = []
        out.append(await one(n))
        out.append(out)
        return len(out)


@workflow
class ApInClosure(Workflow):
    async def run(self, n: int) -> int:
        out = []
        out.append(await one(n))
        size = (lambda: len(out))()
        return size


@workflow
class ApExceptionName(Workflow):
    async def run(self, n: int) -> int:
        out = []
        out.append(await one(n))
        try:
            await one(n)
        except ValueError as out:  # noqa: F841 (rebinds the name)
            pass
        return n


@workflow
class ApAwaitedInto(Workflow):
    async def run(self, n: int) -> int:
        out = []
        out.append(await one(n))
        out = await one(n)
        return out


@workflow
class ApReboundToAnother(Workflow):
    async def run(self, n: int) -> list[int]:
        out = []
        out.append(await one(n))
        keep = [1]
        out = keep
        out.append(await one(n))
        return keep


@pytest.mark.parametrize(
    "cls",
    [
        ApSubscripted,
        ApIterated,
        ApAliased,
        ApPassedToAction,
        ApExtended,
        ApNotALiteral,
        ApParameter,
        ApIntrospected,
        ApReturnedInFinally,
        ApAppendsItself,
        ApInClosure,
        ApExceptionName,
        ApAwaitedInto,
        ApReboundToAnother,
    ],
)
def test_a_list_other_code_could_reach_or_change_is_written_whole(cls: type) -> None:
    assert log_lists(cls) == {}


@workflow
class ApWithHelper(Workflow):
    async def gather_part(self, n: int) -> list[int]:
        part = []
        for i in range(n):
            part.append(await one(i))
        return part

    async def run(self, n: int) -> list[list[int]]:
        out = []
        for i in range(n):
            out.append(await self.gather_part(i))
        return out


def test_a_helper_result_is_not_fresh_but_the_helpers_own_list_is() -> None:
    # The helper returns its list to the caller, which may hold it under other names.
    assert log_lists(ApWithHelper) == {"out": False}
    assert log_lists(ApWithHelper, "gather_part") == {"part": True}
