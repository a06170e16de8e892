"""The realtime protocol as an AsyncAPI 3.0 document: `/ws` and the SSE stream.

Built here, from the code it describes, and nowhere else: payload shapes come from the
models in `resources.py`, limits from `protocol.py`, close codes from `CloseCode`. The
server serves it at `GET /asyncapi.json`; `docs/asyncapi.json` is this module's output
(`python -m switchboard.realtime.asyncapi > docs/asyncapi.json`), and the tests check
every frame they receive against it, so it cannot drift from the server.

The document describes the server: `receive` operations are what clients send,
`send` operations what the server sends.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib.metadata import version
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from switchboard.kinds import KINDS
from switchboard.names import CHANNEL_PATTERN, SLUG_PATTERN
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.presence import ANONYMOUS_IDENTITY, SIGNED_IN
from switchboard.realtime.protocol import MAX_CREDENTIAL_LENGTH, MAX_ID_LENGTH, MAX_SEQ
from switchboard.resources import BoardOut, BoardSummary, WidgetBatchOut, WidgetOut

Schema = dict[str, Any]

SCHEMAS = "#/components/schemas/"
MESSAGES = "#/components/messages/"
WS, SSE = "ws", "boardStream"
"""The two channels' ids."""

CLOSE_CODES: dict[CloseCode, str] = {
    CloseCode.NORMAL: "Normal closure; the server uses it only to answer a client that closed.",
    CloseCode.GOING_AWAY: "Going away; not sent by the server (what a browser sends).",
    CloseCode.UNSUPPORTED_DATA: "Not sent: a binary frame gets an `invalid_frame` error.",
    CloseCode.POLICY_VIOLATION: "More than `SWITCHBOARD_WS_MAX_FRAMES_PER_SECOND` frames in one "
    "second: slow down, reconnect with `since` after a backoff.",
    CloseCode.MESSAGE_TOO_BIG: "A frame over `SWITCHBOARD_WS_MAX_MESSAGE_BYTES`: fix the client.",
    CloseCode.INTERNAL_ERROR: "Internal error, or no answer to the server's ping: reconnect "
    "with `since`.",
    CloseCode.SERVICE_RESTART: "The worker is stopping: reconnect at once (any worker) with "
    "`since`.",
    CloseCode.TRY_AGAIN_LATER: "The server could not continue this connection: reconnect with "
    "`since` after a backoff.",
    CloseCode.SLOW_CONSUMER: "The client's outgoing queue filled up: reconnect with `since`.",
    CloseCode.TOO_MANY_CONNECTIONS: "Too many connections for this credential on this worker "
    "(after an `error` `too_many_connections`): reconnect later, with a backoff.",
    CloseCode.UNAUTHORIZED: "The credential is missing, invalid, expired or revoked: get a new "
    "one; do not retry as is.",
    CloseCode.FORBIDDEN: "Reserved: a refused `Origin` is answered at the handshake with HTTP "
    "403 instead.",
}
"""What each close code means to a client; every `CloseCode` has one."""

ERROR_CODES: dict[str, str] = {
    "invalid_json": "the frame is not JSON",
    "invalid_frame": "not a JSON object, a binary frame, a bad `id`, `since` or `token`",
    "frame_too_large": "a text frame over `SWITCHBOARD_WS_MAX_FRAME_BYTES`",
    "unknown_type": "`type` is not one the server receives",
    "invalid_channel": "the channel is not `board:<slug>`",
    "already_subscribed": "`subscribe` on a channel already subscribed to",
    "too_many_subscriptions": "`subscribe` beyond `SWITCHBOARD_WS_MAX_SUBSCRIPTIONS`",
    "not_subscribed": "`unsubscribe` or `presence` on a channel not subscribed to",
    "not_found": "the board does not exist or may not be read; with `channel`: a live "
    "subscription lost access and has ended",
    "unavailable": "the store or the presence store could not be read; retry",
    "unauthorized": "at connect (close 4101 follows), or an `auth` frame's credential refused",
    "too_many_connections": "at connect; close 4029 follows",
}
"""Every `code` an `error` frame carries, and when."""

