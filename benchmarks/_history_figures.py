"""The history workload's summary, shared by the rappelx and DBOS sides.

An old instance runs ``steps`` sequential actions and stamps the start times of its last
``window``; right after it finishes, a young instance runs ``EARLY + window`` and stamps
its actions from :data:`EARLY` on. The median gap between consecutive stamps in each
window is what one action costs old and young, and their ratio should stay near 1
however many actions the old one had behind it. The two windows are measured a moment
apart on purpose: this machine's speed drifts over seconds (per-action costs of one
flat instance wander between 1.3 and 2.5 ms from one stretch of 500 actions to the
next), so comparing an instance's end with its own beginning, 15 s earlier, was mostly
a comparison of two moments. Each instance stamps one window only, so both hold the
same stamps in their state while measured (the old one holding its early window's too
put its state past Postgres's 2 kB TOAST threshold, a cost of the measurement). Two
shapes: ``flat`` (the state keeps its size) and ``growing`` (it appends one value per
action, as a loop collecting results does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from benchmarks._stats import gaps, median

Figures = dict[str, float]
#: Runs one instance: ``(steps, early, grow)`` -> (stamps of the ``window`` actions from
#: ``early`` on, stamps of the last ``window``, values kept).
Shape = Callable[[int, int, bool], Awaitable[tuple[list[float], list[float], int]]]

#: The young window starts at this action (past the first few, which warm caches).
EARLY = 10


async def history_figures(run: Shape, steps: int, window: int) -> Figures:
    """Both shapes, one after the other: ms per action young and old, and the ratio."""
    figures: Figures = {}
    for shape, grow in (("flat", False), ("growing", True)):
        _, old, kept = await run(steps, steps, grow)  # (no early window)
        assert len(old) == window and kept == (steps if grow else 0)
        young, _, _ = await run(EARLY + window, EARLY, grow)
        assert len(young) == window
        early_ms, late_ms = median(gaps(young)) * 1e3, median(gaps(old)) * 1e3
        figures[f"{shape}_early_ms"] = early_ms
        figures[f"{shape}_late_ms"] = late_ms
        figures[f"{shape}_ratio"] = late_ms / early_ms
    return figures
