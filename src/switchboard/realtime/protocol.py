"""The WebSocket protocol's frames: parsing what clients send, encoding what we send.

Event frames are encoded once per event (orjson) and the same text is written
to every subscriber; nothing here runs per subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from switchboard.names import CHANNEL_PREFIX, channel_slug
from switchboard.resources import EventOut, event_out
from switchboard.store.models import Event

MAX_ID_LENGTH = 128
MAX_SEQ = 2**63 - 1
MAX_CREDENTIAL_LENGTH = 4096


RequestId = str | int | None


class ProtocolError(Exception):
    """Raised for a frame we answer with an `error` frame; the connection stays open."""

    def __init__(self, code: str, message: str, *, id: RequestId = None) -> None:
        super().__init__(message)
        self.code, self.message, self.id = code, message, id


@dataclass(frozen=True, slots=True)
class Ping:
    id: RequestId


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: RequestId
    channel: str
    slug: str
    since: int | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: RequestId
    channel: str


@dataclass(frozen=True, slots=True)
class PresenceQuery:
    id: RequestId
    channel: str


@dataclass(frozen=True, slots=True)
class Auth:
    """Replace the connection's credential (a fresh token before the old one expires)."""

    id: RequestId
    token: str = field(repr=False)  # never in a log line


ClientMessage = Ping | Subscribe | Unsubscribe | PresenceQuery | Auth


def parse(text: str) -> ClientMessage:
    """Validate one client frame; raise `ProtocolError` with a precise code otherwise."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("invalid_json", "frame is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_frame", "frame must be a JSON object")
    id_ = raw.get("id")
    if id_ is not None and not (
        (isinstance(id_, str) and len(id_) <= MAX_ID_LENGTH)
        or (isinstance(id_, int) and not isinstance(id_, bool) and abs(id_) <= MAX_SEQ)
    ):
        raise ProtocolError("invalid_frame", "id must be a short string or an integer")
    kind = raw.get("type")
    if kind == "ping":
        return Ping(id_)
    if kind == "auth":
        token = raw.get("token")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_CREDENTIAL_LENGTH:
            raise ProtocolError("invalid_frame", "token must be a non-empty string", id=id_)
        return Auth(id_, token)
    if kind not in ("subscribe", "unsubscribe", "presence"):
        shown = kind[:40] if isinstance(kind, str) else kind
        raise ProtocolError("unknown_type", f"unknown frame type {shown!r}", id=id_)
    channel = raw.get("channel")
    if not isinstance(channel, str) or (slug := channel_slug(channel)) is None:
        raise ProtocolError(
            "invalid_channel", f"channel must look like '{CHANNEL_PREFIX}<slug>'", id=id_
        )
    if kind == "unsubscribe":
        return Unsubscribe(id_, channel)
    if kind == "presence":
        return PresenceQuery(id_, channel)
    since = raw.get("since")
    if since is not None and (
        isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_SEQ
    ):
        raise ProtocolError("invalid_frame", "since must be a non-negative integer", id=id_)
    return Subscribe(id_, channel, slug, since)


def encode(message: dict[str, Any], id_: RequestId = None) -> str:
    """A control frame (`subscribed`, `error`, …), echoing the request `id` when given."""
    if id_ is not None:
        message["id"] = id_
    return orjson.dumps(message).decode()


def error(code: str, message: str, id_: RequestId = None, *, channel: str | None = None) -> str:
    """An `error` frame; `channel` when it ends one subscription (lost access)."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if channel is not None:
        frame["channel"] = channel
    return encode(frame, id_)


def event_frame(event: EventOut) -> bytes:
    """The `event` frame as it goes on the broker and, unchanged, to every client."""
    return orjson.dumps({"type": "event", **event.model_dump(mode="json")})


def stored_event_frame(slug: str, event: Event) -> bytes:
    return event_frame(event_out(slug, event))
