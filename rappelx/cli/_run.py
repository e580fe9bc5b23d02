"""``rappelx run``: start a workflow from the command line, locally or durably."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from rappelx._workflow import WorkflowDef
from rappelx.cli._db import database_errors
from rappelx.cli._errors import CliError
from rappelx.cli._output import to_json

if TYPE_CHECKING:
    from rappelx.runtime._client import WorkflowHandle

__all__ = ["WorkflowRaised", "parse_input", "run_durable", "run_local"]


class WorkflowRaised(CliError):
    """The workflow ended with an exception (chained as the cause)."""


def parse_input(text: str | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments for ``run`` from ``--input``.

    A JSON object gives keyword arguments, an array positional ones; any other JSON
    value is the single positional argument (wrap a dict in ``[...]`` to pass it
    positionally).

    Raises:
        CliError: ``text`` is not JSON.
    """
    if text is None or not text.strip():
        return (), {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"--input is not valid JSON ({exc.msg} at position {exc.pos}); for example "
            '--input \'{"user_id": "u1"}\''
        ) from exc
    if isinstance(value, dict):
        return (), value
    if isinstance(value, list):
        return tuple(value), {}
    return (value,), {}


async def run_local(wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Run ``wf`` in this process through ``run_inline``; the result as JSON text."""
    from rappelx.testing import run_inline

    wf.bind(args, kwargs)  # bad arguments are the caller's mistake, not the workflow's
    try:
        result = await run_inline(wf.cls, *args, **kwargs)
    except Exception as exc:
        raise WorkflowRaised(f"workflow {wf.name} raised {type(exc).__qualname__}") from exc
    return to_json(result)


async def run_durable(
    wf: WorkflowDef,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    dsn: str | None,
    wait: bool,
    timeout: float | None,
) -> str:
    """Queue an instance of ``wf`` in Postgres; its result as JSON text, or its id when
    not waiting. The instance id is also printed on stderr at once."""
    from rappelx.runtime._client import Client

    client = Client(dsn)
    try:
        with database_errors():
            handle = await client.start(wf.cls, *args, **kwargs)
        print(f"started {wf.name} instance {handle.id}", file=sys.stderr)
        if not wait:
            return str(handle.id)
        return to_json(await _result(wf, handle, timeout))
    finally:
        await client.close()


async def _result(wf: WorkflowDef, handle: WorkflowHandle, timeout: float | None) -> Any:
    # Our own deadline, so that a workflow raising TimeoutError is not taken for it.
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            # Not under database_errors(): the workflow's own OSError must stay its own.
            return await handle.result()
    except Exception as exc:
        if scope.expired():
            raise CliError(
                f"instance {handle.id} did not finish within {timeout} s; it keeps running "
                f"(see 'rappelx runs show {handle.id}'). Are 'rappelx workers' running for "
                f"the module that defines {wf.name}?"
            ) from None
        raise WorkflowRaised(
            f"workflow {wf.name} instance {handle.id} raised {type(exc).__qualname__}"
        ) from exc
