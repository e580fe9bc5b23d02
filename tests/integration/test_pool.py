"""The worker pool, with real worker subprocesses (no database needed)."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import threading
from collections.abc import Callable

import pytest

from rappelx.exceptions import ActionTimeout, CodecError, RappelxError
from rappelx.runtime import _pool
from rappelx.runtime._codec import dumps, loads
from rappelx.runtime._pool import (
    DrainTimeout,
    Task,
    TaskResult,
    UnknownActionError,
    WorkerImportError,
    WorkerLost,
    WorkerPool,
)
from tests.integration import pool_actions as acts

MODULE = acts.__name__


class Collector:
    """An ``on_results`` callback that records every result and where it ran."""

    def __init__(self) -> None:
        self.results: dict[int, TaskResult] = {}
        self.duplicates: list[TaskResult] = []
        self.batches = 0
        self.threads: set[int] = set()
        self.changed = asyncio.Event()

    def __call__(self, batch: list[TaskResult]) -> None:
        self.batches += 1
        self.threads.add(threading.get_ident())
        for result in batch:
            if result.token in self.results:
                self.duplicates.append(result)
            self.results[result.token] = result
        self.changed.set()

    async def wait_for(self, *tokens: int) -> list[TaskResult]:
        while not all(t in self.results for t in tokens):
            self.changed.clear()
            await self.changed.wait()
        return [self.results[t] for t in tokens]

    def value(self, token: int) -> object:
        result = self.results[token]
        assert result.ok, loads(result.payload)
        return loads(result.payload)

    def error(self, token: int) -> BaseException:
        result = self.results[token]
        assert not result.ok
        error = loads(result.payload)
        assert isinstance(error, BaseException)
        return error


def task(token: int, fn: object, *args: object, timeout: float | None = None, **kwargs: object):
    name = fn if isinstance(fn, str) else fn.name  # type: ignore[attr-defined]
    return Task(token, name, dumps((args, kwargs)), timeout)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded by the per-test timeout) until ``condition()`` holds."""
    while not condition():
        await asyncio.sleep(0.02)


