"""A private async helper (``async def __fetch``) awaited as ``self.__fetch(...)``."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import rec


@workflow
class CsMangledHelper(Workflow):
    async def __fetch(self, x: int) -> int:
        return await rec("m", x)

    async def run(self) -> int:
        return await self.__fetch(4) + 1
