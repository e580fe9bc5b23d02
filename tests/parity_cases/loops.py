"""``for`` and ``while`` loops: iterables, break, continue, else, nesting, mutation."""

from __future__ import annotations

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


@action
async def square(x: int) -> int:
    return x * x


@action
async def is_even(x: int) -> bool:
    return x % 2 == 0


@action
async def label(key: str, value: object) -> str:
    return f"{key}={value}"


@action
async def halve(x: int) -> int:
    return x // 2


@action
async def fetch_items() -> list[int]:
    return [5, 6, 7]


@action
async def fetch_mapping() -> dict[str, int]:
    return {"b": 2, "a": 1, "c": 3}


@workflow
class LoopList(Workflow):
    """``for`` over a list argument."""

    async def run(self, xs: list[int]) -> list[int]:
        out = []
        for x in xs:
            out.append(await square(x))
        return out


@workflow
class LoopRange(Workflow):
    """``for`` over range() with a start, stop and step."""

    async def run(self, n: int) -> int:
        total = 0
        for i in range(n, 0, -2):
            total += await square(i)
        return total


@workflow
class LoopEnumerateZip(Workflow):
    """enumerate and zip with tuple targets."""

    async def run(self, names: list[str], scores: list[int]) -> list[str]:
        out = []
        for index, (name, score) in enumerate(zip(names, scores), start=1):
            out.append(await label(f"{index}.{name}", score))
        return out


@workflow
class LoopDictItems(Workflow):
    """dict.items(), dict keys and sorted() over an action's result."""

    async def run(self) -> list[str]:
        mapping = await fetch_mapping()
        out = []
        for key, value in mapping.items():
            out.append(await label(key, value))
        for key in mapping:
            out.append(key)
        for key in sorted(mapping, reverse=True):
            out.append(await label(key, mapping[key] * 2))
        return out


@workflow
class LoopWhile(Workflow):
    """``while`` with an awaited condition (Collatz-like halving)."""

    async def run(self, n: int) -> list[int]:
        seen = [n]
        while not await is_even(n) or n > 2:
            n = await halve(n) if await is_even(n) else n * 3 + 1
            seen.append(n)
        return seen


@workflow
class LoopBreakContinue(Workflow):
    """break and continue inside for and while."""

    async def run(self, xs: list[int]) -> tuple[list[int], int]:
        kept = []
        for x in xs:
            if x < 0:
                continue
            if x > 100:
                break
            kept.append(await square(x))
        count = 0
        while True:
            count += 1
            if count % 2:
                continue
            if await square(count) > 30:
                break
        return kept, count


@workflow
class LoopElse(Workflow):
    """for/else and while/else, with and without break."""

    async def run(self, xs: list[int], needle: int) -> list[str]:
        out = []
        for x in xs:
            if await square(x) == needle:
                out.append(f"found {x}")
                break
        else:
            out.append("not found")
        i = 0
        while i < len(xs):
            i += 1
            if xs[i - 1] < 0:
                break
        else:
            out.append(f"while done at {i}")
        for _ in []:
            out.append("never")
        else:
            out.append("empty else")
        return out


@workflow
class LoopNested(Workflow):
    """Nested loops with break of the inner loop and continue of the outer."""

    async def run(self, n: int) -> list[tuple[int, int]]:
        pairs = []
        for i in range(n):
            if i == 1:
                continue
            for j in range(n):
                if j > i:
                    break
                if await is_even(i + j):
                    pairs.append((i, await square(j)))
        return pairs


@workflow
class LoopMutateIterated(Workflow):
    """Appending to the list being iterated: Python iterates by index and sees the growth."""

    async def run(self) -> list[int]:
        xs = [1, 2, 3]
        for x in xs:
            if x < 20 and await is_even(x):
                xs.append(x * 5)
        return xs


@workflow
class LoopRemoveWhileIterating(Workflow):
    """Removing from the list being iterated skips the next element, as in Python."""

    async def run(self) -> tuple[list[int], list[int]]:
        xs = [2, 4, 5, 6, 8, 9]
        visited = []
        for x in xs:
            visited.append(x)
            if await is_even(x):
                xs.remove(x)
        return xs, visited


@workflow
class LoopRebindIterated(Workflow):
    """Rebinding the loop's list name does not change what the loop iterates."""

    async def run(self) -> tuple[list[int], list[int]]:
        xs = [1, 2, 3]
        seen = []
        for x in xs:
            seen.append(await square(x))
            xs = [0]
        return seen, xs


@workflow
class LoopReturnInside(Workflow):
    """``return`` from inside nested loops."""

    async def run(self, target: int) -> tuple[int, int] | None:
        for i in range(5):
            j = 0
            while j < 5:
                if await square(i) + j == target:
                    return i, j
                j += 1
        return None


@workflow
class LoopTargetAfterLoop(Workflow):
    """The loop variable keeps its last value after the loop, as in Python."""

    async def run(self, xs: list[int]) -> tuple[int, int]:
        last = -1
        for last in xs:
            await square(last)
        for i in range(3):
            if await is_even(i + 1):
                break
        return last, i


@workflow
class LoopOverActionResult(Workflow):
    """Iterating an action's result directly, plus reversed()."""

    async def run(self) -> list[int]:
        out = []
        for x in await fetch_items():
            out.append(await halve(x))
        for x in reversed(await fetch_items()):
            out.append(x)
        return out


@workflow
class LoopStringAndTuple(Workflow):
    """Iterating a string, a tuple and a set of one element."""

    async def run(self, text: str) -> list[str]:
        out = []
        for ch in text:
            out.append(await label(ch, ord(ch)))
        for item in (1, "two"):
            out.append(await label("t", item))
        for item in {"only"}:
            out.append(item)
        return out


CASES = [
    Case("list", LoopList, ([1, 2, 3],)),
    Case("list_empty", LoopList, ([],)),
    Case("range", LoopRange, (7,)),
    Case("enumerate_zip", LoopEnumerateZip, (["a", "b", "c"], [3, 1])),
    Case("dict_items", LoopDictItems),
    Case("while", LoopWhile, (7,)),
    Case("break_continue", LoopBreakContinue, ([3, -1, 4, 200, 5],)),
    Case("else_found", LoopElse, ([1, 2, 3], 4)),
    Case("else_not_found", LoopElse, ([1, -2, 3], 5)),
    Case("nested", LoopNested, (4,)),
    Case("mutate_iterated", LoopMutateIterated),
    Case("remove_while_iterating", LoopRemoveWhileIterating),
    Case("rebind_iterated", LoopRebindIterated),
    Case("return_inside_found", LoopReturnInside, (11,)),
    Case("return_inside_none", LoopReturnInside, (100,)),
    Case("target_after_loop", LoopTargetAfterLoop, ([4, 5, 6],)),
    Case("over_action_result", LoopOverActionResult),
    Case("string_and_tuple", LoopStringAndTuple, ("hi",)),
]
