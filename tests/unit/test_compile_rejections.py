"""Rejected sources: every diagnostic code, where it points, and what it tells you to do.

Each source is written to a module file of its own under ``tmp_path`` and imported, as a
user's module would be; ``@workflow`` must raise ``CompileError`` right there. Lines in
the table count from the first line of the snippet (the ``@workflow`` line is 1);
columns are 0-based like ``ast`` (the message shows them 1-based, like compilers do).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rappelx import CompileError, Workflow, workflow

HEADER = """\
from __future__ import annotations

import asyncio

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import rec


async def httpx_get(url: str) -> str:
    return url


def plain(x: object) -> object:
    return x


"""
HEADER_LINES = HEADER.count("\n")


@dataclass(frozen=True)
class Rejection:
    """A source, the one problem it has, and a phrase of the fix the message must give."""

    id: str
    source: str
    code: str
    line: int
    col: int
    fix: str


def rej(id: str, source: str, code: str, line: int, col: int, fix: str) -> Rejection:
    return Rejection(id, textwrap.dedent(source).lstrip("\n"), code, line, col, fix)


# One row: the snippet, then its code, line, column and the fix, kept on one line.
# fmt: off
TABLE = [
    rej(
        "await-plain-coroutine",
        """
        @workflow
        class RejAwaitPlain(Workflow):
            async def run(self) -> str:
                page = await httpx_get("https://example.com")
                return page
        """,
        "RX104", 4, 21, "make it an @action",
    ),
    rej(
        "await-plain-coroutine-in-expression",
        """
        @workflow
        class RejAwaitPlainExpr(Workflow):
            async def run(self) -> str:
                return "<" + await httpx_get("x")
        """,
        "RX104", 4, 27, "make it an @action",
    ),
    rej(
        "await-a-variable",
        """
        @workflow
        class RejAwaitVariable(Workflow):
            async def run(self, task: object) -> object:
                return await task
        """,
        "RX104", 4, 15, "make it an @action",
    ),
    rej(
        "run-action-of-plain-coroutine",
        """
        @workflow
        class RejRunActionPlain(Workflow):
            async def run(self) -> str:
                return await self.run_action(httpx_get("a"))
        """,
        "RX104", 4, 37, "make it an @action",
    ),
    rej(
        "async-with",
        """
        @workflow
        class RejAsyncWith(Workflow):
            async def run(self, lock: object) -> None:
                async with lock:
                    await rec("a")
        """,
        "RX102", 4, 8, "move the context manager into an @action",
    ),
    rej(
        "async-for",
        """
        @workflow
        class RejAsyncFor(Workflow):
            async def run(self, stream: object) -> None:
                async for item in stream:
                    await rec(item)
        """,
        "RX103", 4, 8, "loop over the returned list",
    ),
    rej(
        "async-comprehension",
        """
        @workflow
        class RejAsyncComp(Workflow):
            async def run(self, stream: object) -> list[object]:
                return [x async for x in stream]
        """,
        "RX103", 4, 28, "loop over the returned list",
    ),
    rej(
        "yield",
        """
        @workflow
        class RejYield(Workflow):
            async def run(self):
                value = await rec("a", 1)
                yield value
        """,
        "RX105", 5, 8, "return a list instead",
    ),
    rej(
        "global",
        """
        COUNTER = 0


        @workflow
        class RejGlobal(Workflow):
            async def run(self) -> None:
                global COUNTER
                COUNTER = await rec("a", 1)
        """,
        "RX106", 7, 8, "pass values in as arguments",
    ),
    rej(
        "nonlocal",
        """
        @workflow
        class RejNonlocal(Workflow):
            async def run(self) -> None:
                x = 1

                def bump() -> None:
                    nonlocal x
                    x += 1

                bump()
                await rec("a")
        """,
        "RX106", 7, 12, "pass values in as arguments",
    ),
    rej(
        "with-await-in-body",
        """
        @workflow
        class RejWithBody(Workflow):
            async def run(self) -> None:
                with open("f") as handle:
                    await rec(handle.name)
        """,
        "RX107", 4, 8, "inside an @action",
    ),
    rej(
        "with-await-in-item",
        """
        @workflow
        class RejWithItem(Workflow):
            async def run(self) -> None:
                with plain(await rec("ctx")):
                    pass
        """,
        "RX107", 4, 8, "inside an @action",
    ),
    rej(
        "recursion-direct",
        """
        @workflow
        class RejRecDirect(Workflow):
            async def again(self, n: int) -> int:
                if n <= 0:
                    return await rec("done", 0)
                return await self.again(n - 1)

            async def run(self) -> int:
                return await self.again(3)
        """,
        "RX108", 6, 21, "rewrite it as a loop",
    ),
    rej(
        "recursion-mutual",
        """
        @workflow
        class RejRecMutual(Workflow):
            async def ping(self, n: int) -> int:
                return await self.pong(n - 1)

            async def pong(self, n: int) -> int:
                if n > 0:
                    return await self.ping(n)
                return 0

            async def run(self) -> int:
                return await self.ping(3)
        """,
        "RX108", 8, 25, "rewrite it as a loop",
    ),
    rej(
        "recursion-through-gather",
        """
        @workflow
        class RejRecGather(Workflow):
            async def fan(self, n: int) -> list[object]:
                return await asyncio.gather(self.fan(n - 1), rec("x"))

            async def run(self) -> list[object]:
                return await self.fan(2)
        """,
        # The call that closes the cycle is self.fan(...), not the gather around it.
        "RX108", 4, 36, "rewrite it as a loop",
    ),
    rej(
        "nested-async-def",
        """
        @workflow
        class RejNestedDef(Workflow):
            async def run(self) -> None:
                async def inner() -> None:
                    await rec("a")

                await rec("b")
        """,
        "RX109", 4, 8, "make it an async method of the workflow class",
    ),
    rej(
        "nested-class-awaits",
        """
        @workflow
        class RejNestedClass(Workflow):
            async def run(self) -> object:
                class Inner:
                    async def go(self) -> object:
                        return await rec("a")

                return await rec("b", Inner)
        """,
        "RX109", 4, 8, "make it an async method of the workflow class",
    ),
    rej(
        "action-not-awaited",
        """
        @workflow
        class RejBareAction(Workflow):
            async def run(self) -> None:
                rec("fire and forget")
                await rec("b")
        """,
        "RX110", 4, 8, "await it directly",
    ),
    rej(
        "helper-not-awaited",
        """
        @workflow
        class RejBareHelper(Workflow):
            async def helper(self) -> None:
                await rec("a")

            async def run(self) -> None:
                pending = self.helper()
                await rec("b", pending)
        """,
        "RX110", 7, 18, "await it directly",
    ),
    rej(
        "sleep-not-awaited",
        """
        @workflow
        class RejBareSleep(Workflow):
            async def run(self) -> None:
                asyncio.sleep(1)
                await rec("b")
        """,
        "RX110", 4, 8, "await it directly",
    ),
    rej(
        "gather-plain-coroutine",
        """
        @workflow
        class RejGatherPlain(Workflow):
            async def run(self) -> list[object]:
                return await asyncio.gather(rec("a"), httpx_get("b"))
        """,
        "RX111", 4, 46, "pass @action calls",
    ),
    rej(
        "gather-not-a-call",
        """
        @workflow
        class RejGatherValue(Workflow):
            async def run(self, job: object) -> list[object]:
                return await asyncio.gather(rec("a"), job)
        """,
        "RX111", 4, 46, "pass @action calls",
    ),
    rej(
        "gather-starred-variable",
        """
        @workflow
        class RejGatherStarred(Workflow):
            async def run(self, calls: list[object]) -> list[object]:
                return await asyncio.gather(*calls)
        """,
        "RX117", 4, 36, "asyncio.gather(*[action(x) for x in xs])",
    ),
    rej(
        "gather-option-not-constant",
        """
        @workflow
        class RejGatherOption(Workflow):
            async def run(self, flag: bool) -> list[object]:
                return await asyncio.gather(rec("a"), return_exceptions=flag)
        """,
        "RX118", 4, 64, "only return_exceptions=True/False",
    ),
    rej(
        "gather-unknown-option",
        """
        @workflow
        class RejGatherUnknown(Workflow):
            async def run(self) -> list[object]:
                return await asyncio.gather(rec("a"), limit=3)
        """,
        "RX118", 4, 52, "only return_exceptions=True/False",
    ),
    rej(
        "match-with-await",
        """
        @workflow
        class RejMatch(Workflow):
            async def run(self, cmd: str) -> object:
                match cmd:
                    case "go":
                        return await rec("go")
                return "stop"
        """,
        "RX112", 4, 8, "use if/elif",
    ),
    rej(
        "reserved-name",
        """
        @workflow
        class RejReserved(Workflow):
            async def run(self) -> object:
                _rx_total = 1
                return await rec("a", 1)
        """,
        "RX113", 4, 8, "rename it",
    ),
    rej(
        "reserved-parameter",
        """
        @workflow
        class RejReservedArg(Workflow):
            async def run(self, _rx_x: int) -> object:
                return await rec("a")
        """,
        "RX113", 3, 24, "rename it",
    ),
    rej(
        "await-in-set-comprehension",
        """
        @workflow
        class RejSetComp(Workflow):
            async def run(self, xs: list[str]) -> object:
                return {await rec(x) for x in xs}
        """,
        "RX114", 4, 15, "use a list comprehension or a for loop",
    ),
    rej(
        "await-in-dict-comprehension",
        """
        @workflow
        class RejDictComp(Workflow):
            async def run(self, xs: list[str]) -> object:
                return {x: await rec(x) for x in xs}
        """,
        "RX114", 4, 15, "use a list comprehension or a for loop",
    ),
    rej(
        "await-in-generator-expression",
        """
        @workflow
        class RejGenExp(Workflow):
            async def run(self, xs: list[str]) -> object:
                return sum(await rec(x, 1) for x in xs)
        """,
        "RX114", 4, 18, "use a list comprehension or a for loop",
    ),
    rej(
        "except-star",
        """
        @workflow
        class RejTryStar(Workflow):
            async def run(self) -> None:
                try:
                    await rec("a")
                except* ValueError:
                    pass
        """,
        "RX115", 4, 8, "use plain 'except' clauses",
    ),
    rej(
        "await-sync-method",
        """
        @workflow
        class RejSyncMethod(Workflow):
            def not_async(self) -> int:
                return 1

            async def run(self) -> int:
                return await self.not_async()
        """,
        "RX116", 7, 21, "define 'async def not_async'",
    ),
    rej(
        "await-missing-method",
        """
        @workflow
        class RejMissingMethod(Workflow):
            async def run(self) -> int:
                return await self.nowhere()
        """,
        "RX116", 4, 21, "define 'async def nowhere'",
    ),
    rej(
        "run-action-two-calls",
        """
        @workflow
        class RejRunActionTwo(Workflow):
            async def run(self) -> object:
                return await self.run_action(rec("a"), rec("b"))
        """,
        "RX119", 4, 21, "takes one @action call",
    ),
    rej(
        "run-action-unknown-keyword",
        """
        @workflow
        class RejRunActionKw(Workflow):
            async def run(self) -> object:
                return await self.run_action(rec("a"), retries=3)
        """,
        "RX119", 4, 21, "the keywords retry=, backoff=, timeout=",
    ),
    rej(
        "run-action-not-a-call",
        """
        @workflow
        class RejRunActionValue(Workflow):
            async def run(self, call: object) -> object:
                return await self.run_action(call)
        """,
        "RX119", 4, 21, "takes one @action call",
    ),
    rej(
        "sleep-without-delay",
        """
        @workflow
        class RejSleepArgs(Workflow):
            async def run(self) -> None:
                await asyncio.sleep()
        """,
        "RX120", 4, 14, "takes a delay in seconds",
    ),
    rej(
        "await-in-except-type",
        """
        @workflow
        class RejExceptType(Workflow):
            async def run(self) -> None:
                try:
                    await rec("a")
                except (await rec("kind")):
                    pass
        """,
        "RX122", 6, 16, "await into a variable before the try",
    ),
    rej(
        "no-run",
        """
        @workflow
        class RejNoRun(Workflow):
            async def helper(self) -> None:
                await rec("a")
        """,
        "RX101", 2, 0, "defines 'async def run(self, ...)'",
    ),
    rej(
        "sync-run",
        """
        @workflow
        class RejSyncRun(Workflow):
            def run(self) -> int:
                return 1
        """,
        "RX101", 3, 4, "defines 'async def run(self, ...)'",
    ),
]
# fmt: on


Imported = tuple[Path, CompileError]


@pytest.fixture(scope="module")
def rejected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, str], Imported]]:
    """Import a snippet (after :data:`HEADER`) as a module of its own; return the error.

    Each snippet is imported once per session, however many tests look at it: a source
    the compiler wrongly accepts registers its workflow, and importing it again from a
    second module would then fail as a name clash (RX121) instead.
    """
    directory = tmp_path_factory.mktemp("rejected")
    sys.path.insert(0, str(directory))
    seen: dict[str, Imported] = {}

    def run(key: str, source: str) -> Imported:
        if key not in seen:
            name = f"rx_rejected_{key.replace('-', '_')}"
            path = directory / f"{name}.py"
            path.write_text(HEADER + source, encoding="utf-8")
            try:
                with pytest.raises(CompileError) as info:
                    importlib.import_module(name)
            finally:
                sys.modules.pop(name, None)
            seen[key] = (path, info.value)
        return seen[key]

    yield run
    sys.path.remove(str(directory))


@pytest.mark.parametrize("case", TABLE, ids=lambda c: f"{c.code}-{c.id}")
def test_rejected(case: Rejection, rejected: Callable[[str, str], Imported]) -> None:
    path, err = rejected(case.id, case.source)
    lineno = HEADER_LINES + case.line
    assert (err.code, err.lineno, err.col_offset) == (case.code, lineno, case.col), str(err)
    assert err.filename == str(path)
    assert str(err).startswith(f"{path}:{lineno}:{case.col + 1}: {case.code} ")
    assert case.fix in str(err)
    assert err.source_line == case.source.splitlines()[case.line - 1]


@pytest.mark.parametrize("case", TABLE, ids=lambda c: f"{c.code}-{c.id}")
def test_one_construct_one_problem(
    case: Rejection, rejected: Callable[[str, str], Imported]
) -> None:
    """A single bad construct is reported once (not again as a generic RX122)."""
    _, err = rejected(case.id, case.source)
    assert [p.code for p in err.problems] == [case.code], str(err)


def test_every_code_is_in_the_table() -> None:
    from rappelx.compiler import _diagnostics

    codes = {
        value.code
        for value in vars(_diagnostics).values()
        if isinstance(value, _diagnostics.Diagnostic)
    }
    covered = {case.code for case in TABLE} | {"RX100", "RX121"}  # tested below
    assert codes == covered


SEVERAL = """\
@workflow
class RejSeveral(Workflow):
    async def run(self) -> object:
        global G
        page = await httpx_get("x")
        rec("not awaited")
        _rx_mine = 1
        return {await rec(x) for x in page}
