"""Waking the dispatcher when known work comes due, with one timer handle at a time."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable

#: Wake-ups closer together than this are served by one.
_RESOLUTION = 0.001


class Wakeups:
    """A set of future moments at which to call ``wake``, on the running loop.

    The dispatcher learns of due times as it works (a timer it just wrote, a retry's
    backoff, the next timer in the table); many are close together, so they share
    one loop timer, re-armed for the earliest moment still ahead.

    Args:
        wake: Called (on the loop) once each moment arrives.
        horizon: Due times further ahead than this many seconds are left to polling.
    """

    def __init__(self, wake: Callable[[], None], *, horizon: float) -> None:
        self._wake = wake
        self._horizon = horizon
        self._moments: list[float] = []
        # The moment armed, kept here: uvloop's call_at returns a plain Handle, without
        # when(), for a moment that has already passed.
        self._armed: float | None = None
        self._handle: asyncio.Handle | None = None

    def __len__(self) -> int:
        return len(self._moments)

    def add(self, delay: float) -> None:
        """Call ``wake`` in ``delay`` seconds (unless a wake-up that close is planned)."""
        if delay >= self._horizon:
            return
        loop = asyncio.get_running_loop()
        moment = loop.time() + max(0.0, delay) + _RESOLUTION
        if self._armed is not None and abs(self._armed - moment) < _RESOLUTION:
            return
        heapq.heappush(self._moments, moment)
        if self._armed is None or moment < self._armed:
            self._arm(loop)

    def cancel(self) -> None:
        """Forget every planned wake-up."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed = None
        self._moments.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = self._moments[0] if self._moments else None
        self._handle = loop.call_at(self._armed, self._fire) if self._armed is not None else None

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._moments and self._moments[0] <= now + _RESOLUTION:
            heapq.heappop(self._moments)
        self._handle = None
        self._armed = None
        self._arm(loop)
        self._wake()
