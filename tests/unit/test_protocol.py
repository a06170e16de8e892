"""Unit tier (`uv run pytest tests/unit`, seconds, no server): the WebSocket protocol's
frames, parsed and encoded without a socket."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from switchboard.realtime import protocol
from switchboard.realtime.protocol import (
    MAX_SEQ,
    Ping,
    PresenceQuery,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    parse,
)
from switchboard.store.models import Event


def test_subscribe_without_since_starts_from_a_snapshot() -> None:
    message = parse('{"type":"subscribe","channel":"board:ops","id":7}')
    assert message == Subscribe(id=7, channel="board:ops", slug="ops", since=None)


def test_subscribe_with_since_resumes() -> None:
    message = parse('{"type":"subscribe","channel":"board:a-1","since":42,"id":"r1"}')
    assert message == Subscribe(id="r1", channel="board:a-1", slug="a-1", since=42)


@pytest.mark.parametrize("since", [0, MAX_SEQ])
def test_since_bounds_are_accepted(since: int) -> None:
    message = parse(
        orjson.dumps({"type": "subscribe", "channel": "board:x", "since": since}).decode()
    )
    assert isinstance(message, Subscribe)
    assert message.since == since


def test_unsubscribe_ping_and_presence_echo_their_ids() -> None:
    assert parse('{"type":"unsubscribe","channel":"board:ops","id":"u"}') == Unsubscribe(
        "u", "board:ops"
    )
    assert parse('{"type":"ping","id":3}') == Ping(3)
    assert parse('{"type":"ping"}') == Ping(None)
    assert parse('{"type":"presence","channel":"board:ops","id":-5}') == PresenceQuery(
        -5, "board:ops"
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('"subscribe"', "invalid_frame"),
        ('{"type":"ping","id":true}', "invalid_frame"),
        ('{"type":"ping","id":1.5}', "invalid_frame"),
        ('{"type":"ping","id":["a"]}', "invalid_frame"),
        (f'{{"type":"ping","id":{MAX_SEQ + 1}}}', "invalid_frame"),
        ('{"type":"ping","id":"' + "x" * 129 + '"}', "invalid_frame"),
    ],
)
def test_malformed_frames_without_a_usable_id(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(text)
    assert caught.value.code == code
    assert caught.value.id is None


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({}, "unknown_type"),
        ({"type": "publish"}, "unknown_type"),
        ({"type": 5}, "unknown_type"),
        ({"type": "subscribe"}, "invalid_channel"),
        ({"type": "subscribe", "channel": "ops"}, "invalid_channel"),
        ({"type": "subscribe", "channel": "board:Ops"}, "invalid_channel"),
        ({"type": "subscribe", "channel": "board:-ops"}, "invalid_channel"),
        ({"type": "subscribe", "channel": "board:" + "a" * 65}, "invalid_channel"),
        ({"type": "unsubscribe", "channel": 1}, "invalid_channel"),
        ({"type": "presence", "channel": "board:"}, "invalid_channel"),
        ({"type": "subscribe", "channel": "board:ops", "since": -1}, "invalid_frame"),
        ({"type": "subscribe", "channel": "board:ops", "since": True}, "invalid_frame"),
        ({"type": "subscribe", "channel": "board:ops", "since": "3"}, "invalid_frame"),
        ({"type": "subscribe", "channel": "board:ops", "since": 1.0}, "invalid_frame"),
        ({"type": "subscribe", "channel": "board:ops", "since": MAX_SEQ + 1}, "invalid_frame"),
    ],
)
def test_malformed_frames_echo_their_id(frame: dict[str, object], code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(orjson.dumps({**frame, "id": "req-9"}).decode())
    assert caught.value.code == code
    assert caught.value.id == "req-9"


def test_an_unknown_type_is_quoted_at_most_40_characters() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(orjson.dumps({"type": "y" * 500}).decode())
    assert repr("y" * 40) in caught.value.message
    assert "y" * 41 not in caught.value.message


def test_a_slug_of_64_characters_is_the_longest() -> None:
    message = parse(orjson.dumps({"type": "subscribe", "channel": "board:" + "a" * 64}).decode())
    assert isinstance(message, Subscribe)
    assert message.slug == "a" * 64


def test_encode_echoes_the_id_only_when_given() -> None:
    assert orjson.loads(protocol.encode({"type": "pong"}, "p")) == {"type": "pong", "id": "p"}
    assert orjson.loads(protocol.encode({"type": "pong"})) == {"type": "pong"}
    assert orjson.loads(protocol.encode({"type": "pong"}, 0)) == {"type": "pong", "id": 0}


def test_error_frames() -> None:
    assert orjson.loads(protocol.error("bad", "no", 4)) == {
        "type": "error",
        "code": "bad",
        "message": "no",
        "id": 4,
    }
    lost = orjson.loads(protocol.error("not_found", "gone", channel="board:ops"))
    assert lost == {"type": "error", "code": "not_found", "message": "gone", "channel": "board:ops"}


def test_stored_event_frame_is_the_event_frame_of_the_wire() -> None:
    at = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    event = Event(board_id=1, seq=12, name="widget.updated", data={"key": "w", "value": 3}, at=at)
    assert orjson.loads(protocol.stored_event_frame("ops", event)) == {
        "type": "event",
        "channel": "board:ops",
        "seq": 12,
        "event": "widget.updated",
        "data": {"key": "w", "value": 3},
        "at": "2024-05-06T07:08:09.123Z",
    }
