"""Every message the compiler can emit, as data (one registry, stable codes)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from rappelx.exceptions import CompileError


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A compile-time message: a stable ``code`` and a ``str.format`` template."""

    code: str
    template: str

    def format(self, **kwargs: object) -> str:
        return f"{self.code} {self.template.format(**kwargs)}"


NO_SOURCE = Diagnostic(
    "RX100",
    "cannot read the source of {what}: {reason}; rappelx compiles workflows from their "
    "source file, so define the workflow in a .py module",
)
BAD_RUN = Diagnostic(
    "RX101", "{what}; a workflow class defines 'async def run(self, ...)' and @workflow it"
)
ASYNC_WITH = Diagnostic(
    "RX102",
    "'async with' is not supported in a workflow; move the context manager into an @action",
)
ASYNC_FOR = Diagnostic(
    "RX103",
    "'async for' is not supported in a workflow; collect the items in an @action and "
    "loop over the returned list",
)
NOT_AN_ACTION = Diagnostic(
    "RX104",
    "awaiting {found} which is not an @action; make it an @action or call it from one "
    "(a workflow may await @action calls, self.run_action(...), asyncio.gather(...), "
    "asyncio.sleep(...) and its own async helper methods)",
)
YIELD = Diagnostic("RX105", "'{kind}' is not supported in a workflow; return a list instead")
SCOPE_DECL = Diagnostic(
    "RX106",
    "'{kind}' is not supported in a workflow; pass values in as arguments and return "
    "results instead",
)
WITH_AWAIT = Diagnostic(
    "RX107",
    "a 'with' block that contains an await is not supported; do the work that needs the "
    "context manager inside an @action",
)
RECURSION = Diagnostic(
    "RX108",
    "helper recursion: {cycle}; workflows cannot recurse — rewrite it as a loop",
)
NESTED_AWAIT = Diagnostic(
    "RX109",
    "a nested {kind} that awaits is not supported; make it an async method of the "
    "workflow class or an @action",
)
BARE_COROUTINE = Diagnostic(
    "RX110",
    "{what} is called without being awaited; await it directly, or pass the call "
    "straight to asyncio.gather(...)",
)
GATHER_ELEMENT = Diagnostic(
    "RX111",
    "asyncio.gather() element {found} is not supported; pass @action calls, "
    "self.run_action(...), helper calls or *[call for x in xs]",
)
MATCH_AWAIT = Diagnostic(
    "RX112", "a 'match' statement that contains an await is not supported; use if/elif"
)
RESERVED_NAME = Diagnostic(
    "RX113", "the name '{name}' is reserved for rappelx (names starting with _rx_); rename it"
)
AWAIT_IN_COMPREHENSION = Diagnostic(
    "RX114",
    "an await inside a {kind} is not supported; use a list comprehension or a for loop",
)
TRY_STAR = Diagnostic(
    "RX115", "'except*' is not supported in a workflow; use plain 'except' clauses"
)
UNKNOWN_HELPER = Diagnostic(
    "RX116",
    "'self.{name}' is not an async method of this workflow; define 'async def {name}' "
    "in the class or await an @action",
)
GATHER_STARRED = Diagnostic(
    "RX117",
    "asyncio.gather(*{found}) unpacks a value rappelx cannot see into; write the calls "
    "in place: asyncio.gather(*[action(x) for x in xs])",
)
GATHER_OPTION = Diagnostic(
    "RX118",
    "asyncio.gather() option {found} is not supported; only return_exceptions=True/False "
    "(a constant) is",
)
RUN_ACTION_ARG = Diagnostic(
    "RX119",
    "self.run_action() takes one @action call and the keywords retry=, backoff=, "
    "timeout=; found {found}",
)
SLEEP_ARGS = Diagnostic(
    "RX120", "asyncio.sleep() takes a delay in seconds (and an optional result); found {found}"
)
DUPLICATE_WORKFLOW = Diagnostic(
    "RX121",
    "a different workflow class is already registered as '{name}'; give one of them "
    "@workflow(name=...)",
)
UNSUPPORTED = Diagnostic("RX122", "{what} is not supported in a workflow{hint}")


@dataclass(slots=True)
class Reporter:
    """Collects problems for one workflow class and raises them together."""

    filename: str
    lines: list[str]
    problems: list[CompileError] = field(default_factory=list)

    def error(self, node: ast.AST | None, diagnostic: Diagnostic, **kwargs: object) -> None:
        lineno = getattr(node, "lineno", 0) or 0
        col = getattr(node, "col_offset", 0) or 0
        source_line = self.lines[lineno - 1].rstrip("\n") if 0 < lineno <= len(self.lines) else ""
        text = diagnostic.format(**kwargs)
        message = f"{self.filename}:{lineno}:{col + 1}: {text}"
        if source_line:
            message += f"\n    {source_line.strip()}"
        self.problems.append(
            CompileError(
                message,
                filename=self.filename,
                lineno=lineno,
                col_offset=col,
                code=diagnostic.code,
                source_line=source_line,
            )
        )

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        first = self.problems[0]
        ordered = sorted(self.problems, key=lambda p: (p.lineno, p.col_offset))
        first = ordered[0]
        if len(ordered) == 1:
            message = str(first)
        else:
            body = "\n".join(str(p) for p in ordered)
            message = f"{first}\n\n{len(ordered)} problems in this workflow:\n{body}"
        raise CompileError(
            message,
            filename=first.filename,
            lineno=first.lineno,
            col_offset=first.col_offset,
            code=first.code,
            source_line=first.source_line,
            problems=ordered,
        )
