"""Percentiles, medians and process memory: the arithmetic every side of the benchmark uses."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from pathlib import Path


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, interpolated linearly between ranks.

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def gaps(stamps: Sequence[float]) -> list[float]:
    """Differences between consecutive timestamps."""
    return [later - earlier for earlier, later in itertools.pairwise(stamps)]


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (NaN for none, so a missing figure stays visible)."""
    return statistics.median(values) if values else math.nan


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of process ``pid`` from ``/proc/<pid>/status``, in MiB.

    ``field`` is ``VmRSS`` (resident now) or ``VmHWM`` (resident at its peak).

    Raises:
        OSError: The process is gone.
        LookupError: The kernel does not report ``field``.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) / 1024
    raise LookupError(f"/proc/{pid}/status has no {field} line")


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (Linux only)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found.extend(int(part) for part in text.split())
    return found
