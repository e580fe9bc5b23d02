"""Postgres fixtures shared by every test level.

One server per test session: ``RAPPELX_TEST_DATABASE_URL`` when set, else rappelx's own
embedded Postgres booted in a throwaway directory (fsync off). A template database is
migrated once; each test gets a fresh clone of it (``CREATE DATABASE ... TEMPLATE``), so
tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from rappelx.runtime._embedded import FAST_SETTINGS, ensure_embedded, stop_embedded
from rappelx.runtime._sql import migrate


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _in_thread(coro_fn, *args):  # type: ignore[no-untyped-def]
    # Session fixtures are synchronous; run their async set-up on a private loop so the
    # per-test loops of pytest-asyncio are not disturbed.
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(lambda: asyncio.run(coro_fn(*args))).result()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of the session's Postgres server (its maintenance database)."""
    configured = os.environ.get("RAPPELX_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    # Not under pytest's tmp dir: it is mode 0700 and, when the tests run as root, the
    # server runs as the 'postgres' user, which must be able to reach its data dir.
    base = Path(tempfile.mkdtemp(prefix="rappelx-test-pg-"))
    _EMBEDDED_BASE.append(base)
    try:
        yield ensure_embedded(base, settings=FAST_SETTINGS)
    finally:
        _EMBEDDED_BASE.clear()
        stop_embedded(base)
        shutil.rmtree(base, ignore_errors=True)


_EMBEDDED_BASE: list[Path] = []


@pytest.fixture
def pg_restart(pg_server: str) -> Callable[[], Awaitable[None]]:
    """A coroutine function that restarts the session's Postgres (fast shutdown)."""
    if not _EMBEDDED_BASE:
        pytest.skip(
            "restarting Postgres needs the embedded test server, not RAPPELX_TEST_DATABASE_URL"
        )
    base = _EMBEDDED_BASE[0]

    async def restart() -> None:
        await asyncio.to_thread(stop_embedded, base)
        await asyncio.to_thread(ensure_embedded, base)

    return restart


async def _create_template(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(with_database(admin_dsn, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    """Name of a database with the rappelx schema, cloned by :func:`pg_dsn`."""
    name = f"rappelx_template_{os.getpid()}"
    _in_thread(_create_template, pg_server, name)
    yield name
    _in_thread(_drop_database, pg_server, name)


@pytest.fixture
async def pg_dsn(pg_server: str, pg_template: str) -> AsyncIterator[str]:
    """DSN of a fresh, migrated database for this test alone."""
    name = await _clone_template(pg_server, pg_template, "t")
    yield with_database(pg_server, name)
    await _drop_database(pg_server, name)


@pytest.fixture
async def pg_empty_dsn(pg_server: str) -> AsyncIterator[str]:
    """DSN of a fresh database with no schema at all."""
    name = f"e_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield with_database(pg_server, name)
    await _drop_database(pg_server, name)


async def _clone_template(admin_dsn: str, template: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


@pytest.fixture(scope="module")
def pg_module_dsn(pg_server: str, pg_template: str) -> Iterator[str]:
    """DSN of a fresh, migrated database shared by the tests of one module."""
    name = _in_thread(_clone_template, pg_server, pg_template, "m")
    yield with_database(pg_server, name)
    _in_thread(_drop_database, pg_server, name)
