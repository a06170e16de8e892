"""The public JSON shape of boards, widgets and events.

One definition serves REST responses and event payloads alike, so the `data`
of a `widget.updated` event is byte-for-byte what `GET` returns for it.

It sits below the store: it reads whatever carries the attributes it shows (an ORM
row, a `store.widgets.WidgetRow`) and imports nothing of `store/`, which builds its
event data here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from switchboard.names import channel_name
from switchboard.timefmt import iso

Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]


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


MAX_SPAN = 4
"""The most grid columns (`w`) or rows (`h`) a widget's tile may span."""
Span = Annotated[int, Field(ge=1, le=MAX_SPAN)]


class LayoutEntry(BaseModel):
    """Where one widget goes: list order is tile order; `w`/`h` the columns/rows it
    spans, null for its kind's default size."""

    key: str
    w: Span | None
    h: Span | None


class BoardSummary(_Out):
    slug: str
    title: str
    description: str
    public: bool
    layout: list[LayoutEntry]
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


def board_summary_data(board: object) -> dict[str, Any]:
    """The event data of a board (an ORM `Board`: any object with `BoardSummary`'s
    attributes), exactly as REST shows it."""
    return BoardSummary.model_validate(board).model_dump(mode="json")


def board_out(board: object, widgets: Iterable[object]) -> BoardOut:
    """A board with its widgets (objects with `BoardSummary`'s and `WidgetOut`'s attributes)."""
    summary = BoardSummary.model_validate(board)
    return BoardOut(**summary.__dict__, widgets=[WidgetOut.model_validate(w) for w in widgets])


class StoredEvent(Protocol):
    """What `event_out` reads of an event (`store.models.Event`)."""

    @property
    def seq(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def at(self) -> datetime: ...


def event_out(slug: str, event: StoredEvent) -> EventOut:
    return EventOut(
        channel=channel_name(slug), seq=event.seq, event=event.name, data=event.data, at=event.at
    )
