"""The widget PATCH answered in front of the router (`api.direct`): the same answers as
the route's, and anything but the plain case handed to the route untouched."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from switchboard.api.direct import DirectWidgetPatch
from tests.helpers import ADMIN_KEY, LiveServer

AUTH = (b"authorization", f"Bearer {ADMIN_KEY}".encode())

# (request headers, body): each sent once answered here and once by the route.
CASES: list[tuple[dict[str, str], bytes]] = [
    ({}, b'{"value": 5}'),
    ({}, b'{"value": 6, "title": "T"}'),
    ({}, b'{"value": null}'),
    ({"content-type": "application/merge-patch+json"}, b'{"value": 7}'),
    ({"if-match": '"1"'}, b'{"value": 8}'),  # stale: 412
    ({"if-match": "soon"}, b'{"value": 8}'),  # not an ETag: 400
    ({}, b'{"value": "eight"}'),  # not a number: 422 from the widget's kind
    ({}, b'{"value": 1, "colour": "red"}'),  # unknown field: 422 from the body model
    ({}, b'{"title": "a\\u0001b"}'),  # a control character: 422 from a field's validator
    ({}, b'{"value": '),  # 400 invalid_json
    ({}, b"[1, 2]"),
    ({}, b""),
    ({"content-type": "text/plain"}, b'{"value": 9}'),
    ({"authorization": "Basic x"}, b'{"value": 10}'),  # 401
    ({"authorization": "Bearer nobody"}, b'{"value": 10}'),  # 401
]


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """What the two widgets' answers share: everything but their key and times."""
    return {k: v for k, v in body.items() if k not in ("key", "created_at", "updated_at")}


async def test_the_direct_patch_answers_as_the_route_does(server: LiveServer, slug: str) -> None:
    """Two widgets in the same state take the same requests, one's here and the other's
    through the route (a query string sends it there): same status, body and ETag."""
    await server.create_board(slug)
    for key in ("a", "b"):
        await server.put_widget(slug, key, kind="number", value=0)
    base = f"/api/boards/{slug}/widgets"
    for headers, body in CASES:
        headers = {"content-type": "application/json", **headers}
        here, routed = [
            await server.http.patch(f"{base}/{key}{query}", content=body, headers=headers)
            for key, query in (("a", ""), ("b", "?via=router"))
        ]
        case = f"{headers} {body!r}"
        assert here.status_code == routed.status_code, case
        assert here.headers.get("etag") == routed.headers.get("etag"), case
        assert here.headers["content-type"] == routed.headers["content-type"], case
        named_b = orjson.loads(routed.text.replace("'b'", "'a'"))  # in error messages
        assert _comparable(here.json()) == _comparable(named_b), case
    for path in (f"{base}/missing", f"/api/boards/{slug}-gone/widgets/a"):
        here = await server.http.patch(path, json={"value": 1})
        routed = await server.http.patch(f"{path}?via=router", json={"value": 1})
        assert (
            (here.status_code, here.json())
            == (routed.status_code, routed.json())
            == (
                404,
                here.json(),
            )
        )
    widgets = (await server.http.get(f"/api/boards/{slug}")).json()["widgets"]
    a, b = sorted(widgets, key=lambda w: w["key"])
    assert _comparable(a) == _comparable(b)
    events = (await server.http.get(f"/api/boards/{slug}/events?limit=100")).json()["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # gapless


class Inner:
    """The router's stand-in: records what reached it, answers 204."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _call(
    app: DirectWidgetPatch,
    live: LiveServer,
    method: str,
    path: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    query: bytes = b"",
) -> list[Message]:
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [AUTH, *headers],
        "state": {"switchboard": live.state},
    }
    sent: list[Message] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


JSON = [(b"content-type", b"application/json")]
TEXT = [(b"content-type", b"text/plain")]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "query"),
    [
        ("PATCH", "/api/boards/{slug}/widgets/w", b'{"value": 1}', JSON, b"token=x"),
        ("PUT", "/api/boards/{slug}/widgets/w", b'{"kind": "number"}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets", b'{"widgets": {}}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets/Not_A_Key", b'{"value": 1}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets/w", b'{"value": 1}', TEXT, b""),
        ("PATCH", "/api/boards/{slug}/widgets/w", b'{"value": 1', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets/w", b'{"valeu": 1}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets/w", b'{"value": NaN}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets/w", b'{"title": "\\u0000"}', JSON, b""),
    ],
)  # fmt: skip
async def test_anything_but_the_plain_patch_goes_on_to_the_router(
    production: LiveServer,
    slug: str,
    method: str,
    path: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    query: bytes,
) -> None:
    inner = Inner()
    app = DirectWidgetPatch(inner, max_bytes=1 << 20)
    sent = await _call(app, production, method, path.format(slug=slug), body, headers, query)
    assert inner.bodies == [body]  # the body replayed whole
    assert sent[0]["status"] == 204


async def test_the_plain_patch_is_answered_here(production: LiveServer, slug: str) -> None:
    await production.create_board(slug)
    await production.put_widget(slug, "w", value=0)
    inner = Inner()
    app = DirectWidgetPatch(inner, max_bytes=1 << 20)
    path = f"/api/boards/{slug}/widgets/w"
    sent = await _call(app, production, "PATCH", path, b'{"value": 41}', JSON)
    assert inner.bodies == []
    start, body = sent
    assert start["status"] == 200
    assert (b"etag", b'"2"') in start["headers"]
    assert orjson.loads(body["body"])["value"] == 41
    missing = await _call(app, production, "PATCH", f"{path}x", b'{"value": 1}', JSON)
    assert (missing[0]["status"], orjson.loads(missing[1]["body"])["error"]["code"]) == (
        404,
        "not_found",
    )
    assert inner.bodies == []
