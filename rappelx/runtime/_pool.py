"""The parent side of the worker pool: spawn worker subprocesses, feed them tasks.

The dispatcher hands :class:`Task` batches to :meth:`WorkerPool.submit`; each task goes to
the least-loaded worker, and the tasks bound for one worker in one loop iteration travel
in one frame. Results come back in batches through the ``on_results`` callback, always on
the event loop. A worker that dies is noticed when its process exits: its in-flight tasks
come back as ``infra`` failures carrying :class:`WorkerLost` and a fresh worker replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from rappelx.exceptions import RappelxError
from rappelx.runtime._codec import dumps
from rappelx.runtime._frames import (
    IMPORT_FAILED,
    MAX_PAYLOAD,
    READY,
    RESULTS,
    TASKS,
    FrameDecoder,
    FrameError,
    encode_batch,
)
from rappelx.runtime._work import (
    DrainTimeout,
    Task,
    TaskResult,
    UnknownActionError,
    WorkerImportError,
    WorkerLost,
    WorkerStartError,
)

__all__ = [
    "DrainTimeout",
    "Task",
    "TaskResult",
    "UnknownActionError",
    "WorkerImportError",
    "WorkerLost",
    "WorkerPool",
    "WorkerStartError",
]

_log = logging.getLogger("rappelx.pool")

#: How long ``close()`` waits for workers to exit on their own, then after SIGTERM.
_STOP_GRACE = 5.0
#: After the process exits, how long to wait for the rest of its output.
_OUTPUT_GRACE = 1.0
#: Replacements that die before they are ready are retried with backoff up to this.
_MAX_RESPAWN_DELAY = 30.0


ResultCallback = Callable[[list[TaskResult]], None]


class WorkerPool:
    """A pool of worker subprocesses that run actions.

    Args:
        modules: User modules every worker imports (registering their actions).
        processes: Number of workers; ``None`` means one per core.
        concurrency: Actions one worker runs at once.
        on_results: Called on the event loop with each batch of results.
        env: Variables added to (or overriding) the parent's environment for workers.
    """

    def __init__(
        self,
        modules: Sequence[str],
        *,
        processes: int | None = None,
        concurrency: int = 256,
        on_results: ResultCallback,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if concurrency < 1 or (processes is not None and processes < 1):
            raise RappelxError("WorkerPool needs processes >= 1 and concurrency >= 1")
        self._modules = list(modules)
        self._processes = processes or os.cpu_count() or 1
        self._concurrency = concurrency
        self._on_results = on_results
        self._env = {**os.environ, **env} if env is not None else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[_Worker] = []
        self._launches: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._flush_scheduled = False
        self._drained: asyncio.Future[None] | None = None
        self._respawn_failures = 0
        self._running = False
        self._closing = False
        self._shutdown: asyncio.Task[None] | None = None

    @property
    def capacity(self) -> int:
        """Free slots: how many more tasks the workers can run at once right now."""
        return max(0, self._processes * self._concurrency - self._in_flight)

    @property
    def in_flight(self) -> int:
        """Tasks submitted whose results have not been delivered yet."""
        return self._in_flight

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.pid for w in self._workers if w.pid is not None]

    async def start(self) -> None:
        """Spawn the workers and wait until each has imported the modules.

        Raises:
            WorkerImportError: A worker could not import a module (with its traceback).
            WorkerStartError: A worker exited before it was ready for another reason.
        """
        if self._loop is not None:
            raise RappelxError("WorkerPool.start() was already called; create a new pool")
        self._loop = asyncio.get_running_loop()
        workers = [self._spawn(delay=0.0) for _ in range(self._processes)]
        pending = {w.ready for w in workers}
        try:
            while pending:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for worker in workers:
                    if worker.startup_error is not None:
                        raise worker.startup_error
        except BaseException:
            await self.close()
            raise
        self._running = True

    def submit(self, tasks: Sequence[Task]) -> None:
        """Queue ``tasks`` on the least-loaded workers; never blocks.

        Raises:
            RappelxError: The pool is not running, a token is already in flight, or a
                payload is too large.
        """
        if not self._running:
            raise RappelxError("WorkerPool.submit() needs a started pool that is not closed")
        self._check(tasks)
        ready = [w for w in self._workers if w.is_ready] or self._workers
        for task in tasks:
            worker = min(ready, key=_Worker.load)
            worker.inflight[task.token] = task.action
            worker.outbox.append([task.token, task.action, task.payload, task.timeout])
        self._in_flight += len(tasks)
        self._schedule_flush()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every in-flight task has delivered its result.

        Raises:
            DrainTimeout: ``timeout`` seconds passed first.
        """
        if self._in_flight == 0:
            return
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._drained), timeout)
        except TimeoutError:
            raise DrainTimeout(
                f"{self._in_flight} tasks were still running after {timeout}s"
            ) from None

    async def close(self) -> None:
        """Stop every worker; tasks still in flight come back as ``infra`` results.

        Workers get :data:`_STOP_GRACE` seconds to exit after their task pipe closes, then
        SIGTERM, then SIGKILL. Call :meth:`drain` first to let running actions finish.
        """
        if self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_task(self._stop_workers())
        # Shielded: a caller cancelled mid-close must not leave workers half stopped.
        await asyncio.shield(self._shutdown)

    # ------------------------------------------------------------- internal machinery
    async def _stop_workers(self) -> None:
        self._closing = True
        self._running = False
        for launch in list(self._launches):
            launch.cancel()
        await asyncio.gather(*self._launches, return_exceptions=True)
        for worker in list(self._workers):
            worker.stop()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            pending = [w.finished for w in self._workers]
            if not pending:
                break
            if sig is not None:
                for worker in self._workers:
                    worker.send_signal(sig)
            await asyncio.wait(pending, timeout=_STOP_GRACE)

    def _check(self, tasks: Sequence[Task]) -> None:
        tokens = {task.token for task in tasks}
        if len(tokens) != len(tasks) or any(
            token in w.inflight for w in self._workers for token in tokens
        ):
            raise RappelxError(
                "WorkerPool.submit(): a task token is already in flight; tokens must be "
                "unique among the pool's in-flight tasks"
            )
        for task in tasks:
            if len(task.payload) > MAX_PAYLOAD:
                raise RappelxError(
                    f"the arguments of action {task.action} encode to {len(task.payload)} "
                    f"bytes, above the limit of {MAX_PAYLOAD}; pass a reference instead"
                )

    def _spawn(self, delay: float) -> _Worker:
        worker = _Worker(self)
        self._workers.append(worker)
        launch = self._running_loop().create_task(self._launch(worker, delay))
        self._launches.add(launch)
        launch.add_done_callback(self._launches.discard)
        return worker

    async def _launch(self, worker: _Worker, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        command = [sys.executable, "-m", "rappelx.runtime._worker"]
        command += ["--concurrency", str(self._concurrency), "--", *self._modules]
        try:
            await self._running_loop().subprocess_exec(
                lambda: worker,
                *command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
                env=self._env,
            )
        except asyncio.CancelledError:
            worker.abandon(None)
            raise
        except OSError as exc:
            worker.abandon(WorkerStartError(f"cannot start a worker process: {exc}"))
            return
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for worker in self._workers:
            worker.flush()

    def _deliver(self, results: list[TaskResult]) -> None:
        self._in_flight -= len(results)
        try:
            self._on_results(results)
        except Exception as exc:
            self._running_loop().call_exception_handler(
                {"message": "WorkerPool on_results callback failed", "exception": exc}
            )
        if self._in_flight == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _worker_gone(self, worker: _Worker) -> None:
        """Replace a dead worker, then fail its in-flight tasks as infra faults."""
        self._workers.remove(worker)
        if not self._closing and (self._running or worker.is_ready):
            if worker.is_ready:
                self._respawn_failures = 0
                delay = 0.0
            else:
                self._respawn_failures += 1
                delay = min(_MAX_RESPAWN_DELAY, 0.25 * 2**self._respawn_failures)
                _log.warning("%s\nStarting another worker in %.1fs", worker.startup_error, delay)
            self._spawn(delay)
        if worker.inflight:
            self._deliver(worker.lost_results())

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RappelxError("WorkerPool.start() must be awaited first")
        return self._loop


class _Worker(asyncio.SubprocessProtocol):
    """One worker process as the parent sees it; also the protocol of its pipes."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._loop = pool._running_loop()
        self.inflight: dict[int, str] = {}  # token -> action name
        self.outbox: list[list[Any]] = []  # tasks not yet written to the process
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.finished: asyncio.Future[None] = self._loop.create_future()
        self.startup_error: WorkerStartError | None = None
        self.pid: int | None = None
        self.is_ready = False
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._decoder = FrameDecoder()
        self._exited = False
        self._output_closed = False

    def load(self) -> int:
        return len(self.inflight)

    def flush(self) -> None:
        """Write the queued tasks to the process, once it exists."""
        if not self.outbox or self._stdin is None:
            return
        if not self._stdin.is_closing():
            for frame in encode_batch(TASKS, self.outbox):
                self._stdin.write(frame)
        # A closing pipe means the process is dying: the tasks stay in ``inflight`` and
        # come back as infra results when its exit is processed.
        self.outbox = []

    def stop(self) -> None:
        """Ask the process to exit by closing its task pipe."""
        if self._stdin is not None:
            self._stdin.close()

    def send_signal(self, sig: int) -> None:
        if self._transport is not None and not self._exited:
            try:
                self._transport.send_signal(sig)
            except ProcessLookupError:
                pass  # exited between the check and the signal

    def abandon(self, error: WorkerStartError | None) -> None:
        """The process never started (launch failed or was cancelled)."""
        self.startup_error = error or WorkerStartError("worker start was cancelled")
        self._gone()

    def lost_results(self) -> list[TaskResult]:
        """Infra failures for every task still in flight on this (dead) worker."""
        returncode = self._transport.get_returncode() if self._transport else None
        if self._pool._closing:
            how = "was stopped by WorkerPool.close()"
        else:
            how = _describe_exit(returncode)
        results = []
        for token, name in self.inflight.items():
            error = WorkerLost(
                f"worker process {self.pid} {how} while running action {name}; this is "
                "an infrastructure fault, so the task is retried without using up an attempt",
                pid=self.pid,
                returncode=returncode,
            )
            results.append(TaskResult(token, False, dumps(error), 0.0, infra=True))
        self.inflight.clear()
        return results

    # ---------------------------------------------------------- subprocess protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.SubprocessTransport, transport)
        self.pid = self._transport.get_pid()
        self._stdin = cast(asyncio.WriteTransport, self._transport.get_pipe_transport(0))

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        try:
            messages = self._decoder.feed(cast(bytes, data))
        except FrameError as exc:
            _log.error("worker %s wrote a corrupt stream (%s); killing it", self.pid, exc)
            self.send_signal(signal.SIGKILL)
            return
        results: list[TaskResult] = []
        for kind, body in messages:
            if kind == RESULTS:
                self._collect(body, results)
            elif kind == READY:
                self.is_ready = True
                self.ready.set_result(None)
            elif kind == IMPORT_FAILED:
                self.startup_error = WorkerImportError(*body)
        if results:
            self._pool._deliver(results)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._output_closed = True
            if self._exited:
                self._gone()

    def process_exited(self) -> None:
        self._exited = True
        if self._output_closed:
            self._gone()
        else:
            # Normally the output pipe closes at the same moment; if something else
            # holds it open, do not wait for it forever.
            self._loop.call_later(_OUTPUT_GRACE, self._gone)

    # ---------------------------------------------------------------------- helpers
    def _collect(self, body: list[list[Any]], results: list[TaskResult]) -> None:
        inflight = self.inflight
        for token, ok, payload, duration in body:
            if inflight.pop(token, None) is not None:
                results.append(TaskResult(token, ok, payload, duration))

    def _gone(self) -> None:
        if self.finished.done():
            return
        if self._transport is not None:
            self._transport.close()
        if not self.ready.done():
            if self.startup_error is None:
                how = _describe_exit(self._transport.get_returncode() if self._transport else None)
                self.startup_error = WorkerStartError(
                    f"worker process {self.pid} {how} before it was ready; its stderr (above) "
                    "says why"
                )
            self.ready.set_result(None)
        self._pool._worker_gone(self)
        self.finished.set_result(None)


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "was lost"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
