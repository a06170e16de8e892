"""History retention by count and by age: `reset` + `snapshot` on WebSocket and SSE, 410 on REST."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, backend_settings
from tests.helpers import LiveServer, sse, start_server


async def _write(live: LiveServer, slug: str, count: int) -> None:
    for value in range(count):
        await live.set_value(slug, "w", value)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_count_retention(
    backend: str, tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    settings = backend_settings(backend, tmp_path, pg_url, prefix, event_retention=50)
    async with start_server(settings) as live:
        await live.create_board(slug)
        await live.put_widget(slug, "w", value=0)
        await _write(live, slug, 249)  # seq 250; trims at 100 and 200 keep the last 50
        gone = await live.http.get(f"/api/boards/{slug}/events", params={"after": 10})
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "history_expired"
        kept = await live.http.get(f"/api/boards/{slug}/events", params={"after": 160})
        assert [e["seq"] for e in kept.json()["items"]][:3] == [161, 162, 163]

        ws = await live.ws()
        await ws.subscribe(slug, since=10)
        assert (await ws.recv())["type"] == "reset"
        snapshot = await ws.recv()
        assert (snapshot["type"], snapshot["seq"]) == ("snapshot", 250)
        await live.set_value(slug, "w", -1)
        assert [e["seq"] for e in await ws.events(1)] == [251]
        await ws.close()

        async with sse(live.http, f"/api/boards/{slug}/stream", {"Last-Event-ID": "10"}) as s:
            reset = await s.next()
            assert (reset.event, reset.data["reason"]) == ("reset", "history_expired")
            snap = await s.next()
            assert (snap.event, snap.id) == ("snapshot", 251)


async def test_age_retention(tmp_path: Path, pg_url: str, prefix: str, slug: str) -> None:
    settings = backend_settings(
        "production", tmp_path, pg_url, prefix, event_retention_age=timedelta(seconds=1)
    )
    async with start_server(settings) as live:
        await live.create_board(slug)
        await live.put_widget(slug, "w", value=0)
        await _write(live, slug, 98)  # seq 99
        await asyncio.sleep(1.2)
        await live.set_value(slug, "w", 1)  # seq 100: the trim drops everything older than 1 s
        gone = await live.http.get(f"/api/boards/{slug}/events", params={"after": 0})
        assert gone.status_code == 410
        kept = await live.http.get(f"/api/boards/{slug}/events", params={"after": 99})
        assert [e["seq"] for e in kept.json()["items"]] == [100]