"""


def test_several_problems_are_reported_together(
    rejected: Callable[[str, str], Imported],
) -> None:
    path, err = rejected("several", SEVERAL)
    found = [(p.code, p.lineno - HEADER_LINES) for p in err.problems]
    assert found == [("RX106", 4), ("RX104", 5), ("RX110", 6), ("RX113", 7), ("RX114", 8)]
    assert (err.code, err.lineno) == ("RX106", HEADER_LINES + 4)  # the first, by position
    message = str(err)
    assert message.startswith(f"{path}:{HEADER_LINES + 4}:9: RX106 ")
    assert "5 problems in this workflow" in message
    for problem in err.problems:
        assert str(problem) in message


def test_problems_in_helpers_are_reported_with_run(
    rejected: Callable[[str, str], Imported],
) -> None:
    source = """\
@workflow
class RejInHelper(Workflow):
    async def helper(self) -> None:
        async for x in plain([]):
            pass

    async def run(self) -> None:
        await self.helper()
        global G
"""
    _, err = rejected("in-helper", source)
    found = {(p.code, p.lineno - HEADER_LINES) for p in err.problems}
    assert {("RX103", 4), ("RX106", 9)} <= found


# ------------------------------------------------------------------ RX100, RX121
def test_class_without_source_file_is_rx100() -> None:
    namespace: dict[str, object] = {"Workflow": Workflow, "workflow": workflow}
    code = compile(
        "@workflow\nclass RejNoSource(Workflow):\n    async def run(self):\n        return 1\n",
        "<generated>",
        "exec",
    )
    with pytest.raises(CompileError) as info:
        exec(code, namespace)
    assert info.value.code == "RX100"
    assert "define the workflow in a .py module" in str(info.value)


TWIN = """\
@workflow
class RejTwin(Workflow):
    async def run(self) -> object:
        return await rec("a")
