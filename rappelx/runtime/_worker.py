"""The worker subprocess: ``python -m rappelx.runtime._worker [--concurrency N] MODULE...``.

A worker imports the user modules (which registers their ``@action`` functions), then
reads task frames from its stdin and writes result frames to its stdout, running up to
``--concurrency`` actions at once on one event loop (uvloop when installed). The protocol
owns the original stdin and stdout file descriptors; user code sees ``/dev/null`` as stdin
and the process's stderr as stdout, so a stray ``print`` cannot corrupt a frame.

The worker exits when the parent closes the task pipe (or dies): running actions are
cancelled, since the parent drains before it closes when it wants them to finish.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from rappelx._action import lookup_action
from rappelx.exceptions import ActionTimeout, CodecError
from rappelx.runtime._codec import dumps, loads
from rappelx.runtime._frames import (
    IMPORT_FAILED,
    MAX_PAYLOAD,
    READY,
    RESULTS,
    TASKS,
    FrameDecoder,
    FrameError,
    encode_batch,
    encode_frame,
)
from rappelx.runtime._loop import loop_factory
from rappelx.runtime._work import UnknownActionError

Outcome = tuple[bool, bytes, float]


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker until the parent closes the task pipe; return the exit status."""
    options = _parse_arguments(argv)
    task_fd, result_fd = _take_protocol_fds()
    # Ctrl-C reaches the whole process group; the parent decides how to stop workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    failure = _import_modules(options.modules)
    if failure is not None:
        _write_all(result_fd, encode_frame([IMPORT_FAILED, list(failure)]))
        return 1
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(options.concurrency, task_fd, result_fd))
    return 0


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rappelx.runtime._worker")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("modules", nargs="*")
    return parser.parse_args(argv)


def _take_protocol_fds() -> tuple[int, int]:
    """Move the protocol pipes off fds 0 and 1 so user code cannot read or write them."""
    task_fd = os.dup(0)
    result_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return task_fd, result_fd


