"""rappelx side by side with DBOS Transact and a raw Postgres queue, on one Postgres.

Run from the repository root (``pip install -e .[bench]`` installs DBOS)::

    .venv/bin/python benchmarks/run.py [--quick] [--json out.json] [--runs N]
        [--only chain,fanout,latency,sleepers,inline,history] [--profile chain.prof]

Workloads (no-op actions; rappelx's run in ``rappelx workers`` subprocesses):

* ``chain``: many instances of 10 sequential actions -> actions/s.
* ``fanout``: one instance gathering 1,000 actions -> seconds (DBOS: a queue of children).
* ``latency``: one instance of 200 sequential actions -> action-to-action p50/p99 from
  the actions' own start stamps; 50 fresh one-action instances -> enqueue-to-first p50/p99.
* ``sleepers``: N instances all asleep at once, waking 5-30 s later -> peak RSS of the
  dispatcher process and wake-up lag p99 (DBOS runs a smaller N: it holds every sleeping
  workflow in its process).
* ``inline``: ``run_inline`` cost per action against a plain ``await noop()`` loop.
* ``history``: one instance of 10,000 sequential actions, then at once a young one ->
  the median action-to-action gap of the old one's last 100 actions and of the young
  one's actions 10-110, and their ratio; once with the state the same size throughout,
  once growing by one value per action.

The ceiling is a raw asyncpg ``FOR UPDATE SKIP LOCKED`` queue with no engine, at 1 and
at 50 jobs per transaction. Every measurement gets a fresh database on the shared server
(``RAPPELX_DATABASE_URL``, else the embedded Postgres) and a fresh process. The table
shows medians of ``--runs`` runs with the targets of issue 4; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import _ceiling, _dbos_side, _history, _inline, _pg, _rappelx_side, _report
from benchmarks._profile import format_profile

WORKLOADS = ("chain", "fanout", "latency", "sleepers", "inline", "history")
#: Consumer connections of the raw queue (the rappelx side runs two worker processes).
CEILING_CONSUMERS = 4

Figures = dict[str, float]
Measure = Callable[[str], Awaitable[Figures]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizes:
    """How big each workload is, and how often it is repeated."""

    runs: int
    sleeper_runs: int
    chain_instances: int
    chain_steps: int = 10
    fanout_width: int = 1000
    latency_steps: int = 200
    latency_fresh: int = 50
    sleepers: int
    dbos_sleepers: int
    sleep_low: float = 5.0
    sleep_high: float = 30.0
    inline_steps: int = 200
    inline_instances: int = 20
    history_steps: int = 10_000
    history_window: int = 100


DEFAULT = Sizes(runs=3, sleeper_runs=1, chain_instances=500, sleepers=100_000,
                dbos_sleepers=2_000)  # fmt: skip
QUICK = Sizes(runs=1, sleeper_runs=1, chain_instances=200, sleepers=2_000, dbos_sleepers=300,
              history_steps=1_000)  # fmt: skip


def plan(workload: str, sizes: Sizes, processes: int, dbos: bool) -> list[tuple[str, Measure]]:
    """The measurements of one run of ``workload``: ``(system, measure(dsn))`` pairs."""
    s, p = sizes, processes
    rx = _rappelx_side
    table: dict[str, list[tuple[str, Measure]]] = {
        "chain": [
            ("rappelx", lambda d: rx.chain(d, p, s.chain_instances, s.chain_steps)),
            ("rappelx", lambda d: rx.chain_backlog(d, p, s.chain_instances, s.chain_steps)),
            ("dbos", lambda d: _dbos_side.run("chain", d, instances=s.chain_instances,
                                              steps=s.chain_steps)),
            *[(f"ceil{b}", _ceiling_chain(b, s)) for b in (1, 50)],
        ],
        "fanout": [
            ("rappelx", lambda d: rx.fanout(d, p, s.fanout_width)),
            ("dbos", lambda d: _dbos_side.run("fanout", d, width=s.fanout_width)),
        ],
        "latency": [
            ("rappelx", lambda d: rx.latency(d, p, s.latency_steps, s.latency_fresh)),
            ("dbos", lambda d: _dbos_side.run("latency", d, steps=s.latency_steps,
                                              fresh=s.latency_fresh)),
            *[(f"ceil{b}", _ceiling_latency(b, s)) for b in (1, 50)],
        ],
        "sleepers": [
            ("rappelx", lambda d: rx.sleepers(d, p, s.sleepers, s.sleep_low, s.sleep_high)),
            ("dbos", lambda d: _dbos_side.run("sleepers", d, count=s.dbos_sleepers,
                                              low=s.sleep_low, high=s.sleep_high)),
        ],
        "history": [
            ("rappelx", lambda d: _history.history(d, p, s.history_steps, s.history_window)),
            ("dbos", lambda d: _dbos_side.run("history", d, steps=s.history_steps,
                                              window=s.history_window)),
        ],
    }  # fmt: skip
    return [(system, m) for system, m in table[workload] if dbos or system != "dbos"]


def _ceiling_chain(batch: int, s: Sizes) -> Measure:
    return lambda d: _ceiling.chain(d, batch, CEILING_CONSUMERS, s.chain_instances, s.chain_steps)


def _ceiling_latency(batch: int, s: Sizes) -> Measure:
    return lambda d: _ceiling.latency(d, batch, CEILING_CONSUMERS, s.latency_steps, s.latency_fresh)


async def run_workload(
    workload: str, runs: int, args: argparse.Namespace, server: str
) -> dict[str, list[Figures]]:
    """Every run of ``workload``, each system on a fresh database: figures by system."""
    out: dict[str, list[Figures]] = {}
    for index in range(1, runs + 1):
        if workload == "inline":
            figures = await _inline.inline(args.sizes.inline_steps, args.sizes.inline_instances)
            measured = {"rappelx": figures, "ceil1": {"per_action_us": figures["raw_us"]}}
        else:
            measured = {}
            for system, measure in plan(workload, args.sizes, args.processes, args.dbos):
                dsn = await _pg.fresh_database(server, system)
                measured.setdefault(system, {}).update(await measure(dsn))
                await _pg.drop_database(server, system)
        for system, figures in measured.items():
            out.setdefault(system, []).append(figures)
            print(f"  {workload} run {index}/{runs} {system:8} {_brief(figures)}", flush=True)
    return out


def _brief(figures: Figures) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in figures.items())


async def profile_chain(args: argparse.Namespace, server: str) -> str:
    """One more rappelx ``chain`` (3x the instances) under py-spy: the profile as text."""
    dsn = await _pg.fresh_database(server, "profile")
    s = args.sizes
    figures, roles = await _rappelx_side.profiled_chain(
        dsn, args.processes, 3 * s.chain_instances, s.chain_steps, args.profile
    )
    await _pg.drop_database(server, "profile")
    return f"profiled chain: {_brief(figures)}\n{format_profile(roles)}"


def header(settings: dict[str, str], args: argparse.Namespace) -> str:
    """What the figures were measured on: machine, Postgres and the sizes used."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    pg = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    return (
        f"rappelx benchmark: Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {load}\nPostgres: {pg}\nrappelx workers --processes "
        f"{args.processes}; sizes: {dataclasses.asdict(args.sizes)}"
    )


