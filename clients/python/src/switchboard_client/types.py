"""What the REST calls return, as `TypedDict`s: the server's JSON, field for field.

They are plain dicts at run time (what `response.json()` gives), typed so that an editor
and mypy know each field. Times are ISO 8601 strings in UTC, as the server sends them.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from switchboard_client.watch import Event

Role = Literal["read", "write", "admin"]
"""What a credential may do: read boards; also write them; also manage keys."""
TokenRole = Literal["read", "write"]
"""A viewer token's role: tokens travel in URLs, so they never manage keys."""


class Widget(TypedDict):
    """One widget (`GET /api/boards/{slug}/widgets/{key}`); `version` is its `ETag`."""

    key: str
    kind: str
    title: str
    config: dict[str, Any]
    value: Any
    version: int
    created_at: str
    updated_at: str


class LayoutEntry(TypedDict):
    """One widget's place on its board's page: the layout's order is the tiles' order;
    `w`/`h` the grid columns/rows (1-4) its tile spans, None for its kind's default."""

    key: str
    w: int | None
    h: int | None


class Board(TypedDict):
    """A board without its widgets: an item of the list, and what `update_board` returns.
    `seq` is its last event's; `version` counts changes to these fields (its `ETag`)."""

    slug: str
    title: str
    description: str
    public: bool
    layout: list[LayoutEntry]
    seq: int
    version: int
    created_at: str
    updated_at: str


class BoardWithWidgets(Board):
    """A board with every widget (`GET /api/boards/{slug}`, and a created board)."""

    widgets: list[Widget]


class BoardPage(TypedDict):
    """One page of `GET /api/boards`: pass `next_cursor` for the next; None on the last."""

    items: list[Board]
    next_cursor: str | None


class EventPage(TypedDict):
    """One page of `GET /api/boards/{slug}/events`. `seq` is the board's current seq;
    `next_after` the `after` of the next page, None when this one reaches `seq`. Its
    items carry `"type": "event"`, as `watch` yields them (the only field the client adds)."""

    items: list[Event]
    seq: int
    next_after: int | None


class Key(TypedDict):
    """An API key as `GET /api/keys` lists it: never its secret. `prefix` is how the key
    starts (`sbk_<id>_`), to recognise it; `boards` None means every board."""

    id: str
    prefix: str
    role: Role
    boards: list[str] | None
    name: str
    created_at: str
    revoked_at: str | None


class NewKey(Key):
    """A key just created: `key` is the whole secret, shown in this answer only."""

    key: str


class Token(TypedDict):
    """A viewer token (`POST /api/tokens`): pass `token` as a client's `token=` (or a
    browser's `?token=`) until `expires_at`. `boards` None means the minting key's boards."""

    token: str
    role: TokenRole
    boards: list[str] | None
    expires_at: str
