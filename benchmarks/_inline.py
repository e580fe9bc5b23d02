"""``run_inline`` overhead per action, against plain asyncio awaits in the same process."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.workloads.rappelx_flows import Chain
from rappelx.testing import run_inline

Figures = dict[str, float]


async def _plain_noop() -> None:
    return None


async def _raw_loop(steps: int) -> int:
    for _ in range(steps):
        await _plain_noop()
    return steps


async def _per_call(repeat: int, call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        await call()
    return (time.perf_counter() - started) / repeat


async def inline(steps: int, instances: int) -> Figures:
    """``instances`` runs of a ``steps``-action chain through ``run_inline``.

    The fixed cost of an instance (a zero-step chain) is taken out, so the overhead is
    what each further action adds over a plain ``await noop()``.
    """
    assert await run_inline(Chain, steps) == steps  # warm up, and check it ran
    raw = await _per_call(instances, lambda: _raw_loop(steps))
    empty = await _per_call(instances, lambda: run_inline(Chain, 0))
    full = await _per_call(instances, lambda: run_inline(Chain, steps))
    per_action = (full - empty) / steps
    raw_action = raw / steps
    return {
        "overhead_us": (per_action - raw_action) * 1e6,
        "per_action_us": per_action * 1e6,
        "raw_us": raw_action * 1e6,
        "instance_us": empty * 1e6,
    }
