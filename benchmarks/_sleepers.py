"""The sleepers workload's plan and summary, shared by the rappelx and DBOS sides.

Every instance sleeps until an absolute time, so that all of them are asleep at once:
the wake times are spread over ``[low, high]`` seconds after the moment enqueueing is
expected to end, estimated from a probe of the enqueue rate with a safety margin. An
instance that still began after its wake time (the estimate was short) is counted as
``late`` and left out of the lag figures, since its lateness is the enqueue's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from benchmarks._stats import percentile

#: Instances timed to estimate the enqueue rate before the sleepers are queued.
PROBE = 200
#: Enqueueing is assumed to take this many times the probe's estimate.
MARGIN = 1.1
#: Starts in flight at once while enqueueing.
ENQUEUE_CONCURRENCY = 16
#: Results fetched at once at the end.
RESULT_CONCURRENCY = 64

Figures = dict[str, float]


def wake_times(count: int, low: float, high: float, rate: float, seed: int = 4) -> list[float]:
    """Absolute wake times (epoch seconds) for ``count`` instances enqueued at ``rate``/s."""
    release = time.time() + MARGIN * count / rate + 3.0
    rng = random.Random(seed)
    return [release + rng.uniform(low, high) for _ in range(count)]


def lag_figures(outcomes: Sequence[Sequence[float | bool]]) -> Figures:
    """Wake-up lag percentiles over the ``(lag, began_late)`` results of the instances."""
    lags = [float(lag) for lag, late in outcomes if not late]
    late = len(outcomes) - len(lags)
    if not lags:
        return {"late": late}
    return {
        "lag_p50_s": percentile(lags, 0.5),
        "lag_p99_s": percentile(lags, 0.99),
        "lag_max_s": max(lags),
        "late": late,
    }
