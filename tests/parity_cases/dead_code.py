"""Unreachable statements are valid Python; the compiler must accept them.

Found by the generated parity test: a helper call after a statement that always returns
made the compiler fail with "internal compiler error: unreachable nodes". Kept in its own
module so that a compile failure here does not hide other cases.
"""

from __future__ import annotations

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


@action
async def inc(x: int) -> int:
    return x + 1


@workflow
class DeadAfterReturn(Workflow):
    """An action call and a helper call after ``return``."""

    async def helper(self, x: int) -> int:
        return await inc(x)

    async def run(self, x: int) -> int:
        if x > 100:
            return await self.helper(x)
        return await inc(x)
        await inc(x)
        return await self.helper(x)


@workflow
class DeadAfterLoopElse(Workflow):
    """A loop without ``break`` whose ``else`` returns: what follows never runs."""

    async def helper(self, x: int) -> int:
        return x * 2

    async def run(self, x: int) -> int:
        for i in range(2):
            x += await inc(i)
        else:
            return x
        return await self.helper(x)


@workflow
class DeadAfterIfElseRaise(Workflow):
    """Both branches leave the block (return / raise); the code after is unreachable."""

    async def helper(self, x: int) -> int:
        return x

    async def run(self, x: int) -> int:
        if await inc(x) > 3:
            return x
        else:
            raise ValueError(x)
        return await self.helper(x)


CASES = [
    Case("after_return", DeadAfterReturn, (1,)),
    Case("after_loop_else", DeadAfterLoopElse, (1,)),
    Case("after_if_else_return", DeadAfterIfElseRaise, (5,)),
    Case("after_if_else_raise", DeadAfterIfElseRaise, (1,)),
]
