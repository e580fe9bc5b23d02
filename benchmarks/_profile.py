"""Where a ``rappelx workers`` process spends its time: py-spy attached while it works.

py-spy samples the dispatcher process and each of its worker subprocesses without
touching their code. Its raw output is one line per distinct stack with a sample
count; :func:`top_functions` folds it into self and total samples per function, split
by process role.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rappelx.exceptions import RappelxError

#: Samples per second; py-spy's default is 100.
RATE = 250
_PROCESS = re.compile(r"^process (\d+)")
_LINE = re.compile(r":\d+\)$")
#: Functions ranked by total time: the runtime's and its driver's, not the CLI's frames.
_ENGINE = re.compile(r"^[^<].*\((rappelx/(runtime/|compiler/|_[a-z])|asyncpg/|msgpack/)")


class ProfilerMissing(RappelxError):
    """py-spy is not installed in this environment."""


def py_spy_path() -> str:
    """The py-spy binary next to this interpreter, or on ``PATH``.

    Raises:
        ProfilerMissing: Naming the command that installs it.
    """
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfilerMissing("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


@contextlib.asynccontextmanager
async def sampling(pids: list[int], output: Path) -> AsyncIterator[None]:
    """Sample each of ``pids`` during the block; their raw stacks go to ``output``.

    One py-spy per process: ``--subprocesses`` does not find the pool's workers when
    attaching to a running dispatcher. ``--gil`` keeps only samples holding the GIL, so
    threads and loops waiting in the kernel do not pass for work.
    """
    parts = [output.with_name(f"{output.name}.{pid}") for pid in pids]
    spies = [await _spy(pid, part) for pid, part in zip(pids, parts, strict=True)]
    await asyncio.sleep(1.0)  # py-spy attaches before it samples
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        errors = [(await spy.communicate())[1] for spy in spies]
        with output.open("w") as combined:
            for pid, part, error in zip(pids, parts, errors, strict=True):
                if not part.exists():
                    raise ProfilerMissing(
                        f"py-spy wrote no profile of process {pid} "
                        f"({error.decode(errors='replace').strip()}); it needs ptrace "
                        "rights: run as root or allow it in /proc/sys/kernel/yama/ptrace_scope"
                    )
                # Attached to one process, py-spy does not name it: say which it was.
                combined.writelines(f"process {pid};{line}" for line in part.open())
                part.unlink()


async def _spy(pid: int, output: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        py_spy_path(), "record", "--pid", str(pid), "--gil", "--format", "raw",
        "--rate", str(RATE), "--nolineno", "--output", str(output),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@dataclass
class RoleProfile:
    """Samples of one process role: per function, running (self) or on the stack (total)."""

    samples: int = 0
    self_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    total_counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, functions: list[str], count: int) -> None:
        """Count one stack (outermost call first) seen ``count`` times."""
        self.samples += count
        self.self_counts[functions[-1]] += count
        for name in set(functions):
            self.total_counts[name] += count


def fold(raw: Iterable[str], dispatcher_pid: int) -> dict[str, RoleProfile]:
    """py-spy raw lines, folded per role: ``dispatcher`` or ``workers``."""
    roles: dict[str, RoleProfile] = collections.defaultdict(RoleProfile)
    for line in raw:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        functions = [_LINE.sub(")", f) for f in frames[1:] if not f.startswith("thread ")]
        if functions:
            roles[_role(frames[0], dispatcher_pid)].add(functions, int(count_text))
    return dict(sorted(roles.items()))


def _role(first_frame: str, dispatcher_pid: int) -> str:
    match = _PROCESS.match(first_frame)
    if match is None or int(match.group(1)) == dispatcher_pid:
        return "dispatcher"
    return "workers"


def format_profile(roles: dict[str, RoleProfile], limit: int = 15) -> str:
    """Text tables per role: the top ``limit`` functions by self time, then by total."""
    lines = []
    for role, profile in roles.items():
        share = 100 / max(1, profile.samples)
        engine = collections.Counter(
            {name: n for name, n in profile.total_counts.items() if _ENGINE.search(name)}
        )
        for key, counts in (("self", profile.self_counts), ("total", engine)):
            scope = "" if key == "self" else " among rappelx/asyncpg functions"
            lines.append(f"{role} process(es): top {limit} by {key} time{scope} "
                         f"({profile.samples} samples holding the GIL at {RATE}/s)")  # fmt: skip
            lines.append(f"  {'self':>6} {'total':>6}  function (file)")
            for name, _ in counts.most_common(limit):
                lines.append(
                    f"  {profile.self_counts[name] * share:5.1f}% "
                    f"{profile.total_counts[name] * share:5.1f}%  {name}"
                )
    return "\n".join(lines)
