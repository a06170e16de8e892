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
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from switchboard.realtime.framing import EXTENSION
from switchboard.realtime.primitives import Outbox, Signal


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
