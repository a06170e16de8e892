"""Bounded shutdown: no cleanup step may keep a stopping worker alive.

On SIGTERM/SIGINT uvicorn closes its WebSockets with 1012 (service restart),
but it waits for HTTP responses to finish, and an SSE stream never does. So
the app chains its own step onto the signal handlers uvicorn installs
(`on_stop_signals`): every open connection is drained (closed with 1012; an
SSE stream ends and its `EventSource` reconnects elsewhere with
`Last-Event-ID`) while in-flight writes run to completion. A second stop
signal ends the process at once, and so does the first signal's deadline
passing (checked from a thread, so not even a blocked event loop can keep the
worker alive).

uvicorn bounds how long it waits for connections (`timeout_graceful_shutdown`),
not the application's own cleanup. A background loop that never finishes
cancelling, or a close that waits on a socket nobody answers, would otherwise
hold the process forever. Each step therefore runs as its own task; one that
misses its deadline is cancelled, logged and left behind, and shutdown moves on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
SAME_STOP = 1.0
"""Seconds within which a repeated stop signal is the same request, not a second one.
With `serve --workers N` a worker often gets the stop twice at once: from whoever
signalled the process group (Ctrl-C in a terminal, systemd's control-group kill) and
again from uvicorn's supervisor. That must drain, not force an exit."""


async def close_within(name: str, close: Callable[[], Awaitable[None]], timeout: float) -> bool:
    """Run `close()` for at most `timeout` seconds; True if it finished cleanly.

    Waits with `asyncio.wait`, never by awaiting the step itself, so a step that
    ignores or swallows its cancellation cannot hold the caller.
    """
    task = asyncio.ensure_future(close())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        log.error("shutdown_step_timeout", step=name, timeout=timeout)
        return False
    if task.cancelled():
        log.error("shutdown_step_cancelled", step=name)
        return False
    if (exc := task.exception()) is not None:
        log.error("shutdown_step_failed", step=name, error=repr(exc))
        return False
    return True


def _exit_now(event: str, **fields: Any) -> None:
    """End the process without any further cleanup (the stop took too long)."""
    log.error(event, **fields)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(1)


@contextmanager
def on_stop_signals(begin: Callable[[], None], *, deadline: float) -> Iterator[None]:
    """Run `begin` on the loop when a stop signal arrives, then the previous handler.

    A second stop signal (more than `SAME_STOP` after the first; repeats within it
    are ignored) exits at once; so does `deadline` seconds passing after the first.
    Keep this open until the app's cleanup is over, so that both hold for the cleanup
    too.
    """
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Any] = {}
    first: list[float] = []  # when the first stop signal came

    def chained(handler: Any) -> Callable[[int, FrameType | None], None]:
        def handle(sig: int, frame: FrameType | None) -> None:
            if first:
                if time.monotonic() - first[0] < SAME_STOP:
                    return  # the same stop, delivered twice: neither we nor uvicorn force
                _exit_now("stop_forced", signal=signal.Signals(sig).name)
            first.append(time.monotonic())
            timer = threading.Timer(
                deadline, _exit_now, ("stop_deadline_exceeded",), {"deadline": deadline}
            )
            timer.daemon = True
            timer.start()
            loop.call_soon_threadsafe(begin)
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


class Background:
    """A background loop that stops for sure: the loop runs `while background.running`.

    Cancelling alone is not enough on Python 3.11: `asyncio.wait_for` (which redis-py
    uses for its socket timeouts) returns normally when the cancellation lands in the
    same loop iteration as the operation it waits for, so a `while True` loop that was
    cancelled runs on, and whoever awaits it waits forever. `stop` clears `running`
    first, then cancels: a swallowed cancellation ends the loop at its next check.
    """

    def __init__(self) -> None:
        self.running = False
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        self.running = True
        self._task = asyncio.create_task(loop, name=name)

    async def stop(self) -> None:
        self.running = False
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
