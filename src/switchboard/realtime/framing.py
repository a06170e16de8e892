"""WebSocket frames as bytes, and the scope extension through which a server writes them.

A server's WebSocket frames are not masked, so the bytes of an event frame are the same
for every subscriber: the hub frames each event once (`text_frame`), and a connection that
keeps up takes those bytes with one write. A server that can write them offers that write
under `EXTENSION` in the ASGI scope (uvicorn's, `realtime/wire.py`); this module knows
no server, so the hub and the endpoint depend on the bytes, not on uvicorn.
"""

from __future__ import annotations

EXTENSION = "switchboard.wire"
"""The ASGI scope extension a server offers pre-built frames through: `write` (a frame
now, or False), `writable` (wait until the socket takes writes) and `close` (a close
frame behind what is written, without waiting)."""

MAX_WRITE = 64 * 1024
"""The most one write hands a socket at once, coalesced frames included: about one
transport write buffer's worth (uvloop's high-water mark), so a coalesced write fills a
socket's buffer no further than one large frame would."""


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, unfragmented text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return head + payload
