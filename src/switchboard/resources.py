"""The public JSON shape of boards, widgets and events.

One definition serves REST responses and event payloads alike, so the `data`
of a `widget.updated` event is byte-for-byte what `GET` returns for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

from switchboard.store.models import Board, Event, Widget
from switchboard.timefmt import iso

Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]
CHANNEL_PREFIX = "board:"


def channel_name(slug: str) -> str:
    return f"{CHANNEL_PREFIX}{slug}"


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WidgetOut(_Out):
    key: str
    kind: str
    title: str
    config: dict[str, Any]
    value: Any
    version: int
    created_at: Timestamp
    updated_at: Timestamp


class WidgetBatchOut(BaseModel):
    widgets: list[WidgetOut]


class BoardSummary(_Out):
    slug: str
    title: str
    description: str
    public: bool
    seq: int
    version: int
    created_at: Timestamp
    updated_at: Timestamp


class BoardOut(BoardSummary):
    widgets: list[WidgetOut]


class EventOut(BaseModel):
    channel: str
    seq: int
    event: str
    data: dict[str, Any]
    at: Timestamp


class BoardPage(BaseModel):
    items: list[BoardSummary]
    next_cursor: str | None


class EventPage(BaseModel):
    items: list[EventOut]
    seq: int
    """The board's current seq: the history is complete when the last item has it."""
    next_after: int | None


def widget_data(widget: object) -> dict[str, Any]:
    """The event data of a widget: an ORM `Widget` or a `store.widgets.WidgetRow` (any
    object with `WidgetOut`'s attributes), exactly as REST shows it."""
    return WidgetOut.model_validate(widget).model_dump(mode="json")


def board_summary_data(board: Board) -> dict[str, Any]:
    return BoardSummary.model_validate(board).model_dump(mode="json")


def board_out(board: Board, widgets: list[Widget]) -> BoardOut:
    summary = BoardSummary.model_validate(board)
    return BoardOut(**summary.__dict__, widgets=[WidgetOut.model_validate(w) for w in widgets])


def event_out(slug: str, event: Event) -> EventOut:
    return EventOut(
        channel=channel_name(slug), seq=event.seq, event=event.name, data=event.data, at=event.at
    )
