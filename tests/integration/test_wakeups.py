"""The dispatcher's local wake-ups when the loop hands back a handle without a time."""

from __future__ import annotations

import asyncio
from typing import Any

from rappelx.runtime._wakeups import Wakeups


async def test_wakeups_work_with_loops_whose_call_at_returns_a_plain_handle() -> None:
    # uvloop's call_at returns a plain Handle (no when()) for a moment already passed,
    # as happens when the loop lags behind; later wake-ups must still be planned.
    loop = asyncio.get_running_loop()
    woken: list[float] = []
    wakeups = Wakeups(lambda: woken.append(loop.time()), horizon=10.0)

    def call_at(when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
        return loop.call_soon(callback, *args, context=context)

    original = loop.call_at
    loop.call_at = call_at  # type: ignore[method-assign]
    try:
        wakeups.add(0.0)
        wakeups.add(0.0)
        wakeups.add(0.05)
    finally:
        loop.call_at = original  # type: ignore[method-assign]
    await asyncio.sleep(0.01)
    assert woken
    wakeups.add(0.01)
    await asyncio.sleep(0.05)
    assert len(woken) >= 2
    wakeups.cancel()
