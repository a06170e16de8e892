"""Server-Sent Events: snapshot first, `id:` is the seq, `Last-Event-ID` resumes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import backend_settings
from tests.helpers import LiveServer, eventually, sse, start_server


async def test_snapshot_then_live_events(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, title="Ops")
    await server.put_widget(slug, "n", value=1)
    async with sse(server.http, f"/api/boards/{slug}/stream") as stream:
        snapshot = await stream.next()
        assert (snapshot.event, snapshot.id) == ("snapshot", 1)
        assert snapshot.data["data"]["widgets"][0]["value"] == 1
        await server.set_value(slug, "n", 2)
        await server.set_value(slug, "n", 3)
        events = await stream.events(2)
    assert [e.id for e in events] == [2, 3]
    assert [e.data["seq"] for e in events] == [2, 3]
    assert events[1].data["event"] == "widget.updated"
    assert events[1].data["data"]["value"] == 3


async def test_last_event_id_resumes_without_snapshot(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "n", value=0)
    for value in range(1, 6):
        await server.set_value(slug, "n", value)
    headers = {"Last-Event-ID": "2"}
    async with sse(server.http, f"/api/boards/{slug}/stream", headers) as stream:
        first = await stream.next()
        assert (first.event, first.id) == ("message", 3)
        rest = await stream.events(3)
        await server.set_value(slug, "n", 99)
        live = await stream.events(1)
    assert [e.id for e in rest] == [4, 5, 6]
    assert live[0].id == 7
    assert live[0].data["data"]["value"] == 99


async def test_resume_after_a_thousand_missed_events(production: LiveServer, slug: str) -> None:
    await production.create_board(slug)
    await production.put_widget(slug, "s", kind="series", config={"max_points": 5})
    path = f"/api/boards/{slug}/widgets/s/points"
    for i in range(1000):
        response = await production.http.post(path, json={"points": [{"v": i}]})
        assert response.status_code == 200, response.text
    async with sse(production.http, f"/api/boards/{slug}/stream", {"Last-Event-ID": "1"}) as stream:
        events = await stream.events(1000, timeout=30)
    assert [e.id for e in events] == list(range(2, 1002))
    assert [e.data["data"]["points"][0]["v"] for e in events] == list(range(1000))


async def test_unknown_board_is_a_json_404(server: LiveServer) -> None:
    response = await server.http.get("/api/boards/nope/stream")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_bad_last_event_id_is_rejected(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    response = await server.http.get(f"/api/boards/{slug}/stream", headers={"Last-Event-ID": "x"})
    assert response.status_code in (400, 422)
    assert "error" in response.json()


async def test_idle_stream_gets_keepalive_comments(
    tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    settings = backend_settings("embedded", tmp_path, pg_url, prefix, sse_keepalive=0.1)
    async with start_server(settings) as live:
        await live.create_board(slug)
        async with sse(live.http, f"/api/boards/{slug}/stream") as stream:
            await stream.next()  # the snapshot
            await asyncio.sleep(0.35)
            await live.put_widget(slug, "n", value=1)
            assert (await stream.next()).id == 1
    assert stream.comments.count(": keep-alive") >= 2


async def test_a_stream_whose_start_fails_ends_so_the_client_retries(
    tmp_path: Path, slug: str
) -> None:
    """A store error while the stream starts (here: the events table is gone) ends the
    stream, instead of leaving it open with keep-alives and never an event."""
    settings = backend_settings("embedded", tmp_path, "", "", sse_keepalive=0.2)
    async with start_server(settings) as server:
        await server.create_board(slug)
        await server.put_widget(slug, "n", value=1)
        with sqlite3.connect(tmp_path / "sb.db") as broken:
            broken.execute("ALTER TABLE events RENAME TO events_gone")
        try:
            headers = {"Last-Event-ID": "0"}
            async with sse(server.http, f"/api/boards/{slug}/stream", headers) as stream:
                with pytest.raises(EOFError):
                    await stream.next(timeout=5)
        finally:
            with sqlite3.connect(tmp_path / "sb.db") as fixed:
                fixed.execute("ALTER TABLE events_gone RENAME TO events")


async def test_clients_that_hang_up_during_setup_give_their_slot_back(
    tmp_path: Path, slug: str
) -> None:
    settings = backend_settings("embedded", tmp_path, "", "", max_connections_per_credential=10)
    async with start_server(settings) as server:
        await server.create_board(slug, public=True)
        host, port = server.base_url.removeprefix("http://").split(":")
        request = f"GET /api/boards/{slug}/stream HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        for _ in range(60):  # anonymous: the slot is the client address
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(request)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        await eventually(lambda: not list(server.state.realtime.connections.principals()))
        async with server.http.stream(
            "GET", f"/api/boards/{slug}/stream", headers={"Authorization": ""}
        ) as response:
            assert response.status_code != 429


async def test_a_stream_ends_when_its_token_expires(tmp_path: Path, slug: str) -> None:
    """At the token's expiry, not at the next credential check (a minute away here): the
    connection's own timer ends the stream, and `EventSource` comes back with a new one."""
    settings = backend_settings("embedded", tmp_path, "", "", credential_check_interval=60)
    async with start_server(settings) as server:
        await server.create_board(slug)
        minted = (await server.http.post("/api/tokens", json={"ttl": 2})).json()
        expires = datetime.fromisoformat(minted["expires_at"]).timestamp()
        headers = {"Authorization": f"Bearer {minted['token']}"}
        async with sse(server.http, f"/api/boards/{slug}/stream", headers) as stream:
            assert (await stream.next()).event == "snapshot"
            with pytest.raises(EOFError):
                await stream.next(timeout=10)
        assert expires - 0.1 <= time.time() <= expires + 2
