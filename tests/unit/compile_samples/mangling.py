"""Private names (``self.__x``, ``__local``) mangle as they do in a class body."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import rec


@workflow
class CsMangledAttr(Workflow):
    async def run(self) -> tuple[int, int, bool, bool]:
        self.__x = await rec("x", 4)
        __local = self.__x + 1
        await rec("after")
        return self.__x, __local, hasattr(self, "_CsMangledAttr__x"), hasattr(self, "__x")
