"""A write whose answer PostgreSQL sent but the worker never received (the connection died
after the commit: a failover, a network cut, a pooler restart) is applied exactly once.

A real TCP proxy sits between the server and PostgreSQL (`AnswerLosingProxy`): it lets the
write's statement (or its COMMIT) through, lets PostgreSQL answer it, then closes both
sockets without forwarding that answer. The first attempt is answered 503 saying the
outcome is unknown; a retry with the same `Idempotency-Key` gets the committed result,
marked as a replay; the row is written once and subscribers get one event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from switchboard.errors import NOTHING_WRITTEN
from switchboard_client import AsyncClient, Client, RetryPolicy, Widget
from tests.conftest import backend_settings
from tests.helpers import AUTH, AnswerLosingProxy, LiveServer, WsClient, start_server

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[AnswerLosingProxy]:
    async with AnswerLosingProxy(make_url(pg_url).port or 5432) as started:
        yield started


@pytest.fixture
async def live(pg_url: str, prefix: str, proxy: AnswerLosingProxy) -> AsyncIterator[LiveServer]:
    """A server on PostgreSQL (through the proxy) and Redis."""
    url = make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)
    settings = backend_settings("production", Path(), url, prefix)
    async with start_server(settings) as server:
        yield server


def marker() -> str:
    return f"lost-{uuid.uuid4().hex}"


def unknown_outcome(response: httpx.Response) -> None:
    """The first attempt's answer: 503, the outcome unknown, how to find out; never
    "nothing was written"."""
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "unknown" in error["message"]
    assert "Idempotency-Key" in error["message"]
    assert "nothing was written" not in error["message"]


def replayed(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["idempotent-replayed"] == "true"
    body: dict[str, Any] = response.json()
    return body


async def events_of(server: LiveServer, slug: str) -> list[dict[str, Any]]:
    page = (await server.http.get(f"/api/boards/{slug}/events")).json()
    items: list[dict[str, Any]] = page["items"]
    return items


async def live_events_until_sentinel(
    server: LiveServer, ws: WsClient, slug: str
) -> list[dict[str, Any]]:
    """Every event the subscriber receives up to a sentinel write made now (a late
    duplicate, published by a retry or by the store poll, would come before it)."""
    await server.put_widget(slug, "sentinel", kind="text", value="end")
    received: list[dict[str, Any]] = []
    while not received or received[-1]["data"].get("key") != "sentinel":
        received.extend(await ws.events(1, timeout=15))
    return received[:-1]


async def delivered_once(
    server: LiveServer, ws: WsClient, slug: str, written: list[dict[str, Any]]
) -> None:
    """The write's one stored event reached the subscriber, once."""
    assert len(written) == 1
    received = await live_events_until_sentinel(server, ws, slug)
    assert [e["seq"] for e in received] == [written[0]["seq"]]
    await ws.close()


async def subscribed(server: LiveServer, slug: str) -> WsClient:
    ws = await server.ws()
    board = (await server.http.get(f"/api/boards/{slug}")).json()
    await ws.subscribe(slug, since=board["seq"])
    return ws


async def test_single_statement_patch(
    live: LiveServer, proxy: AnswerLosingProxy, slug: str
) -> None:
    await live.create_board(slug)
    await live.put_widget(slug, "t", kind="text", value="before")
    ws = await subscribed(live, slug)
    value, once = marker(), {"Idempotency-Key": f"K-{slug}"}
    path = f"/api/boards/{slug}/widgets/t"

    proxy.arm(value.encode())  # the autocommitted statement carries the value
    first = await live.http.patch(path, json={"value": value}, headers=once)
    assert proxy.fired.is_set()
    unknown_outcome(first)

    widget = (await live.http.get(path)).json()
    assert (widget["value"], widget["version"]) == (value, 2)  # committed, once
    again = await live.http.patch(path, json={"value": value}, headers=once)
    assert replayed(again) == widget
    assert again.headers["etag"] == '"2"'
    assert replayed(await live.http.patch(path, json={"value": value}, headers=once)) == widget
    assert (await live.http.get(path)).json()["version"] == 2
    written = [e for e in await events_of(live, slug) if e["data"].get("value") == value]
    await delivered_once(live, ws, slug, written)


async def test_batch_patch_commit(live: LiveServer, proxy: AnswerLosingProxy, slug: str) -> None:
    await live.create_board(slug)
    for key in ("a", "b"):
        await live.put_widget(slug, key, kind="text", value="before")
    ws = await subscribed(live, slug)
    value, once = marker(), {"Idempotency-Key": f"B-{slug}"}
    path = f"/api/boards/{slug}/widgets"
    body = {"widgets": {"a": {"value": value}, "b": {"value": value}}}

    proxy.arm(value.encode(), then=b"COMMIT")
    first = await live.http.patch(path, json=body, headers=once)
    assert proxy.fired.is_set()
    unknown_outcome(first)

    board = (await live.http.get(f"/api/boards/{slug}")).json()
    changed = [w for w in board["widgets"] if w["value"] == value]
    assert sorted((w["key"], w["version"]) for w in changed) == [("a", 2), ("b", 2)]
    again = replayed(await live.http.patch(path, json=body, headers=once))
    assert sorted(again["widgets"], key=lambda w: w["key"]) == sorted(
        changed, key=lambda w: w["key"]
    )
    written = [e for e in await events_of(live, slug) if e["event"] == "widgets.updated"]
    await delivered_once(live, ws, slug, written)


