"""The commands that need the durable runtime: ``workers``, ``runs``, ``db migrate``.

Each one calls what ``rappelx.runtime`` exposes. A piece it needs that this version of
the runtime lacks is reported as :class:`NotAvailableYet`, found by name at call time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from rappelx.cli._db import database_errors, resolve_dsn
from rappelx.cli._errors import CliError, NotAvailableYet
from rappelx.cli._load import import_module
from rappelx.cli._output import records_table, to_json

__all__ = ["list_runs", "migrate_database", "serve_workers", "show_run"]

#: Columns of ``rappelx runs list``, when the records have them.
RUN_COLUMNS = ("id", "workflow", "status", "created_at", "finished_at")


def serve_workers(
    modules: Sequence[str],
    *,
    processes: int | None,
    concurrency: int,
    queues: Sequence[str],
    dsn: str | None,
) -> None:
    """Run a dispatcher and worker pool for ``modules`` until SIGTERM/SIGINT."""
    if not modules:
        raise CliError("name the modules that define your workflows and actions: --module M")
    # Fail here, with the import error, rather than in every worker subprocess.
    names = [import_module(name).__name__ for name in modules]
    from rappelx.runtime._dispatcher import serve

    resolved = resolve_dsn(dsn)
    with database_errors():
        asyncio.run(
            serve(
                names, processes=processes, concurrency=concurrency,
                queues=list(queues), dsn=resolved,
            )
        )  # fmt: skip


async def migrate_database(dsn: str | None) -> list[int]:
    """Apply the migrations the database lacks; the ids applied."""
    import asyncpg

    from rappelx.runtime._sql import migrate

    resolved = resolve_dsn(dsn)
    with database_errors():
        conn = await asyncpg.connect(resolved)
        try:
            return await migrate(conn)
        finally:
            await conn.close()


async def list_runs(dsn: str | None, *, status: str | None, limit: int) -> str:
    """A table of recent instances, newest first."""
    records = await _with_store(dsn, "runs list", "list_instances", status=status, limit=limit)
    rows = [_as_mapping(r) for r in records]
    if not rows:
        return "no workflow instances" + (f" with status {status!r}" if status else "")
    return records_table(rows, [c for c in RUN_COLUMNS if any(c in r for r in rows)])


async def show_run(dsn: str | None, instance_id: str) -> str:
    """Status, action timeline and result or error of one instance, as JSON text."""
    try:
        parsed = uuid.UUID(instance_id)
    except ValueError:
        raise CliError(f"{instance_id!r} is not an instance id (a UUID)") from None
    detail = await _with_store(dsn, "runs show", "instance_detail", parsed)
    if detail is None:
        raise CliError(f"no workflow instance {instance_id} in the database")
    return to_json(_as_mapping(detail))


async def _with_store(dsn: str | None, command: str, method: str, *args: Any, **kwargs: Any) -> Any:
    store_cls = _runtime_attr("rappelx.runtime._pgstore", "PgStore", command)
    if not callable(getattr(store_cls, method, None)):
        raise NotAvailableYet(command, f"PgStore.{method}()")
    resolved = resolve_dsn(dsn)
    with database_errors():
        store = await store_cls.connect(resolved, max_size=1)
        try:
            return await getattr(store, method)(*args, **kwargs)
        finally:
            await store.close()


def _runtime_attr(module: str, name: str, command: str) -> Any:
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise NotAvailableYet(command, f"{module}.{name}") from None
    if not callable(found):
        raise NotAvailableYet(command, f"{module}.{name}")
    return found


def _as_mapping(record: Any) -> Mapping[str, Any]:
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if isinstance(record, Mapping):
        return record
    return dict(record)
