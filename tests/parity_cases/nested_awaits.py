"""Awaits nested inside expressions: hoisted, with Python's evaluation order kept.

The ``ticket`` action hands out 1, 2, 3... per key, so the order in which awaits ran is
part of the result.
"""

from __future__ import annotations

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case, _counters


@action
async def num(x: int) -> int:
    return x


@action
async def inc(x: int) -> int:
    return x + 1


@action
async def ok(flag: bool) -> bool:
    return flag


@action
async def ticket(key: str) -> int:
    return _counters.bump(key)


@action
async def word(text: str) -> str:
    return text.upper()


@action
async def keys() -> list[str]:
    return ["a", "b", "c"]


@action
async def fail(message: str) -> int:
    raise ValueError(message)


@workflow
class NestedIfAwait(Workflow):
    """``if await ok():`` in both directions."""

    async def run(self, flag: bool) -> str:
        if await ok(flag):
            return "yes"
        return "no"


@workflow
class NestedAugmented(Workflow):
    """``total += await f(x)`` in a loop."""

    async def run(self, xs: list[int]) -> int:
        total = 100
        for x in xs:
            total += await inc(x)
        total -= await num(1)
        total *= await num(2)
        return total


@workflow
class NestedReturnAwait(Workflow):
    """``return await g()``."""

    async def run(self, x: int) -> int:
        return await inc(await inc(x))


@workflow
class NestedBinOp(Workflow):
    """``a = await f() + await g()``, including non-commutative operators."""

    async def run(self) -> tuple[int, int, float]:
        a = await num(7) + await num(5)
        b = await num(7) - await num(5) * await num(2)
        c = await num(1) / await num(4)
        return a, b, c


@workflow
class NestedOrder(Workflow):
    """Left-to-right evaluation order of awaits is observable through the results."""

    async def run(self) -> list[int]:
        values = [await ticket("order"), await ticket("order") * 10, await ticket("order")]
        diff = await ticket("order") - await ticket("order")
        pair = (await ticket("order"), await inc(await ticket("order")))
        return [*values, diff, *pair]


@workflow
class NestedAssignOrder(Workflow):
    """In ``d[k] = v`` Python evaluates ``v`` before ``k``; both are awaits here."""

    async def run(self) -> tuple[dict[int, int], list[int]]:
        table: dict[int, int] = {}
        table[await ticket("assign")] = await ticket("assign")
        items = [0, 0, 0, 0]
        items[await ticket("assign") - 3] += await ticket("assign")
        return table, items


@workflow
class NestedFString(Workflow):
    """Awaits inside an f-string, with format specs."""

    async def run(self, name: str) -> str:
        return f"{await word(name)}-{await num(7):03d}-{await inc(1)!r}"


@workflow
class NestedCallArgs(Workflow):
    """Awaits as arguments of builtins and of methods on values."""

    async def run(self) -> tuple[int, str, list[int]]:
        biggest = max(await num(3), await num(9), await inc(4))
        joined = "/".join([await word("x"), await word("y")])
        items = sorted([await num(3), await num(1), await num(2)], reverse=await ok(True))
        return biggest, joined, items


@workflow
class NestedSubscript(Workflow):
    """Awaits in subscripts, as the container and as the index."""

    async def run(self) -> tuple[str, str, int]:
        letters = ["p", "q", "r", "s"]
        first = letters[await num(2)]
        second = (await keys())[await inc(0)]
        table = {"a": 1, "b": 2}
        table[await word("c")] = await num(3)
        return first, second, table["C"]


@workflow
class NestedAndOr(Workflow):
    """``and``/``or`` short-circuit: the right side's await must not run."""

    async def run(self, flag: bool) -> tuple[object, object, object, object]:
        a = (flag and not flag) and await fail("and ran")
        b = (flag or not flag) or await fail("or ran")
        c = await ok(flag) or await num(5)
        d = await ok(flag) and await num(6)
        return a, b, c, d


@workflow
class NestedAndOrRuns(Workflow):
    """``and``/``or`` where the right side's await does run, and raises."""

    async def run(self) -> object:
        return await ok(True) and await fail("right side ran")


@workflow
class NestedTernary(Workflow):
    """A ternary evaluates only the chosen branch's await."""

    async def run(self, flag: bool) -> int:
        value = await num(1) if flag else await num(2)
        other = await fail("wrong branch") if flag and not flag else await inc(value)
        return other + (await num(10) if await ok(not flag) else await num(20))


@workflow
class NestedCompare(Workflow):
    """Chained comparisons and ``in`` with awaits on several sides."""

    async def run(self, x: int) -> tuple[bool, bool, bool]:
        between = await num(0) < x <= await num(10)
        member = await word("b") in ["A", "B"]
        neither = not await ok(False)
        return between, member, neither


@workflow
class NestedDictList(Workflow):
    """Awaits inside dict and list displays, including keys."""

    async def run(self) -> dict[str, object]:
        return {
            await word("k"): [await num(1), {"inner": await inc(1)}],
            "n": (await num(3),),
        }


@workflow
class NestedListComp(Workflow):
    """``[await f(x) for x in xs]`` runs one after another, with a filter."""

    async def run(self, xs: list[int]) -> list[int]:
        bumped = [await inc(x) for x in xs]
        kept = [await num(x * 2) for x in bumped if x % 2 == 0]
        return bumped + kept


@workflow
class NestedUnaryAndAttr(Workflow):
    """Awaits under unary operators and attribute access on results."""

    async def run(self) -> tuple[int, str, bool]:
        negated = -await num(4)
        lowered = (await word("mixed")).lower()
        starts = (await word("abc")).startswith("A")
        return negated, lowered, starts


@workflow
class NestedAwaitInAwaitArgs(Workflow):
    """An action whose argument is itself an awaited expression of awaits."""

    async def run(self) -> int:
        return await inc(await num(2) * await inc(await num(3)))


CASES = [
    Case("if_await_true", NestedIfAwait, (True,)),
    Case("if_await_false", NestedIfAwait, (False,)),
    Case("augmented", NestedAugmented, ([1, 2, 3],)),
    Case("return_await", NestedReturnAwait, (5,)),
    Case("binop", NestedBinOp),
    Case("order", NestedOrder),
    Case("assign_order", NestedAssignOrder),
    Case("fstring", NestedFString, ("ann",)),
    Case("call_args", NestedCallArgs),
    Case("subscript", NestedSubscript),
    Case("and_or_true", NestedAndOr, (True,)),
    Case("and_or_false", NestedAndOr, (False,)),
    Case("and_or_runs", NestedAndOrRuns),
    Case("ternary_true", NestedTernary, (True,)),
    Case("ternary_false", NestedTernary, (False,)),
    Case("compare_in", NestedCompare, (4,)),
    Case("compare_out", NestedCompare, (11,)),
    Case("dict_list", NestedDictList),
    Case("list_comp", NestedListComp, ([1, 2, 3, 4],)),
    Case("unary_attr", NestedUnaryAndAttr),
    Case("await_in_await_args", NestedAwaitInAwaitArgs),
]
