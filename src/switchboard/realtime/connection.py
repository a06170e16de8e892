"""One client connection: a bounded outgoing queue drained by one writer task,
and the connection's subscriptions.

Fan-out never awaits a client: it puts the shared frame text on the queue and
moves on. A client that lets its queue fill up is closed with 4008 and resumes
with `since`; it never slows anyone else down nor grows memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard.metrics import METRICS
from switchboard.realtime.codes import CloseCode

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT = 2.0


class Connection:
    """The send side of one WebSocket."""

    def __init__(self, websocket: WebSocket, *, max_queue: int) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(max_queue)
        self.subscriptions: dict[str, Subscription] = {}
        self.close_code: int | None = None
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name="ws writer")

    async def _write(self) -> None:
        send = self.websocket.send
        try:
            while (frame := await self.queue.get()) is not None:
                await send({"type": "websocket.send", "text": frame})
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client went away; the reader notices and cleans up
        if self.close_code is not None:
            with contextlib.suppress(OSError, RuntimeError):
                await self.websocket.close(self.close_code)

    def send_nowait(self, frame: str) -> None:
        """Queue a frame without waiting; a full queue means a slow consumer."""
        if self.close_code is not None:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            METRICS.slow_consumers.inc()
            self.close(CloseCode.SLOW_CONSUMER)

    async def send(self, frame: str) -> None:
        """Queue a frame, waiting for room (replies and replays, not fan-out)."""
        if self.close_code is None:
            await self.queue.put(frame)

    def close(self, code: int) -> None:
        """Stop sending: drop what is queued and close with `code` from the writer task."""
        if self.close_code is not None:
            return
        self.close_code = code
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def stop(self) -> None:
        """Release the writer task, letting it send a pending close frame first."""
        writer = self._writer
        if writer is None:
            return
        if self.close_code is not None:
            await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


class Subscription:
    """A connection's view of one channel: where it is (`position`) and, while its
    snapshot or replay is being sent, the live events that arrive meanwhile."""

    def __init__(self, connection: Connection, channel: str) -> None:
        self.connection = connection
        self.channel = channel
        self.position = 0
        self.pending: list[tuple[int, str]] | None = []

    def deliver(self, seq: int, frame: str) -> None:
        if self.pending is not None:
            self.pending.append((seq, frame))
            if len(self.pending) > self.connection.queue.maxsize:
                self.pending = None
                METRICS.slow_consumers.inc()
                self.connection.close(CloseCode.SLOW_CONSUMER)
            return
        if seq <= self.position:
            return
        if seq != self.position + 1:
            # The hub forwards gapless from before this subscription began; never expected.
            log.error("subscription_gap", channel=self.channel, position=self.position, seq=seq)
            self.connection.close(CloseCode.TRY_AGAIN_LATER)
            return
        self.position = seq
        METRICS.events_delivered.inc()
        self.connection.send_nowait(frame)

    def go_live(self, position: int) -> None:
        """The snapshot/replay up to `position` is queued: flush what arrived meanwhile."""
        pending, self.pending = self.pending or [], None
        self.position = position
        for seq, frame in pending:
            self.deliver(seq, frame)