def process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` ("Z" for a zombie), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def worker_children() -> set[int]:
    """Live worker processes whose parent is this test process."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"rappelx.runtime._worker" in command:
            found.add(int(entry))
    return found


@pytest.fixture
async def make_pool():
    pools: list[WorkerPool] = []

    async def make(processes=2, concurrency=64, modules=(MODULE,), env=None):
        collector = Collector()
        pool = WorkerPool(
            modules, processes=processes, concurrency=concurrency, on_results=collector, env=env
        )
        pools.append(pool)
        await pool.start()
        return pool, collector

    yield make
    for pool in pools:
        await pool.close()


# ------------------------------------------------------------------ running actions
async def test_actions_run_in_workers_and_return_their_values(make_pool):
    pool, got = await make_pool()

    pool.submit(
        [
            task(1, acts.add, 2, 3),
            task(2, acts.add, 2, b=40),
            task(3, acts.echo, ("a", [1, (2.0, None)], {"k": b"\x00"})),
            task(4, acts.noop),
            task(5, acts.pid),
        ]
    )
    await pool.drain()

    assert got.value(1) == 5
    assert got.value(2) == 42
    assert got.value(3) == ("a", [1, (2.0, None)], {"k": b"\x00"})
    assert got.value(4) is None
    assert got.value(5) in pool.pids
    assert got.value(5) != os.getpid()
    assert got.duplicates == []


async def test_results_are_delivered_on_the_event_loop_thread(make_pool):
    pool, got = await make_pool()

    pool.submit([task(i, acts.noop) for i in range(50)])
    await pool.drain()

    assert got.threads == {threading.get_ident()}


async def test_duration_is_the_time_the_action_ran(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, acts.sleep_then, 0.1, "done")])
    [result] = await got.wait_for(1)

    assert result.ok and not result.infra
    assert result.duration >= 0.09


async def test_each_worker_imports_the_modules_before_start_returns(make_pool):
    pool, got = await make_pool(processes=2)

    pool.submit([task(1, acts.pid), task(2, acts.pid)])
    await pool.drain()

    # The two tasks of one batch go to the two idle workers, one each.
    assert {got.value(1), got.value(2)} == set(pool.pids)
    assert len(pool.pids) == 2


async def test_the_environment_reaches_workers(make_pool):
    pool, got = await make_pool(env={acts.MARKER_ENV: "from-the-parent"})

    pool.submit([task(1, acts.environment)])
    await pool.drain()

    assert got.value(1) == "from-the-parent"


async def test_action_output_on_stdout_does_not_corrupt_the_protocol(make_pool, capfd):
    pool, got = await make_pool(processes=1)

    pool.submit([task(1, acts.chatty), task(2, acts.read_stdin), task(3, acts.add, 1, 1)])
    await pool.drain()

    assert got.value(1) == "still fine"
    assert got.value(2) == ""  # stdin is /dev/null, not the task pipe
    assert got.value(3) == 2
    await pool.close()
    assert "hello from an action on stdout" in capfd.readouterr().err


# ------------------------------------------------------------------------- failures
async def test_exceptions_come_back_as_the_same_class(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, acts.raise_key_error, "missing"), task(2, acts.decline, 125)])
    await pool.drain()

    key_error = got.error(1)
    assert type(key_error) is KeyError
    assert key_error.args == ("missing",)
    declined = got.error(2)
    assert type(declined) is acts.PaymentDeclined
    assert (declined.amount, declined.reason) == (125, "insufficient funds")
    assert not got.results[1].infra and not got.results[2].infra


async def test_a_task_timeout_cancels_the_action_with_action_timeout(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, acts.sleep_then, 30, "late", timeout=0.2)])
    await got.wait_for(1)

    error = got.error(1)
    assert type(error) is ActionTimeout
    assert isinstance(error, TimeoutError)
    assert str(error) == f"action {acts.sleep_then.name} exceeded its timeout of 0.2s"
    assert not got.results[1].infra


async def test_the_action_default_timeout_applies_when_the_task_has_none(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, acts.slow_with_default_timeout)])
    await got.wait_for(1)

    assert type(got.error(1)) is ActionTimeout


async def test_an_action_raising_timeout_error_itself_is_not_an_action_timeout(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, acts.own_timeout_error, timeout=10)])
    await pool.drain()

    assert type(got.error(1)) is TimeoutError


async def test_an_unknown_action_tells_which_module_to_add(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, "billing.tasks.charge")])
    await pool.drain()

    error = got.error(1)
    assert type(error) is UnknownActionError
    assert "'billing.tasks.charge'" in str(error)
    assert "--module billing.tasks" in str(error)


async def test_a_payload_that_cannot_be_decoded_is_an_error_result(make_pool):
    pool, got = await make_pool()

    pool.submit(
        [
            Task(1, acts.add.name, b"\xc1 not a codec payload", None),
            Task(2, acts.add.name, dumps("just a string"), None),
        ]
    )
    await pool.drain()

    for token in (1, 2):
        error = got.error(token)
        assert isinstance(error, CodecError)
        assert acts.add.name in str(error)


async def test_a_return_value_the_codec_cannot_encode_is_a_codec_error(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, acts.unencodable_value)])
    await pool.drain()

    error = got.error(1)
    assert isinstance(error, CodecError)
    assert acts.unencodable_value.name in str(error)
    assert "builtins.object" in str(error)


async def test_an_exception_the_codec_cannot_encode_is_a_codec_error(make_pool):
    pool, got = await make_pool()

    pool.submit([task(1, acts.raise_unencodable)])
    await pool.drain()

    error = got.error(1)
    assert isinstance(error, CodecError)
    assert f"{acts.raise_unencodable.name} raised" in str(error)
    assert "CarriesAHandle" in str(error)


# ---------------------------------------------------------------- dying workers
async def test_a_sigkilled_worker_fails_its_tasks_as_infra_and_is_replaced(make_pool):
    pool, got = await make_pool(processes=2)
    pool.submit([task(1, acts.sleep_then, 30, "a"), task(2, acts.sleep_then, 30, "b")])
    await until(lambda: pool.in_flight == 2)
    victim, survivor = pool.pids

    os.kill(victim, signal.SIGKILL)
    [lost] = await _first_result(got)

    assert lost.infra and not lost.ok
    error = loads(lost.payload)
    assert type(error) is WorkerLost
    assert (error.pid, error.returncode) == (victim, -signal.SIGKILL)
    assert "SIGKILL" in str(error) and acts.sleep_then.name in str(error)
    assert pool.in_flight == 1  # the other worker's task is unaffected
    await until(lambda: len(worker_children()) == 2)
    assert victim not in pool.pids and survivor in pool.pids
    assert process_state(victim) is None  # reaped, not a zombie
    (replacement,) = set(pool.pids) - {survivor}
    await _runs_on(pool, got, replacement)


async def test_a_worker_that_kills_itself_mid_action_is_replaced(make_pool):
    pool, got = await make_pool(processes=1)
    [before] = pool.pids

    pool.submit([task(1, acts.kill_self), task(2, acts.sleep_then, 30, "x")])
    await got.wait_for(1, 2)

    assert all(got.results[t].infra for t in (1, 2))
    assert {type(got.error(t)) for t in (1, 2)} == {WorkerLost}
    await until(lambda: len(pool.pids) == 1 and pool.pids != [before])
    (after,) = pool.pids
    await _runs_on(pool, got, after)
    assert worker_children() == {after}


async def test_os_exit_reports_the_exit_status(make_pool):
    pool, got = await make_pool(processes=1)

    pool.submit([task(1, acts.exit_hard)])
    await got.wait_for(1)

    error = got.error(1)
    assert type(error) is WorkerLost and error.returncode == 3
    assert "exited with status 3" in str(error)
    pool.submit([task(2, acts.add, 1, 2)])  # queued for the replacement
    await got.wait_for(2)
    assert got.value(2) == 3


async def _first_result(got: Collector) -> list[TaskResult]:
    await until(lambda: bool(got.results))
    return list(got.results.values())


async def _runs_on(pool: WorkerPool, got: Collector, pid: int) -> None:
    """Submit ``pid()`` tasks until one runs on worker ``pid``."""
    token = 1000
    while True:
        token += 1
        pool.submit([task(token, acts.pid)])
        await got.wait_for(token)
        if got.value(token) == pid:
            return


# ---------------------------------------------------------------------- start up
async def test_a_module_that_does_not_exist_fails_start_with_the_traceback():
    pool = WorkerPool(["no_such_module_xyz"], processes=2, on_results=Collector())

    with pytest.raises(WorkerImportError) as caught:
        await pool.start()

    assert caught.value.module == "no_such_module_xyz"
    assert "ModuleNotFoundError" in caught.value.traceback
    assert "no_such_module_xyz" in str(caught.value)
    assert worker_children() == set()


async def test_a_module_that_raises_on_import_fails_start_with_its_traceback(tmp_path, monkeypatch):
    (tmp_path / "broken_actions_mod.py").write_text(
        textwrap.dedent(
            """
            import os

            SETTING = os.environ["RAPPELX_SETTING_THAT_IS_NOT_SET"]
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    pool = WorkerPool(["broken_actions_mod"], processes=1, on_results=Collector())

    with pytest.raises(WorkerImportError) as caught:
        await pool.start()

    assert isinstance(caught.value, RappelxError)
    assert "broken_actions_mod.py" in caught.value.traceback
    assert "KeyError: 'RAPPELX_SETTING_THAT_IS_NOT_SET'" in str(caught.value)
    assert worker_children() == set()


async def test_modules_are_imported_from_the_parents_working_directory(
    tmp_path, monkeypatch, make_pool
):
    (tmp_path / "cwd_actions_mod.py").write_text(
        textwrap.dedent(
            """
            from rappelx import _action

            @_action.action(name="cwd.hello")
            async def hello(who):
                return f"hello {who}"
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    pool, got = await make_pool(processes=1, modules=["cwd_actions_mod"])

    pool.submit([task(1, "cwd.hello", "world")])
    await pool.drain()

    assert got.value(1) == "hello world"


# --------------------------------------------------------- bookkeeping and load
async def test_capacity_and_in_flight_track_submitted_tasks(make_pool):
    pool, got = await make_pool(processes=2, concurrency=3)
    assert (pool.capacity, pool.in_flight) == (6, 0)

    pool.submit([task(i, acts.sleep_then, 0.2, i) for i in range(4)])
    assert (pool.capacity, pool.in_flight) == (2, 4)
    await pool.drain()

    assert (pool.capacity, pool.in_flight) == (6, 0)
    assert sorted(got.results) == [0, 1, 2, 3]


async def test_thousands_of_concurrent_tasks_complete_exactly_once(make_pool):
    pool, got = await make_pool(processes=2, concurrency=64)
    tokens = range(2000)

    # Far beyond capacity: workers queue what they cannot start yet.
    pool.submit([task(t, acts.sleep_then, 0.001 * (t % 7), t) for t in tokens[:1000]])
    pool.submit([task(t, acts.add, t, 1) for t in tokens[1000:]])
    await pool.drain()

    assert got.duplicates == []
    assert sorted(got.results) == list(tokens)
    assert all(got.value(t) == t for t in tokens[:1000])
    assert all(got.value(t) == t + 1 for t in tokens[1000:])
    assert got.batches < 2000  # results were coalesced into batches


async def test_a_token_already_in_flight_is_refused(make_pool):
    pool, _ = await make_pool()
    pool.submit([task(1, acts.sleep_then, 0.5, None)])

    with pytest.raises(RappelxError, match="already in flight"):
        pool.submit([task(1, acts.noop)])
    with pytest.raises(RappelxError, match="already in flight"):
        pool.submit([task(2, acts.noop), task(2, acts.noop)])
    assert pool.in_flight == 1


async def test_submit_needs_a_started_pool():
    pool = WorkerPool([MODULE], processes=1, on_results=Collector())

    with pytest.raises(RappelxError, match="started"):
        pool.submit([task(1, acts.noop)])


async def test_a_failing_result_callback_does_not_stop_the_pool(make_pool):
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    pool, got = await make_pool(processes=1)
    real = pool._on_results
    calls = 0

    def flaky(batch):
        nonlocal calls
        calls += 1
        real(batch)
        if calls == 1:
            raise RuntimeError("bug in the dispatcher")

    pool._on_results = flaky
    pool.submit([task(1, acts.noop)])
    await got.wait_for(1)
    pool.submit([task(2, acts.add, 2, 2)])
    await got.wait_for(2)

    assert got.value(2) == 4
    assert [type(c["exception"]) for c in reported] == [RuntimeError]
    assert pool.in_flight == 0


# ------------------------------------------------------------- drain and close
async def test_drain_waits_for_in_flight_tasks(make_pool):
    pool, got = await make_pool()
    pool.submit([task(i, acts.sleep_then, 0.05 * i, i) for i in range(6)])

    await pool.drain()

    assert pool.in_flight == 0 and sorted(got.results) == list(range(6))


async def test_drain_with_a_timeout_raises_drain_timeout(make_pool):
    pool, _ = await make_pool()
    pool.submit([task(1, acts.sleep_then, 30, None)])

    with pytest.raises(DrainTimeout, match="1 tasks were still running"):
        await pool.drain(timeout=0.1)
    assert isinstance(DrainTimeout("x"), TimeoutError)
    assert pool.in_flight == 1


async def test_close_stops_every_worker_and_reaps_it(make_pool):
    pool, got = await make_pool(processes=2)
    pids = pool.pids
    pool.submit([task(1, acts.sleep_then, 30, None)])
    await until(lambda: pool.in_flight == 1)

    await pool.close()

    assert [process_state(pid) for pid in pids] == [None, None]
    assert worker_children() == set()
    error = got.error(1)
    assert got.results[1].infra and type(error) is WorkerLost
    assert "close()" in str(error)
    with pytest.raises(RappelxError):
        pool.submit([task(2, acts.noop)])
    await pool.close()  # a second close is harmless


async def test_a_second_close_waits_for_the_first_to_finish(make_pool):
    pool, _ = await make_pool()
    pids = pool.pids
    first = asyncio.create_task(pool.close())
    await asyncio.sleep(0)  # the first close is under way

    await pool.close()

    assert [process_state(pid) for pid in pids] == [None, None]
    await first


async def test_close_terminates_a_worker_stuck_in_blocking_code(make_pool, monkeypatch):
    monkeypatch.setattr(_pool, "_STOP_GRACE", 0.3)
    pool, got = await make_pool(processes=1)
    [pid] = pool.pids
    pool.submit([task(1, acts.block_the_loop, 60)])
    await asyncio.sleep(0.2)  # let the worker enter time.sleep

    await pool.close()

    assert process_state(pid) is None
    assert got.results[1].infra