def _import_modules(modules: Sequence[str]) -> tuple[str, str] | None:
    """Import the user modules; return ``(module, traceback)`` of the first failure."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for module in modules:
        try:
            importlib.import_module(module)
        except (Exception, SystemExit):
            return module, traceback.format_exc()
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _serve(concurrency: int, task_fd: int, result_fd: int) -> None:
    loop = asyncio.get_running_loop()
    runner = _Runner(loop, concurrency)
    writer, _ = await loop.connect_write_pipe(
        lambda: _PipeWatch(runner), os.fdopen(result_fd, "wb", buffering=0)
    )
    runner.writer = writer
    writer.write(encode_frame([READY, os.getpid()]))
    reader, _ = await loop.connect_read_pipe(
        lambda: _TaskPipe(runner), os.fdopen(task_fd, "rb", buffering=0)
    )
    try:
        await runner.stopped
    finally:
        reader.close()
        await runner.cancel_all()
        writer.close()


class _Runner:
    """Runs the actions of incoming tasks and batches their results back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, concurrency: int) -> None:
        self._loop = loop
        self._concurrency = max(1, concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._backlog: collections.deque[list[Any]] = collections.deque()
        self._outbox: list[list[Any]] = []
        self._flush_pending = False
        self.writer: asyncio.WriteTransport | None = None
        self.stopped: asyncio.Future[None] = loop.create_future()

    def accept(self, batch: list[list[Any]]) -> None:
        """Start the tasks of one ``TASKS`` message, queueing those over the limit."""
        for item in batch:
            if len(self._running) < self._concurrency:
                self._start(item)
            else:
                self._backlog.append(item)

    def stop(self) -> None:
        if not self.stopped.done():
            self.stopped.set_result(None)

    async def cancel_all(self) -> None:
        self._backlog.clear()
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _start(self, item: list[Any]) -> None:
        token, name, payload, timeout = item
        task = self._loop.create_task(self._run(token, name, payload, timeout))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._backlog and not self.stopped.done():
            self._start(self._backlog.popleft())

    async def _run(self, token: int, name: str, payload: bytes, timeout: float | None) -> None:
        ok, body, duration = await _execute(name, payload, timeout)
        self._outbox.append([token, ok, body, duration])
        if not self._flush_pending:
            # Results finishing in this loop iteration go out together in one frame.
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        batch, self._outbox = self._outbox, []
        if self.writer is None or self.writer.is_closing():
            return
        for frame in encode_batch(RESULTS, batch):
            self.writer.write(frame)


class _TaskPipe(asyncio.Protocol):
    """Reads ``TASKS`` frames from the parent; end of stream means stop."""

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner
        self._decoder = FrameDecoder()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._decoder.feed(data)
        except FrameError as exc:
            print(f"rappelx worker {os.getpid()}: {exc}; exiting", file=sys.stderr)
            self._runner.stop()
            return
        for kind, body in messages:
            if kind == TASKS:
                self._runner.accept(body)

    def eof_received(self) -> bool | None:
        self._runner.stop()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._runner.stop()


class _PipeWatch(asyncio.Protocol):
    """Stops the worker when the parent stops reading results (it has gone away)."""

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner

    def connection_lost(self, exc: Exception | None) -> None:
        self._runner.stop()


async def _execute(name: str, payload: bytes, timeout: float | None) -> Outcome:
    """Run one action; return ``(ok, encoded value or exception, seconds it ran)``."""
    definition = lookup_action(name)
    if definition is None:
        return _failure(name, UnknownActionError.for_action(name), 0.0)
    try:
        args, kwargs = _decode_arguments(name, payload)
    except CodecError as exc:
        return _failure(name, exc, 0.0)
    limit = timeout if timeout is not None else definition.timeout
    started = time.perf_counter()
    try:
        if limit is None:
            value = await definition.fn(*args, **kwargs)
        else:
            value = await _run_with_timeout(name, definition.fn(*args, **kwargs), limit)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the worker is shutting down
        return _failure(name, exc, time.perf_counter() - started)
    except Exception as exc:
        return _failure(name, exc, time.perf_counter() - started)
    duration = time.perf_counter() - started
    try:
        body = _encode_checked(value)
    except Exception as exc:
        return _failure(name, _unsendable(name, "returned", value, exc), duration)
    return True, body, duration


async def _run_with_timeout(name: str, call: Any, limit: float) -> Any:
    scope = asyncio.timeout(limit)
    try:
        async with scope:
            return await call
    except TimeoutError:
        if scope.expired():
            raise ActionTimeout(f"action {name} exceeded its timeout of {limit}s") from None
        raise


def _decode_arguments(name: str, payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    try:
        decoded = loads(payload)
    except CodecError as exc:
        raise CodecError(f"cannot decode the arguments of action {name}: {exc}") from exc
    if (
        not isinstance(decoded, tuple | list)
        or len(decoded) != 2
        or not isinstance(decoded[0], tuple | list)
        or not isinstance(decoded[1], dict)
    ):
        raise CodecError(
            f"the arguments of action {name} must be encoded as (args_tuple, kwargs_dict), "
            f"got {type(decoded).__qualname__}"
        )
    return tuple(decoded[0]), decoded[1]


def _failure(name: str, error: BaseException, duration: float) -> Outcome:
    try:
        return False, _encode_checked(error), duration
    except Exception as exc:
        return False, dumps(_unsendable(name, "raised", error, exc)), duration


def _encode_checked(value: object) -> bytes:
    body = dumps(value)
    if len(body) > MAX_PAYLOAD:
        raise CodecError(f"it encodes to {len(body)} bytes, above the limit of {MAX_PAYLOAD}")
    return body


def _unsendable(name: str, verb: str, value: object, exc: Exception) -> CodecError:
    kind = type(value)
    return CodecError(
        f"action {name} {verb} a {kind.__module__}.{kind.__qualname__} that cannot be sent "
        f"back to the dispatcher: {exc}. Use types the rappelx codec supports (DESIGN.md "
        "section 4)"
    )


if __name__ == "__main__":
    sys.exit(main())
