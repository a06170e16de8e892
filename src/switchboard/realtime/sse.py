"""The Server-Sent Events transport: a board's events as one long HTTP response.

The same subscription as a WebSocket `subscribe`, with `since` taken from
`Last-Event-ID` (or `?since=`), so an `EventSource` that reconnects by itself
resumes where it stopped. Each message carries the same JSON as the WebSocket
frame; `id:` is the seq. SSE has no way to answer the client, so what a
WebSocket says in an `error` frame ends the stream here, and `EventSource`
reconnects (and learns the status of its next request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import structlog
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from switchboard.auth.principal import Principal
from switchboard.errors import error_response
from switchboard.names import channel_name
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection
from switchboard.realtime.connections import TooManyConnections
from switchboard.realtime.node import Node
from switchboard.realtime.protocol import ProtocolError
from switchboard.realtime.subscriber import Subscriber
from switchboard.realtime.transport import Outgoing, Transport

log = structlog.get_logger(__name__)

RECONNECT_MS = 1000
RETRY_AFTER = "5"
"""Seconds a client refused for holding too many streams should wait."""
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_NAMED = {"snapshot", "reset"}  # `event` frames use the default "message" type


def sse_message(frame: str) -> str:
    """One protocol frame as an SSE message; `subscribed` is implicit in SSE and dropped."""
    parsed = orjson.loads(frame)
    kind = parsed["type"]
    if kind == "subscribed":
        return ""
    head = f"event: {kind}\n" if kind in _NAMED else ""
    if kind in ("event", "snapshot"):
        head += f"id: {parsed['seq']}\n"
    return f"{head}data: {frame}\n\n"


class SseTransport(Transport):
    """Queues SSE messages, formatted on the way in. Live events arrive with their seq, so
    they need no parsing per subscriber; the few other frames (snapshot, reset, replayed
    events) are parsed once each."""

    def event(self, seq: int, frame: str) -> str:
        return f"id: {seq}\ndata: {frame}\n\n"

    def reply(self, frame: str) -> str | None:
        return sse_message(frame) or None

    def lost_access(self, connection: Outgoing, channel: str) -> None:
        """No in-band error: the stream ends after what is queued (a deletion included);
        `EventSource` reconnects and gets the 404."""
        connection.finish()


class EventStream(Response):
    """The stream of one board for one client. It holds its connection (and the slot its
    credential is counted in) for exactly as long as the response runs, however it ends:
    a client that hung up before the body started holds nothing. What goes out is the
    inner response it makes when it runs (the stream, or a 429): its own body and headers
    are never sent."""

    media_type = "text/event-stream"

    def __init__(
        self,
        node: Node,
        principal: Principal,
        client_host: str | None,
        slug: str,
        since: int | None,
    ) -> None:
        super().__init__()
        self.node = node
        self.principal = principal
        self.client_host = client_host
        self.slug = slug
        self.since = since

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connections = self.node.connections
        response: Response
        try:
            async with connections.open(self.principal, self.client_host, SseTransport()) as conn:
                response = StreamingResponse(
                    self._messages(conn), headers=HEADERS, media_type=self.media_type
                )
                await response(scope, receive, send)
                return
        except TooManyConnections:
            message = "too many open streams for this credential"
            response = error_response(429, "rate_limited", message)
            response.headers["Retry-After"] = RETRY_AFTER
        await response(scope, receive, send)

    async def _messages(self, connection: Connection) -> AsyncIterator[str]:
        subscriber = self.node.subscriber(connection)
        # Subscribing queues the replay, which may exceed the queue: drain while it runs.
        starting = asyncio.create_task(self._start(subscriber), name="sse subscribe")
        idle = self.node.settings.sse_keepalive
        try:
            yield f"retry: {RECONNECT_MS}\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(connection.next_frame(), idle)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if message is None:
                    break
                yield message
            connection.close_sent()  # the server ended the stream (the client did not leave)
        finally:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            subscriber.close()

    async def _start(self, subscriber: Subscriber) -> None:
        """Subscribe; if that fails for any reason, end the stream so `EventSource` retries
        (a stream left open would send keep-alives forever and never deliver anything)."""
        try:
            await subscriber.subscribe(channel_name(self.slug), self.slug, self.since, None)
        except ProtocolError:  # the board went away or the store is down
            subscriber.connection.close(CloseCode.TRY_AGAIN_LATER)
        except Exception as exc:  # a database error, a pool timeout…
            log.warning("sse_start_failed", slug=self.slug, error=repr(exc))
            subscriber.connection.close(CloseCode.TRY_AGAIN_LATER)
