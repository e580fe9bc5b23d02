"""The history workload: does an action cost more once an instance has run for long?

One instance runs ``steps`` sequential actions (``History`` in the workloads); the
actions stamp their start times in two windows, one early and one at the end. The median
gap between consecutive stamps in each window is what one action costs young and old;
their ratio should stay near 1 however many actions came before. Two shapes: ``flat``
(the instance's state keeps its size) and ``growing`` (it appends one value per action,
as a loop collecting results does, so each step has more state to persist).
"""

from __future__ import annotations

from benchmarks._rappelx_side import Client, _warm_up, workers
from benchmarks._stats import gaps, median
from benchmarks.workloads.rappelx_flows import History

Figures = dict[str, float]

#: The early window starts at this action (past the first few, which warm caches).
EARLY = 10


async def history(dsn: str, processes: int, steps: int, window: int) -> Figures:
    """Both shapes, one after the other on the same workers process."""
    figures: Figures = {}
    async with workers(dsn, processes), Client(dsn) as client:
        await _warm_up(client)
        for shape, grow in (("flat", False), ("growing", True)):
            young, old, kept = await client.run(History, steps, EARLY, window, grow)
            assert len(young) == len(old) == window and kept == (steps if grow else 0)
            early_ms, late_ms = median(gaps(young)) * 1e3, median(gaps(old)) * 1e3
            figures[f"{shape}_early_ms"] = early_ms
            figures[f"{shape}_late_ms"] = late_ms
            figures[f"{shape}_ratio"] = late_ms / early_ms
    return figures
