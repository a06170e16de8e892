"""Frames checked against the server's AsyncAPI document (`realtime/asyncapi.py`).

`WsClient` and `SseStream` (tests/helpers.py) pass every frame they receive, and every
frame object they send, through here: a frame the document does not describe fails the
test that saw it. Which messages go which way is read from the document's operations;
a frame must match exactly one of them, as AsyncAPI requires of a channel's messages.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs
import orjson

from switchboard.realtime.asyncapi import SSE, WS, document

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
Frame = dict[str, Any]


@cache
def protocol() -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(document())
    return parsed


def validator(pointer: str) -> jsonschema_rs.Validator:
    """A validator for the schema at `pointer` (`#/components/…`) of the document."""
    schema = {
        "$schema": DRAFT_07,
        "allOf": [{"$ref": pointer}],
        "components": protocol()["components"],
    }
    return jsonschema_rs.validator_for(schema)


class Direction:
    """The messages that may travel one way on one channel, each with its validators."""

    def __init__(self, names: list[str]) -> None:
        messages = protocol()["components"]["messages"]
        self.payloads = {n: validator(messages[n]["payload"]["$ref"]) for n in names}
        self.headers = {
            n: validator(f"#/components/messages/{n}/headers")
            for n in names
            if "headers" in messages[n]
        }

    def check(self, payload: Any, headers: Frame | None = None) -> str:
        """The one message `payload` (with `headers`) is; fail unless there is exactly one."""
        matches = [
            name
            for name, check in self.payloads.items()
            if check.is_valid(payload)
            and (
                headers is None or name not in self.headers or self.headers[name].is_valid(headers)
            )
        ]
        if len(matches) == 1:
            return matches[0]
        why = {
            name: [f"{e.instance_path}: {e.message}" for e in check.iter_errors(payload)][:3]
            for name, check in self.payloads.items()
        }
        raise AssertionError(
            f"frame {payload!r} (headers {headers!r}) matches {matches or 'no'} message of the "
            f"AsyncAPI document; why not: {why}"
        )


def message_names(channel: str, *, sent: bool) -> list[str]:
    """Message ids the server sends (or receives) on `channel`, from the operations."""
    names: list[str] = []
    for operation in protocol()["operations"].values():
        if operation["channel"]["$ref"] != f"#/channels/{channel}":
            continue
        refs = []
        if (operation["action"] == "send") == sent:
            refs += operation["messages"]
        if sent and operation["action"] == "receive" and "reply" in operation:
            refs += operation["reply"]["messages"]
        for item in refs:
            resolved = protocol()["channels"][channel]["messages"][item["$ref"].rsplit("/", 1)[1]]
            names.append(resolved["$ref"].rsplit("/", 1)[1])
    return list(dict.fromkeys(names))


@cache
def server_frames() -> Direction:
    return Direction(message_names(WS, sent=True))


@cache
def client_frames() -> Direction:
    return Direction(message_names(WS, sent=False))


@cache
def sse_messages() -> Direction:
    return Direction(message_names(SSE, sent=True))


def check_server_frame(frame: Any) -> str:
    """Which server message a received WebSocket frame is."""
    return server_frames().check(frame)


def check_client_frame(frame: Any) -> str:
    """Which client message a frame is (for frames a test sends as valid)."""
    return client_frames().check(frame)


def check_sse_message(event: str, id_: str | None, data: Any) -> str:
    """Which SSE message an `event:`/`id:`/`data:` triple is."""
    headers: Frame = {"event": event} if id_ is None else {"event": event, "id": id_}
    return sse_messages().check(data, headers)
