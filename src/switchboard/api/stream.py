"""`/api/boards/{slug}/stream`: the board's events as Server-Sent Events.

The route checks the caller and the board (a 404 before the stream starts);
the stream itself is the SSE transport of the realtime layer (`realtime/sse.py`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from switchboard.api.deps import SlugParam, State, StreamCaller, readable_board
from switchboard.api.openapi import BEARER, VIEWER_TOKEN, errors
from switchboard.realtime.protocol import MAX_SEQ
from switchboard.realtime.sse import EventStream

router = APIRouter(prefix="/boards/{slug}", tags=["events"])


@router.get(
    "/stream",
    name="stream_events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"},
        **errors(404, 429),
    },
    openapi_extra={"security": [{}, {BEARER: []}, {VIEWER_TOKEN: []}]},
)
async def stream(
    slug: SlugParam,
    request: Request,
    state: State,
    caller: StreamCaller,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_SEQ)] = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
) -> EventStream:
    """Live events after `Last-Event-ID` (or `since`); a `snapshot` first when neither is given."""
    async with state.db.read() as session:
        await readable_board(session, slug, caller)  # a 404 now, before the stream starts
    host = request.client.host if request.client else None
    position = last_event_id if last_event_id is not None else since
    return EventStream(state.realtime, caller, host, slug, position)
