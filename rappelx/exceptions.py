"""The rappelx exception hierarchy.

Every error rappelx raises on its own account derives from :class:`RappelxError`. Errors
that cross the workflow boundary keep the user's own exception classes; these are the
ones rappelx adds.
"""

from __future__ import annotations

from typing import Any


class RappelxError(Exception):
    """Base class of every error raised by rappelx itself."""


class CompileError(RappelxError):
    """A workflow uses a construct rappelx cannot run durably.

    Raised at decoration (import) time. The message starts ``file.py:LINE:COL: RXnnn``;
    when several problems are found in one class, they are all listed and the attributes
    describe the first.

    Attributes:
        filename: Source file of the offending construct.
        lineno: 1-based line number.
        col_offset: 0-based column.
        code: Stable diagnostic code such as ``RX104``.
        source_line: The offending source line, without its newline.
        problems: Every problem found, as ``CompileError`` instances (this one included).
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str = "<unknown>",
        lineno: int = 0,
        col_offset: int = 0,
        code: str = "RX000",
        source_line: str = "",
        problems: list[CompileError] | None = None,
    ) -> None:
        super().__init__(message)
        self.filename = filename
        self.lineno = lineno
        self.col_offset = col_offset
        self.code = code
        self.source_line = source_line
        self.problems: list[CompileError] = problems if problems is not None else [self]


class ActionTimeout(TimeoutError):
    """An action exceeded its timeout on its last attempt.

    Raised at the ``await`` in the workflow. Subclasses :class:`TimeoutError`, so
    ``except TimeoutError:`` catches it.
    """


class WorkflowFailed(RappelxError):
    """A workflow ended with an exception whose class is not importable in the caller.

    Attributes:
        error_type: Qualified name of the original exception class (``module.Qualname``).
        message: ``str()`` of the original exception.
        instance_id: The failed instance, when known.
    """

    def __init__(self, error_type: str, message: str, instance_id: str | None = None) -> None:
        super().__init__(f"workflow failed with {error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.instance_id = instance_id


class CodecError(RappelxError, TypeError):
    """A value cannot be encoded or decoded by the rappelx codec.

    Attributes:
        path: Where in the value the problem is (like ``args[0].items[3]``), if known.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class WorkflowRuntimeError(RappelxError):
    """An instance cannot continue for a reason that is not the workflow's own exception.

    Attributes:
        workflow: Workflow name.
        instance_id: Instance id, when known.
        node: DAG node id, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow: str | None = None,
        instance_id: str | None = None,
        node: int | None = None,
    ) -> None:
        super().__init__(message)
        self.workflow = workflow
        self.instance_id = instance_id
        self.node = node


def describe(exc: BaseException) -> dict[str, Any]:
    """Return a small JSON-friendly summary of ``exc`` for logs and the CLI."""
    cls = type(exc)
    return {"type": f"{cls.__module__}.{cls.__qualname__}", "message": str(exc)}


class WorkflowCancelled(RappelxError):
    """The instance was cancelled (``handle.cancel()``) before it finished."""


class WorkflowArgumentsError(RappelxError, TypeError):
    """A workflow was started with arguments its ``run`` does not accept."""


class StateError(RappelxError):
    """A workflow variable cannot be persisted across an await.

    Attributes:
        variable: The variable's name (or a description of a hidden temporary).
        line: The line of the await the instance was suspended at.
    """

    def __init__(self, message: str, *, variable: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.variable = variable
        self.line = line
