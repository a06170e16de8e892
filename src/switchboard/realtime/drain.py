"""Draining on SIGTERM/SIGINT: every live stream learns that this worker is stopping.

uvicorn already closes its WebSockets with 1012 (service restart) when asked to
stop, but it waits for HTTP responses to finish, and an SSE stream never does.
So the app chains its own step onto the signal handlers uvicorn installs:
every open connection is closed with 1012 — an SSE stream ends and its
`EventSource` reconnects elsewhere with `Last-Event-ID` — while in-flight
writes run to completion before the worker exits.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Drain:
    """The worker's open connections, and whether it is stopping."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.stopping = False

    def track(self, connection: Connection) -> None:
        if self.stopping:
            connection.close(CloseCode.SERVICE_RESTART)
        self.connections.add(connection)

    def untrack(self, connection: Connection) -> None:
        self.connections.discard(connection)

    def begin(self) -> None:
        self.stopping = True
        for connection in list(self.connections):
            connection.close(CloseCode.SERVICE_RESTART)

    @contextmanager
    def on_signals(self) -> Iterator[None]:
        """Run `begin` on the loop when a stop signal arrives, then the previous handler."""
        loop = asyncio.get_running_loop()
        previous: dict[signal.Signals, Any] = {}

        def chained(handler: Any) -> Callable[[int, FrameType | None], None]:
            def handle(sig: int, frame: FrameType | None) -> None:
                loop.call_soon_threadsafe(self.begin)
                if callable(handler):
                    handler(sig, frame)

            return handle

        try:
            for sig in SIGNALS:
                previous[sig] = signal.getsignal(sig)
                signal.signal(sig, chained(previous[sig]))
        except ValueError:  # not the main thread: nobody sends us signals here
            pass
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
