"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from rappelx.runtime._client import Client
from rappelx.runtime._pgstore import PgStore
from tests.integration import durable_app

#: The application the fault tests run in ``rappelx workers`` processes.
APP = "tests.integration.durable_app"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PgStore]:
    """A store on a fresh database of its own."""
    s = await PgStore.connect(pg_dsn)
    yield s
    await s.close()


@pytest.fixture
async def client(pg_dsn: str) -> AsyncIterator[Client]:
    async with Client(pg_dsn) as c:
        yield c


@pytest.fixture
def counters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory ``durable_app.step`` counts its executions in."""
    directory = tmp_path / "counters"
    directory.mkdir()
    monkeypatch.setenv(durable_app.COUNTERS_ENV, str(directory))
    return directory


@pytest.fixture
def spawn(counters: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start ``rappelx workers`` processes (own process group each); kill leftovers."""
    started: list[subprocess.Popen[bytes]] = []

    def start(dsn: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration._workers_main", dsn, APP],
            env=env, cwd=ROOT, start_new_session=True,
        )  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
