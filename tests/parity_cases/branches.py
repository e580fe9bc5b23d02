"""``if``/``elif``/``else`` with awaits in conditions and bodies."""

from __future__ import annotations

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


@action
async def classify(x: int) -> str:
    if x < 0:
        return "negative"
    if x == 0:
        return "zero"
    return "small" if x < 10 else "large"


@action
async def is_even(x: int) -> bool:
    return x % 2 == 0


@action
async def scale(x: int, factor: int) -> int:
    return x * factor


@action
async def fail(message: str) -> bool:
    raise RuntimeError(message)


@workflow
class BranchElifChain(Workflow):
    """if/elif/elif/else on an action's result."""

    async def run(self, x: int) -> str:
        kind = await classify(x)
        if kind == "negative":
            result = await scale(x, -1)
            label = "flipped"
        elif kind == "zero":
            result = 0
            label = "zero"
        elif kind == "small":
            result = await scale(x, 10)
            label = "scaled"
        else:
            result = x
            label = "kept"
        return f"{label}:{result}"


@workflow
class BranchElifAwaitConditions(Workflow):
    """Awaits in the elif conditions run only when reached."""

    async def run(self, x: int) -> str:
        if x > 100:
            return "huge"
        elif await is_even(x):
            return "even"
        elif await classify(x) == "negative":
            return "odd negative"
        elif x > 5 and await fail("must not run for x <= 5"):
            return "unreachable"
        else:
            return "odd"


@workflow
class BranchNested(Workflow):
    """Nested ifs, with the inner branch assigning a variable used after both."""

    async def run(self, x: int, y: int) -> tuple[int, str]:
        note = "none"
        if await is_even(x):
            if await is_even(y):
                value = await scale(x, y)
                note = "both"
            else:
                value = x
        else:
            value = await scale(y, 3) if y else -1
            if value > 10:
                note = "big"
        return value, note


@workflow
class BranchNoElse(Workflow):
    """An if without else; the variable keeps its earlier value when skipped."""

    async def run(self, xs: list[int]) -> list[int]:
        out = []
        for x in xs:
            value = x
            if await is_even(x):
                value = await scale(x, 100)
            out.append(value)
        return out


@workflow
class BranchEarlyReturn(Workflow):
    """Guard clauses returning from several places."""

    async def run(self, x: int) -> str:
        if x < 0:
            return "negative"
        doubled = await scale(x, 2)
        if doubled > 10:
            return f"big {doubled}"
        if not await is_even(x):
            return f"odd {doubled}"
        return f"even {doubled}"


@workflow
class BranchTruthiness(Workflow):
    """Conditions on truthiness of non-bool values (empty list, 0, '', None)."""

    async def run(self) -> list[str]:
        out = []
        for value in [[], [0], 0, 3, "", "x", None]:
            if value:
                out.append(await classify(len(str(value))))
            else:
                out.append("falsy")
        return out


@workflow
class BranchConditionOrder(Workflow):
    """``if a and b or c`` with awaits in each operand."""

    async def run(self, x: int) -> list[bool]:
        out = []
        for y in [x, x + 1]:
            out.append(bool(await is_even(y) and await classify(y) == "small" or y > 8))
        return out


CASES = [
    Case("elif_negative", BranchElifChain, (-4,)),
    Case("elif_zero", BranchElifChain, (0,)),
    Case("elif_small", BranchElifChain, (3,)),
    Case("elif_large", BranchElifChain, (42,)),
    Case("elif_await_even", BranchElifAwaitConditions, (4,)),
    Case("elif_await_neg", BranchElifAwaitConditions, (-3,)),
    Case("elif_await_odd", BranchElifAwaitConditions, (3,)),
    Case("elif_await_raises", BranchElifAwaitConditions, (7,)),
    Case("elif_huge", BranchElifAwaitConditions, (101,)),
    Case("nested_both", BranchNested, (2, 4)),
    Case("nested_x_even", BranchNested, (2, 3)),
    Case("nested_x_odd", BranchNested, (1, 5)),
    Case("nested_y_zero", BranchNested, (1, 0)),
    Case("no_else", BranchNoElse, ([1, 2, 3, 4],)),
    Case("early_return_neg", BranchEarlyReturn, (-1,)),
    Case("early_return_big", BranchEarlyReturn, (6,)),
    Case("early_return_odd", BranchEarlyReturn, (3,)),
    Case("early_return_even", BranchEarlyReturn, (4,)),
    Case("truthiness", BranchTruthiness),
    Case("condition_order", BranchConditionOrder, (8,)),
]
