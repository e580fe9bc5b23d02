"""rappelx: durable workflows for Python, written as ordinary async code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rappelx._action import BackoffPolicy, RetryPolicy, action
from rappelx._workflow import Workflow, workflow
from rappelx.exceptions import ActionTimeout, CompileError, WorkflowFailed

if TYPE_CHECKING:
    from rappelx.runtime._client import Client, WorkflowHandle

__all__ = [
    "ActionTimeout",
    "BackoffPolicy",
    "Client",
    "CompileError",
    "RetryPolicy",
    "Workflow",
    "WorkflowFailed",
    "WorkflowHandle",
    "action",
    "workflow",
]


def __getattr__(name: str) -> object:
    # The client pulls in asyncpg; import it only when it is asked for.
    if name in ("Client", "WorkflowHandle"):
        from rappelx.runtime import _client

        return getattr(_client, name)
    raise AttributeError(f"module 'rappelx' has no attribute {name!r}")
