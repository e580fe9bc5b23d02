"""A small application for the fault tests: workflows whose actions count executions.

Each execution of ``step`` appends a byte to a file named by its key under the directory
in ``RAPPELX_TEST_COUNTERS`` (appends are atomic, so worker subprocesses on any process
can share it), and the tests read those counts back.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from rappelx import Workflow, action, workflow

COUNTERS_ENV = "RAPPELX_TEST_COUNTERS"


def _counter(key: str) -> Path:
    return Path(os.environ[COUNTERS_ENV]) / re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def executions(key: str) -> int:
    """How many times ``step`` ran for ``key``."""
    path = _counter(key)
    return path.stat().st_size if path.exists() else 0


def all_executions() -> dict[str, int]:
    """Every key ``step`` ran for, with its count."""
    return {p.name: p.stat().st_size for p in Path(os.environ[COUNTERS_ENV]).iterdir()}


@action
async def step(key: str, value: int, sleep: float = 0.0) -> int:
    """Count this execution, optionally take a while, and return ``2 * value``."""
    fd = os.open(_counter(key), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    if sleep:
        await asyncio.sleep(sleep)
    return 2 * value


@workflow
class Chain(Workflow):
    """``n`` steps one after another; step ``slow_at`` sleeps ``sleep`` seconds."""

    async def run(self, tag: str, n: int, slow_at: int = -1, sleep: float = 0.0) -> int:
        total = 0
        for i in range(n):
            total += await step(f"{tag}-{i}", i, sleep if i == slow_at or slow_at == -2 else 0.0)
        return total


@workflow
class Collect(Workflow):
    """``n`` steps whose results are collected in a list (a log list), a sleep every 5th.

    Step ``slow_at`` (every step if -2) sleeps ``sleep`` seconds.
    """

    async def run(self, tag: str, n: int, slow_at: int = -1, sleep: float = 0.0) -> list[int]:
        out = []
        for i in range(n):
            pause = sleep if i == slow_at or slow_at == -2 else 0.0
            out.append(await step(f"{tag}-{i}", i, pause))
            if i % 5 == 4:
                await asyncio.sleep(0.01)
        return out


def chain_result(n: int) -> int:
    """What ``Chain(tag, n, ...)`` returns."""
    return sum(2 * i for i in range(n))
