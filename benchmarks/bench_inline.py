"""``run_inline`` cost per action, against raw asyncio awaits measured in the same run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_inline.py [--actions 200] [--instances 20] [--runs 7]
        [--profile]

The workflow is ``--actions`` sequential ``await noop()`` lines (generated source, since
the compiler reads a workflow from its file). Each run times ``--instances`` calls of
``run_inline`` on it, on an empty workflow (the fixed cost of one instance), and the
baseline: the same number of ``await noop()`` on the undecorated coroutine function.
Figures are medians over ``--runs`` runs; nothing is asserted. Target: at most 20 us of
overhead per action.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import os
import pstats
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rappelx.testing import run_inline

TARGET_US = 20.0


def generated_module(name: str, source: str) -> ModuleType:
    """Import ``source`` as module ``name`` from a file (the compiler reads files)."""
    directory = Path(tempfile.mkdtemp(prefix="rappelx-bench-"))
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(directory))


def straight_line_module(actions: int) -> ModuleType:
    """A module with ``Straight`` (``actions`` sequential no-op awaits) and ``Empty``."""
    body = "\n".join("        await noop()" for _ in range(actions))
    return generated_module(
        f"_rx_bench_straight_{actions}",
        f"""
from rappelx import Workflow, action, workflow


async def plain_noop() -> None:
    return None


noop = action(plain_noop)


@workflow
class Straight(Workflow):
    async def run(self) -> int:
{body}
        return {actions}


@workflow
class Empty(Workflow):
    async def run(self) -> int:
        return 0
""",
    )


async def seconds(repeat: int, call: Callable[[], Awaitable[Any]]) -> float:
    """Wall time of ``repeat`` sequential awaits of ``call()``, per call."""
    started = time.perf_counter()
    for _ in range(repeat):
        await call()
    return (time.perf_counter() - started) / repeat


async def raw_loop(plain: Callable[[], Awaitable[None]], actions: int) -> None:
    for _ in range(actions):
        await plain()


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    module = straight_line_module(args.actions)
    straight, empty, plain = module.Straight, module.Empty, module.plain_noop
    assert await run_inline(straight) == args.actions  # warm up, and check it ran
    timings: dict[str, list[float]] = {"inline": [], "empty": [], "raw": []}
    for _ in range(args.runs):
        timings["raw"].append(await seconds(args.instances, lambda: raw_loop(plain, args.actions)))
        timings["empty"].append(await seconds(args.instances, lambda: run_inline(empty)))
        timings["inline"].append(await seconds(args.instances, lambda: run_inline(straight)))
    return timings


def report(args: argparse.Namespace, timings: dict[str, list[float]]) -> None:
    n = args.actions
    inline, empty, raw = (statistics.median(timings[k]) for k in ("inline", "empty", "raw"))
    spread = f"min {min(timings['inline']) * 1e3:.2f}  max {max(timings['inline']) * 1e3:.2f}"
    per_action = inline / n * 1e6
    raw_action = raw / n * 1e6
    overhead = per_action - raw_action
    marginal = (inline - empty) / n * 1e6 - raw_action
    verdict = "meets" if overhead <= TARGET_US else "MISSES"
    print(f"  run_inline, {n} actions   {inline * 1e3:9.2f} ms per instance ({spread})")
    print(f"  run_inline, 0 actions     {empty * 1e6:9.1f} us per instance (fixed cost)")
    print(f"  raw asyncio, {n} awaits   {raw * 1e6:9.1f} us")
    print(f"  per action: run_inline {per_action:.2f} us, raw {raw_action:.3f} us")
    print(
        f"  overhead per action       {overhead:9.2f} us  ({verdict} the {TARGET_US:.0f} us target)"
    )
    print(f"  marginal overhead         {marginal:9.2f} us  (fixed cost of an instance removed)")
    print(f"  ratio run_inline / raw    {inline / raw:9.1f}x")


def profile(args: argparse.Namespace) -> None:
    """Print where ``run_inline`` spends its time on the straight-line workflow."""
    straight = straight_line_module(args.actions).Straight

    async def instances() -> None:
        for _ in range(args.instances):
            await run_inline(straight)

    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(instances())
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats("rappelx", 20)
    stats.sort_stats("tottime").print_stats(12)


async def main(args: argparse.Namespace) -> None:
    print(
        f"bench_inline: {args.actions} sequential no-op actions, {args.instances} instances "
        f"x {args.runs} runs, Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    report(args, await measure(args))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    return parser.parse_args()


if __name__ == "__main__":
    options = parse_arguments()
    asyncio.run(main(options))
    if options.profile:
        profile(options)
