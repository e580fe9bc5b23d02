"""The ``rappelx`` command end to end, in subprocesses: ``python -m rappelx`` and the
console script, locally and against a real Postgres with real workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import asyncpg
import pytest

import rappelx

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("rappelx")
MIGRATIONS = Path(rappelx.__file__).parent / "runtime" / "sql" / "migrations"

FAILING = textwrap.dedent(
    """
    from __future__ import annotations

    from dataclasses import dataclass
    from datetime import date

    from rappelx import Workflow, action, workflow


    @dataclass
    class Report:
        day: date
        tags: set[str]
        counts: tuple[int, ...]


    @workflow
    class Reporting(Workflow):
        async def run(self) -> Report:
            return Report(date(2024, 5, 17), {"b", "a"}, (1, 2))


    @action
    async def lookup(key: str) -> int:
        raise KeyError(key)


    @workflow
    class Lookup(Workflow):
        async def run(self, key: str) -> int:
            try:
                return await lookup(key)
            except KeyError as exc:
                raise ValueError(f"no value for {key}") from exc
    """
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "rx_accept_flows.py").write_text(FAILING)
    return tmp_path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPELX_")}
    env["PYTHONPATH"] = str(REPO)
    return {**env, **extra}


def rappelx(
    *args: str, cwd: Path, env: dict[str, str] | None = None, module: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rappelx"] if module else [str(SCRIPT)]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_python_m_runs_a_workflow_locally(workdir: Path) -> None:
    done = rappelx(
        "run", "examples.greeting:Greeting", "--input", '{"user_id": "u2"}', "--local",
        cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "Hello, Grace, welcome back! (12 visits)"


def test_console_script_reads_options_from_the_environment(workdir: Path) -> None:
    env = cli_env(RAPPELX_INPUT='["u1"]', RAPPELX_LOCAL="1")
    done = rappelx("run", "examples.greeting:Greeting", cwd=workdir, env=env, module=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "Hello, Ada! (3 visits)"


def test_a_failing_workflow_prints_its_cause_chain(workdir: Path) -> None:
    done = rappelx(
        "run", "rx_accept_flows:Lookup", "--input", '{"key": "k"}', "--local", cwd=workdir
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: workflow Lookup raised ValueError",
        "  caused by: ValueError: no value for k",
        "  caused by: KeyError: 'k'",
    ]
    assert done.stdout == ""


def test_results_print_as_json(workdir: Path) -> None:
    done = rappelx("run", "rx_accept_flows:Reporting", "--local", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"day": "2024-05-17", "tags": ["a", "b"], "counts": [1, 2]}


def test_visualize_through_python_m(workdir: Path) -> None:
    done = rappelx("visualize", "examples.greeting:Greeting", "-o", "g.dot", cwd=workdir)
    assert done.returncode == 0, done.stderr
    dot = (workdir / "g.dot").read_text()
    assert "digraph Greeting" in dot and "fetch_user(user_id)" in dot and "label=raise" in dot


def test_version(workdir: Path) -> None:
    done = rappelx("--version", cwd=workdir, module=False)
    assert done.returncode == 0
    assert done.stdout.startswith("rappelx 0.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: name the modules that define your workflows and actions: --module M"),
        (["--module", "rx_missing_module"], "error: no module named 'rx_missing_module'"),
        (["--log-format", "xml", "-m", "x"], "error: unknown log format 'xml'; use one of json"),
    ],
)
def test_workers_reject_bad_options(workdir: Path, args: list[str], message: str) -> None:
    done = rappelx("workers", *args, cwd=workdir)
    assert done.returncode == 1
    assert done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr


def started_id(stderr: str) -> str:
    """The instance id ``rappelx run`` announces on stderr."""
    first = stderr.splitlines()[0]
    assert first.startswith("started ") and " instance " in first, stderr
    return first.rsplit(" ", 1)[1]


@pytest.mark.postgres
async def test_runs_show_and_list_errors(pg_dsn: str, workdir: Path) -> None:
    env = cli_env(RAPPELX_DATABASE_URL=pg_dsn)
    empty = rappelx("runs", "list", cwd=workdir, env=env)
    assert (empty.returncode, empty.stdout) == (0, "no workflow instances\n")
    bad = rappelx("runs", "list", "--status", "done", cwd=workdir, env=env)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: unknown status 'done'; use one of pending, running")
    missing = str(uuid.uuid4())
    unknown = rappelx("runs", "show", missing, cwd=workdir, env=env)
    assert unknown.returncode == 1
    assert unknown.stderr == f"error: no workflow instance {missing} in the database\n"


@pytest.mark.postgres
async def test_db_migrate_applies_then_reports_up_to_date(pg_empty_dsn: str, workdir: Path) -> None:
    env = cli_env(RAPPELX_DATABASE_URL=pg_empty_dsn)
    first = rappelx("db", "migrate", cwd=workdir, env=env)
    shipped = sorted(p.name[:4] for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert len(shipped) >= 1
    expected = f"applied migrations {', '.join(shipped)}\n"
    assert (first.returncode, first.stdout) == (0, expected), first.stderr
    again = rappelx("db", "migrate", cwd=workdir, env=env)
    assert (again.returncode, again.stdout) == (0, "the database schema is up to date\n")


@pytest.mark.postgres
async def test_run_without_workers_queues_and_times_out(pg_dsn: str, workdir: Path) -> None:
    env = cli_env(RAPPELX_DATABASE_URL=pg_dsn)
    queued = rappelx("run", "examples.greeting:Greeting", "--input", '["u1"]', "--no-wait",
                     cwd=workdir, env=env)  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    instance = uuid.UUID(queued.stdout.strip())
    assert queued.stderr == f"started Greeting instance {instance}\n"
    waited = rappelx("run", "examples.greeting:Greeting", "--input", '["u1"]', "--timeout", "1",
                     cwd=workdir, env=env)  # fmt: skip
    assert waited.returncode == 1
    assert "did not finish within 1.0 s; it keeps running" in waited.stderr
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch("SELECT id, status FROM rappelx_instances ORDER BY created_at")
    finally:
        await conn.close()
    assert [r["status"] for r in rows] == ["pending", "pending"]
    assert rows[0]["id"] == instance


@pytest.mark.postgres
async def test_workers_run_workflows_durably_and_stop_on_sigterm(
    pg_dsn: str, workdir: Path
) -> None:
    env = cli_env(
        RAPPELX_DATABASE_URL=pg_dsn,
        RAPPELX_USER_MODULE="examples.greeting,rx_accept_flows",
        RAPPELX_PROCESSES="1",
    )
    log_path = workdir / "workers.log"
    # A file, not a pipe: a full pipe would block the workers while the test waits on them.
    log_file = log_path.open("w")
    workers = subprocess.Popen([str(SCRIPT), "workers"], cwd=workdir, env=env, stderr=log_file)
    try:
        ok = rappelx("run", "examples.greeting:Greeting", "--input", '{"user_id": "u1"}',
                     "--timeout", "60", cwd=workdir, env=env)  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == "Hello, Ada! (3 visits)"
        failed = rappelx("run", "rx_accept_flows:Lookup", "--input", '["k"]', "--timeout", "60",
                         cwd=workdir, env=env)  # fmt: skip
        assert failed.returncode == 1
        lines = failed.stderr.splitlines()
        assert lines[1].startswith("error: workflow Lookup instance ") and lines[1].endswith(
            " raised ValueError"
        )
        assert lines[2] == "  caused by: ValueError: no value for k"
        ok_id, failed_id = (started_id(done.stderr) for done in (ok, failed))
        listed = rappelx("runs", "list", cwd=workdir, env=env)
        assert listed.returncode == 0, listed.stderr
        table = [line.split() for line in listed.stdout.splitlines()]
        assert table[0] == ["ID", "WORKFLOW", "STATUS", "CREATED_AT", "FINISHED_AT"]
        assert [row[:3] for row in table[1:]] == [
            [failed_id, "Lookup", "failed"],
            [ok_id, "Greeting", "completed"],
        ]
        only_failed = rappelx("runs", "list", "--status", "failed", cwd=workdir, env=env)
        assert [line.split()[0] for line in only_failed.stdout.splitlines()[1:]] == [failed_id]
        shown = rappelx("runs", "show", ok_id, cwd=workdir, env=env)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout.splitlines()
        assert text[:3] == [
            f"instance  {ok_id}",
            f"workflow  Greeting (version {text[1].split('version ')[1]}",
            "status    completed",
        ]
        assert (
            "input     ((), {'user_id': 'u1'})" in text
            and "result    'Hello, Ada! (3 visits)'" in text
        )
        timeline = [line.split()[:4] for line in text[text.index("actions (3 attempts):") + 2 :]]
        assert len({int(row[0]) for row in timeline}) == 3
        assert sorted(row[1:] for row in timeline) == [
            ["examples.greeting.count_visits", "1", "completed"],
            ["examples.greeting.fetch_user", "1", "completed"],
            ["examples.greeting.pick_greeting", "1", "completed"],
        ]
        # RAPPELX_USER_MODULE is imported first, so the User dataclass result decodes.
        fetched = next(line for line in text if "examples.greeting.fetch_user" in line)
        assert fetched.endswith("User(id='u1', name='Ada')"), fetched
    finally:
        workers.send_signal(signal.SIGTERM)
        try:
            workers.wait(timeout=60)
        except subprocess.TimeoutExpired:
            workers.kill()
            workers.wait()
        log_file.close()
    logs = log_path.read_text()
    assert workers.returncode == 0, logs
    # Worker subprocesses share this stderr; the dispatcher's own records are JSON lines.
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    messages = [r["message"] for r in records if r["logger"] == "rappelx.dispatcher"]
    assert messages[0].endswith("serving queues default")
    assert messages[-1].endswith("stopped")
