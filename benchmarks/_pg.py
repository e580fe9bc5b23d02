"""The one Postgres server every system in the benchmark shares, and fresh databases on it.

The server is ``RAPPELX_DATABASE_URL``'s when that is set, else rappelx's embedded local
Postgres (booted if needed). Each system gets its own database, dropped and created anew
for every run, so no run inherits another's rows or bloat. Database names carry the
benchmark process's pid, so two benchmarks on one server do not drop each other's.
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from rappelx.runtime._embedded import ensure_embedded

#: Database name prefix; every database a benchmark process creates starts with it.
PREFIX = f"rappelx_bench_{os.getpid()}_"


def server_dsn() -> str:
    """The DSN of the shared server, as configured or booted."""
    return os.environ.get("RAPPELX_DATABASE_URL") or ensure_embedded()


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at ``database`` on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def fresh_database(server: str, name: str) -> str:
    """Drop and create ``PREFIX + name`` on ``server``; its DSN."""
    database = PREFIX + name
    conn = await asyncpg.connect(server)
    try:
        # Identifiers cannot be parameters; ``name`` is one of the benchmark's own.
        assert database.replace("_", "").isalnum(), database
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(server, database)


async def drop_database(server: str, name: str) -> None:
    """Drop ``PREFIX + name`` if it exists (the end of a run)."""
    database = PREFIX + name
    assert database.replace("_", "").isalnum(), database
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


async def sweep(server: str) -> list[str]:
    """Drop the databases left by benchmark processes that are gone; their names."""
    conn = await asyncpg.connect(server)
    try:
        names = [r["datname"] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'rappelx\\_bench\\_%'"
        )]  # fmt: skip
        dropped = []
        for database in names:
            pid = database.removeprefix("rappelx_bench_").partition("_")[0]
            if pid.isdigit() and not _alive(int(pid)):
                assert database.replace("_", "").isalnum(), database
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                dropped.append(database)
        return dropped
    finally:
        await conn.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def server_settings(server: str) -> dict[str, str]:
    """The server settings that decide commit cost, for the report's header."""
    names = ["server_version", "fsync", "synchronous_commit", "shared_buffers"]
    conn = await asyncpg.connect(server)
    try:
        rows = await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])", names
        )
    finally:
        await conn.close()
    return {row["name"]: row["setting"] for row in rows}


def main() -> None:
    """Print the server DSN and its settings (a quick check of the set-up)."""
    dsn = server_dsn()
    print(dsn, asyncio.run(server_settings(dsn)))


if __name__ == "__main__":
    main()
