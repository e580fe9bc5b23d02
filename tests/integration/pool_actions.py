"""Actions the worker-pool tests run in real worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from rappelx import _action
from rappelx._action import action

#: Set in the parent by the test, inherited by workers through the environment.
MARKER_ENV = "RAPPELX_TEST_MARKER"


class PaymentDeclined(Exception):
    """A user exception with a custom constructor and an extra attribute."""

    def __init__(self, amount: int, reason: str) -> None:
        super().__init__(f"declined {amount}: {reason}")
        self.amount = amount
        self.reason = reason


@action
async def noop() -> None:
    return None


@action
async def add(a: int, b: int = 0) -> int:
    return a + b


@action(name="pool.echo")
async def echo(value: object) -> object:
    return value


@action
async def pid() -> int:
    return os.getpid()


@action
async def sleep_then(seconds: float, value: object) -> object:
    await asyncio.sleep(seconds)
    return value


@action(timeout=0.2)
async def slow_with_default_timeout() -> str:
    await asyncio.sleep(30)
    return "too late"


@action
async def raise_key_error(key: str) -> None:
    raise KeyError(key)


@action
async def decline(amount: int) -> None:
    raise PaymentDeclined(amount, "insufficient funds")


@action
async def own_timeout_error() -> None:
    raise TimeoutError("the action's own timeout, not the pool's")


@action
async def unencodable_value() -> object:
    return object()


@action
async def chatty() -> str:
    # Text on stdout and raw bytes on fd 1 must not corrupt the result frames.
    print("hello from an action on stdout")
    sys.stdout.flush()
    os.write(1, b"\x00\x00\x00\x10raw bytes on fd 1\n")
    return "still fine"


@action
async def read_stdin() -> str:
    return sys.stdin.read()


@action
async def environment() -> str | None:
    return os.environ.get(MARKER_ENV)


@action
async def registered_here() -> int:
    return len(_action.registered_actions())


@action
async def kill_self() -> None:
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)


@action
async def exit_hard() -> None:
    os._exit(3)


@action
async def block_the_loop(seconds: float) -> None:
    import time

    time.sleep(seconds)  # a badly behaved action: close() must still stop its worker


class CarriesAHandle(Exception):
    """An exception whose attribute the codec cannot encode."""

    def __init__(self) -> None:
        super().__init__("with a handle")
        self.handle = object()


@action
async def raise_unencodable() -> None:
    raise CarriesAHandle()
