"""One client connection, whatever its transport: a bounded outgoing queue and
the connection's subscriptions.

Fan-out never awaits a client: it puts the shared frame text on the queue and
moves on. The loop beside each transport drains the queue: `Writer`
(`realtime/websocket.py`), a task that runs only while something is queued, or
`EventStream`'s response body (`realtime/sse.py`). A client that lets its queue fill
up is closed with 4008 and resumes with `since`; it never slows anyone else down nor
grows memory without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from switchboard.auth.principal import ANONYMOUS, Principal
from switchboard.metrics import METRICS
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.primitives import Outbox, Signal
from switchboard.realtime.transport import Transport

if TYPE_CHECKING:
    from collections.abc import Sequence

    from switchboard.realtime.hub import BoardChange, Delivery, Run

log = structlog.get_logger(__name__)


class Connection:
    """The send side of one client."""

    def __init__(
        self,
        transport: Transport,
        *,
        max_queue: int,
        max_bytes: int = 0,
        principal: Principal = ANONYMOUS,
        slot: str = "",
    ) -> None:
        self.transport = transport
        self._expiry: asyncio.TimerHandle | None = None
        self.principal = principal
        self.slot = slot
        """Whose connection this counts as for the per-credential limit (`Connections`)."""
        self.queue: Outbox[str | None] = Outbox(max_queue)
        self.max_bytes = max_bytes
        """Bound on the text queued for this client (0: only the message bound applies)."""
        self.queued_bytes = 0
        self.subscriptions: dict[str, Subscription] = {}
        self.close_code: int | None = None
        self.closed = Signal()
        """Set by `close`: the transport should finish (or give up) and end the connection."""
        self.write_frame: Callable[[bytes], bool] | None = transport.write_now
        """The transport's fast path, read once here: fan-out calls it for every event."""
        self.sending = False
        """The transport is sending a queued frame right now."""
        self._drained = Signal()
        """Set whenever the transport takes a frame (or the connection closes): `send` waits."""

    @property
    def principal(self) -> Principal:
        """The credential the connection holds; one that expires closes it with 4101 at
        that moment, whatever the transport (re-armed whenever a new one takes over:
        the old one no longer holds)."""
        return self._principal

    @principal.setter
    def principal(self, principal: Principal) -> None:
        self._principal = principal
        self.release()
        if principal.expires_at is not None:
            delay = max(0.0, principal.expires_at - time.time())
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(delay, self.close, CloseCode.UNAUTHORIZED)

    def release(self) -> None:
        """The connection has ended (or holds a new credential): no expiry timer left."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    async def next_frame(self) -> str | None:
        """The next frame to send, in order; None once the connection is closed."""
        frame = await self.queue.get()
        if frame is not None:
            self.queued_bytes -= len(frame)
        self._drained.set()
        return frame

    def take_queued(self, max_bytes: int) -> list[str]:
        """The frames queued next, oldest first, up to `max_bytes` of them together and
        never past the end marker: a backlog the transport sends in one write."""
        frames: list[str] = []
        queue = self.queue
        while not queue.empty():
            frame = queue.head()
            if frame is None or len(frame) > max_bytes:
                break
            queue.get_nowait()
            frames.append(frame)
            max_bytes -= len(frame)
            self.queued_bytes -= len(frame)
        if frames:
            self._drained.set()
        return frames

    def send_events(self, events: Sequence[Delivery], wire: bytes) -> None:
        """Fan-out: write the pre-built frames (`wire`: those of `events`, back to back)
        straight away when nothing is ahead of them, else queue them one by one."""
        write = self.write_frame
        if (
            write is not None
            and not self.sending
            and self.queue.empty()
            and self.close_code is None
            and write(wire)
        ):
            return
        for seq, frame, _, _ in events:
            self.send_nowait(self.transport.event(seq, frame))

    def send_nowait(self, frame: str) -> None:
        """Queue a frame without waiting; a full queue means a slow consumer."""
        if self.close_code is not None:
            return
        size = len(frame)
        if self.max_bytes and self.queued_bytes + size > self.max_bytes:
            self.slow_consumer()
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.slow_consumer()
            return
        self.queued_bytes += size

    def slow_consumer(self) -> None:
        """The client fell too far behind: drop its backlog and close with 4008."""
        self.close(CloseCode.SLOW_CONSUMER)

    def close_sent(self) -> None:
        """The transport delivered the close (a close frame; the end of an SSE stream):
        only now does a slow-consumer cut count."""
        if self.close_code == CloseCode.SLOW_CONSUMER:
            METRICS.slow_consumers.inc()

    def _free(self) -> tuple[int, int]:
        """Room left for awaited sends, in frames and bytes: half of each bound. The other
        half is for live fan-out (`send_nowait`), so a healthy client replaying a long
        history, or flushing what arrived meanwhile, is never cut for it."""
        frames = max(1, self.queue.maxsize // 2) - self.queue.qsize()
        if not self.max_bytes:
            return frames, 1 << 62
        return frames, self.max_bytes // 2 - self.queued_bytes

    async def room(self, frame_size: int, most: int) -> int:
        """Wait until at least one frame of about `frame_size` fits; then how many do
        (at most `most`), so that a replay reads no more from the store than fits."""
        while self.close_code is None:
            frames, free_bytes = self._free()
            fit = min(frames, free_bytes // max(1, frame_size), most)
            if fit > 0 or (frames > 0 and self.queue.empty()):
                return max(1, fit)
            self._drained.clear()
            await self._drained.wait()
        return 1

    async def send(self, frame: str) -> None:
        """Queue a reply, snapshot or replayed event (not fan-out), waiting until it fits in
        the half of the bounds awaited sends may use (a frame larger than that goes alone)."""
        queued = self.transport.reply(frame)
        if queued is None:
            return
        frame = queued
        await self.room(len(frame), 1)
        if self.close_code is None:
            self.queue.put_nowait(frame)
            self.queued_bytes += len(frame)

    def finish(self) -> None:
        """End after what is already queued (a full queue is dropped: `close`)."""
        if self.close_code is not None:
            return
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.close(CloseCode.NORMAL)
            return
        self.close_code = CloseCode.NORMAL
        self.closed.set()
        self._drained.set()

    def close(self, code: int) -> None:
        """Stop sending: drop what is queued; the transport then closes with `code`."""
        if self.close_code is not None:
            return
        self.close_code = code
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queued_bytes = 0
        self.queue.put_nowait(None)
        self.closed.set()
        self._drained.set()


class Subscription:
    """A connection's view of one channel: where it is (`position`) and, while its
    snapshot or replay is being sent, the live events that arrive meanwhile."""

    def __init__(
        self,
        connection: Connection,
        channel: str,
        on_lost: Callable[[Subscription], None] | None = None,
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.on_lost = on_lost
        """Called when the board becomes unreadable to the connection (unsubscribe it)."""
        self.position = 0
        self.pending: list[Delivery] | None = []
        self.wants_presence = False
        self.in_presence = False
        """Counted in presence: set once read access was checked."""

    def deliver(self, run: Run) -> None:
        if self.pending is not None:
            self.pending.extend(run.events)
            if len(self.pending) > self.connection.queue.maxsize:
                self.pending = None
                self.connection.slow_consumer()
            return
        if run.plain and run.first == self.position + 1:  # in step: the run goes out whole
            self.position = run.last
            self.connection.send_events(run.events, run.wire)
            return
        for event in run.events:
            if not self._pass(*event):
                return

    def _pass(self, seq: int, frame: str, wire: bytes, change: BoardChange | None) -> bool:
        """One event, checked on its own; False once nothing more may go out on this
        subscription (the rest of its run included)."""
        if seq <= self.position:
            return True
        if seq != self.position + 1:
            # The hub forwards gapless from before this subscription began; never expected.
            log.error("subscription_gap", channel=self.channel, position=self.position, seq=seq)
            self.connection.close(CloseCode.TRY_AGAIN_LATER)
            return False
        self.position = seq
        if change is not None and not self._may_see(change):
            if not change.live:  # it could read the board until now: it sees the deletion
                self.connection.send_events(((seq, frame, wire, change),), wire)
            self.pending = None  # nothing more goes out on this subscription
            if self.on_lost is not None:
                self.on_lost(self)
            return False
        self.connection.send_events(((seq, frame, wire, change),), wire)
        return True

    def _may_see(self, change: BoardChange) -> bool:
        """Decided again at every change, with the connection's credential of the moment."""
        return change.live and self.connection.principal.can_read(change.slug, change.public)

    def notice(self, frame: str, public_frame: str | None) -> None:
        """Presence changes go to subscriptions that asked for presence once (opt-in, so a
        client that never asks sees only the event stream); anonymous viewers get counts
        without identities."""
        if self.wants_presence and self.pending is None:
            if self.connection.principal.role is not None:
                self.connection.send_nowait(frame)
            elif public_frame is not None:
                self.connection.send_nowait(public_frame)

    async def go_live(self, position: int) -> None:
        """The snapshot/replay up to `position` is queued: flush what arrived meanwhile,
        waiting for room as a replay does. Events arriving during the flush join the
        buffer, which stays bounded (`deliver`), and are flushed in turn, in order."""
        self.position = position
        while self.pending:
            seq, frame, wire, change = self.pending.pop(0)
            if seq <= self.position:
                continue
            if change is not None or seq != self.position + 1:
                self._pass(seq, frame, wire, change)  # access checks and gaps: the live path
                continue
            self.position = seq
            await self.connection.send(frame)
        self.pending = None
