"""Bounded shutdown: no cleanup step may keep a stopping worker alive.

uvicorn bounds how long it waits for connections (`timeout_graceful_shutdown`),
not the application's own cleanup. A background loop that never finishes
cancelling, or a close that waits on a socket nobody answers, would otherwise
hold the process forever. Each step therefore runs as its own task; one that
misses its deadline is cancelled, logged and left behind, and shutdown moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Step = tuple[str, Callable[[], Awaitable[None]]]
"""A named cleanup step: `("hub", hub.close)`."""


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


async def close_all(steps: list[Step], timeout: float) -> None:
    """Every step in order, each with its own deadline, whatever the others did."""
    for name, close in steps:
        await close_within(name, close, timeout)


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
