"""The `/ws` endpoint: read frames, dispatch on `type`, answer in order.

Each connection handles its own frames one at a time, so replies keep the
order of requests; fan-out reaches it through its `Subscription`s meanwhile,
and one writer task sends whatever is queued.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard.metrics import METRICS
from switchboard.realtime import protocol
from switchboard.realtime.connection import Connection
from switchboard.realtime.protocol import Ping, ProtocolError, Subscribe, Unsubscribe
from switchboard.realtime.subscriber import Subscriber
from switchboard.state import AppState

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT = 2.0


class Handler(Subscriber):
    """The protocol for one connection."""

    async def handle(self, text: str) -> None:
        try:
            if len(text) > self.settings.ws_max_frame_bytes:
                raise ProtocolError(
                    "frame_too_large", f"frames are limited to {self.settings.ws_max_frame_bytes}"
                )
            message = protocol.parse(text)
            match message:
                case Ping():
                    await self.connection.send(protocol.encode({"type": "pong"}, message.id))
                case Subscribe():
                    await self.subscribe(message.channel, message.slug, message.since, message.id)
                case Unsubscribe():
                    await self.unsubscribe(message.channel, message.id)
        except ProtocolError as exc:
            await self.connection.send(protocol.error(exc.code, exc.message, exc.id))


async def _write(websocket: WebSocket, connection: Connection) -> None:
    """Send queued frames; after `Connection.close`, send the close frame with its code."""
    try:
        async for frame in connection.frames():
            await websocket.send({"type": "websocket.send", "text": frame})
    except (WebSocketDisconnect, OSError, RuntimeError):
        return  # the client went away; the reader notices and cleans up
    if connection.close_code is not None:
        with contextlib.suppress(OSError, RuntimeError):
            await websocket.close(connection.close_code)


async def websocket_endpoint(websocket: WebSocket) -> None:
    state: AppState = websocket.state.switchboard
    await websocket.accept()
    connection = Connection(max_queue=state.settings.ws_queue_max_messages)
    handler = Handler(state, connection)
    state.drain.track(connection)
    writer = asyncio.create_task(_write(websocket, connection), name="ws writer")
    METRICS.connections.inc()
    try:
        while connection.close_code is None:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                await connection.send(protocol.error("invalid_frame", "send JSON text frames"))
                continue
            await handler.handle(text)
    except Exception:
        log.exception("websocket_handler_failed")
    finally:
        handler.close()
        if connection.close_code is not None:  # let the writer send the close frame first
            await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        METRICS.connections.dec()
