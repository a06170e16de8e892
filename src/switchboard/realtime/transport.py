"""What differs between the ways a client can be connected (WebSocket, SSE).

A `Connection` holds the client's queue and subscriptions and never knows which
transport carries it; it asks its `Transport` three things: the shape a frame
takes in the queue, whether a pre-built frame can be written at once (the
WebSocket fast path), and how to tell the client a subscription ended. The
loops that drain the queue live beside each transport (`realtime/websocket.py`,
`realtime/sse.py`), the way centrifuge keeps its transports apart from its node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from switchboard.realtime.protocol import error as encode_error


class Outgoing(Protocol):
    """What a transport may do to the connection it carries (a `Connection`): it knows
    the connection through these two calls only, so `connection.py` builds on this
    module and not the other way round."""

    def send_nowait(self, frame: str) -> None:
        """Queue a frame without waiting."""

    def finish(self) -> None:
        """End after what is already queued."""


class Transport:
    """A WebSocket-shaped transport: frames are queued as they are, errors go in band."""

    write_now: Callable[[bytes], bool] | None = None
    """Writes a pre-built frame (`realtime/wire.py`) straight to the socket when nothing is
    queued ahead of it; False when it cannot. None: this transport has no such path."""

    def event(self, seq: int, frame: str) -> str:
        """A live event as it is queued."""
        return frame

    def reply(self, frame: str) -> str | None:
        """A reply, snapshot or replayed event as it is queued (None: nothing to send)."""
        return frame

    def lost_access(self, connection: Outgoing, channel: str) -> None:
        """One subscription's board became unreadable (it has been unsubscribed): say so
        in an `error` frame; the connection and its other subscriptions go on."""
        message = f"{channel} is no longer readable by this connection"
        connection.send_nowait(encode_error("not_found", message, channel=channel))
