"""Draining on SIGTERM/SIGINT: every live stream learns that this worker is stopping.

uvicorn already closes its WebSockets with 1012 (service restart) when asked to
stop, but it waits for HTTP responses to finish, and an SSE stream never does.
So the app chains its own step onto the signal handlers uvicorn installs:
every open connection is closed with 1012 — an SSE stream ends and its
`EventSource` reconnects elsewhere with `Last-Event-ID` — while in-flight
writes run to completion before the worker exits.

Stopping is bounded, whatever the connections or the cleanup are doing: a
second stop signal ends the process at once, and so does the first signal's
deadline passing (checked from a thread, so not even a blocked event loop
can keep the worker alive).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import structlog

from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection

log = structlog.get_logger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _exit_now(event: str, **fields: Any) -> None:
    """End the process without any further cleanup (the stop took too long)."""
    log.error(event, **fields)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(1)


class Drain:
    """The worker's open connections, and whether it is stopping."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.stopping = False

    def track(self, connection: Connection) -> None:
        if self.stopping:
            connection.close(CloseCode.SERVICE_RESTART)
        self.connections.add(connection)

    def untrack(self, connection: Connection) -> bool:
        """Forget `connection`; False if it was not tracked (already released)."""
        if connection not in self.connections:
            return False
        self.connections.discard(connection)
        return True

    def close_where(self, predicate: Callable[[Connection], bool], code: int) -> None:
        """Close every open connection that `predicate` picks (revocation, expiry, stop)."""
        for connection in list(self.connections):
            if predicate(connection):
                connection.close(code)

    def begin(self) -> None:
        self.stopping = True
        self.close_where(lambda _: True, CloseCode.SERVICE_RESTART)

    @contextmanager
    def on_signals(self, *, deadline: float) -> Iterator[None]:
        """Run `begin` on the loop when a stop signal arrives, then the previous handler.

        A second stop signal exits at once; so does `deadline` seconds passing after
        the first. Keep this open until the app's cleanup is over, so that both hold
        for the cleanup too.
        """
        loop = asyncio.get_running_loop()
        previous: dict[signal.Signals, Any] = {}
        signalled = threading.Event()

        def chained(handler: Any) -> Callable[[int, FrameType | None], None]:
            def handle(sig: int, frame: FrameType | None) -> None:
                if signalled.is_set():
                    _exit_now("stop_forced", signal=signal.Signals(sig).name)
                signalled.set()
                timer = threading.Timer(
                    deadline, _exit_now, ("stop_deadline_exceeded",), {"deadline": deadline}
                )
                timer.daemon = True
                timer.start()
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
