"""The rappelx side: a ``rappelx workers`` subprocess, driven through the public client.

Every measurement starts its own ``python -m rappelx workers`` process on a fresh database,
warms it up with one small instance, then times the workload from the client side. The
actions stamp their own start times, so latencies do not include the client's wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._profile import RoleProfile, fold, sampling
from benchmarks._sleepers import (
    ENQUEUE_CONCURRENCY,
    PROBE,
    RESULT_CONCURRENCY,
    lag_figures,
    wake_times,
)
from benchmarks._stats import children, gaps, percentile, rss_mb
from benchmarks._tasks import bounded
from benchmarks.workloads.rappelx_flows import (
    Chain,
    Fanout,
    First,
    Sleeper,
    StampedChain,
    Stamps,
)
from rappelx.exceptions import RappelxError

if TYPE_CHECKING:
    # rappelx exports Client lazily (module __getattr__), which type checkers cannot see.
    from rappelx.runtime._client import Client
else:
    from rappelx import Client

MODULE = "benchmarks.workloads.rappelx_flows"
ROOT = Path(__file__).resolve().parents[1]
_READY_LINE = "serving queues"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 60.0

Figures = dict[str, float]


class WorkersFailed(RappelxError):
    """The ``rappelx workers`` subprocess died or never became ready."""


@dataclass
class Workers:
    """A running ``rappelx workers`` process and where its log goes."""

    process: subprocess.Popen[bytes]
    log: Path
    samples: list[float] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The dispatcher's pid (the CLI runs the dispatcher in its own process)."""
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's log, for error messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def workers_rss_mb(self) -> float:
        """Resident memory of the worker subprocesses together, in MiB."""
        total = 0.0
        for child in children(self.pid):
            with contextlib.suppress(OSError, LookupError):
                total += rss_mb(child)
        return total


@contextlib.asynccontextmanager
async def workers(dsn: str, processes: int) -> AsyncIterator[Workers]:
    """Run ``rappelx workers`` on ``dsn`` until the block ends, then SIGTERM it."""
    log = Path(tempfile.mkstemp(prefix="rappelx-bench-workers-", suffix=".log")[1])
    command = [sys.executable, "-m", "rappelx", "workers", "--module", MODULE]
    command += ["--processes", str(processes), "--log-format", "text"]
    env = {**os.environ, "RAPPELX_DATABASE_URL": dsn}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    running = Workers(process, log)
    try:
        await _until_ready(running)
        yield running
    finally:
        await _stop(running)
        log.unlink(missing_ok=True)


async def _until_ready(running: Workers) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while _READY_LINE not in running.log.read_text(errors="replace"):
        if running.process.poll() is not None:
            raise WorkersFailed(
                f"rappelx workers exited at start (its log ends below); check that "
                f"'python -m rappelx workers --module {MODULE}' runs from {ROOT}:\n"
                f"{running.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise WorkersFailed(
                f"rappelx workers did not log {_READY_LINE!r} within {_START_TIMEOUT}s; "
                f"is the database reachable? Its log ends:\n{running.log_tail()}"
            )
        await asyncio.sleep(0.05)


async def _stop(running: Workers) -> None:
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while running.process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


async def _warm_up(client: Client) -> None:
    """One small instance first: connections, worker imports and caches are warm."""
    assert await client.run(Chain, 2) == 2


async def chain(dsn: str, processes: int, instances: int, steps: int) -> Figures:
    """``instances`` x ``steps`` sequential no-op actions: actions per second."""
    async with workers(dsn, processes), Client(dsn) as client:
        await _warm_up(client)
        return await _timed_chain(client, instances, steps)


async def chain_backlog(dsn: str, processes: int, instances: int, steps: int) -> Figures:
    """The chain with every instance queued before the workers start: the dispatcher's
    own rate, from the first action's start to the last one's (enqueueing excluded)."""
    async with Client(dsn) as client:
        handles = await asyncio.gather(
            *[client.start(StampedChain, steps) for _ in range(instances)]
        )
        async with workers(dsn, processes):
            spans = await asyncio.gather(*[h.result() for h in handles])
    elapsed = max(last for _, last in spans) - min(first for first, _ in spans)
    return {"backlog_actions_per_s": instances * steps / elapsed}


