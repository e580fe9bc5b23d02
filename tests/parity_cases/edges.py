"""Less common but valid shapes: walrus, handler tuples from globals, class attributes,
nested comprehensions with awaits, long loops, awaits inside gather results."""

from __future__ import annotations

import asyncio

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case

RECOVERABLE = (KeyError, ZeroDivisionError)


@action
async def num(x: int) -> int:
    return x


@action
async def pick(table: dict[str, int], key: str) -> int:
    return table[key]


@action
async def divide(a: int, b: int) -> float:
    return a / b


@workflow
class EdgeWalrus(Workflow):
    """Assignment expressions around awaits, in conditions and comprehensions."""

    async def run(self, xs: list[int]) -> tuple[list[int], int]:
        if (first := await num(xs[0])) > 1:
            first *= 10
        kept = [y for x in xs if (y := x * 2) > 2]
        while (n := await num(len(kept))) > 2:
            kept.pop()
        return kept, first + n


@workflow
class EdgeHandlerFromGlobal(Workflow):
    """``except NAME:`` where NAME is a module-level tuple of classes."""

    async def run(self, cases: list[tuple[str, int]]) -> list[str]:
        out = []
        for key, divisor in cases:
            try:
                out.append(str(await divide(await pick({"a": 6}, key), divisor)))
            except RECOVERABLE as e:
                out.append(type(e).__name__)
        return out


@workflow
class EdgeClassAttribute(Workflow):
    """Reading class attributes through ``self`` (no mutation of ``self``)."""

    scale = 7
    labels = ("low", "high")

    async def run(self, x: int) -> str:
        value = await num(x) * self.scale
        return self.labels[value > 20]


@workflow
class EdgeNestedComprehensionAwait(Workflow):
    """``[[await f(x) for x in row] for row in rows]``."""

    async def run(self, rows: list[list[int]]) -> list[list[int]]:
        return [[await num(x * 10) for x in row] for row in rows]


@workflow
class EdgeGatherInExpression(Workflow):
    """A gather used inside a larger expression."""

    async def run(self, xs: list[int]) -> tuple[int, int]:
        total = sum(await asyncio.gather(*[num(x) for x in xs])) + await num(1)
        count = len(await asyncio.gather(num(1), num(2)))
        return total, count


@workflow
class EdgeLongLoop(Workflow):
    """A loop of 150 sequential actions (many steps, one growing scope)."""

    async def run(self, n: int) -> tuple[int, int]:
        total = 0
        seen: list[int] = []
        for i in range(n):
            total += await num(i)
            seen.append(total % 7)
        return total, sum(seen)


@workflow
class EdgeBaseExceptionHandler(Workflow):
    """``except BaseException`` catches an action's exception; ``from None`` suppresses."""

    async def run(self) -> tuple[str, bool]:
        try:
            try:
                await pick({}, "missing")
            except KeyError:
                raise ValueError("replaced") from None
        except BaseException as e:
            return repr(e), e.__suppress_context__
        return "", False


@workflow
class EdgeRunDefaults(Workflow):
    """Defaults and keyword-only parameters of ``run`` itself."""

    async def run(self, a: int, b: int = 2, *rest: int, scale: int = 1, **extra: int) -> int:
        return (await num(a) + b + sum(rest) + sum(extra.values())) * scale


@workflow
class EdgeHelperStarArgs(Workflow):
    """A helper taking ``*args`` and ``**kwargs``."""

    async def total(self, *values: int, **named: int) -> int:
        result = 0
        for v in [*values, *named.values()]:
            result += await num(v)
        return result

    async def run(self) -> int:
        return await self.total(1, 2, 3, x=10) + await self.total()


@workflow
class EdgeExceptionContext(Workflow):
    """An exception raised in a handler keeps the handled one as ``__context__``."""

    async def run(self) -> tuple[str, str]:
        try:
            try:
                await pick({}, "k")
            except KeyError:
                raise RuntimeError("during handling")
        except RuntimeError as e:
            return str(e), type(e.__context__).__name__
        return "", ""


CASES = [
    Case("walrus", EdgeWalrus, ([2, 1, 3, 4],)),
    Case("handler_from_global", EdgeHandlerFromGlobal, ([("a", 2), ("b", 1), ("a", 0)],)),
    Case("class_attribute_low", EdgeClassAttribute, (2,)),
    Case("class_attribute_high", EdgeClassAttribute, (3,)),
    Case("nested_comprehension_await", EdgeNestedComprehensionAwait, ([[1, 2], [], [3]],)),
    Case("gather_in_expression", EdgeGatherInExpression, ([1, 2, 3],)),
    Case("long_loop", EdgeLongLoop, (150,)),
    Case("base_exception_handler", EdgeBaseExceptionHandler),
    Case("run_defaults", EdgeRunDefaults, (1,)),
    Case("run_defaults_all", EdgeRunDefaults, (1, 3, 4, 5), {"scale": 2, "z": 100}),
    Case("helper_star_args", EdgeHelperStarArgs),
    Case("exception_context", EdgeExceptionContext),
]
