"""The commands that need the durable runtime: ``workers``, ``runs``, ``db migrate``.

Each one calls what ``rappelx.runtime`` exposes and formats the answer; the database is
``--database-url`` / ``RAPPELX_DATABASE_URL`` or, without either, the embedded Postgres.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from rappelx.cli._db import database_errors, resolve_dsn
from rappelx.cli._errors import CliError
from rappelx.cli._load import import_module
from rappelx.cli._output import records_table
from rappelx.runtime import _runs
from rappelx.runtime._client import WorkflowStatus
from rappelx.runtime._runs import RunDetail, describe_payload

__all__ = ["list_runs", "migrate_database", "serve_workers", "show_run", "stuck_versions"]

#: Columns of ``rappelx runs list``.
RUN_COLUMNS = ("id", "workflow", "status", "created_at", "finished_at")
#: Columns of the action timeline of ``rappelx runs show``.
ACTION_COLUMNS = ("#", "action", "attempt", "status", "queue", "started", "duration", "result")


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
    from rappelx.runtime._loop import loop_factory
    from rappelx.runtime._serve import serve

    resolved = resolve_dsn(dsn)
    with database_errors(), asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(
            serve(
                names, processes=processes, concurrency=concurrency,
                queues=list(queues), dsn=resolved,
            )
        )  # fmt: skip


async def migrate_database(dsn: str | None) -> list[int]:
    """Apply the migrations the database lacks; the ids applied."""
    with database_errors():
        return await _runs.migrate_database(resolve_dsn(dsn))


async def list_runs(dsn: str | None, *, status: str | None, limit: int) -> str:
    """A table of the newest instances."""
    statuses = [s.value for s in WorkflowStatus]
    if status is not None and status not in statuses:
        raise CliError(f"unknown status {status!r}; use one of {', '.join(statuses)}")
    with database_errors():
        runs = await _runs.list_runs(resolve_dsn(dsn), status=status, limit=limit)
    if not runs:
        return "no workflow instances" + (f" with status {status!r}" if status else "")
    rows = [{column: getattr(run, column) for column in RUN_COLUMNS} for run in runs]
    return records_table(rows, RUN_COLUMNS)


async def stuck_versions(dsn: str | None) -> list[str]:
    """Warnings for unfinished instances pinned to versions no live worker has loaded."""
    with database_errors():
        reports = await _runs.unknown_versions(resolve_dsn(dsn))
    return [
        f"warning: {r.instances} unfinished instance(s) of {r.workflow} are pinned to version "
        f"{r.version}, which no running 'rappelx workers' has loaded; they stay untouched "
        "until workers with that code run"
        for r in reports
    ]


async def show_run(dsn: str | None, instance_id: str) -> str:
    """Status, input, result or error, and the timeline of action attempts of one run."""
    try:
        parsed = uuid.UUID(instance_id)
    except ValueError:
        raise CliError(f"{instance_id!r} is not an instance id (a UUID)") from None
    with database_errors():
        detail = await _runs.show_run(parsed, resolve_dsn(dsn))
    if detail is None:
        raise CliError(f"no workflow instance {instance_id} in the database")
    return "\n".join([*_header(detail), "", *_timeline(detail)])


def _header(detail: RunDetail) -> list[str]:
    run, show = detail.summary, describe_payload
    cancel = " (cancel requested)" if detail.cancel_requested else ""
    finished = f"   finished {run.finished_at:%H:%M:%S}" if run.finished_at else ""
    outcome = (
        f"error     {show(detail.error)}"
        if detail.error is not None
        else f"result    {show(detail.result)}"
    )
    return [
        f"instance  {run.id}",
        f"workflow  {run.workflow} (version {run.version})",
        f"status    {run.status}{cancel}",
        f"created   {run.created_at:%Y-%m-%d %H:%M:%S %Z}   updated {run.updated_at:%H:%M:%S}"
        + finished,
        f"input     {show(detail.input)}",
        outcome,
    ]


def _timeline(detail: RunDetail) -> list[str]:
    if not detail.actions:
        return ["actions: none yet"]
    rows = [
        {
            "#": a.action_id, "action": a.name, "attempt": a.attempt, "status": a.status,
            "queue": a.queue,
            "started": f"{a.started_at:%H:%M:%S.%f}"[:-3] if a.started_at else None,
            "duration": f"{a.duration * 1e3:.1f} ms" if a.duration is not None else None,
            "result": _clip(describe_payload(a.result)),
        }
        for a in detail.actions
    ]  # fmt: skip
    return [f"actions ({len(rows)} attempts):", records_table(rows, ACTION_COLUMNS)]


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