EVENT_DATA: dict[str, str] = {
    "widget.created": "WidgetOut",
    "widget.updated": "WidgetOut",
    "widgets.updated": "WidgetBatchOut",
    "widget.points": "WidgetPoints",
    "widget.deleted": "WidgetKey",
    "board.created": "BoardSummary",
    "board.updated": "BoardSummary",
    "board.deleted": "BoardSlug",
}
"""Every event name, and the schema of its `data`."""

SLUG: Schema = {"type": "string", "pattern": f"^{SLUG_PATTERN}$"}
TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
    "description": "ISO 8601, UTC, milliseconds, `Z`.",
}
REFINED: dict[str, Schema] = {
    "slug": SLUG,
    "key": SLUG,
    "kind": {"type": "string", "enum": list(KINDS)},
    "seq": {"type": "integer", "minimum": 0},
    "version": {"type": "integer", "minimum": 1},
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
}
"""What the output models do not say about their fields (they serialize, they check
nothing): patterns, ranges, the kinds."""


def ref(name: str) -> Schema:
    return {"$ref": f"{SCHEMAS}{name}"}


def closed(properties: dict[str, Schema], *optional: str, description: str = "") -> Schema:
    """An object with exactly these properties, all required but `optional`."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def frame(kind: str, properties: dict[str, Schema], *optional: str, description: str) -> Schema:
    """A frame: a JSON object whose `type` is `kind`."""
    fields = {"type": {"type": "string", "const": kind}, **properties}
    return closed(fields, *optional, description=description)


def model_schemas() -> dict[str, Schema]:
    """The JSON Schemas of the resource models, closed and refined (`REFINED`)."""
    models: list[type[BaseModel]] = [WidgetOut, BoardSummary, BoardOut, WidgetBatchOut]
    _, top = models_json_schema(
        [(model, "serialization") for model in models], ref_template=f"{SCHEMAS}{{model}}"
    )
    schemas: dict[str, Schema] = top["$defs"]
    for schema in schemas.values():
        assert set(schema["required"]) == set(schema["properties"]), "every field is sent"
        schema["additionalProperties"] = False
        for name, refined in REFINED.items():
            if name in schema["properties"]:
                title = schema["properties"][name].get("title")
                schema["properties"][name] = {"title": title, **refined}
    return schemas


def payload_schemas() -> dict[str, Schema]:
    """Every payload schema: the resources, the event data, the frames."""
    channel: Schema = {
        "type": "string",
        "pattern": f"^{CHANNEL_PATTERN}$",
        "description": "`board:<slug>`.",
    }
    seq: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_SEQ}
    counts: Schema = {
        "type": "object",
        "propertyNames": {
            "pattern": f"^(key:.+|token:.+|bootstrap|{ANONYMOUS_IDENTITY}|{SIGNED_IN})$"
        },
        "additionalProperties": {"type": "integer", "minimum": 0},
    }
    echoed = {"id": ref("RequestId")}
    event_variants = [
        {
            "properties": {
                "event": {"enum": [e for e, d in EVENT_DATA.items() if d == data]},
                "data": ref(data),
            }
        }
        for data in dict.fromkeys(EVENT_DATA.values())
    ]
    return {
        **model_schemas(),
        "RequestId": {
            "description": "Chosen by the client, echoed on the reply and on an error it caused.",
            "oneOf": [
                {"type": "string", "maxLength": MAX_ID_LENGTH},
                {"type": "integer", "minimum": -MAX_SEQ, "maximum": MAX_SEQ},
            ],
        },
        "Channel": channel,
        "Timestamp": TIMESTAMP,
        "Point": closed({"t": TIMESTAMP, "v": {"type": "number"}}),
        "WidgetPoints": closed(
            {"key": SLUG, "points": {"type": "array", "items": ref("Point")}},
            description="The points appended: append them, keep the last `config.max_points`.",
        ),
        "WidgetKey": closed({"key": SLUG}),
        "BoardSlug": closed({"slug": SLUG}),
        # Client frames: what the server receives. Other fields are ignored.
        "Subscribe": {
            **frame(
                "subscribe",
                {"channel": ref("Channel"), "since": seq, **echoed},
                "since",
                "id",
                description="Without `since`: `subscribed`, a `snapshot`, then live events. "
                "With `since` (the last seq held): `subscribed`, every stored event after it, "
                "then live ones; `reset` and a `snapshot` instead if that history is gone.",
            ),
            "additionalProperties": True,
        },
        "Unsubscribe": {
            **frame(
                "unsubscribe",
                {"channel": ref("Channel"), **echoed},
                "id",
                description="Reply: `unsubscribed`; nothing of that channel follows it.",
            ),
            "additionalProperties": True,
        },
        "Ping": {
            **frame("ping", echoed, "id", description="Reply: `pong`."),
            "additionalProperties": True,
        },
        "PresenceQuery": {
            **frame(
                "presence",
                {"channel": ref("Channel"), **echoed},
                "id",
                description="Who watches a subscribed channel; from then on that subscription "
                "also gets `presence` change frames.",
            ),
            "additionalProperties": True,
        },
        "Auth": {
            **frame(
                "auth",
                {
                    "token": {"type": "string", "minLength": 1, "maxLength": MAX_CREDENTIAL_LENGTH},
                    **echoed,
                },
                "id",
                description="Replace the connection's credential (a fresh token from the same "
                "key) without reconnecting. Reply: `authed`, after an `error` `not_found` for "
                "each subscription the new credential may not read; or `error` `unauthorized`, "
                "the old credential staying.",
            ),
            "additionalProperties": True,
        },
        # Server frames: closed, so that a field the server adds must be documented here.
        "Subscribed": frame(
            "subscribed",
            {"channel": ref("Channel"), "seq": seq, **echoed},
            "id",
            description="The subscription started at the board's `seq`.",
        ),
        "Unsubscribed": frame(
            "unsubscribed", {"channel": ref("Channel"), **echoed}, "id", description="Done."
        ),
        "Snapshot": frame(
            "snapshot",
            {"channel": ref("Channel"), "seq": seq, "data": ref("BoardOut")},
            description="The board with its widgets at `seq`, as `GET /api/boards/{slug}` "
            "returns it: replace whatever the client held.",
        ),
        "Event": {
            **frame(
                "event",
                {
                    "channel": ref("Channel"),
                    "seq": {**seq, "minimum": 1},
                    "event": {"type": "string", "enum": list(EVENT_DATA)},
                    "data": {"type": "object"},
                    "at": ref("Timestamp"),
                },
                description="One committed change; per subscription in seq order, with no gap "
                "and no duplicate. `data` depends on `event`.",
            ),
            "oneOf": event_variants,
        },
        "Reset": frame(
            "reset",
            {"channel": ref("Channel"), "reason": {"type": "string", "enum": ["history_expired"]}},
            description="The `since` asked for is no longer retained: forget the board's "
            "state; a `snapshot` follows.",
        ),
        "Pong": frame("pong", echoed, "id", description="The reply to `ping`."),
        "PresenceViewers": frame(
            "presence",
            {"channel": ref("Channel"), "viewers": counts, **echoed},
            "id",
            description="The reply to `presence`: open subscriptions per identity, on every "
            "worker (anonymous connections see `anonymous` and `authenticated` counts).",
        ),
        "PresenceChanged": frame(
            "presence",
            {"channel": ref("Channel"), "changed": counts},
            description="At most once per `SWITCHBOARD_PRESENCE_INTERVAL`, to subscriptions "
            "that asked: the new count per identity, 0 for one that left.",
        ),
        "Authed": frame(
            "authed",
            {"expires_at": {"oneOf": [ref("Timestamp"), {"type": "null"}]}, **echoed},
            "id",
            description="The new credential is in force; `expires_at` is null for an API key.",
        ),
        "Error": frame(
            "error",
            {
                "code": {
                    "type": "string",
                    "enum": list(ERROR_CODES),
                    "description": "\n".join(f"- `{c}`: {w}" for c, w in ERROR_CODES.items()),
                },
                "message": {"type": "string", "description": "For people; do not parse it."},
                "channel": ref("Channel"),
                **echoed,
            },
            "channel",
            "id",
            description="The connection stays usable unless a close follows. `id`: the frame "
            "that caused it. `channel` (and no `id`): that subscription has ended.",
        ),
    }


MESSAGE_PAYLOADS: dict[str, str] = {
    "subscribe": "Subscribe",
    "unsubscribe": "Unsubscribe",
    "ping": "Ping",
    "presenceQuery": "PresenceQuery",
    "auth": "Auth",
    "subscribed": "Subscribed",
    "unsubscribed": "Unsubscribed",
    "snapshot": "Snapshot",
    "event": "Event",
    "reset": "Reset",
    "pong": "Pong",
    "presence": "PresenceViewers",
    "presenceChanged": "PresenceChanged",
    "authed": "Authed",
    "error": "Error",
}
"""The WebSocket's messages (by id) and their payload schemas."""

