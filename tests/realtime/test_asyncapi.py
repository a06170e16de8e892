"""The AsyncAPI document: valid AsyncAPI 3.0, served as docs/asyncapi.json has it, and
in agreement with the server both ways (what the server sends, the document describes;
what the document describes, the server sends).

The official AsyncAPI 3.0 JSON Schema is not kept in the repository: it is fetched
once from the npm registry, pinned by version and hash, and cached in pytest's cache.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import tarfile
from typing import Any

import httpx
import jsonschema_rs
import orjson
import pytest

from switchboard.realtime import protocol as wire
from switchboard.realtime.asyncapi import EVENT_DATA, SSE, WS, document
from switchboard.realtime.protocol import ProtocolError
from tests.asyncapi import (
    check_client_frame,
    check_server_frame,
    check_sse_message,
    message_names,
    protocol,
)
from tests.helpers import ADMIN_KEY, LiveServer, SseMessage, WsClient, sse
from tests.test_docs import ERROR_CALLS, ROOT, SRC, wire_error_codes

SPECS_VERSION = "6.11.1"
SPECS_TARBALL = f"https://registry.npmjs.org/@asyncapi/specs/-/specs-{SPECS_VERSION}.tgz"
SPECS_SHA512 = (
    "A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
)
"""The tarball's `dist.integrity` on the npm registry (base64 SHA-512)."""
SCHEMA_MEMBER = "package/schemas/3.0.0-without-$id.json"
SCHEMA_SHA256 = "abe96881dbfaad495ccbb6bd8d3fb43ca18a13b9d7564849ccb66f39d5e5b20f"
DOCS_COPY = ROOT / "docs" / "asyncapi.json"
REGENERATE = "uv run python -m switchboard.realtime.asyncapi > docs/asyncapi.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def asyncapi_schema(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The official AsyncAPI 3.0.0 JSON Schema (draft-07, bundled), from @asyncapi/specs."""
    cache = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider
    folder = cache.mkdir("asyncapi-specs") if cache else tmp_path_factory.mktemp("specs")
    cached = folder / f"{SPECS_VERSION}-3.0.0-without-id.json"
    if not cached.exists() or sha256(cached.read_bytes()) != SCHEMA_SHA256:
        response = httpx.get(SPECS_TARBALL, timeout=60, follow_redirects=True)
        tarball = response.raise_for_status().content
        assert base64.b64encode(hashlib.sha512(tarball).digest()).decode() == SPECS_SHA512
        with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
            member = archive.extractfile(SCHEMA_MEMBER)
            assert member is not None
            schema = member.read()
        assert sha256(schema) == SCHEMA_SHA256
        partial = cached.with_suffix(".partial")
        partial.write_bytes(schema)
        partial.replace(cached)
    parsed: dict[str, Any] = orjson.loads(cached.read_bytes())
    return parsed


def test_the_document_is_valid_asyncapi_3(asyncapi_schema: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(asyncapi_schema)
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(protocol())]
    assert errors == []
    broken = {**protocol(), "operations": {"x": {"action": "publish"}}}
    assert not validator.is_valid(broken), "the schema checks what it should"


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in references(value)]
    if isinstance(node, list):
        return [r for value in node for r in references(value)]
    return []


def resolve(pointer: str) -> Any:
    node: Any = protocol()
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_what_the_json_schema_cannot_check() -> None:
    """Rules of the AsyncAPI specification its JSON Schema leaves out: every reference
    resolves, and an operation's messages (and its reply's) are its channel's."""
    for pointer in references(protocol()):
        assert pointer.startswith("#/"), pointer
        resolve(pointer)
    for name, operation in protocol()["operations"].items():
        for part in (operation, operation.get("reply", {})):
            channel = part.get("channel", operation["channel"])["$ref"]
            for message in part.get("messages", []):
                assert message["$ref"].startswith(f"{channel}/messages/"), (name, message)


def test_the_server_serves_what_docs_has() -> None:
    """docs/asyncapi.json is the served document, byte for byte (regenerate it if not)."""
    assert DOCS_COPY.read_bytes() == document(), f"run: {REGENERATE}"


