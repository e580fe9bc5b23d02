"""The embedded Postgres: found, booted once under concurrency, reused, as root or not."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from rappelx.runtime import _embedded
from rappelx.runtime._embedded import (
    EmbeddedPostgresError,
    default_base_dir,
    ensure_embedded,
    find_bindir,
    stop_embedded,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base_dir() -> Iterator[Path]:
    # Directly under /tmp: reachable by the 'postgres' user when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix="rappelx-embedded-"))
    yield path
    if (path / "pg" / "PG_VERSION").exists():
        stop_embedded(path)
    shutil.rmtree(path, ignore_errors=True)


def test_missing_binaries_name_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedPostgresError, match="apt install postgresql"):
        find_bindir(search=[str(tmp_path)])


def test_default_dir_is_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAPPELX_EMBEDDED_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/somewhere/data")
    expected = Path("/var/tmp/rappelx-0") if os.geteuid() == 0 else Path("/somewhere/data/rappelx")
    assert default_base_dir() == expected
    monkeypatch.setenv("RAPPELX_EMBEDDED_DIR", "/elsewhere")
    assert default_base_dir() == Path("/elsewhere")


_BOOT = (
    "import sys; from rappelx.runtime._embedded import ensure_embedded; "
    "print(ensure_embedded(sys.argv[1]))"
)


async def test_two_processes_booting_at_once_share_one_server(base_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(base_dir)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=90)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    # Reuse: a third call finds the server running and returns at once.
    assert ensure_embedded(base_dir) == outputs[0]
    conn = await asyncpg.connect(outputs[0])
    try:
        assert await conn.fetchval("SELECT 1 + 1") == 2
    finally:
        await conn.close()
    pid_lines = (base_dir / "pg" / "postmaster.pid").read_text().splitlines()
    assert len(pid_lines) > 1


def test_restart_after_stop_reuses_the_cluster(base_dir: Path) -> None:
    dsn = ensure_embedded(base_dir)
    marker = (base_dir / "pg" / "PG_VERSION").stat().st_mtime
    stop_embedded(base_dir)
    assert not (base_dir / "pg" / "postmaster.pid").exists()
    assert ensure_embedded(base_dir) == dsn
    assert (base_dir / "pg" / "PG_VERSION").stat().st_mtime == marker


def _user_package(into: Path) -> Path:
    """A copy of just the modules the embedded server needs, readable by anyone.

    The project's virtualenv may live where an unprivileged user cannot read it; the
    embedded module needs only the standard library.
    """
    package = into / "pkg" / "rappelx"
    (package / "runtime").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "runtime" / "__init__.py").write_text("")
    shutil.copy(ROOT / "rappelx" / "exceptions.py", package / "exceptions.py")
    shutil.copy(Path(_embedded.__file__), package / "runtime" / "_embedded.py")
    return package.parent


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an ordinary user")
def test_boots_as_an_ordinary_user_in_their_home(base_dir: Path) -> None:
    user = "nobody"
    entry = pwd.getpwnam(user)
    home = base_dir / "home"
    home.mkdir()
    os.chown(home, entry.pw_uid, entry.pw_gid)
    base_dir.chmod(0o755)
    pythonpath = _user_package(base_dir)
    script = "from rappelx.runtime._embedded import ensure_embedded as e; print(e())"
    env = {"HOME": str(home), "PYTHONPATH": str(pythonpath), "PATH": os.environ["PATH"]}
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    try:
        done = subprocess.run(
            # runuser resets HOME to the account's; env puts ours back.
            ["runuser", "-u", user, "--", "env", f"HOME={home}", python, "-c", script],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        data_dir = home / ".local" / "share" / "rappelx" / "pg"
        assert str(data_dir).replace("/", "%2F") in done.stdout
        assert data_dir.stat().st_uid == entry.pw_uid
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                user,
                "--",
                str(find_bindir() / "pg_ctl"),
                "stop",
                "-D",
                str(home / ".local/share/rappelx/pg"),
                "-m",
                "immediate",
                "-w",
            ],
            capture_output=True,
            check=False,
        )
