"""Ordinary Python inside workflow classes: plain (sync) methods, staticmethods and
``with`` blocks that do not await."""

from __future__ import annotations

import contextlib

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


@action
async def fetch(key: str) -> dict[str, int]:
    return {"a": 1, "b": 2} if key == "both" else {"a": 1}


@action
async def inc(x: int) -> int:
    return x + 1


@workflow
class MethodsSyncMethods(Workflow):
    """A plain method and a staticmethod of the workflow class, called from inline code."""

    def describe(self, total: int) -> str:
        return f"total={total}"

    @staticmethod
    def clamp(value: int, limit: int) -> int:
        return min(value, limit)

    async def run(self, key: str) -> str:
        values = await fetch(key)
        total = sum(values.values())
        clamped = self.clamp(await inc(total), 2)
        return f"{self.describe(total)} clamped={clamped}"


@workflow
class MethodsWithBlock(Workflow):
    """A ``with`` block that does not await, between awaits."""

    async def run(self, key: str) -> tuple[int, bool]:
        values = await fetch(key)
        found = False
        with contextlib.suppress(KeyError):
            missing = values["b"]
            found = True
        result = await inc(missing if found else 0)
        return result, found


CASES = [
    Case("sync_methods_both", MethodsSyncMethods, ("both",)),
    Case("sync_methods_one", MethodsSyncMethods, ("one",)),
    Case("with_block_found", MethodsWithBlock, ("both",)),
    Case("with_block_missing", MethodsWithBlock, ("one",)),
]
