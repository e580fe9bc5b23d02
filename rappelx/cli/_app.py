"""The typer application: argument parsing only; each command calls one function."""

from __future__ import annotations

import asyncio
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from rappelx.cli import _runtime
from rappelx.cli._errors import reporting_errors
from rappelx.cli._load import import_module, load_workflow
from rappelx.cli._logging import configure_logging
from rappelx.cli._run import parse_input, run_durable, run_local

__all__ = ["app"]

app = typer.Typer(
    name="rappelx",
    help="Durable workflows for Python: compile, run, inspect and serve them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
runs_app = typer.Typer(help="Inspect workflow instances stored in Postgres.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the rappelx database.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(db_app, name="db")

Target = Annotated[
    str, typer.Argument(help="The workflow class, as MODULE:Class (e.g. my_app.flows:Greeting).")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="RAPPELX_DATABASE_URL",
        help="Postgres DSN; unset, rappelx boots or reuses its embedded local Postgres.",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        print(f"rappelx {metadata.version('rappelx')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Durable workflows for Python."""


@app.command()
def visualize(
    target: Target,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            envvar="RAPPELX_OUTPUT",
            show_default=False,
            help="File to write: .svg, .png, .pdf (rendered by graphviz) or .dot/.gv "
            "(DOT text). Without it, DOT text goes to stdout.",
        ),
    ] = None,
    data_flow: Annotated[
        bool,
        typer.Option(
            "--data-flow",
            envvar="RAPPELX_DATA_FLOW",
            help="Also draw data edges (a variable written by one node, read by another).",
        ),
    ] = False,
) -> None:
    """Draw a workflow's compiled DAG."""
    from rappelx.cli._dot import to_dot
    from rappelx.cli._visualize import fallback_notice, write_drawing

    with reporting_errors():
        dot = to_dot(load_workflow(target), data_flow=data_flow)
        if output is None:
            sys.stdout.write(dot.source)
            return
        written = write_drawing(dot, output)
        if written.fallback:
            print(fallback_notice(output, written.path), file=sys.stderr)
        else:
            print(f"wrote {written.path}", file=sys.stderr)


@app.command()
def run(
    target: Target,
    input_json: Annotated[
        str | None,
        typer.Option(
            "--input",
            envvar="RAPPELX_INPUT",
            show_default=False,
            help="Arguments as JSON: an object for keyword arguments, an array for "
            "positional ones.",
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            envvar="RAPPELX_LOCAL",
            help="Run in this process through run_inline (no Postgres, no workers).",
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            envvar="RAPPELX_WAIT",
            help="Wait for the result, or print the instance id and return at once.",
        ),
    ] = True,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            envvar="RAPPELX_TIMEOUT",
            show_default=False,
            help="Seconds to wait for the result (the instance keeps running after).",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run a workflow and print its result as JSON."""
    with reporting_errors():
        wf = load_workflow(target)
        args, kwargs = parse_input(input_json)
        if local:
            text = asyncio.run(run_local(wf, args, kwargs))
        else:
            text = asyncio.run(
                run_durable(wf, args, kwargs, dsn=database_url, wait=wait, timeout=timeout)
            )
        print(text)


@app.command()
def workers(
    module: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            "-m",
            envvar="RAPPELX_USER_MODULE",
            show_default=False,
            help="Module defining workflows and actions; repeatable, or comma-separated "
            "in RAPPELX_USER_MODULE.",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            envvar="RAPPELX_PROCESSES",
            min=1,
            show_default=False,
            help="Worker subprocesses (default: one per core).",
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            envvar="RAPPELX_CONCURRENCY",
            min=1,
            help="Actions one worker runs at once.",
        ),
    ] = 256,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            envvar="RAPPELX_QUEUE",
            show_default=False,
            help="Queue to serve; repeatable or comma-separated (default: default).",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    log_format: Annotated[
        str, typer.Option("--log-format", envvar="RAPPELX_LOG_FORMAT", help="json or text.")
    ] = "json",
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="RAPPELX_LOG_LEVEL", help="Lowest level logged.")
    ] = "info",
) -> None:
    """Run a dispatcher and a pool of worker subprocesses until SIGTERM or Ctrl-C."""
    with reporting_errors():
        configure_logging(log_format, log_level)
        _runtime.serve_workers(
            _split(module), processes=processes, concurrency=concurrency,
            queues=_split(queue) or ["default"], dsn=database_url,
        )  # fmt: skip


@runs_app.command("list")
def runs_list(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            envvar="RAPPELX_STATUS",
            show_default=False,
            help="Only instances with this status (pending, running, completed, failed, "
            "cancelled).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", envvar="RAPPELX_LIMIT", min=1, help="Most rows shown.")
    ] = 50,
    database_url: DatabaseUrl = None,
) -> None:
    """List workflow instances, newest first."""
    with reporting_errors():
        print(asyncio.run(_runtime.list_runs(database_url, status=status, limit=limit)))
        for warning in asyncio.run(_runtime.stuck_versions(database_url)):
            print(warning, file=sys.stderr)


@runs_app.command("show")
def runs_show(
    instance_id: Annotated[str, typer.Argument(help="The instance id (a UUID).")],
    module: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            "-m",
            envvar="RAPPELX_USER_MODULE",
            show_default=False,
            help="Import these modules first, so results of their dataclasses, models and "
            "exceptions can be decoded.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show one instance: status, action timeline with attempts and durations, result."""
    with reporting_errors():
        for name in _split(module):
            import_module(name)
        print(asyncio.run(_runtime.show_run(database_url, instance_id)))


@db_app.command("migrate")
def db_migrate(database_url: DatabaseUrl = None) -> None:
    """Apply the schema migrations the database lacks (workers also do this at start)."""
    with reporting_errors():
        applied = asyncio.run(_runtime.migrate_database(database_url))
        if applied:
            print("applied migrations " + ", ".join(f"{m:04d}" for m in applied))
        else:
            print("the database schema is up to date")


def _split(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated environment values, as one flat list."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]