REQUESTS: dict[str, list[str]] = {
    "subscribe": ["subscribed"],
    "unsubscribe": ["unsubscribed"],
    "ping": ["pong"],
    "presenceQuery": ["presence"],
    "auth": ["authed"],
}
"""Each client frame and its reply (or an `error` with its `id`)."""

PUSHED = ["snapshot", "event", "reset", "presenceChanged", "error"]
"""What the server sends besides replies."""

SSE_MESSAGES: dict[str, tuple[str, str, bool]] = {
    "sseSnapshot": ("Snapshot", "snapshot", True),
    "sseEvent": ("Event", "message", True),
    "sseReset": ("Reset", "reset", False),
}
"""The SSE stream's messages: payload schema, SSE `event:` field, whether `id:` is set."""


def sse_headers(event: str, has_id: bool) -> Schema:
    """An SSE message's fields besides `data`, as its message headers."""
    fields: dict[str, Schema] = {"event": {"type": "string", "const": event}}
    if has_id:
        fields["id"] = {"type": "string", "pattern": "^[0-9]+$", "description": "The seq."}
    return closed(fields)


def messages() -> dict[str, Schema]:
    found = {
        name: {"name": name, "title": schema, "payload": ref(schema)}
        for name, schema in MESSAGE_PAYLOADS.items()
    }
    for name, (schema, event, has_id) in SSE_MESSAGES.items():
        found[name] = {
            "name": name,
            "title": f"{schema} (SSE)",
            "summary": f"`event: {event}`"
            + (", `id:` the seq" if has_id else ", no `id:`")
            + "; `data:` the same JSON as the WebSocket frame.",
            "headers": sse_headers(event, has_id),
            "payload": ref(schema),
        }
    return found


