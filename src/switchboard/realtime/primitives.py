"""Two asyncio primitives that cost nothing while idle: `Outbox`, a bounded queue, and
`Signal`, a flag to wait for.

They do what `asyncio.Queue` and `asyncio.Event` do for one open connection, without
the deques those hold even when empty (3.8 KiB of each idle connection, bench/NOTES.md).
Both `Connection` and uvicorn's protocol (`realtime/wire.py`) are built on them; they
know neither.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    """A bounded FIFO with one waiting reader, the part of `asyncio.Queue` a connection
    uses. An idle connection holds no buffer: the deque is made with the first item queued
    and let go once emptied (an empty `asyncio.Queue` is four deques, about 3 KiB)."""

    __slots__ = ("_frames", "_waiter", "maxsize", "on_put")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.on_put: Callable[[], None] | None = None
        """Called after every frame queued: a transport that sends only while something is
        queued starts its sender here (`realtime/websocket.py`)."""
        self._frames: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._frames) if self._frames is not None else 0

    def empty(self) -> bool:
        return not self._frames

    def put_nowait(self, frame: T) -> None:
        """Append `frame`; `asyncio.QueueFull` when the queue holds `maxsize` already."""
        if self._frames is None:
            self._frames = deque()
        elif len(self._frames) >= self.maxsize:
            raise asyncio.QueueFull
        self._frames.append(frame)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_put is not None:
            self.on_put()

    def head(self) -> T:
        """The oldest frame, left in place; `asyncio.QueueEmpty` when there is none."""
        if not self._frames:
            raise asyncio.QueueEmpty
        return self._frames[0]

    def get_nowait(self) -> T:
        """The oldest frame; `asyncio.QueueEmpty` when there is none."""
        frames = self._frames
        if not frames:
            raise asyncio.QueueEmpty
        frame = frames.popleft()
        if not frames:
            self._frames = None
        return frame

    async def get(self) -> T:
        """The oldest frame, waiting for one (a cancelled wait takes nothing)."""
        while not self._frames:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.get_nowait()


class Signal:
    """A flag coroutines can wait for, like `asyncio.Event`, but with no deque of waiters
    until someone waits (most connections never do)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
