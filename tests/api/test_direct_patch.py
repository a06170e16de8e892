"""The widget PATCH answered in front of the router (`api.direct`) and by the route: one
function (`api.widget_patch.answer`) answers both, so the answers are the same by
construction; these tests pin what that function answers, on both paths, and that the
fast path hands anything else to the router untouched."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from switchboard.api.direct import DirectWidgetPatch
from tests.helpers import ADMIN_KEY, LiveServer

AUTH = (b"authorization", f"Bearer {ADMIN_KEY}".encode())
JSON_TYPE = {"content-type": "application/json"}

# (request headers, body, status, error code): each sent once answered in front of the
# router and once through the route (a query string sends it there).
CASES: list[tuple[dict[str, str], bytes, int, str | None]] = [
    (JSON_TYPE, b'{"value": 5}', 200, None),
    (JSON_TYPE, b'{"value": 6, "title": "T"}', 200, None),
    (JSON_TYPE, b'{"value": null}', 200, None),
    ({"content-type": "application/merge-patch+json"}, b'{"value": 7}', 200, None),
    ({**JSON_TYPE, "if-match": '"1"'}, b'{"value": 8}', 412, "precondition_failed"),  # stale
    (
        {**JSON_TYPE, "if-match": '"soon"'},
        b'{"value": 8}',
        412,
        "precondition_failed",
    ),  # no version
    ({**JSON_TYPE, "if-match": "soon"}, b'{"value": 8}', 400, "bad_request"),  # not an ETag
    (JSON_TYPE, b'{"value": "eight"}', 422, "validation_error"),  # the widget's kind
    (JSON_TYPE, b'{"value": 1, "colour": "red"}', 422, "validation_error"),  # the body model
    (JSON_TYPE, b'{"title": "a\\u0001b"}', 422, "validation_error"),  # a field's validator
    (JSON_TYPE, b'{"value": NaN}', 422, "validation_error"),  # JSON as Python reads it
    (JSON_TYPE, b'{"value": 123456789012345678901234567890}', 422, "validation_error"),
    (JSON_TYPE, b'{"value": ', 400, "invalid_json"),
    (JSON_TYPE, b"[" * 5000, 400, "bad_request"),  # nested past the recursion limit
    (JSON_TYPE, b"\xff\xfe{", 400, "bad_request"),  # not UTF-8
    (JSON_TYPE, b"[1, 2]", 422, "validation_error"),
    (JSON_TYPE, b"", 422, "validation_error"),
    ({}, b'{"value": 9}', 422, "validation_error"),  # no Content-Type: not read as JSON
    ({"content-type": "text/plain"}, b'{"value": 9}', 422, "validation_error"),
    ({**JSON_TYPE, "authorization": "Basic x"}, b'{"value": 10}', 401, "unauthorized"),
    ({**JSON_TYPE, "authorization": "Bearer nobody"}, b'{"value": 10}', 401, "unauthorized"),
    # The caller first, then the body: a stranger learns nothing of what it sent.
    ({**JSON_TYPE, "authorization": "Bearer nobody"}, b'{"value": ', 401, "unauthorized"),
    ({"authorization": "Bearer nobody"}, b'{"value": 1}', 401, "unauthorized"),
]


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """What the two widgets' answers share: everything but their key and times."""
    return {k: v for k, v in body.items() if k not in ("key", "created_at", "updated_at")}


async def test_both_paths_answer_every_patch_alike(server: LiveServer, slug: str) -> None:
    """Two widgets in the same state take the same requests, one's in front of the router
    and the other's through the route: the status and error code each case expects,
    and the same body and ETag on both paths."""
    await server.create_board(slug)
    for key in ("a", "b"):
        await server.put_widget(slug, key, kind="number", value=0)
    base = f"/api/boards/{slug}/widgets"
    for headers, body, status, code in CASES:
        here, routed = [
            await server.http.patch(f"{base}/{key}{query}", content=body, headers=headers)
            for key, query in (("a", ""), ("b", "?via=router"))
        ]
        case = f"{headers} {body[:40]!r}"
        assert (here.status_code, routed.status_code) == (status, status), case
        if code is not None:
            assert here.json()["error"]["code"] == code, case
        assert here.headers.get("etag") == routed.headers.get("etag"), case
        assert here.headers["content-type"] == routed.headers["content-type"], case
        named_b = orjson.loads(routed.text.replace("'b'", "'a'"))  # in error messages
        assert _comparable(here.json()) == _comparable(named_b), case
    for path in (f"{base}/missing", f"/api/boards/{slug}-gone/widgets/a"):
        here = await server.http.patch(path, json={"value": 1})
        routed = await server.http.patch(f"{path}?via=router", json={"value": 1})
        assert here.status_code == 404
        assert (here.status_code, here.json()) == (routed.status_code, routed.json())
    widgets = (await server.http.get(f"/api/boards/{slug}")).json()["widgets"]
    a, b = sorted(widgets, key=lambda w: w["key"])
    assert _comparable(a) == _comparable(b)
    assert a["version"] == 1 + sum(1 for case in CASES if case[2] == 200)
    events = (await server.http.get(f"/api/boards/{slug}/events?limit=100")).json()["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # gapless


async def test_the_route_checks_its_path_before_if_match(server: LiveServer, slug: str) -> None:
    """A key outside the slug pattern reaches the route (the fast path matches the
    pattern only), which refuses it as its declared path parameter (422)."""
    await server.create_board(slug)
    response = await server.http.patch(
        f"/api/boards/{slug}/widgets/Not_A_Key", json={"value": 1}, headers={"if-match": "x"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["path", "key"]


async def test_the_operation_is_still_described(server: LiveServer) -> None:
    """The route's signature, not run, still documents the operation in full."""
    doc = (await server.http.get("/openapi.json")).json()
    operation = doc["paths"]["/api/boards/{slug}/widgets/{key}"]["patch"]
    assert {p["name"] for p in operation["parameters"]} == {
        "slug",
        "key",
        "If-Match",
        "Idempotency-Key",
    }
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/WidgetPatch"}
    assert "WidgetPatch" in doc["components"]["schemas"]
    assert operation["security"] == [{"bearer": []}]
    assert {"200", "401", "403", "404", "412", "422", "429"} <= operation["responses"].keys()


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
        ("PATCH", "/api/boards/{slug}/widgets/w", b'{"value": 1}', JSON, b"via=router"),
        ("PUT", "/api/boards/{slug}/widgets/w", b'{"kind": "number"}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets", b'{"widgets": {}}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets/Not_A_Key", b'{"value": 1}', JSON, b""),
        ("PATCH", "/api/boards/{slug}/widgets/w/points", b'{"value": 1}', JSON, b""),
    ],
)  # fmt: skip
async def test_anything_but_the_widget_patch_goes_on_to_the_router(
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


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"value": 1}', TEXT, 422),
        (b'{"value": 1}', [], 422),
        (b'{"value": 1', JSON, 400),
        (b'{"valeu": 1}', JSON, 422),
        (b'{"value": NaN}', JSON, 422),
        (b'{"title": "\\u0000"}', JSON, 422),
    ],
)
async def test_every_body_is_answered_here(
    production: LiveServer, slug: str, body: bytes, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    """Whatever the body, the widget PATCH is `answer`'s: nothing reaches the router."""
    await production.create_board(slug)
    await production.put_widget(slug, "w", value=0)
    inner = Inner()
    app = DirectWidgetPatch(inner, max_bytes=1 << 20)
    sent = await _call(app, production, "PATCH", f"/api/boards/{slug}/widgets/w", body, headers)
    assert inner.bodies == []
    assert sent[0]["status"] == status


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
