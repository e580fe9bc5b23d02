"""The event loop rappelx's own processes run on: uvloop when installed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """``uvloop.new_event_loop`` when uvloop is importable, else asyncio's default.

    uvloop's transports and callbacks cost a fraction of asyncio's, and the dispatcher
    and workers spend much of their time in them (socket writes to Postgres, pipe
    frames to and from workers).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