async def test_put_commit(live: LiveServer, proxy: AnswerLosingProxy, slug: str) -> None:
    await live.create_board(slug)
    ws = await subscribed(live, slug)
    value, once = marker(), {"Idempotency-Key": f"P-{slug}"}
    path = f"/api/boards/{slug}/widgets/w"
    body = {"kind": "text", "value": value}

    proxy.arm(value.encode(), then=b"COMMIT")
    unknown_outcome(await live.http.put(path, json=body, headers=once))

    widget = (await live.http.get(path)).json()
    assert (widget["value"], widget["version"]) == (value, 1)
    again = await live.http.put(path, json=body, headers=once)
    assert replayed(again, 201) == widget  # created: the first attempt's 201
    assert again.headers["etag"] == '"1"'
    assert again.headers["content-type"] == "application/json"
    assert [e["event"] for e in await events_of(live, slug)] == ["widget.created"]
    received = await live_events_until_sentinel(live, ws, slug)
    assert [e["event"] for e in received] == ["widget.created"]
    await ws.close()


async def test_a_write_that_never_arrived_is_released_and_run_by_its_retry(
    live: LiveServer, proxy: AnswerLosingProxy, slug: str
) -> None:
    """The connection dies before the statement reaches PostgreSQL: nothing was written
    (and the 503 says so), the 503 is not stored, and the retry runs the write."""
    await live.create_board(slug)
    value, once = marker(), {"Idempotency-Key": f"N-{slug}"}
    path = f"/api/boards/{slug}/widgets/w"
    body = {"kind": "text", "value": value}

    proxy.arm(value.encode(), forward=False)
    first = await live.http.put(path, json=body, headers=once)
    assert proxy.fired.is_set()
    assert first.status_code == 503, first.text
    assert first.json()["error"]["message"] == NOTHING_WRITTEN
    assert (await live.http.get(path)).status_code == 404

    again = await live.http.put(path, json=body, headers=once)
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert replayed(await live.http.put(path, json=body, headers=once), 201) == again.json()
    assert [e["event"] for e in await events_of(live, slug)] == ["widget.created"]


async def test_board_create_commit(live: LiveServer, proxy: AnswerLosingProxy, slug: str) -> None:
    title, once = marker(), {"Idempotency-Key": f"C-{slug}"}
    body = {"slug": slug, "title": title}

    proxy.arm(title.encode(), then=b"COMMIT")
    unknown_outcome(await live.http.post("/api/boards", json=body, headers=once))

    board = (await live.http.get(f"/api/boards/{slug}")).json()
    assert board["title"] == title
    again = replayed(await live.http.post("/api/boards", json=body, headers=once), 201)
    assert again == board
    assert (await live.http.post("/api/boards", json=body)).status_code == 409  # one board
    assert await events_of(live, slug) == []  # a new board starts at seq 0