async def main(args: argparse.Namespace) -> int:
    """Run the selected workloads, print the table, write ``--json``."""
    server = await asyncio.to_thread(_pg.server_dsn)
    await _pg.sweep(server)  # databases of earlier benchmark runs that did not finish
    settings = await _pg.server_settings(server)
    print(header(settings, args), flush=True)
    results: _report.Results = {}
    runs: dict[str, int] = {}
    started = time.monotonic()
    for workload in args.only:
        runs[workload] = args.sizes.sleeper_runs if workload == "sleepers" else args.sizes.runs
        results[workload] = await run_workload(workload, runs[workload], args, server)
    profile = await profile_chain(args, server) if args.profile else None
    print(f"\n{_report.table(results, runs)}\n(total {time.monotonic() - started:.0f} s)")
    if profile:
        print(f"\n{profile}")
    if args.json:
        write_json(args, settings, results)
    return 0


def write_json(
    args: argparse.Namespace, settings: dict[str, str], results: _report.Results
) -> None:
    """All raw figures, their medians and the table rows, as JSON."""
    document = {
        "machine": {"python": platform.python_version(), "cores": os.cpu_count(),
                    "load_average": os.getloadavg(), "postgres": settings},
        "sizes": dataclasses.asdict(args.sizes),
        "processes": args.processes,
        "runs": results,
        "medians": _report.medians(results),
        "rows": [dataclasses.asdict(row) for row in _report.evaluate(results)],
    }  # fmt: skip
    Path(args.json).write_text(json.dumps(_nulls(document), indent=2, allow_nan=False) + "\n")
    print(f"wrote {args.json}")


def _nulls(value: object) -> object:
    """``value`` with NaN (a figure not measured) as ``None``, so the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulls(v) for v in value]
    return value


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``sizes`` is filled from ``--quick`` and the overrides."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (~3 min)")
    parser.add_argument("--json", metavar="FILE", help="write every raw figure to FILE")
    parser.add_argument("--runs", type=int, help="runs per workload (default 3, quick 1)")
    parser.add_argument("--sleeper-runs", type=int, help="runs of sleepers (default 1)")
    parser.add_argument("--sleepers", type=int, help="rappelx sleepers (default 100,000)")
    parser.add_argument("--dbos-sleepers", type=int, help="DBOS sleepers (default 2,000)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads, comma-separated")
    parser.add_argument("--processes", type=int, default=2, help="rappelx worker processes")
    parser.add_argument("--no-dbos", dest="dbos", action="store_false", help="skip DBOS")
    parser.add_argument(
        "--profile", type=Path, metavar="FILE",
        help="also profile a rappelx chain with py-spy (raw stacks to FILE)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(args.only) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    overrides = {"runs": args.runs, "sleeper_runs": args.sleeper_runs,
                 "sleepers": args.sleepers, "dbos_sleepers": args.dbos_sleepers}  # fmt: skip
    chosen = {k: v for k, v in overrides.items() if v is not None}
    args.sizes = dataclasses.replace(QUICK if args.quick else DEFAULT, **chosen)
    if args.dbos and importlib.util.find_spec("dbos") is None:
        print("DBOS is not installed (pip install -e .[bench]); its columns stay empty")
        args.dbos = False
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_arguments())))
