"""The rappelx side of the history workload (see :mod:`benchmarks._history_figures`)."""

from __future__ import annotations

from benchmarks._history_figures import Figures, history_figures
from benchmarks._rappelx_side import Client, _warm_up, workers
from benchmarks.workloads.rappelx_flows import History


async def history(dsn: str, processes: int, steps: int, window: int) -> Figures:
    """Both shapes, one after the other on the same workers process."""
    async with workers(dsn, processes), Client(dsn) as client:
        await _warm_up(client)

        async def shape(steps: int, early: int, grow: bool) -> tuple[list[float], list[float], int]:
            young, old, kept = await client.run(History, steps, early, window, grow)
            return young, old, kept

        return await history_figures(shape, steps, window)