async def profiled_chain(
    dsn: str, processes: int, instances: int, steps: int, output: Path
) -> tuple[Figures, dict[str, RoleProfile]]:
    """:func:`chain` with py-spy sampling the workers process; figures and profile."""
    async with workers(dsn, processes) as running, Client(dsn) as client:
        await _warm_up(client)
        async with sampling([running.pid, *children(running.pid)], output):
            figures = await _timed_chain(client, instances, steps)
    with output.open() as raw:
        return figures, fold(raw, running.pid)


async def _timed_chain(client: Client, instances: int, steps: int) -> Figures:
    started = time.perf_counter()
    handles = await asyncio.gather(*[client.start(Chain, steps) for _ in range(instances)])
    results = await asyncio.gather(*[h.result() for h in handles])
    elapsed = time.perf_counter() - started
    assert results == [steps] * instances
    return {"actions_per_s": instances * steps / elapsed, "seconds": elapsed}


async def fanout(dsn: str, processes: int, width: int) -> Figures:
    """One instance gathering ``width`` no-op actions: seconds from start to result."""
    async with workers(dsn, processes), Client(dsn) as client:
        await _warm_up(client)
        started = time.perf_counter()
        assert await client.run(Fanout, width) == width
        return {"seconds": time.perf_counter() - started}


async def latency(dsn: str, processes: int, steps: int, fresh: int) -> Figures:
    """Action-to-action gaps in one long instance; enqueue-to-first-action of new ones."""
    async with workers(dsn, processes), Client(dsn) as client:
        await _warm_up(client)
        between = gaps(await client.run(Stamps, steps))
        first = []
        for _ in range(fresh):
            enqueued = time.time()
            first.append(await client.run(First) - enqueued)
    return _latency_figures(between, first)


def _latency_figures(between: list[float], first: list[float]) -> Figures:
    return {
        "a2a_p50_ms": percentile(between, 0.5) * 1e3,
        "a2a_p99_ms": percentile(between, 0.99) * 1e3,
        "e2f_p50_ms": percentile(first, 0.5) * 1e3,
        "e2f_p99_ms": percentile(first, 0.99) * 1e3,
    }


async def sleepers(dsn: str, processes: int, count: int, low: float, high: float) -> Figures:
    """``count`` instances asleep at once for ``low``..``high`` s: memory and wake-up lag."""
    async with workers(dsn, processes) as running, Client(dsn) as client:
        await _warm_up(client)
        idle = rss_mb(running.pid)
        sampler = asyncio.create_task(_sample_rss(running))
        wakes = wake_times(count, low, high, await _enqueue_rate(client))
        started = time.perf_counter()
        handles = await bounded(lambda at: client.start(Sleeper, at), wakes, ENQUEUE_CONCURRENCY)
        enqueue_s = time.perf_counter() - started
        # Collect results only once every sleep is due, so the client's own queries do
        # not compete with the wake-ups being measured.
        await asyncio.sleep(max(0.0, max(wakes) - time.time()) + 1.0)
        outcomes = await bounded(_result, handles, RESULT_CONCURRENCY)
        sampler.cancel()
        memory = {
            "rss_mb": max(running.samples, default=math.nan),
            "rss_hwm_mb": rss_mb(running.pid, "VmHWM"),
            "rss_idle_mb": idle,
            "workers_rss_mb": running.workers_rss_mb(),
        }
    rates = {"instances": count, "enqueue_per_s": count / enqueue_s}
    return {**memory, **lag_figures(outcomes), **rates}


async def _enqueue_rate(client: Client) -> float:
    """Instances started per second, timed on a probe of one-action instances."""
    started = time.perf_counter()
    handles = await bounded(lambda _: client.start(First), range(PROBE), ENQUEUE_CONCURRENCY)
    rate = PROBE / (time.perf_counter() - started)
    await asyncio.gather(*[h.result() for h in handles])
    return rate


async def _result(handle: Any) -> tuple[float, bool]:
    lag, late = await handle.result()
    return float(lag), bool(late)


async def _sample_rss(running: Workers, every: float = 0.5) -> None:
    while True:
        with contextlib.suppress(OSError, LookupError):
            running.samples.append(rss_mb(running.pid))
        await asyncio.sleep(every)


#: Each workload by name, for the orchestrator.
WORKLOADS: dict[str, Callable[..., Any]] = {
    "chain": chain,
    "fanout": fanout,
    "latency": latency,
    "sleepers": sleepers,
}
