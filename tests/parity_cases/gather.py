"""``asyncio.gather``: of actions, ``run_action`` calls, helpers and ``*[...]`` fan-outs.

Actions here finish without suspending, so plain asyncio raises the failure at the lowest
position, which is what rappelx promises too.
"""

from __future__ import annotations

import asyncio

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


class ShardError(Exception):
    """Carries the failing shard's index."""

    def __init__(self, shard: int) -> None:
        super().__init__(f"shard {shard} failed")
        self.shard = shard


@action
async def double(x: int) -> int:
    return 2 * x


@action
async def describe(x: int) -> str:
    return f"<{x}>"


@action
async def shard(index: int, failing: list[int]) -> int:
    if index in failing:
        if index % 2:
            raise ShardError(index)
        raise KeyError(index)
    return index * 100


@action
async def noop() -> None:
    return None


@workflow
class GatherActions(Workflow):
    """gather of a few different actions; results come back in argument order."""

    async def run(self) -> list[object]:
        a, b, c = await asyncio.gather(double(1), describe(2), double(3))
        both = await asyncio.gather(describe(a), double(c))
        return [a, b, c, both]


@workflow
class GatherComprehension(Workflow):
    """``gather(*[a(x) for x in xs])``, with a filter, and an empty fan-out."""

    async def run(self, xs: list[int]) -> tuple[list[int], list[str], list[int]]:
        doubled = await asyncio.gather(*[double(x) for x in xs])
        odd = await asyncio.gather(*[describe(x) for x in xs if x % 2])
        nothing: list[int] = []
        empty = await asyncio.gather(*[double(x) for x in nothing])
        return list(doubled), list(odd), list(empty)


@workflow
class GatherHelpers(Workflow):
    """gather of helper coroutines, each awaiting several actions in sequence."""

    async def pipeline(self, x: int) -> str:
        doubled = await double(x)
        if doubled > 4:
            return await describe(doubled)
        return f"small {doubled}"

    async def run(self, xs: list[int]) -> list[str]:
        first, second = await asyncio.gather(self.pipeline(xs[0]), self.pipeline(xs[-1]))
        rest = await asyncio.gather(*[self.pipeline(x) for x in xs])
        return [first, second, *rest]


@workflow
class GatherMixed(Workflow):
    """One gather mixing an action, a run_action call and a helper coroutine."""

    async def helper(self, x: int) -> int:
        return await double(await double(x))

    async def run(self) -> list[object]:
        results = await asyncio.gather(
            describe(1), self.run_action(double(2)), self.helper(3), noop()
        )
        return list(results)


@workflow
class GatherFailure(Workflow):
    """Failures without return_exceptions: the lowest failing position wins."""

    async def run(self, failing: list[int]) -> list[int]:
        results = await asyncio.gather(*[shard(i, failing) for i in range(5)])
        return list(results)


@workflow
class GatherFailureCaught(Workflow):
    """The winning failure caught in the workflow, then the workflow carries on."""

    async def run(self, failing: list[int]) -> list[str]:
        out = []
        try:
            await asyncio.gather(shard(0, failing), shard(1, failing), shard(2, failing))
        except ShardError as e:
            out.append(f"shard error {e.shard}")
        except LookupError as e:
            out.append(f"lookup {e.args}")
        out.append(await describe(len(failing)))
        return out


@workflow
class GatherReturnExceptions(Workflow):
    """``return_exceptions=True``: exceptions are values in the result list."""

    async def run(self, failing: list[int]) -> list[object]:
        results = await asyncio.gather(
            *[shard(i, failing) for i in range(4)], return_exceptions=True
        )
        summary = [
            f"{type(r).__name__}{r.args}" if isinstance(r, BaseException) else r for r in results
        ]
        return [*summary, list(results)]


@workflow
class GatherHelperFailure(Workflow):
    """A helper coroutine that raises inside a gather, with and without return_exceptions."""

    async def risky(self, x: int) -> int:
        value = await double(x)
        if value > 2:
            raise ValueError(f"too big: {value}")
        return value

    async def run(self) -> tuple[object, str]:
        mixed = await asyncio.gather(self.risky(1), self.risky(2), return_exceptions=True)
        try:
            await asyncio.gather(self.risky(0), self.risky(5), self.risky(3))
        except ValueError as e:
            return [m if isinstance(m, int) else repr(m) for m in mixed], e.args[0]
        return "no failure", ""


@workflow
class GatherInLoop(Workflow):
    """A gather per loop iteration, feeding the next iteration."""

    async def run(self, rounds: int) -> list[int]:
        values = [1, 2]
        for _ in range(rounds):
            values = list(await asyncio.gather(*[double(v) for v in values]))
            values.append(len(values))
        return values


@workflow
class GatherSingleAndNested(Workflow):
    """gather of one element, and a gather whose argument is built from awaits."""

    async def run(self) -> tuple[list[int], list[str]]:
        one = await asyncio.gather(double(21))
        described = await asyncio.gather(describe(await double(1)), describe(one[0]))
        return list(one), list(described)


@workflow
class GatherEmptyAndGuardedHelpers(Workflow):
    """``gather()`` of nothing, and helpers with their own try/except inside a gather."""

    async def guarded(self, i: int, failing: list[int]) -> str:
        try:
            value = await shard(i, failing)
        except ShardError as e:
            return f"shard {e.shard} handled"
        finally:
            await noop()
        return str(value)

    async def run(self, failing: list[int]) -> tuple[list[object], list[object]]:
        nothing: list[object] = await asyncio.gather()
        guarded = await asyncio.gather(*[self.guarded(i, failing) for i in range(4)])
        return list(nothing), list(guarded)


CASES = [
    Case("actions", GatherActions),
    Case("comprehension", GatherComprehension, ([1, 2, 3],)),
    Case("helpers", GatherHelpers, ([1, 2, 3],)),
    Case("mixed", GatherMixed),
    Case("no_failure", GatherFailure, ([],)),
    Case("failure_first", GatherFailure, ([0, 3],)),
    Case("failure_middle", GatherFailure, ([3, 1],)),
    Case("failure_last", GatherFailure, ([4],)),
    Case("failure_all", GatherFailure, ([4, 3, 2, 1, 0],)),
    Case("failure_caught_shard", GatherFailureCaught, ([2, 1],)),
    Case("failure_caught_key", GatherFailureCaught, ([2],)),
    Case("return_exceptions", GatherReturnExceptions, ([1, 2],)),
    Case("return_exceptions_none", GatherReturnExceptions, ([],)),
    Case("helper_failure", GatherHelperFailure),
    Case("in_loop", GatherInLoop, (3,)),
    Case("empty_and_guarded_helpers", GatherEmptyAndGuardedHelpers, ([1, 3],)),
    Case("guarded_helper_escapes", GatherEmptyAndGuardedHelpers, ([2, 3],)),
    Case("single_and_nested", GatherSingleAndNested),
]