async def test_key_create_commit(live: LiveServer, proxy: AnswerLosingProxy) -> None:
    """The key whose creation answer was lost is handed over on retry, with the secret
    that was stored: never created again under a new one."""
    name, once = marker(), {"Idempotency-Key": f"K-{uuid.uuid4().hex}"}
    body = {"role": "admin", "name": name}

    proxy.arm(name.encode(), then=b"COMMIT")
    unknown_outcome(await live.http.post("/api/keys", json=body, headers=once))

    created = replayed(await live.http.post("/api/keys", json=body, headers=once), 201)
    again = replayed(await live.http.post("/api/keys", json=body, headers=once), 201)
    assert again == created
    listing = (await live.http.get("/api/keys")).json()["items"]
    mine = [k for k in listing if k["name"] == name]
    assert [k["id"] for k in mine] == [created["id"]]  # created once
    as_new = {"Authorization": f"Bearer {created['key']}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=as_new) as client:
        assert (await client.get("/api/keys")).status_code == 200  # the secret works


POLICY = RetryPolicy(attempts=5, backoff=0.05, max_backoff=0.2, deadline=20)


def sync_set(base_url: str, slug: str, value: str) -> Widget:
    """`Client.set`, the blocking client (run on a thread: the server is on this loop)."""
    with Client(base_url, token=AUTH["Authorization"][7:], retry=POLICY) as client:
        return client.set(slug, "t", value)


@pytest.mark.parametrize("blocking", [False, True], ids=["AsyncClient", "Client"])
async def test_client_set_ends_normally(
    live: LiveServer, proxy: AnswerLosingProxy, slug: str, blocking: bool
) -> None:
    await live.create_board(slug)
    await live.put_widget(slug, "t", kind="text", value="before")
    value = marker()
    proxy.arm(value.encode())
    if blocking:
        widget = await asyncio.to_thread(sync_set, live.base_url, slug, value)
    else:
        async with AsyncClient(live.base_url, token=AUTH["Authorization"][7:], retry=POLICY) as c:
            widget = await c.set(slug, "t", value)
    assert proxy.fired.is_set()
    assert (widget["value"], widget["version"]) == (value, 2)
    assert (await live.http.get(f"/api/boards/{slug}/widgets/t")).json() == widget
    written = [e for e in await events_of(live, slug) if e["data"].get("value") == value]
    assert len(written) == 1


async def test_every_other_write_route(
    live: LiveServer, proxy: AnswerLosingProxy, slug: str
) -> None:
    """Points, board PATCH, widget DELETE, key revocation and board DELETE: the COMMIT's
    answer lost, each is written once and its retry replays the committed answer."""
    await live.create_board(slug)
    series, doomed = f"s-{uuid.uuid4().hex[:8]}", f"d-{uuid.uuid4().hex[:8]}"
    await live.put_widget(slug, series, kind="series")
    await live.put_widget(slug, doomed, kind="number", value=1)
    revoked = (await live.http.post("/api/keys", json={"role": "read"})).json()
    title = marker()
    cases: list[tuple[str, str, dict[str, Any] | None, bytes, int]] = [
        ("POST", f"/api/boards/{slug}/widgets/{series}/points", {"points": [{"v": 7}]},
         series.encode(), 200),
        ("PATCH", f"/api/boards/{slug}", {"title": title}, title.encode(), 200),
        ("DELETE", f"/api/boards/{slug}/widgets/{doomed}", None, doomed.encode(), 204),
        ("DELETE", f"/api/keys/{revoked['id']}", None, revoked["id"].encode(), 204),
        ("DELETE", f"/api/boards/{slug}", None, b"DELETE FROM widgets", 204),
    ]  # fmt: skip
    for method, path, body, at, status in cases:
        if method == "DELETE" and path == f"/api/boards/{slug}":  # before its history goes
            names = [e["event"] for e in await events_of(live, slug)]
            assert names == [*["widget.created"] * 2, "widget.points", "board.updated",
                             "widget.deleted"]  # fmt: skip
        once = {"Idempotency-Key": f"E-{uuid.uuid4().hex}"}
        proxy.arm(at, then=b"COMMIT")
        first = await live.http.request(method, path, json=body, headers=once)
        assert proxy.fired.is_set(), path
        unknown_outcome(first)
        again = await live.http.request(method, path, json=body, headers=once)
        assert replayed(again, status) if status != 204 else again.status_code == 204, path
        assert again.headers["idempotent-replayed"] == "true"
        if status == 200:
            assert again.headers["etag"] == f'"{again.json()["version"]}"'

    assert (await live.http.get(f"/api/boards/{slug}")).status_code == 404
    keys = (await live.http.get("/api/keys")).json()["items"]
    assert [k["revoked_at"] is not None for k in keys if k["id"] == revoked["id"]] == [True]


async def test_client_update_and_append_points_end_normally(
    live: LiveServer, proxy: AnswerLosingProxy, slug: str
) -> None:
    await live.create_board(slug)
    await live.put_widget(slug, "t", kind="text", value="before")
    await live.put_widget(slug, "s", kind="series")
    value = marker()
    async with AsyncClient(live.base_url, token=AUTH["Authorization"][7:], retry=POLICY) as c:
        proxy.arm(value.encode(), then=b"COMMIT")
        [changed] = await c.update(slug, {"t": value})
        assert proxy.fired.is_set()
        proxy.arm(b"widget.points", then=b"COMMIT")  # the points' event row
        series = await c.append_points(slug, "s", [1.5])
        assert proxy.fired.is_set()
    assert (changed["value"], changed["version"]) == (value, 2)
    assert ([p["v"] for p in series["value"]], series["version"]) == ([1.5], 2)
    names = [e["event"] for e in await events_of(live, slug)]
    assert names == ["widget.created", "widget.created", "widgets.updated", "widget.points"]


async def test_a_claim_whose_commit_answer_was_lost_is_released(
    live: LiveServer, proxy: AnswerLosingProxy, slug: str
) -> None:
    """The key's own claim commits and its answer is lost: the write never ran (the 503
    says nothing was written), the claim is released, and the retry runs the write at
    once instead of being told it is in progress."""
    await live.create_board(slug)
    path = f"/api/boards/{slug}/widgets/w"
    body, once = {"kind": "text", "value": marker()}, {"Idempotency-Key": f"Q-{slug}"}

    proxy.arm(slug.encode(), then=b"COMMIT")  # the claim's row names the board
    first = await live.http.put(path, json=body, headers=once)
    assert proxy.fired.is_set()
    assert first.status_code == 503, first.text
    assert first.json()["error"]["message"] == NOTHING_WRITTEN
    again = await live.http.put(path, json=body, headers=once)
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
