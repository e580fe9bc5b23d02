"""An f-string mixing awaited and plain interpolations, evaluated left to right."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import note, rec


@workflow
class CsFString(Workflow):
    async def run(self) -> str:
        return f"{await rec('one', 1)}-{note('mid', 'm')}-{await rec('two', 2)!r:>3}"
