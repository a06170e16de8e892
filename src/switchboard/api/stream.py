"""`/api/boards/{slug}/stream`: the board's events as Server-Sent Events.

The same subscription as a WebSocket `subscribe`, with `since` taken from
`Last-Event-ID` (or `?since=`), so an `EventSource` that reconnects by itself
resumes where it stopped. Each message carries the same JSON as the WebSocket
frame; `id:` is the seq.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import orjson
import structlog
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from switchboard.api.deps import SlugParam, State, StreamCaller, readable_board
from switchboard.errors import RateLimited
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection
from switchboard.realtime.protocol import MAX_SEQ, ProtocolError
from switchboard.realtime.subscriber import Subscriber
from switchboard.resources import channel_name
from switchboard.state import AppState

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/boards/{slug}", tags=["events"])

RECONNECT_MS = 1000
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


class EventStream(Connection):
    """A connection whose queue holds SSE messages, formatted on the way in. Live events
    arrive with their seq, so they need no parsing per subscriber; the few control frames
    (snapshot, reset, replayed events) are parsed once each."""

    def send_event(self, seq: int, frame: str, wire: bytes) -> None:
        self.send_nowait(f"id: {seq}\ndata: {frame}\n\n")

    async def send(self, frame: str) -> None:
        if message := sse_message(frame):
            await super().send(message)

    def lost_access(self, channel: str) -> None:
        """SSE has no in-band error: the stream ends after what is queued (a deletion
        included); `EventSource` reconnects and gets the 404."""
        self.finish()


class EventStreamResponse(StreamingResponse):
    """Releases the stream's connection slot however the response ends: also when the
    client hung up before the body started (the body's own `finally` never runs then)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _start(subscriber: Subscriber, slug: str, since: int | None) -> None:
    """Subscribe; if that fails for any reason, end the stream so `EventSource` retries (a
    stream left open would send keep-alives forever and never deliver anything)."""
    try:
        await subscriber.subscribe(channel_name(slug), slug, since, None)
    except ProtocolError:  # the board went away or the store is down
        subscriber.connection.close(CloseCode.TRY_AGAIN_LATER)
    except Exception as exc:  # a database error, a pool timeout…
        log.warning("sse_start_failed", slug=slug, error=repr(exc))
        subscriber.connection.close(CloseCode.TRY_AGAIN_LATER)


async def _messages(
    state: AppState, connection: Connection, slug: str, since: int | None
) -> AsyncIterator[str]:
    subscriber = Subscriber(state, connection)
    # Subscribing queues the replay, which may exceed the queue: drain while it runs.
    starting = asyncio.create_task(_start(subscriber, slug, since), name="sse subscribe")
    try:
        yield f"retry: {RECONNECT_MS}\n\n"
        async for message in connection.frames(idle=state.settings.sse_keepalive):
            yield ": keep-alive\n\n" if message is None else message
        connection.close_sent()  # the server ended the stream (the client did not leave)
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        subscriber.close()
        state.release_connection(connection)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"}},
)
async def stream(
    slug: SlugParam,
    request: Request,
    state: State,
    caller: StreamCaller,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_SEQ)] = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
) -> StreamingResponse:
    """Live events after `Last-Event-ID` (or `since`); a `snapshot` first when neither is given."""
    async with state.db.read() as session:
        await readable_board(session, slug, caller)  # a 404 now, before the stream starts
    host = request.client.host if request.client else None
    connection = state.open_connection(caller, host, EventStream)
    if connection is None:
        raise RateLimited("too many open streams for this credential", headers={"Retry-After": "5"})
    position = last_event_id if last_event_id is not None else since
    return EventStreamResponse(
        _messages(state, connection, slug, position),
        functools.partial(state.release_connection, connection),
    )
