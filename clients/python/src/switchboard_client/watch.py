"""A board's frames as `watch` yields them, each board's position, and which failures end it.

Each subscription keeps one position, the last seq it yielded. Each connection
subscribes with `since` = that position (none on the very first, which then starts
with a snapshot), so the server replays exactly what was missed; an event at or
below the position is a duplicate and is dropped, and one beyond position + 1 (a
gap, which this server never sends) makes it reconnect and replay from the position.
A `reset` (history no longer retained) is folded into the snapshot after it.
The connection that carries them: live.py.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from switchboard_client.errors import (
    BY_STATUS,
    Forbidden,
    Unauthorized,
    raised_for,
)
from switchboard_client.errors import ConnectionClosed as Closed
from switchboard_client.redaction import quiet_logger

WS_LOG = quiet_logger("switchboard_client.websockets")
"""The `websockets` library's lines for the client's connections (its DEBUG lines hold the
handshake's `Authorization` header), with credentials redacted before any handler runs."""

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""A snapshot carries a whole board; the server bounds what it sends well below this."""


class Event(TypedDict):
    """One change, as the server's `event` frame (and `GET …/events` items) carry it."""

    type: Literal["event"]
    channel: str
    seq: int
    event: str
    data: dict[str, Any]
    at: str


class Snapshot(TypedDict):
    """The whole board at `seq` (`data`, as `GET /api/boards/{slug}` returns it); replace
    whatever is held. `reset` is True when the server could not replay from the position
    (the history expired, or the board was re-created): events were missed, this is their
    sum. It is False on the snapshot that starts a watch without `since`."""

    type: Literal["snapshot"]
    channel: str
    seq: int
    data: dict[str, Any]
    reset: bool


Frame = Event | Snapshot

RETRIED_ERRORS = frozenset({"unavailable", "too_many_connections"})
"""`error` frames that a later connection may not get: reconnect after a backoff."""
FATAL_CLOSES = frozenset({1002, 1003, 1007, 1009})
"""Close codes for what this connection sent or received: the same again ends the same."""
SLOW_DOWN = {1008: 5.0}
"""Close codes that ask for a longer pause before reconnecting (seconds, at least)."""


class Reconnect(Exception):
    """This connection cannot go on, but another one can: back off and reconnect."""


class Position:
    """What has been yielded so far: drops duplicates, spots gaps, marks reset snapshots."""

    def __init__(self, since: int | None) -> None:
        self.seq = since
        self.reset = False

    def accept(self, frame: dict[str, Any]) -> Frame | None:
        """The frame to yield for `frame` (a snapshot, event or reset), if any; `Reconnect`
        on a gap."""
        match frame.get("type"):
            case "snapshot":
                self.seq, frame["reset"], self.reset = frame["seq"], self.reset, False
                return frame  # type: ignore[return-value]
            case "event":
                seq = frame["seq"]
                if self.seq is not None and seq <= self.seq:
                    return None
                if self.seq is not None and seq > self.seq + 1:
                    raise Reconnect(f"gap: seq {seq} after {self.seq}")
                self.seq = seq
                return frame  # type: ignore[return-value]
            case "reset":
                self.reset = True
        return None


def refuse_close(code: int, reason: str) -> None:
    """Raise for a close code that says "do not reconnect as is" (4100–4199, or one caused
    by the frames themselves); return for every other one."""
    if code == 4101:
        raise Unauthorized(reason or "the credential is invalid, expired or revoked")
    if code == 4103:
        raise Forbidden(reason or "the connection is not allowed")
    if code in FATAL_CLOSES or 4100 <= code <= 4199:
        raise Closed(f"the server closed the connection with {code} {reason}", close_code=code)


def refuse_handshake(status: int) -> None:
    """Raise for a refused handshake that retrying cannot fix; return for one it can (403
    from a worker still starting, 429, 5xx from the server or a proxy in front)."""
    if status in (403, 429) or status >= 500:
        return
    code = BY_STATUS.get(status, "http_error")
    raise raised_for(code, f"WebSocket handshake refused with HTTP {status}", status=status)
