"""`/api/boards/{slug}/events`: the board's history, for catch-up over plain HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from switchboard.api.deps import Caller, SlugParam, State, readable_board
from switchboard.api.openapi import ANONYMOUS, errors
from switchboard.resources import EventPage, event_out
from switchboard.store.events import events_after

router = APIRouter(prefix="/boards/{slug}", tags=["events"])


@router.get("/events", responses=errors(404, 410), openapi_extra=ANONYMOUS)
async def list_events(
    slug: SlugParam,
    state: State,
    caller: Caller,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> EventPage:
    """Events with seq > `after`, oldest first; 410 if some were trimmed by retention."""
    size = min(limit or state.settings.page_limit_default, state.settings.page_limit_max)
    async with state.db.read() as session:
        board = await readable_board(session, slug, caller)
        events = await events_after(session, board, after, limit=size)
    last = events[-1].seq if events else after
    return EventPage(
        items=[event_out(slug, e) for e in events],
        seq=board.seq,
        next_after=last if last < board.seq else None,
    )