"""


def _write_module(directory: Path, source: str) -> str:
    name = f"rx_twin_{uuid.uuid4().hex[:12]}"
    (directory / f"{name}.py").write_text(HEADER + source, encoding="utf-8")
    return name


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        if name.startswith("rx_twin_"):
            del sys.modules[name]


def test_two_classes_with_one_name_is_rx121(module_dir: Path) -> None:
    first = _write_module(module_dir, TWIN.replace("RejTwin", "RejTwinA"))
    second = _write_module(module_dir, TWIN.replace("RejTwin", "RejTwinA"))
    importlib.import_module(first)
    with pytest.raises(CompileError) as info:
        importlib.import_module(second)
    assert info.value.code == "RX121"
    message = str(info.value)
    assert f"{first}.RejTwinA" in message and f"{second}.RejTwinA" in message
    assert "@workflow(name=...)" in message


def test_rx121_points_at_the_class(module_dir: Path) -> None:
    first = _write_module(module_dir, TWIN.replace("RejTwin", "RejTwinB"))
    second = _write_module(module_dir, TWIN.replace("RejTwin", "RejTwinB"))
    importlib.import_module(first)
    with pytest.raises(CompileError) as info:
        importlib.import_module(second)
    path = module_dir / f"{second}.py"
    assert (info.value.filename, info.value.lineno) == (str(path), HEADER_LINES + 2)
    assert str(info.value).startswith(f"{path}:{HEADER_LINES + 2}:1: RX121 ")


def test_same_class_reimported_is_not_a_clash(module_dir: Path) -> None:
    name = _write_module(module_dir, TWIN.replace("RejTwin", "RejTwinC"))
    module = importlib.import_module(name)
    reloaded = importlib.reload(module)
    assert reloaded.RejTwinC is not None


def test_explicit_names_resolve_a_clash(module_dir: Path) -> None:
    source = TWIN.replace("@workflow\n", '@workflow(name="{}")\n').replace("RejTwin", "RejTwinD")
    first = _write_module(module_dir, source.format("twin-one"))
    second = _write_module(module_dir, source.format("twin-two"))
    one = importlib.import_module(first).RejTwinD
    two = importlib.import_module(second).RejTwinD
    assert one.__rappelx__.name == "twin-one"
    assert two.__rappelx__.name == "twin-two"
