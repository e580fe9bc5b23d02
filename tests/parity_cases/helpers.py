"""Async helper methods of the workflow class: early returns, chains, raising, arguments."""

from __future__ import annotations

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


class QuotaError(Exception):
    """Raised by a helper when a computed total is over the limit."""

    def __init__(self, total: int, limit: int) -> None:
        super().__init__(f"total {total} over limit {limit}")
        self.total = total
        self.limit = limit


@action
async def price(item: str) -> int:
    return {"apple": 3, "pear": 5, "melon": 11}.get(item, 0)


@action
async def add(a: int, b: int) -> int:
    return a + b


@action
async def reject(item: str) -> int:
    raise KeyError(item)


def shipping(total: int) -> int:
    """A plain (non-async) module function called from inline code."""
    return 0 if total >= 20 else 4


@workflow
class HelperEarlyReturn(Workflow):
    """A helper with guard-clause returns, called in a loop."""

    async def cost(self, item: str) -> int:
        if not item:
            return 0
        value = await price(item)
        if value == 0:
            return -1
        if value > 10:
            return value - 1
        return value

    async def run(self, items: list[str]) -> list[int]:
        return [await self.cost(item) for item in items]


@workflow
class HelperChain(Workflow):
    """Helpers calling helpers, three levels deep, passing values down and up."""

    async def level3(self, x: int) -> int:
        return await add(x, 1000)

    async def level2(self, x: int, y: int) -> int:
        partial = await add(x, y)
        return await self.level3(partial) + 1

    async def level1(self, items: list[str]) -> int:
        total = 0
        for item in items:
            total = await self.level2(total, await price(item))
        return total

    async def run(self, items: list[str]) -> int:
        return await self.level1(items)


@workflow
class HelperRaises(Workflow):
    """A helper raising a custom exception, caught by the caller."""

    async def checked_total(self, items: list[str], limit: int) -> int:
        total = 0
        for item in items:
            total += await price(item)
            if total > limit:
                raise QuotaError(total, limit)
        return total

    async def run(self, items: list[str], limit: int) -> str:
        try:
            total = await self.checked_total(items, limit)
        except QuotaError as e:
            return f"quota {e.total}/{e.limit}"
        return f"ok {total} + {shipping(total)}"


@workflow
class HelperRaisesUncaught(Workflow):
    """An action failing two helpers deep ends the workflow."""

    async def inner(self, item: str) -> int:
        return await reject(item)

    async def outer(self, item: str) -> int:
        return await self.inner(item) + 1

    async def run(self, item: str) -> int:
        return await self.outer(item)


@workflow
class HelperDefaultsAndKwargs(Workflow):
    """Helper parameters with defaults, keyword arguments and keyword-only parameters."""

    async def combine(self, a: int, b: int = 10, *, scale: int = 1) -> int:
        return await add(a, b) * scale

    async def run(self) -> list[int]:
        return [
            await self.combine(1),
            await self.combine(1, 2),
            await self.combine(a=3, b=4),
            await self.combine(5, scale=3),
        ]


@workflow
class HelperLocalsIsolated(Workflow):
    """A helper's local variable with the same name does not leak into the caller."""

    async def compute(self, x: int) -> int:
        total = await add(x, x)
        result = total * 2
        return result

    async def run(self) -> tuple[int, int, int]:
        total = 1
        result = await self.compute(5)
        return total, result, await self.compute(total)


@workflow
class HelperMutatesArgument(Workflow):
    """A helper appending to a list it was given: the caller sees the change, as in Python."""

    async def collect(self, into: list[int], item: str) -> None:
        into.append(await price(item))

    async def run(self, items: list[str]) -> list[int]:
        collected: list[int] = []
        for item in items:
            await self.collect(collected, item)
        return collected


@workflow
class HelperCalledTwiceInExpression(Workflow):
    """The same helper twice in one expression, plus a helper in a condition."""

    async def is_cheap(self, item: str) -> bool:
        return await price(item) < 5

    async def doubled(self, item: str) -> int:
        return await add(await price(item), await price(item))

    async def run(self, a: str, b: str) -> tuple[int, str]:
        total = await self.doubled(a) + await self.doubled(b)
        if await self.is_cheap(a) and not await self.is_cheap(b):
            return total, "mixed"
        return total, "same"


@workflow
class HelperInTryFinally(Workflow):
    """A helper with its own try/finally, failing and succeeding."""

    async def guarded(self, item: str, log: list[str]) -> int:
        try:
            if item == "bad":
                return await reject(item)
            return await price(item)
        finally:
            log.append(f"done {item}")

    async def run(self, items: list[str]) -> tuple[list[int], list[str]]:
        log: list[str] = []
        values = []
        for item in items:
            try:
                values.append(await self.guarded(item, log))
            except KeyError:
                values.append(-1)
        return values, log


@workflow
class HelperNoAwait(Workflow):
    """An async helper that never awaits anything."""

    async def pure(self, x: int) -> int:
        return x * 3

    async def run(self, x: int) -> int:
        return await self.pure(x) + await add(await self.pure(1), 0)


CASES = [
    Case("early_return", HelperEarlyReturn, (["apple", "", "kiwi", "melon", "pear"],)),
    Case("chain", HelperChain, (["apple", "pear"],)),
    Case("raises_caught", HelperRaises, (["apple", "melon", "pear"], 10)),
    Case("raises_not", HelperRaises, (["apple", "pear"], 10)),
    Case("raises_uncaught", HelperRaisesUncaught, ("plum",)),
    Case("defaults_kwargs", HelperDefaultsAndKwargs),
    Case("locals_isolated", HelperLocalsIsolated),
    Case("mutates_argument", HelperMutatesArgument, (["pear", "apple"],)),
    Case("called_twice_cheap", HelperCalledTwiceInExpression, ("apple", "melon")),
    Case("called_twice_same", HelperCalledTwiceInExpression, ("melon", "melon")),
    Case("in_try_finally", HelperInTryFinally, (["apple", "bad", "pear"],)),
    Case("no_await", HelperNoAwait, (4,)),
]
