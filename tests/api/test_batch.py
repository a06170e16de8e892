"""`PATCH /api/boards/{slug}/widgets`: several widgets in one transaction, one event."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import backend_settings
from tests.helpers import LiveServer, sse, start_server


async def _board(server: LiveServer, slug: str) -> None:
    """A board at seq 3: number `a`, gauge `b` (0..10), series `c`."""
    await server.create_board(slug)
    await server.put_widget(slug, "a", kind="number", title="A", value=1)
    await server.put_widget(slug, "b", kind="gauge", config={"min": 0, "max": 10}, value=5)
    await server.put_widget(slug, "c", kind="series", config={"max_points": 2}, value=[])


async def _widgets(server: LiveServer, slug: str) -> list[dict[str, Any]]:
    board = (await server.http.get(f"/api/boards/{slug}")).json()
    widgets: list[dict[str, Any]] = board["widgets"]
    return widgets


async def _events(server: LiveServer, slug: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await server.http.get(f"/api/boards/{slug}/events")).json()[
        "items"
    ]
    return items


BATCH = {
    "a": {"value": 2, "title": "Alpha"},
    "b": {"value": 7.5},
    "c": {"value": [{"v": 1}, {"v": 2}, {"v": 3}]},
}


async def test_batch_updates_every_widget_with_one_event(server: LiveServer, slug: str) -> None:
    await _board(server, slug)
    ws = await server.ws()
    await ws.subscribe(slug, since=3)
    async with sse(server.http, f"/api/boards/{slug}/stream", {"Last-Event-ID": "3"}) as stream:
        response = await server.http.patch(f"/api/boards/{slug}/widgets", json={"widgets": BATCH})
        assert response.status_code == 200, response.text
        changed = response.json()["widgets"]
        assert [w["key"] for w in changed] == ["a", "b", "c"]
        assert [w["version"] for w in changed] == [2, 2, 2]
        assert changed[0]["title"] == "Alpha"
        assert [p["v"] for p in changed[2]["value"]] == [2, 3]  # trimmed to max_points
        assert await _widgets(server, slug) == changed

        [event] = await ws.events(1)
        assert (event["seq"], event["event"]) == (4, "widgets.updated")
        assert event["data"]["widgets"] == changed  # each exactly as GET returns it
        [message] = await stream.events(1)
        assert message.data == event  # the same frame over SSE
    stored = await _events(server, slug)
    assert [(e["seq"], e["event"]) for e in stored[-1:]] == [(4, "widgets.updated")]
    assert len(stored) == 4
    assert (await server.http.get(f"/api/boards/{slug}")).json()["seq"] == 4
    await server.set_value(slug, "a", 9)  # nothing was queued between: the next is seq 5
    [after] = await ws.events(1)
    assert after["seq"] == 5
    await ws.close()


async def test_bad_entries_are_all_named_and_nothing_changes(server: LiveServer, slug: str) -> None:
    await _board(server, slug)
    before = await _widgets(server, slug)
    batch = {
        "a": {"value": 3},  # fine on its own
        "b": {"value": 11},  # beyond the gauge's max
        "c": {"value": 5},  # not a list of points
        "ghost": {"value": 1},  # no such widget
    }
    response = await server.http.patch(f"/api/boards/{slug}/widgets", json={"widgets": batch})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "nothing was changed" in error["message"]
    named = {tuple(d["loc"]): d["msg"] for d in error["details"]}
    assert set(named) == {("body", "widgets", key) for key in ("b", "c", "ghost")}
    assert "not found" in named[("body", "widgets", "ghost")]
    assert await _widgets(server, slug) == before
    assert len(await _events(server, slug)) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"widgets": {}},
        {"widgets": {"a": {"value": 1, "colour": "red"}}},
        {"widgets": {"Bad Key": {"value": 1}}},
        {"widgets": {"a": {"value": 1, "version": 0}}},
        {"widget": {"a": {"value": 1}}},
    ],
)
async def test_malformed_batches(server: LiveServer, slug: str, body: dict[str, Any]) -> None:
    await _board(server, slug)
    response = await server.http.patch(f"/api/boards/{slug}/widgets", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert len(await _events(server, slug)) == 3


async def test_stale_versions_fail_the_whole_batch(server: LiveServer, slug: str) -> None:
    await _board(server, slug)
    await server.set_value(slug, "b", 6)  # b is now at version 2
    await server.set_value(slug, "c", [])  # c too
    before = await _widgets(server, slug)
    batch: dict[str, dict[str, Any]] = {
        "a": {"value": 2, "version": 1},
        "b": {"value": 3, "version": 1},
        "c": {"value": [], "version": 1},
    }
    path = f"/api/boards/{slug}/widgets"
    response = await server.http.patch(path, json={"widgets": batch})
    assert response.status_code == 412, response.text
    error = response.json()["error"]
    assert error["code"] == "precondition_failed"
    assert [d["loc"][-1] for d in error["details"]] == ["b", "c"]
    assert "version 2, not 1" in error["details"][0]["msg"]
    assert await _widgets(server, slug) == before
    assert len(await _events(server, slug)) == 5

    batch["b"]["version"] = batch["c"]["version"] = 2
    fresh = await server.http.patch(path, json={"widgets": batch})
    assert fresh.status_code == 200, fresh.text
    assert [w["version"] for w in fresh.json()["widgets"]] == [2, 3, 3]


async def test_unknown_board_is_404(server: LiveServer, slug: str) -> None:
    response = await server.http.patch(
        f"/api/boards/{slug}/widgets", json={"widgets": {"a": {"value": 1}}}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_idempotent_batch_applies_once(server: LiveServer, slug: str) -> None:
    await _board(server, slug)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    path = f"/api/boards/{slug}/widgets"
    responses = [
        await server.http.patch(path, json={"widgets": BATCH}, headers=headers) for _ in range(3)
    ]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert [r.headers.get("idempotent-replayed") for r in responses[1:]] == ["true", "true"]
    assert [w["version"] for w in await _widgets(server, slug)] == [2, 2, 2]
    assert [e["event"] for e in await _events(server, slug)][3:] == ["widgets.updated"]
    other = await server.http.patch(path, json={"widgets": {"a": {"value": 100}}}, headers=headers)
    assert other.status_code == 422  # the same key for another request


async def test_batch_size_is_bounded(tmp_path: Path, pg_url: str, prefix: str, slug: str) -> None:
    settings = backend_settings("embedded", tmp_path, pg_url, prefix, batch_max_widgets=3)
    async with start_server(settings) as live:
        await live.create_board(slug)
        for key in ("a", "b", "c", "d"):
            await live.put_widget(slug, key, value=0)
        path = f"/api/boards/{slug}/widgets"
        batch = {key: {"value": 1} for key in ("a", "b", "c", "d")}
        response = await live.http.patch(path, json={"widgets": batch})
        assert response.status_code == 422
        assert "at most 3 widgets, not 4" in response.json()["error"]["message"]
        assert len((await live.http.get(f"/api/boards/{slug}/events")).json()["items"]) == 4
        batch.pop("d")
        assert (await live.http.patch(path, json={"widgets": batch})).status_code == 200


async def test_batch_counts_as_one_write(
    tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    async with start_server(backend_settings("embedded", tmp_path, pg_url, prefix)) as setup:
        await setup.create_board(slug)
        for i in range(10):
            await setup.put_widget(slug, f"w{i}", value=0)
    limited = backend_settings("embedded", tmp_path, pg_url, prefix, write_rate_limit=3)
    async with start_server(limited) as live:  # the same store, now limited to 3 writes/s
        batch = {f"w{i}": {"value": i} for i in range(10)}
        await asyncio.sleep(1 - time.time() % 1)  # the start of a one-second window
        responses = [
            await live.http.patch(f"/api/boards/{slug}/widgets", json={"widgets": batch})
            for _ in range(4)
        ]
        # Three batches of ten widgets pass: three writes, not thirty.
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert responses[3].json()["error"]["code"] == "rate_limited"


async def test_batch_event_is_bounded(tmp_path: Path, pg_url: str, prefix: str, slug: str) -> None:
    settings = backend_settings("embedded", tmp_path, pg_url, prefix, max_body_bytes=4096)
    async with start_server(settings) as live:
        await live.create_board(slug)
        for key in ("a", "b", "c"):
            await live.put_widget(slug, key, kind="text", value="x" * 1500)
        path = f"/api/boards/{slug}/widgets"
        titles = {key: {"title": key.upper()} for key in ("a", "b", "c")}  # a small request
        response = await live.http.patch(path, json={"widgets": titles})
        assert response.status_code == 413, response.text
        assert "smaller batches" in response.json()["error"]["message"]
        assert len((await live.http.get(f"/api/boards/{slug}/events")).json()["items"]) == 3
        assert [
            w["title"] for w in (await live.http.get(f"/api/boards/{slug}")).json()["widgets"]
        ] == ["", "", ""]
        titles.pop("c")
        assert (await live.http.patch(path, json={"widgets": titles})).status_code == 200
