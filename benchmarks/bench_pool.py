"""No-op round trips per second through the worker pool, against plain in-process awaits.

Run from the repository root (workers import this file as ``benchmarks.bench_pool``)::

    .venv/bin/python benchmarks/bench_pool.py [--tasks 20000] [--runs 5] [--processes 2]

Two ways of feeding the pool, each timed from the first submit to the last result:

* ``burst``: every task submitted at once; workers queue what exceeds their concurrency.
* ``window``: at most ``--window`` tasks in flight, refilled from ``on_results`` as results
  arrive, which is how the dispatcher drives the pool.

The baseline is the same number of ``await noop()`` in this process. Figures are medians
of ``--runs`` runs; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rappelx._action import action
from rappelx.runtime._codec import dumps
from rappelx.runtime._pool import Task, TaskResult, WorkerPool

NOOP = "bench.noop"
WORKER_MODULE = "benchmarks.bench_pool"


@action(name=NOOP)
async def noop() -> None:
    return None


class _Run:
    """Feeds one timed run of ``total`` no-op tasks and counts their results."""

    def __init__(self, total: int, window: int | None) -> None:
        self.total = total
        self.window = window
        self.payload = dumps(((), {}))
        self.next_token = 0
        self.received = 0
        self.failures = 0
        self.pool: WorkerPool | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def batch(self, size: int) -> list[Task]:
        size = min(size, self.total - self.next_token)
        first = self.next_token
        self.next_token += size
        return [Task(t, NOOP, self.payload, None) for t in range(first, first + size)]

    def on_results(self, results: list[TaskResult]) -> None:
        self.received += len(results)
        self.failures += sum(1 for r in results if not r.ok)
        if self.window is not None and self.next_token < self.total and self.pool:
            self.pool.submit(self.batch(len(results)))
        if self.received == self.total and not self.done.done():
            self.done.set_result(None)


async def _time_pool_run(pool: WorkerPool, run: _Run) -> float:
    run.pool = pool
    started = time.perf_counter()
    pool.submit(run.batch(run.window or run.total))
    await run.done
    elapsed = time.perf_counter() - started
    if run.failures:
        raise SystemExit(f"{run.failures} no-op tasks failed; the benchmark is invalid")
    return elapsed


async def _measure_pool(args: argparse.Namespace, window: int | None) -> list[float]:
    runs: list[_Run] = []

    def route(results: list[TaskResult]) -> None:
        runs[-1].on_results(results)

    pool = WorkerPool(
        [WORKER_MODULE],
        processes=args.processes,
        concurrency=args.concurrency,
        on_results=route,
    )
    await pool.start()
    try:
        timings = []
        for index in range(args.runs + 1):
            runs.append(_Run(args.tasks, window))
            elapsed = await _time_pool_run(pool, runs[-1])
            if index:  # the first run warms the workers up and is not counted
                timings.append(args.tasks / elapsed)
        return timings
    finally:
        await pool.close()


async def _measure_baseline(args: argparse.Namespace) -> list[float]:
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        for _ in range(args.tasks):
            await noop()
        timings.append(args.tasks / (time.perf_counter() - started))
    return timings


def _report(label: str, rates: list[float]) -> float:
    median = statistics.median(rates)
    spread = f"min {min(rates):,.0f}  max {max(rates):,.0f}"
    print(f"  {label:<34} {median:>12,.0f} /s   ({spread})")
    return median


async def _main(args: argparse.Namespace) -> None:
    print(
        f"bench_pool: {args.tasks:,} no-op tasks x {args.runs} runs, "
        f"{args.processes} workers x concurrency {args.concurrency}, "
        f"parent loop {type(asyncio.get_running_loop()).__module__.split('.')[0]}, "
        f"{os.cpu_count()} cores"
    )
    baseline = _report("in-process await noop()", await _measure_baseline(args))
    burst = _report("pool, burst submit", await _measure_pool(args, None))
    window = _report(f"pool, window of {args.window}", await _measure_pool(args, args.window))
    print(
        f"  overhead per task: burst {1e6 / burst - 1e6 / baseline:.1f} us, "
        f"window {1e6 / window - 1e6 / baseline:.1f} us"
    )


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--no-uvloop", action="store_true", help="plain asyncio in the parent")
    return parser.parse_args()


def _runner(use_uvloop: bool) -> Callable[[Coroutine[Any, Any, None]], None]:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run
    return asyncio.run


if __name__ == "__main__":
    options = _parse_arguments()
    _runner(not options.no_uvloop)(_main(options))
