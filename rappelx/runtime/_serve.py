"""The entrypoint of ``rappelx workers``: a dispatcher and a worker pool in one process."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Sequence
from dataclasses import replace

from rappelx.runtime._dispatcher import (
    Dispatcher,
    DispatcherConfig,
    DispatcherError,
    Executor,
    ResultCallback,
)
from rappelx.runtime._pgsteps import WorkflowLike

_log = logging.getLogger("rappelx.dispatcher")


async def serve(
    modules: Sequence[str],
    *,
    processes: int | None = None,
    concurrency: int = 256,
    queues: Sequence[str] = ("default",),
    dsn: str | None = None,
    stop: asyncio.Event | None = None,
    config: DispatcherConfig | None = None,
) -> None:
    """Run a dispatcher and a worker pool until SIGTERM or SIGINT (or ``stop``).

    The entrypoint of ``rappelx workers``: imports ``modules`` (registering their
    workflows and actions), starts ``processes`` worker subprocesses, dispatches, and on a
    signal drains in-flight actions, releases leases and returns normally.

    Args:
        modules: User modules to import, here and in every worker.
        processes: Worker subprocesses; ``None`` means one per core.
        concurrency: Actions each worker runs at once.
        queues: Queues to serve.
        dsn: The database; ``None`` reads ``RAPPELX_DATABASE_URL`` or uses the embedded
            Postgres.
        stop: Set it to stop (in addition to the signals).
        config: Tuning; its ``queues`` are replaced by ``queues``.
    """
    from rappelx.runtime._client import database_url
    from rappelx.runtime._pool import WorkerPool

    workflows = load_workflows(modules)
    url: str = dsn if dsn is not None else await asyncio.to_thread(database_url)
    settings = replace(config or DispatcherConfig(), queues=tuple(queues))

    def make_pool(on_results: ResultCallback) -> Executor:
        return WorkerPool(
            modules, processes=processes, concurrency=concurrency, on_results=on_results
        )

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        await Dispatcher(url, make_pool, workflows, settings).run(stop)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def load_workflows(modules: Sequence[str]) -> dict[str, WorkflowLike]:
    """Import ``modules`` and return every compiled workflow by version.

    Raises:
        DispatcherError: A module cannot be imported (the cause says why).
    """
    from rappelx._workflow import registered_workflows

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise DispatcherError(
                f"cannot import module {name!r}: {type(exc).__name__}: {exc}; check the "
                "--module name and that it imports from the current directory"
            ) from exc
    found = registered_workflows().values()
    if not found:
        _log.warning("modules %s define no @workflow; only actions will run", list(modules))
    return {w.version: w for w in found}
