"""Awaits on their own and nested in expressions: hoisting keeps Python's order."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import combine, note, pair, rec


@workflow
class CsSingle(Workflow):
    async def run(self, x: int) -> int:
        value = await rec("a", x)
        return value


@workflow
class CsReturnAwait(Workflow):
    async def run(self) -> int:
        return await rec("r", 7)


@workflow
class CsBinOp(Workflow):
    async def run(self) -> int:
        product = await rec("left", 2) * await rec("right", 5) - note("inline", 1)
        return product


@workflow
class CsFStringAwaits(Workflow):
    async def run(self) -> str:
        return f"<{await rec('one', 1)}|{await rec('two', 2)}>"


@workflow
class CsCallArgs(Workflow):
    async def run(self) -> tuple[object, ...]:
        return combine(note("h", 1), await rec("g", 2), note("k", 3))


@workflow
class CsActionArgs(Workflow):
    async def run(self) -> tuple[object, object]:
        return await pair(note("h", 1), await rec("g", 2))


@workflow
class CsKeywordArgs(Workflow):
    async def run(self) -> tuple[object, object]:
        return await pair(b=await rec("b", 2), a=await rec("a", 1))


@workflow
class CsMethodReceiver(Workflow):
    async def run(self) -> list[int]:
        items: list[int] = []
        note("recv", items).append(await rec("v", 3))
        return items


@workflow
class CsDictLiteral(Workflow):
    async def run(self) -> dict[str, int]:
        return {await rec("k1", "a"): await rec("v1", 1), "b": await rec("v2", 2)}


@workflow
class CsSubscriptTarget(Workflow):
    async def run(self) -> dict[str, int]:
        data: dict[str, int] = {}
        data[await rec("key", "a")] = await rec("value", 1)
        return data


@workflow
class CsIfAwait(Workflow):
    async def run(self, flag: bool) -> str:
        if await rec("test", flag):
            return "yes"
        return "no"


@workflow
class CsAugName(Workflow):
    async def run(self) -> int:
        total = 1
        total += await rec("x", 4)
        return total


@workflow
class CsAnnotated(Workflow):
    async def run(self) -> int:
        n: int = await rec("n", 5)
        return n


@workflow
class CsAssertPass(Workflow):
    async def run(self) -> str:
        assert await rec("ok", True), await rec("never", "message")
        return "passed"


@workflow
class CsAssertFail(Workflow):
    async def run(self) -> str:
        assert await rec("check", 0), await rec("message", "bad")
        return "unreachable"


@workflow
class CsUnaryNot(Workflow):
    async def run(self) -> str:
        if not await rec("a", False):
            await rec("inside")
            return "negated"
        return "plain"
