"""The benchmark's table: each figure beside DBOS and the ceiling, ratios, and targets.

Raw results are ``{workload: {system: [figures of run 1, run 2, ...]}}``; the table shows
medians over the runs. Systems: ``rappelx``, ``dbos``, ``ceil1`` and ``ceil50`` (the raw
queue at 1 and 50 jobs per transaction; for ``inline``, ``ceil1`` is plain asyncio).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks._stats import median

Results = dict[str, dict[str, list[dict[str, float]]]]
SYSTEMS = ("rappelx", "dbos", "ceil1", "ceil50")


@dataclass(frozen=True, slots=True)
class Target:
    """A goal from issue 4: ``value <op> threshold``, on the figure or a ratio."""

    op: str
    threshold: float
    on: str = "rappelx"  # or "rappelx/dbos"

    def met(self, value: float) -> bool | None:
        """Whether ``value`` meets the goal; ``None`` when it is missing."""
        if math.isnan(value):
            return None
        compare: Callable[[float, float], bool] = operator.ge if self.op == ">=" else operator.le
        return compare(value, self.threshold)

    def __str__(self) -> str:
        suffix = "x DBOS" if self.on == "rappelx/dbos" else ""
        return f"{self.op} {_number(self.threshold)}{suffix}"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a figure of a workload, with its goal if it has one."""

    workload: str
    metric: str
    label: str
    target: Target | None = None


ROWS = (
    Row("chain", "actions_per_s", "chain: actions/s", Target(">=", 5000)),
    Row("chain", "actions_per_s", "chain: rappelx vs DBOS", Target(">=", 20, "rappelx/dbos")),
    Row("chain", "backlog_actions_per_s", "chain: actions/s, queued beforehand"),
    Row("fanout", "seconds", "fanout: 1,000 gathered, s", Target("<=", 0.5)),
    Row("latency", "a2a_p50_ms", "latency: action-to-action p50 ms", Target("<=", 2)),
    Row("latency", "a2a_p99_ms", "latency: action-to-action p99 ms", Target("<=", 10)),
    Row("latency", "e2f_p50_ms", "latency: enqueue-to-first p50 ms", Target("<=", 5)),
    Row("latency", "e2f_p99_ms", "latency: enqueue-to-first p99 ms"),
    Row("sleepers", "rss_mb", "sleepers: dispatcher RSS MiB", Target("<=", 200)),
    Row("sleepers", "lag_p99_s", "sleepers: wake-up lag p99 s", Target("<=", 1)),
    Row("sleepers", "lag_p50_s", "sleepers: wake-up lag p50 s"),
    Row("sleepers", "instances", "sleepers: instances asleep"),
    Row("sleepers", "late", "sleepers: began after wake time"),
    Row("sleepers", "enqueue_per_s", "sleepers: enqueued/s"),
    Row("sleepers", "workers_rss_mb", "sleepers: worker processes MiB"),
    Row("inline", "per_action_us", "inline: us per action (vs asyncio)"),
    Row("inline", "overhead_us", "inline: overhead us per action", Target("<=", 20)),
    Row("history", "flat_early_ms", "history: ms/action, young, 10th-110th"),
    Row("history", "flat_late_ms", "history: ms/action, old, last 100"),
    Row("history", "flat_ratio", "history: old / young", Target("<=", 1.2)),
    Row("history", "growing_early_ms", "history, growing state: young"),
    Row("history", "growing_late_ms", "history, growing state: old"),
    Row("history", "growing_ratio", "history, growing state: ratio"),
)


def medians(results: Results) -> dict[str, dict[str, dict[str, float]]]:
    """Per workload and system, the median of every figure over the runs."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for workload, systems in results.items():
        for system, runs in systems.items():
            metrics = sorted({m for figures in runs for m in figures})
            out.setdefault(workload, {})[system] = {
                m: median([f[m] for f in runs if m in f]) for m in metrics
            }
    return out


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A row with its median figures, the ratios and whether its target was met."""

    label: str
    workload: str
    metric: str
    target: str | None
    figures: dict[str, float]
    ratios: dict[str, float]
    met: bool | None


def evaluate(results: Results) -> list[Evaluated]:
    """Every table row as data: figures, ratios, target and whether it was met."""
    central = medians(results)
    rows = []
    for row in ROWS:
        if row.workload not in central:
            continue
        figures = {s: central[row.workload].get(s, {}).get(row.metric, math.nan) for s in SYSTEMS}
        ratios = {s: _ratio(figures["rappelx"], figures[s]) for s in SYSTEMS[1:]}
        verdict = None
        if row.target is not None:
            value = ratios["dbos"] if row.target.on == "rappelx/dbos" else figures["rappelx"]
            verdict = row.target.met(value)
        target = str(row.target) if row.target else None
        rows.append(
            Evaluated(row.label, row.workload, row.metric, target, figures, ratios, verdict)
        )
    return rows


def table(results: Results, runs: dict[str, int]) -> str:
    """The text table of :func:`evaluate`."""
    header = ("figure", "target", "rappelx", "DBOS", "ceil 1/tx", "ceil 50/tx",
              "rx/DBOS", "rx/ceil1", "rx/ceil50", "")  # fmt: skip
    widths = (36, 13, 9, 9, 10, 10, 8, 8, 9, 4)
    lines = [_line(header, widths), "-" * (sum(widths) + len(widths) - 1)]
    for row in evaluate(results):
        cells = (
            row.label, row.target or "",
            *(_number(row.figures[s]) for s in SYSTEMS),
            *(_ratio_text(row.ratios[s]) for s in SYSTEMS[1:]),
            _MARKS[row.met],
        )  # fmt: skip
        lines.append(_line(cells, widths))
    counts = ", ".join(f"{w} {n}" for w, n in runs.items())
    lines.append(f"medians of runs ({counts}); ratios are rappelx / other (for rates, above 1 "
                 "is better; for times and sizes, below 1); '-' = not measured")  # fmt: skip
    return "\n".join(lines)


_MARKS = {True: "pass", False: "MISS", None: ""}


def _line(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    first, *rest = zip(cells, widths, strict=True)
    return " ".join([first[0].ljust(first[1]), *(c.rjust(w) for c, w in rest)]).rstrip()


def _ratio(mine: float, other: float) -> float:
    if math.isnan(mine) or math.isnan(other) or other == 0:
        return math.nan
    return mine / other


def _ratio_text(value: float) -> str:
    return "-" if math.isnan(value) else f"{_number(value)}x"


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.1e}"
