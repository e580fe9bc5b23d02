"""SQL as data: the named queries of ``sql/queries.sql`` and the migration runner.

Queries are loaded by name, never assembled at run time. Migrations are the numbered
files in ``sql/migrations/``; :func:`migrate` applies the missing ones under an advisory
lock, so any number of processes may call it at once.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rappelx.exceptions import RappelxError

# pg_advisory_xact_lock key: any constant, unlikely to collide with an application's.
MIGRATION_LOCK_KEY = 0x7261707065_6C78

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_(\w+)\.sql$")


class QueryNotFound(RappelxError):
    """No block of that name in ``queries.sql``."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered file of ``sql/migrations``."""

    id: int
    name: str
    sql: str


_SQL_DIR = Path(__file__).parent / "sql"


def _sql_file(*parts: str) -> str:
    return _SQL_DIR.joinpath(*parts).read_text()


def parse_queries(text: str) -> dict[str, str]:
    """Split ``queries.sql`` text into ``{name: sql}`` (header comments included)."""
    blocks: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        name = match.group(1)
        if name in blocks:
            raise RappelxError(f"queries.sql defines {name!r} twice; rename one")
        blocks[name] = text[match.end() : end].strip()
    return blocks


@functools.cache
def queries() -> dict[str, str]:
    """Every named query, loaded once per process."""
    return parse_queries(_sql_file("queries.sql"))


def query(name: str) -> str:
    """The SQL of the named block.

    Raises:
        QueryNotFound: ``queries.sql`` has no block called ``name``.
    """
    try:
        return queries()[name]
    except KeyError:
        raise QueryNotFound(
            f"queries.sql has no block '-- name: {name}'; add it or fix the name"
        ) from None


def schema_sql() -> str:
    """The text of ``schema.sql``, the current schema in one piece."""
    return _sql_file("schema.sql")


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """The numbered migrations, in order."""
    found = []
    for entry in (_SQL_DIR / "migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.id)
    ids = [m.id for m in found]
    if ids != list(range(1, len(ids) + 1)):
        raise RappelxError(f"sql/migrations must be numbered 0001, 0002, ... without gaps: {ids}")
    return tuple(found)


async def migrate(conn: Any) -> list[int]:
    """Apply the migrations ``conn``'s database lacks; return the ids applied.

    Runs in one transaction holding an advisory lock, so concurrent callers wait for each
    other and each migration is applied exactly once.

    Args:
        conn: An ``asyncpg`` connection.
    """
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute(query("migration_lock"), MIGRATION_LOCK_KEY)
        await conn.execute(query("create_migrations_table"))
        done = {row["id"] for row in await conn.fetch(query("applied_migrations"))}
        for migration in migrations():
            if migration.id in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(query("record_migration"), migration.id, migration.name)
            applied.append(migration.id)
    return applied
