"""The DBOS Transact side: the same workloads, run by DBOS in a subprocess of its own.

DBOS runs workflows inside the process that launched it, and it is configured once per
process, so each measurement is one ``python -m benchmarks._dbos_side`` process: it
launches DBOS on its own database, warms up, runs the workload from the same event loop
(``DBOS.start_workflow_async``, as a DBOS application would) and prints its figures as one
JSON line. :func:`run` is the parent's end of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks._history_figures import history_figures
from benchmarks._sleepers import ENQUEUE_CONCURRENCY, PROBE, lag_figures, wake_times
from benchmarks._stats import gaps, percentile, rss_mb
from benchmarks._tasks import bounded
from rappelx.exceptions import RappelxError

ROOT = Path(__file__).resolve().parents[1]
_MARK = "DBOS-FIGURES "

Figures = dict[str, float]


class DbosFailed(RappelxError):
    """The DBOS subprocess failed; the message carries the end of its output."""


async def run(workload: str, dsn: str, **params: Any) -> Figures:
    """Run ``workload`` on DBOS in a fresh subprocess against ``dsn``; its figures."""
    request = json.dumps({"workload": workload, "dsn": dsn, "params": params})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks._dbos_side", request,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith(_MARK) and process.returncode == 0:
            figures: Figures = json.loads(line.removeprefix(_MARK))
            return figures
    tail = "\n".join(text.splitlines()[-30:])
    raise DbosFailed(
        f"the DBOS side of {workload} failed (exit {process.returncode}); is the bench "
        f"extra installed (pip install -e .[bench])? Run with --no-dbos to skip it. Its "
        f"output ends:\n{tail}"
    )


# ----------------------------------------------------------- inside the subprocess
async def _chain(instances: int, steps: int) -> Figures:
    from dbos import DBOS

    from benchmarks.workloads import dbos_flows as flows

    started = time.perf_counter()
    handles = await asyncio.gather(
        *[DBOS.start_workflow_async(flows.chain, steps) for _ in range(instances)]
    )
    results = [await handle.get_result() for handle in handles]
    elapsed = time.perf_counter() - started
    assert results == [steps] * instances
    return {"actions_per_s": instances * steps / elapsed, "seconds": elapsed}


async def _fanout(width: int) -> Figures:
    from dbos import DBOS

    from benchmarks.workloads import dbos_flows as flows

    started = time.perf_counter()
    handle = await DBOS.start_workflow_async(flows.fanout, width)
    assert await handle.get_result() == width
    return {"seconds": time.perf_counter() - started}


async def _latency(steps: int, fresh: int) -> Figures:
    from dbos import DBOS

    from benchmarks.workloads import dbos_flows as flows

    handle = await DBOS.start_workflow_async(flows.stamps, steps)
    between = gaps(await handle.get_result())
    first = []
    for _ in range(fresh):
        enqueued = time.time()
        started = await DBOS.start_workflow_async(flows.first)
        first.append(await started.get_result() - enqueued)
    return {
        "a2a_p50_ms": percentile(between, 0.5) * 1e3,
        "a2a_p99_ms": percentile(between, 0.99) * 1e3,
        "e2f_p50_ms": percentile(first, 0.5) * 1e3,
        "e2f_p99_ms": percentile(first, 0.99) * 1e3,
    }


async def _sleepers(count: int, low: float, high: float) -> Figures:
    from dbos import DBOS

    from benchmarks.workloads import dbos_flows as flows

    idle = rss_mb(os.getpid())
    samples: list[float] = []
    sampler = asyncio.create_task(_sample_rss(samples))
    wakes = wake_times(count, low, high, await _enqueue_rate())
    started = time.perf_counter()
    handles = await bounded(
        lambda at: DBOS.start_workflow_async(flows.sleeper, at), wakes, ENQUEUE_CONCURRENCY
    )
    enqueue_s = time.perf_counter() - started
    await asyncio.sleep(max(0.0, max(wakes) - time.time()) + 1.0)
    outcomes = [await handle.get_result() for handle in handles]
    sampler.cancel()
    memory = {
        "rss_mb": max(samples),
        "rss_hwm_mb": rss_mb(os.getpid(), "VmHWM"),
        "rss_idle_mb": idle,
    }
    rates = {"instances": count, "enqueue_per_s": count / enqueue_s}
    return {**memory, **lag_figures(outcomes), **rates}


async def _enqueue_rate() -> float:
    from dbos import DBOS

    from benchmarks.workloads import dbos_flows as flows

    started = time.perf_counter()
    handles = await bounded(
        lambda _: DBOS.start_workflow_async(flows.first), range(PROBE), ENQUEUE_CONCURRENCY
    )
    rate = PROBE / (time.perf_counter() - started)
    for handle in handles:
        await handle.get_result()
    return rate


async def _sample_rss(samples: list[float], every: float = 0.5) -> None:
    while True:
        with contextlib.suppress(OSError, LookupError):
            samples.append(rss_mb(os.getpid()))
        await asyncio.sleep(every)


async def _history(steps: int, window: int) -> Figures:
    from dbos import DBOS

    from benchmarks.workloads import dbos_flows as flows

    async def shape(steps: int, first: int, grow: bool) -> tuple[list[float], list[float], int]:
        handle = await DBOS.start_workflow_async(flows.history, steps, first, window, grow)
        result: tuple[list[float], list[float], int] = await handle.get_result()
        return result

    return await history_figures(shape, steps, window)


_WORKLOADS: dict[str, Callable[..., Awaitable[Figures]]] = {
    "chain": _chain,
    "fanout": _fanout,
    "latency": _latency,
    "sleepers": _sleepers,
    "history": _history,
}


async def _serve(request: dict[str, Any]) -> Figures:
    from dbos import DBOS

    from benchmarks.workloads import dbos_flows as flows

    DBOS(config={"name": "rappelx-bench", "system_database_url": request["dsn"],
                 "log_level": "WARNING"})  # fmt: skip
    await asyncio.to_thread(DBOS.launch)
    try:
        # DBOS polls a queue for work; 0.1 s rather than the 1 s default, in its favour.
        await DBOS.register_queue_async(flows.FANOUT_QUEUE, polling_interval_sec=0.1)
        handle = await DBOS.start_workflow_async(flows.chain, 2)
        assert await handle.get_result() == 2
        return await _WORKLOADS[request["workload"]](**request["params"])
    finally:
        await asyncio.to_thread(DBOS.destroy)


def main() -> None:
    """Entry point of the subprocess: one JSON request in ``argv``, figures on stdout."""
    request = json.loads(sys.argv[1])
    figures = asyncio.run(_serve(request))
    print(_MARK + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
