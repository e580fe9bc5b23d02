"""One LISTEN connection that survives Postgres restarts.

Notifications sent while the connection was down are lost, so after every (re)connect
the owner's ``on_connect`` callback runs: it re-checks whatever it was waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

import asyncpg

from rappelx.runtime._pgstore import TRANSIENT_ERRORS

_log = logging.getLogger("rappelx.listen")

NotificationHandler = Callable[[str], None]
_FAILED: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, TimeoutError)


class Listener:
    """LISTEN on some channels from a dedicated connection, reconnecting as needed.

    Args:
        dsn: The database.
        channels: Channel name -> handler called (on the event loop) with each payload.
        on_connect: Called after each successful (re)connect, before notifications flow.
        max_backoff: Longest wait between reconnection attempts, in seconds.
        keepalive: Seconds between pings of an idle connection.
        application_name: How the connection shows in ``pg_stat_activity``.
    """

    def __init__(
        self,
        dsn: str,
        channels: Mapping[str, NotificationHandler],
        *,
        on_connect: Callable[[], None] | None = None,
        max_backoff: float = 2.0,
        keepalive: float = 10.0,
        application_name: str = "rappelx-listen",
    ) -> None:
        self._dsn = dsn
        self._channels = dict(channels)
        self._on_connect = on_connect
        self._max_backoff = max_backoff
        self._keepalive = keepalive
        self._settings = {"application_name": application_name}
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._ever_connected = False

    @property
    def connected(self) -> bool:
        """Whether notifications are currently being received."""
        return self._connected.is_set()

    async def start(self, *, wait: bool = True) -> None:
        """Start listening; with ``wait``, return once the first connection is up."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rappelx-listener")
        if wait:
            waiter = asyncio.create_task(self._connected.wait())
            done, _ = await asyncio.wait({waiter, self._task}, return_when="FIRST_COMPLETED")
            if self._task in done:
                waiter.cancel()
                self._task.result()

    async def close(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # it failed before anyone waited for it; say so once
                _log.exception("LISTEN connection had failed")
        await self._disconnect()

    async def _run(self) -> None:
        delay = 0.05
        while True:
            lost = asyncio.Event()
            try:
                await self._connect(lost)
            except Exception as exc:
                if not isinstance(exc, TRANSIENT_ERRORS) and not self._ever_connected:
                    raise  # a bad DSN or credentials: tell start() rather than retry
                _log.warning("LISTEN connection failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            delay = 0.05
            self._ever_connected = True
            self._connected.set()
            if self._on_connect is not None:
                self._on_connect()
            await self._watch(lost)
            self._connected.clear()
            _log.warning("LISTEN connection lost; reconnecting")
            await self._disconnect()

    async def _watch(self, lost: asyncio.Event) -> None:
        """Return when the connection is gone; ping it so a silent drop is noticed too."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._keepalive)
                return
            conn = self._conn
            try:
                assert conn is not None
                await asyncio.wait_for(conn.execute("SELECT 1"), self._keepalive)
            except _FAILED:
                return

    async def _connect(self, lost: asyncio.Event) -> None:
        conn = await asyncpg.connect(self._dsn, server_settings=self._settings)
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            for channel, handler in self._channels.items():
                await conn.add_listener(channel, _adapter(handler))
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), timeout=2)
        except _FAILED:
            conn.terminate()


def _adapter(handler: NotificationHandler) -> Callable[[object, int, str, str], None]:
    def on_notification(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        handler(payload)

    return on_notification
