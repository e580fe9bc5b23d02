"""A local Postgres that rappelx boots (or reuses) when no database URL is configured.

The server lives in a per-user directory and listens only on a Unix socket inside it, with
``trust`` authentication: nothing else on the machine can reach it without file access.
``initdb`` refuses to run as root, so under root the cluster belongs to the ``postgres``
OS user (or ``nobody``) and every server command runs as that user; the socket stays
reachable because root can open any file.

Booting is serialized with a file lock so that two processes starting at once share one
server instead of racing ``initdb``.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from rappelx.exceptions import RappelxError

SUPERUSER = "rappelx"
DATABASE = "postgres"
PORT = 5432
_START_TIMEOUT = 60
_BINDIR_PATTERNS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql*/bin",
)
_INITDB_OPTIONS = ("-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")

# Settings for throwaway clusters (tests): durability traded for speed.
FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class EmbeddedPostgresError(RappelxError):
    """The embedded Postgres could not be found, initialized or started."""


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """Where an embedded cluster lives and how to reach it.

    Attributes:
        base: Directory holding the lock file, the log and ``pg/`` (the data directory).
        bindir: Directory with ``initdb``, ``pg_ctl`` and ``postgres``.
        os_user: OS user that owns the cluster, or ``None`` for the current user.
    """

    base: Path
    bindir: Path
    os_user: str | None

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (also the socket directory)."""
        return self.base / "pg"

    @property
    def log_file(self) -> Path:
        """The server log, kept next to the data directory."""
        return self.base / "server.log"

    @property
    def dsn(self) -> str:
        """A libpq URL reaching the server through its Unix socket."""
        host = quote(str(self.data_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={host}&port={PORT}"


def ensure_embedded(
    base: Path | str | None = None, *, settings: dict[str, str] | None = None
) -> str:
    """Boot, or reuse, the embedded Postgres and return its DSN.

    Args:
        base: Directory for the cluster; defaults to :func:`default_base_dir`.
        settings: Extra ``postgresql.conf`` settings, written only when the cluster is
            first created.

    Raises:
        EmbeddedPostgresError: The server binaries are missing, or the server fails to
            start (the message includes the end of its log).
    """
    server = locate(base)
    with _boot_lock(server.base):
        if not (server.data_dir / "PG_VERSION").exists():
            _initdb(server, settings or {})
        if not _is_running(server):
            _start(server)
    return server.dsn


def stop_embedded(base: Path | str) -> None:
    """Stop the embedded server rooted at ``base``, if it is running (tests use this)."""
    server = locate(base)
    with _boot_lock(server.base):
        if _is_running(server):
            _run(server, "pg_ctl", "stop", "-D", str(server.data_dir), "-m", "fast", "-w")


def locate(base: Path | str | None = None) -> EmbeddedServer:
    """Describe the embedded server for ``base`` without touching it.

    Raises:
        EmbeddedPostgresError: No Postgres server binaries were found.
    """
    root = Path(base) if base is not None else default_base_dir()
    return EmbeddedServer(base=root, bindir=find_bindir(), os_user=_cluster_owner())


def default_base_dir() -> Path:
    """The per-user directory of the embedded cluster.

    ``RAPPELX_EMBEDDED_DIR`` wins. Root gets ``/var/tmp/rappelx-0`` (a directory the
    cluster's unprivileged owner can be given); others ``$XDG_DATA_HOME/rappelx`` or
    ``~/.local/share/rappelx``.
    """
    configured = os.environ.get("RAPPELX_EMBEDDED_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/tmp/rappelx-0")
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "rappelx"


def find_bindir(search: Sequence[str] | None = None) -> Path:
    """Find the directory holding ``initdb`` and ``pg_ctl``, newest major version first.

    Raises:
        EmbeddedPostgresError: Naming the package to install when none is found.
    """
    for candidate in _bindir_candidates(search):
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise EmbeddedPostgresError(
        "rappelx needs a Postgres server when RAPPELX_DATABASE_URL is not set, but no "
        "'initdb'/'pg_ctl' was found on PATH or under /usr/lib/postgresql/*/bin. Install "
        "the server (Debian/Ubuntu: 'apt install postgresql'; Fedora: 'dnf install "
        "postgresql-server'; macOS: 'brew install postgresql') or set "
        "RAPPELX_DATABASE_URL to an existing database."
    )


def _bindir_candidates(search: Sequence[str] | None) -> Iterator[Path]:
    if search is not None:
        yield from (Path(p) for p in search)
        return
    on_path = shutil.which("pg_ctl")
    if on_path:
        yield Path(on_path).resolve().parent
    found = [Path(p) for pattern in _BINDIR_PATTERNS for p in glob.glob(pattern)]
    yield from sorted(found, key=_major_version, reverse=True)
    yield Path("/usr/local/pgsql/bin")


def _major_version(path: Path) -> int:
    match = re.search(r"(\d+)", str(path))
    return int(match.group(1)) if match else 0


def _cluster_owner() -> str | None:
    """The OS user that runs the server: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    configured = os.environ.get("RAPPELX_EMBEDDED_OS_USER")
    candidates = [configured] if configured else ["postgres", "nobody"]
    for name in candidates:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise EmbeddedPostgresError(
        "the embedded Postgres cannot run as root and no 'postgres' or 'nobody' OS user "
        "exists to own it; create one ('useradd --system postgres') or set "
        "RAPPELX_EMBEDDED_OS_USER, or set RAPPELX_DATABASE_URL"
    )


@contextmanager
def _boot_lock(base: Path) -> Iterator[None]:
    try:
        base.mkdir(parents=True, exist_ok=True)
        handle = open(base / "boot.lock", "a")
    except OSError as exc:
        raise EmbeddedPostgresError(
            f"cannot create the embedded Postgres directory {base}: {exc}; point "
            "RAPPELX_EMBEDDED_DIR at a writable directory or set RAPPELX_DATABASE_URL"
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _initdb(server: EmbeddedServer, settings: dict[str, str]) -> None:
    data = server.data_dir
    if data.exists():
        # A previous initdb died half-way: it leaves no PG_VERSION, so start over.
        shutil.rmtree(data)
    _check_reachable(server)
    data.mkdir(mode=0o700)
    _give_to_owner(server, data)
    _give_to_owner(server, server.base, directory_only=True)
    _run(server, "initdb", "-D", str(data), *_INITDB_OPTIONS)
    conf = {
        "listen_addresses": "''",
        "unix_socket_directories": f"'{data}'",
        "port": str(PORT),
        "max_connections": "200",
        **settings,
    }
    lines = "".join(f"{key} = {value}\n" for key, value in conf.items())
    with open(data / "postgresql.conf", "a") as handle:
        handle.write("\n# added by rappelx\n" + lines)


def _check_reachable(server: EmbeddedServer) -> None:
    """Fail early when the cluster's owner could not reach its own data directory."""
    if server.os_user is None:
        return
    for parent in server.base.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise EmbeddedPostgresError(
                f"the embedded Postgres runs as OS user {server.os_user!r}, which cannot "
                f"enter {parent} (no 'x' permission for others); choose a directory "
                "outside it with RAPPELX_EMBEDDED_DIR"
            )


def _give_to_owner(server: EmbeddedServer, path: Path, *, directory_only: bool = False) -> None:
    if server.os_user is None:
        return
    entry = pwd.getpwnam(server.os_user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    if directory_only:
        # The owner writes its log here; others may still read the lock file.
        path.chmod(0o755)


def _is_running(server: EmbeddedServer) -> bool:
    if not (server.data_dir / "postmaster.pid").exists():
        return False
    command = [str(server.bindir / "pg_ctl"), "status", "-D", str(server.data_dir)]
    completed = subprocess.run(
        _as_owner(server, command), capture_output=True, text=True, check=False
    )
    return completed.returncode == 0


def _start(server: EmbeddedServer) -> None:
    if server.os_user is not None and server.log_file.exists():
        _give_to_owner(server, server.log_file)
    timeout = str(_START_TIMEOUT)
    try:
        _run(
            server,
            "pg_ctl",
            "start",
            "-D",
            str(server.data_dir),
            "-w",
            "-t",
            timeout,
            "-l",
            str(server.log_file),
        )
    except EmbeddedPostgresError as exc:
        raise EmbeddedPostgresError(f"{exc}\n{_log_tail(server)}") from exc


def _run(server: EmbeddedServer, tool: str, *args: str) -> None:
    command = [str(server.bindir / tool), *args]
    completed = subprocess.run(
        _as_owner(server, command),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=server.base,
    )
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip()
        raise EmbeddedPostgresError(
            f"embedded Postgres: '{' '.join(command)}' failed ({completed.returncode}): "
            f"{output}. Delete {server.base} to start from scratch, or set "
            "RAPPELX_DATABASE_URL to use another server."
        )


def _as_owner(server: EmbeddedServer, command: list[str]) -> list[str]:
    if server.os_user is None:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", server.os_user, "--", *command]
    if shutil.which("setpriv"):
        entry = pwd.getpwnam(server.os_user)
        ids = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]
        return ["setpriv", *ids, *command]
    return ["su", "-s", "/bin/sh", server.os_user, "-c", " ".join(map(_sh_quote, command))]


def _sh_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def _log_tail(server: EmbeddedServer, lines: int = 20) -> str:
    try:
        text = server.log_file.read_text(errors="replace")
    except OSError:
        return f"(no server log at {server.log_file})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"last lines of {server.log_file}:\n{tail}"
