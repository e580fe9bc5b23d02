"""Helpers for testing workflows without Postgres or worker processes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rappelx._workflow import definition
from rappelx.runtime import _codec
from rappelx.runtime._inline import InlineRunner

__all__ = ["run_inline", "run_plain"]


async def run_inline(
    workflow_cls: type,
    /,
    *args: Any,
    overrides: Mapping[Any, Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> Any:
    """Run a workflow's compiled DAG in this process, through the production engine.

    Actions run in-process (their arguments and results cross the codec as they would to
    a worker); durable sleeps and retry backoff use a virtual clock. Returns the
    workflow's result or raises its exception, like ``run()``.

    Args:
        workflow_cls: A class decorated with ``@workflow``.
        overrides: Replacement coroutine functions keyed by ``@action`` (or action name).
    """
    return await _run_inline(workflow_cls, args, kwargs, overrides)


async def _run_inline(
    workflow_cls: type,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    overrides: Mapping[Any, Callable[..., Any]] | None = None,
    *,
    restore_each_step: bool = False,
) -> Any:
    """:func:`run_inline`; ``restore_each_step`` reads the state back at every step."""
    wf = definition(workflow_cls)
    args, kwargs = wf.bind(args, kwargs)
    copied = _codec.loads(_codec.dumps((args, kwargs)))
    assert isinstance(copied, tuple)
    runner = InlineRunner(wf, overrides, restore_each_step=restore_each_step)
    return await runner.run(copied[0], copied[1])


async def run_plain(workflow_cls: type, /, *args: Any, **kwargs: Any) -> Any:
    """Run the workflow's ``run`` body as plain asyncio Python (the parity oracle)."""
    wf = definition(workflow_cls)
    return await wf.original_run(workflow_cls(), *args, **kwargs)
