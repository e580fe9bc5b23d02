"""The history workload's summary, shared by the rappelx and DBOS sides.

One instance runs ``steps`` sequential actions and stamps the start times of two windows
of ``window`` actions: from action :data:`EARLY` on, and the last ones. The median gap
between consecutive stamps in each window is what one action costs young and old; their
ratio should stay near 1 however many actions came before. Two shapes: ``flat`` (the
instance's state keeps its size) and ``growing`` (it appends one value per action, as a
loop collecting results does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from benchmarks._stats import gaps, median

Figures = dict[str, float]
#: Runs one instance: ``grow`` -> (young stamps, old stamps, values kept).
Shape = Callable[[bool], Awaitable[tuple[list[float], list[float], int]]]

#: The early window starts at this action (past the first few, which warm caches).
EARLY = 10


async def history_figures(run: Shape, steps: int, window: int) -> Figures:
    """Both shapes, one after the other: ms per action early and late, and the ratio."""
    figures: Figures = {}
    for shape, grow in (("flat", False), ("growing", True)):
        young, old, kept = await run(grow)
        assert len(young) == len(old) == window and kept == (steps if grow else 0)
        early_ms, late_ms = median(gaps(young)) * 1e3, median(gaps(old)) * 1e3
        figures[f"{shape}_early_ms"] = early_ms
        figures[f"{shape}_late_ms"] = late_ms
        figures[f"{shape}_ratio"] = late_ms / early_ms
    return figures