def message_refs(channel: str, names: list[str]) -> list[Schema]:
    return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]


def operations() -> dict[str, Schema]:
    found: dict[str, Schema] = {
        f"receive{name[0].upper()}{name[1:]}": {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{WS}"},
            "messages": message_refs(WS, [name]),
            "reply": {
                "channel": {"$ref": f"#/channels/{WS}"},
                "messages": message_refs(WS, [*replies, "error"]),
            },
        }
        for name, replies in REQUESTS.items()
    }
    found["sendUpdates"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{WS}"},
        "summary": "Snapshots, events, resets, presence changes and unsolicited errors.",
        "messages": message_refs(WS, PUSHED),
    }
    found["sendStream"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{SSE}"},
        "bindings": {
            "http": {
                "method": "GET",
                "query": {
                    "type": "object",
                    "properties": {
                        "since": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                        "token": {"type": "string"},
                    },
                },
                "bindingVersion": "0.3.0",
            }
        },
        "messages": message_refs(SSE, list(SSE_MESSAGES)),
    }
    return found


def close_codes() -> list[Schema]:
    return [
        {"code": code.value, "name": code.name.lower(), "description": CLOSE_CODES[code]}
        for code in CloseCode
    ]


WS_DESCRIPTION = """\
JSON text frames, both ways. Credentials: `Authorization: Bearer <key-or-token>`, or
`?token=` for browsers; public boards need none. Frames on one connection are handled
one at a time: replies come in the order of the requests, and events and presence
changes may arrive between them. A refused credential gets an `error` `unauthorized`
then close 4101; a refused browser `Origin`, or a worker still starting, gets HTTP 403
at the handshake. `x-close-codes` lists every close code the server uses: 4000-4099 mean
"reconnect (with `since`)", 4100-4199 "do not reconnect with the same credential"."""

