"""Attempt counters for actions that fail a few times and then succeed.

A counter is keyed by a string the workflow passes to the action, so each case owns its
counters. In one process they live in a dict; when ``PARITY_COUNTER_DIR`` is set they are
files in that directory (one byte appended per attempt, an atomic append), so attempts
made in worker subprocesses are counted too. The harness calls :func:`reset` before
every run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV_VAR = "PARITY_COUNTER_DIR"

_counts: dict[str, int] = {}


def _counter_file(key: str) -> Path | None:
    directory = os.environ.get(ENV_VAR)
    if not directory:
        return None
    # Keys come from case code, but keep file names tame anyway.
    return Path(directory) / re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def bump(key: str) -> int:
    """Record one attempt for ``key`` and return how many there have been (1-based)."""
    path = _counter_file(key)
    if path is None:
        _counts[key] = _counts.get(key, 0) + 1
        return _counts[key]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    return path.stat().st_size


def count(key: str) -> int:
    """How many attempts ``key`` has seen since the last reset."""
    path = _counter_file(key)
    if path is None:
        return _counts.get(key, 0)
    return path.stat().st_size if path.exists() else 0


def reset() -> None:
    """Forget every attempt (both the in-process dict and the counter directory)."""
    _counts.clear()
    directory = os.environ.get(ENV_VAR)
    if directory and Path(directory).is_dir():
        for entry in Path(directory).iterdir():
            entry.unlink()
