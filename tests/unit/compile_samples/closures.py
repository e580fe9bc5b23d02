"""A nested ``def`` (that does not await) in inline code, closing over workflow variables."""

from __future__ import annotations

from collections.abc import Callable

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import rec


@workflow
class CsClosures(Workflow):
    async def run(self) -> list[int]:
        base = await rec("base", 10)
        add: Callable[[int], int] = lambda v: v + base  # noqa: E731 - the construct under test

        def times(v: int) -> int:
            return v * base

        out = [add(i) for i in range(3)] + [times(2)]
        # Functions cannot be persisted; drop them before the next await.
        del add, times
        await rec("after")
        return out