SSE_DESCRIPTION = """\
One board's events as Server-Sent Events, for clients that only listen. Credentials as
for `/ws`. The stream starts with `retry: 1000`; without `Last-Event-ID` (or `?since=`)
a snapshot comes first; every `data:` is exactly the WebSocket frame (`subscribed` is not
sent). `Last-Event-ID` (an event's `id:`, its seq) resumes after it. An idle stream gets
a `: keep-alive` comment every `SWITCHBOARD_SSE_KEEPALIVE` seconds. What a WebSocket
says with an `error` frame or a close code ends the stream instead; errors before it
starts are REST errors (401, 404, 422, 429)."""


def build() -> dict[str, Any]:
    """The whole document."""
    ws_messages = {name: {"$ref": f"{MESSAGES}{name}"} for name in MESSAGE_PAYLOADS}
    sse_messages = {name: {"$ref": f"{MESSAGES}{name}"} for name in SSE_MESSAGES}
    security = [{"$ref": "#/components/securitySchemes/bearer"}]
    security.append({"$ref": "#/components/securitySchemes/token"})
    host = {"host": {"default": "localhost:8000", "description": "host[:port] of the server"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard realtime protocol",
            "version": version("switchboard-live"),
            "description": "Live dashboards: the WebSocket protocol at `/ws` and the "
            "Server-Sent Events stream of a board. This document describes the server: "
            "`receive` operations are the frames clients send, `send` those it sends.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "websocket": {
                "host": "{host}",
                "protocol": "ws",
                "description": "`wss` behind TLS.",
                "variables": host,
                "security": security,
            },
            "http": {
                "host": "{host}",
                "protocol": "http",
                "description": "`https` behind TLS.",
                "variables": host,
                "security": security,
            },
        },
        "channels": {
            WS: {
                "address": "/ws",
                "title": "The WebSocket",
                "description": WS_DESCRIPTION,
                "servers": [{"$ref": "#/servers/websocket"}],
                "messages": ws_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {"type": "object", "properties": {"token": {"type": "string"}}},
                        "headers": {
                            "type": "object",
                            "properties": {"Authorization": {"type": "string"}},
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
                "x-close-codes": close_codes(),
            },
            SSE: {
                "address": "/api/boards/{slug}/stream",
                "title": "A board's Server-Sent Events",
                "description": SSE_DESCRIPTION,
                "servers": [{"$ref": "#/servers/http"}],
                "parameters": {"slug": {"description": f"The board (`{SLUG_PATTERN}`)."}},
                "messages": sse_messages,
            },
        },
        "operations": operations(),
        "components": {
            "schemas": payload_schemas(),
            "messages": messages(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key or a viewer token (`POST /api/tokens`).",
                },
                "token": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "The same credential, for browsers (no headers).",
                },
            },
        },
    }


@cache
def document() -> bytes:
    """The document as served and as kept in docs/asyncapi.json."""
    return orjson.dumps(build(), option=orjson.OPT_INDENT_2) + b"\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(document())