async def test_get_asyncapi_json(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        response = await anonymous.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == DOCS_COPY.read_bytes()


def test_error_codes_are_those_the_server_sends() -> None:
    websocket_calls = {name: at for name, at in ERROR_CALLS.items() if name != "error_response"}
    sent = wire_error_codes(SRC / "realtime", websocket_calls)
    assert set(resolve("#/components/schemas/Error/properties/code")["enum"]) == sent


def test_event_names_are_those_the_store_records() -> None:
    """Every `record(tx, board, name, …)` in the store names an event the document
    describes, and the document describes no other; a name is a string, or a constant
    of the store (`widgets.UPDATED`, which the single-statement PATCH also uses)."""
    trees = {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in (SRC / "store").glob("*.py")}
    constants = {
        target.id: node.value.value
        for tree in trees.values()
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    recorded = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record":
                name = node.args[2]
                if isinstance(name, ast.Name):
                    recorded.add(constants[name.id])
                else:
                    assert isinstance(name, ast.Constant), ast.unparse(node)
                    recorded.add(name.value)
    assert recorded == set(EVENT_DATA)


MALFORMED = {"invalid_json", "invalid_frame", "unknown_type", "invalid_channel"}
CLIENT_FRAMES = [
    '{"type": "subscribe", "channel": "board:ops"}',
    '{"type": "subscribe", "channel": "board:ops", "since": 0, "id": "1"}',
    '{"type": "subscribe", "channel": "board:ops", "since": 9223372036854775807}',
    '{"type": "unsubscribe", "channel": "board:a-b", "id": 7}',
    '{"type": "ping"}',
    '{"type": "ping", "id": -3, "extra": true}',
    '{"type": "presence", "channel": "board:ops", "id": "p"}',
    '{"type": "auth", "token": "sbk_x", "id": "a"}',
    "not json",
    "[1, 2]",
    '{"type": "dance"}',
    '{"type": "SUBSCRIBE", "channel": "board:ops"}',
    '{"channel": "board:ops"}',
    '{"type": "subscribe"}',
    '{"type": "subscribe", "channel": "other:x"}',
    '{"type": "subscribe", "channel": "board:../x"}',
    '{"type": "subscribe", "channel": "board:Ops"}',
    '{"type": "subscribe", "channel": "board:ops", "since": -1}',
    '{"type": "subscribe", "channel": "board:ops", "since": "3"}',
    '{"type": "subscribe", "channel": "board:ops", "since": true}',
    '{"type": "subscribe", "channel": "board:ops", "since": 9223372036854775808}',
    '{"type": "unsubscribe"}',
    '{"type": "presence", "channel": 3}',
    '{"type": "ping", "id": {"a": 1}}',
    '{"type": "ping", "id": "' + "x" * 129 + '"}',
    '{"type": "ping", "id": 1.5}',
    '{"type": "auth", "id": "a"}',
    '{"type": "auth", "token": ""}',
    '{"type": "auth", "token": "' + "x" * 4097 + '"}',
]


@pytest.mark.parametrize("text", CLIENT_FRAMES, ids=lambda t: t[:60])
def test_the_document_accepts_what_the_server_parses(text: str) -> None:
    """A frame the server refuses as malformed is one the document does not allow, and
    the reverse (errors about the board, like `not_found`, are not about the frame)."""
    try:
        wire.parse(text)
        malformed = False
    except ProtocolError as exc:
        malformed = exc.code in MALFORMED
    try:
        check_client_frame(orjson.loads(text))
        described = True
    except (AssertionError, orjson.JSONDecodeError):
        described = False
    assert described != malformed


def test_a_frame_the_document_does_not_describe_fails() -> None:
    """The checks have teeth: a field the server would add, a wrong `data` for the event."""
    widget = {
        "key": "cpu",
        "kind": "gauge",
        "title": "CPU",
        "config": {},
        "value": 1,
        "version": 1,
        "created_at": "2026-11-25T10:40:46.329Z",
        "updated_at": "2026-11-25T10:40:46.329Z",
    }
    event = {
        "type": "event",
        "channel": "board:ops",
        "seq": 2,
        "event": "widget.updated",
        "data": widget,
        "at": "2026-11-25T10:40:46.329Z",
    }
    assert check_server_frame(event) == "event"
    for wrong in (
        {**event, "extra": 1},
        {**event, "event": "widgets.updated"},
        {**event, "event": "widget.renamed"},
        {**event, "data": {**widget, "kind": "pie"}},
        {**event, "at": "2026-11-25T10:40:46+00:00"},
        {"type": "pong", "id": "1", "seq": 1},
        {"type": "error", "code": "oops", "message": "…"},
    ):
        with pytest.raises(AssertionError):
            check_server_frame(wrong)
    with pytest.raises(AssertionError):  # an event's SSE message has an `id:`
        check_sse_message("message", None, event)


async def frames_until(ws: WsClient, kind: str, seen: list[str]) -> dict[str, Any]:
    """Read until a frame of message `kind`; note every message seen."""
    while True:
        frame = await ws.recv()
        seen.append(check_server_frame(frame))
        if seen[-1] == kind:
            return frame


def sse_name(message: SseMessage) -> str:
    seq = None if message.id is None else str(message.id)
    return check_sse_message(message.event, seq, message.data)


async def test_the_server_sends_every_message_the_document_describes(
    server: LiveServer, slug: str
) -> None:
    """Every server message and every event name of the document, from a real server: the
    document describes nothing the server never sends."""
    seen: list[str] = []
    board = f"board:{slug}"
    await server.create_board(slug)
    ws, other = await server.ws(), await server.ws()
    await ws.subscribe(slug, id="s")
    await frames_until(ws, "snapshot", seen)
    await ws.send({"type": "presence", "channel": board, "id": "p"})
    await frames_until(ws, "presence", seen)
    await other.subscribe(slug)
    await frames_until(ws, "presenceChanged", seen)
    await ws.send({"type": "ping", "id": 1})
    await frames_until(ws, "pong", seen)
    await ws.send({"type": "auth", "token": ADMIN_KEY})
    await frames_until(ws, "authed", seen)
    await ws.send('{"type": "dance"}')
    await frames_until(ws, "error", seen)

    await server.put_widget(slug, "s", kind="series")
    await server.http.post(f"/api/boards/{slug}/widgets/s/points", json={"points": [{"v": 1}]})
    await server.set_value(slug, "s", [])
    batch = await server.http.patch(
        f"/api/boards/{slug}/widgets", json={"widgets": {"s": {"title": "S"}}}
    )
    assert batch.status_code == 200, batch.text
    await server.http.delete(f"/api/boards/{slug}/widgets/s")
    await server.http.patch(f"/api/boards/{slug}", json={"title": "T"})
    names = [e["event"] for e in await ws.events(6)]
    await ws.send({"type": "unsubscribe", "channel": board})
    await frames_until(ws, "unsubscribed", seen)

    async with sse(server.http, f"/api/boards/{slug}/stream") as stream:
        snapshot = await stream.next()
        head = snapshot.data["seq"]
        await server.http.delete(f"/api/boards/{slug}")
        deleted = await stream.next()
    sse_seen = [sse_name(snapshot), sse_name(deleted)]
    names.append(deleted.data["event"])
    await server.create_board(slug)
    await ws.subscribe(slug, since=head + 1)  # board.created begins the new life
    names.append((await ws.events(1))[0]["event"])
    await ws.send({"type": "unsubscribe", "channel": board})
    await frames_until(ws, "unsubscribed", seen)
    await ws.subscribe(slug, since=head + 100)  # ahead of the board: reset + snapshot
    await frames_until(ws, "snapshot", seen)
    assert "reset" in seen
    async with sse(server.http, f"/api/boards/{slug}/stream", {"Last-Event-ID": "999"}) as stream:
        sse_seen += [sse_name(await stream.next()), sse_name(await stream.next())]

    assert set(names) == set(EVENT_DATA)
    assert set(seen) | {"subscribed", "event"} == set(message_names(WS, sent=True))
    assert set(sse_seen) == set(message_names(SSE, sent=True))
    for client in (ws, other):
        await client.close()
