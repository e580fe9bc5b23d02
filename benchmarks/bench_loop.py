"""Per-iteration cost of a loop in ``run_inline`` at 1,000 and 10,000 iterations.

Run from the repository root::

    .venv/bin/python benchmarks/bench_loop.py [--sizes 1000 10000] [--runs 5] [--profile]

Each iteration awaits one no-op action. Two loop shapes: ``count`` keeps the workflow's
state the same size (``total += await noop(i)``), ``collect`` grows it by one element per
iteration (``out.append(await noop(i))``), as a loop gathering results does. If the
time per iteration stays flat from the smallest size to the largest (ratio ~1), no step
costs more as the instance ages; a ratio near the size ratio means quadratic growth.
The baseline is the same loop as plain asyncio. Figures are medians over ``--runs``
runs; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rappelx import Workflow, action, workflow
from rappelx.testing import run_inline


async def plain_noop(i: int) -> int:
    return i


noop = action(plain_noop)


@workflow
class CountLoop(Workflow):
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await noop(i)
        return total


@workflow
class CollectLoop(Workflow):
    async def run(self, n: int) -> int:
        out = []
        for i in range(n):
            out.append(await noop(i))
        return len(out)


async def plain_count(n: int) -> int:
    total = 0
    for i in range(n):
        total += await plain_noop(i)
    return total


SHAPES: dict[str, tuple[type, Callable[[int], int]]] = {
    "count": (CountLoop, lambda n: n * (n - 1) // 2),
    "collect": (CollectLoop, lambda n: n),
}


async def per_iteration(
    n: int, expected: int, call: Callable[..., Awaitable[Any]], *args: Any
) -> float:
    """Seconds per iteration of one ``n``-iteration loop run by ``call(*args)``."""
    started = time.perf_counter()
    result = await call(*args)
    elapsed = time.perf_counter() - started
    if result != expected:
        raise SystemExit(f"loop of {n} returned {result!r}, expected {expected}")
    return elapsed / n


async def measure(args: argparse.Namespace) -> dict[tuple[str, int], list[float]]:
    timings: dict[tuple[str, int], list[float]] = {}
    for name, (cls, expect) in SHAPES.items():
        await run_inline(cls, 10)  # warm up
        for n in args.sizes:
            timings[(name, n)] = [
                await per_iteration(n, expect(n), run_inline, cls, n) for _ in range(args.runs)
            ]
    for n in args.sizes:
        expected = n * (n - 1) // 2
        timings[("plain", n)] = [
            await per_iteration(n, expected, plain_count, n) for _ in range(args.runs)
        ]
    return timings


def report(args: argparse.Namespace, timings: dict[tuple[str, int], list[float]]) -> None:
    small, large = min(args.sizes), max(args.sizes)
    for name in [*SHAPES, "plain"]:
        medians = {n: statistics.median(timings[(name, n)]) * 1e6 for n in args.sizes}
        cells = "  ".join(f"{n:>6,}: {medians[n]:8.2f} us/iter" for n in args.sizes)
        ratio = medians[large] / medians[small]
        print(f"  {name:<8} {cells}   ratio {large:,}/{small:,}: {ratio:.2f}")


def profile(args: argparse.Namespace) -> None:
    """Print where the largest ``collect`` loop spends its time."""
    n = max(args.sizes)
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(run_inline(CollectLoop, n))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats("rappelx", 20)


async def main(args: argparse.Namespace) -> None:
    print(
        f"bench_loop: loops of {', '.join(f'{n:,}' for n in args.sizes)} iterations, "
        f"{args.runs} runs, Python {sys.version.split()[0]}"
    )
    report(args, await measure(args))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    return parser.parse_args()


if __name__ == "__main__":
    options = parse_arguments()
    asyncio.run(main(options))
    if options.profile:
        profile(options)
