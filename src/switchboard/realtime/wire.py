"""uvicorn's WebSocket protocol with the fan-out fast path: pre-built frames
(`realtime/framing.py`) written to many sockets.

A connection that is keeping up (nothing queued, nothing being sent, socket writable)
takes the hub's frame bytes with one synchronous `transport.write` — no task switch, no
ASGI message, no per-connection framing. Anything else (control frames, a backlog, a
paused socket) goes through the ordinary queue and the ASGI `send`, so order is kept.

`WireProtocol` is uvicorn's websockets-sansio protocol plus one ASGI scope extension
(`framing.EXTENSION`) offering that write, a wait for the socket to take writes again,
and a close that does not wait: ASGI's `websocket.close` first waits until the socket is
writable, which for a client that reads slowly can outlast any timeout, so a server-side
close (4008, 4101, 1012) goes into the transport right behind the last data frame
instead. Without the extension (another server, compression negotiated) everything takes
the ordinary path. The only module of `realtime/` that imports uvicorn
(`tests/test_layers.py`); `cli.server.server_options` names it by path.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.protocol import State

from switchboard.realtime.framing import EXTENSION
from switchboard.realtime.keepalive import Keepalive
from switchboard.realtime.primitives import Outbox, Signal

_WHEELS: weakref.WeakKeyDictionary[Config, Keepalive] = weakref.WeakKeyDictionary()
"""One keepalive wheel per server (its `Config`): every connection of a worker on one timer."""


class WireProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, idle-cheap, offering the `EXTENSION` fast path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same calls (`put_nowait`, `get`, `empty`; `set`, `clear`, `wait`), without the
        # deques an `asyncio.Queue` and an `asyncio.Event` hold even when idle: 3.8 KiB of
        # each open connection (bench/NOTES.md).
        self.queue = Outbox(sys.maxsize)  # type: ignore[assignment]
        self.writable = Signal()  # type: ignore[assignment]
        self.writable.set()
        self.keepalive: Keepalive | None = None
        if self.ping_interval:
            keepalive = _WHEELS.get(self.config)
            if keepalive is None:
                keepalive = _WHEELS[self.config] = Keepalive(self.ping_interval, self.ping_timeout)
            self.keepalive = keepalive

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:  # no compression: frames as built
            scope["extensions"][EXTENSION] = {
                "write": self.write_frame,
                "writable": self.writable.wait,
                "close": self.close_now,
            }

    def write_frame(self, frame: bytes) -> bool:
        """Write a pre-built frame now if the socket takes it; False means "queue it"."""
        if (
            self.close_sent
            or self.conn.state is not State.OPEN
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True

    # Keepalive on the worker's wheel instead of two timers per connection per ping.
    def schedule_ping(self) -> None:
        assert self.keepalive is not None
        assert self.ping_interval is not None
        self.keepalive.ping_in(self, max(0.0, self.ping_interval - self.last_ping_rtt))

    def ping_now(self, frame: bytes, payload: bytes) -> bool:
        if self.close_sent or self.conn.state is not State.OPEN or self.transport.is_closing():
            return False
        self.pending_ping_payload = payload
        self.ping_sent_at = self.loop.time()
        self.transport.write(frame)
        return True

    def handle_pong(self, event: Frame) -> None:
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return  # unsolicited, or stale
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        self.schedule_ping()

    def pong_overdue(self) -> None:
        self.keepalive_timeout()

    def stop_keepalive(self) -> None:
        super().stop_keepalive()
        if self.keepalive is not None:
            self.keepalive.forget(self)

    def close_now(self, code: int) -> bool:
        """Queue the close frame behind what the transport holds, without waiting for the
        client to drain it; what uvicorn does on `websocket.close`, minus the wait. False
        if the connection is already closing."""
        if self.close_sent or self.conn.state is not State.OPEN or self.transport.is_closing():
            return False
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": ""})
        self.conn.send_close(code)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:  # read the client's close reply
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        return True
