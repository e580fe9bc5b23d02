"""The SQL files: schema.sql matches the migrations, queries are valid and documented."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from rappelx.runtime._sql import migrate, migrations, parse_queries, queries, schema_sql

pytestmark = pytest.mark.postgres

_CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> 'rappelx_migrations'
        ORDER BY table_name, column_name""",
    "constraints": """
        SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
          AND conrelid::regclass::text <> 'rappelx_migrations'
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'rappelx_migrations'
        ORDER BY 1, 2""",
    "storage": """
        SELECT relname, reloptions FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND reloptions IS NOT NULL
        ORDER BY 1""",
    "compression": """
        SELECT attrelid::regclass::text, attname, attcompression FROM pg_attribute
        WHERE attrelid IN (SELECT oid FROM pg_class
                           WHERE relnamespace = 'public'::regnamespace AND relkind = 'r')
          AND attcompression <> ''
        ORDER BY 1, 2""",
    "sequences": """
        SELECT sequence_name, data_type, start_value, increment
        FROM information_schema.sequences WHERE sequence_schema = 'public'
        ORDER BY 1""",
}


async def _catalog(conn: asyncpg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {kind: [tuple(r) for r in await conn.fetch(sql)] for kind, sql in _CATALOG.items()}


async def test_schema_sql_equals_migrations(pg_dsn: str, pg_empty_dsn: str) -> None:
    migrated = await asyncpg.connect(pg_dsn)
    fresh = await asyncpg.connect(pg_empty_dsn)
    try:
        await fresh.execute(schema_sql())
        expected = await _catalog(migrated)
        actual = await _catalog(fresh)
    finally:
        await migrated.close()
        await fresh.close()
    assert len(expected["columns"]) > 40
    assert actual == expected


async def test_migrate_applies_each_migration_once_under_concurrency(pg_empty_dsn: str) -> None:
    conns = [await asyncpg.connect(pg_empty_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        again = await migrate(conns[0])
        rows = await conns[0].fetch("SELECT id FROM rappelx_migrations ORDER BY id")
    finally:
        for c in conns:
            await c.close()
    every_id = [m.id for m in migrations()]
    assert sorted(i for applied in results for i in applied) == every_id
    assert again == []
    assert [r["id"] for r in rows] == every_id


async def test_every_query_prepares_against_the_schema(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        for name, sql in queries().items():
            try:
                await conn.prepare(sql)
            except asyncpg.PostgresError as exc:  # pragma: no cover - the failure message
                pytest.fail(f"query {name!r} does not prepare: {exc}")
    finally:
        await conn.close()


def test_every_query_header_lists_its_parameters() -> None:
    assert len(queries()) >= 20
    for name, sql in queries().items():
        header = "\n".join(line for line in sql.splitlines() if line.startswith("--"))
        body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
        used = set(re.findall(r"\$(\d+)", body))
        listed = set(re.findall(r"\$(\d+):", header))
        assert used == listed, f"{name}: uses ${sorted(used)}, header lists ${sorted(listed)}"
        if not used:
            assert "(No parameters.)" in header, name


def test_parse_queries_rejects_duplicate_names() -> None:
    text = "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n"
    with pytest.raises(Exception, match="defines 'a' twice"):
        parse_queries(text)


def test_every_query_the_code_names_exists() -> None:
    from pathlib import Path

    runtime = Path(__file__).resolve().parents[2] / "rappelx" / "runtime"
    named = set()
    for source in runtime.glob("*.py"):
        named |= set(re.findall(r'query\("(\w+)"\)', source.read_text()))
    assert len(named) >= 20
    assert named - set(queries()) == set()


async def test_stored_values_are_compressed_with_lz4_where_the_server_has_it(
    pg_dsn: str,
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        try:
            await conn.execute("SET default_toast_compression = lz4")
            expected = "l"
        except asyncpg.PostgresError:  # built without lz4: the migration keeps pglz
            expected = ""
        rows = await conn.fetch(
            """SELECT attrelid::regclass::text AS tbl, attname, attcompression::text
               FROM pg_attribute
               WHERE attrelid IN ('rappelx_instances'::regclass, 'rappelx_actions'::regclass)
                 AND atttypid = 'bytea'::regtype"""
        )
    finally:
        await conn.close()
    found = {(r["tbl"], r["attname"]): r["attcompression"] for r in rows}
    assert set(found) == {
        ("rappelx_instances", c) for c in ("input", "state", "result", "error")
    } | {("rappelx_actions", c) for c in ("payload", "result")}
    assert set(found.values()) == {expected}
