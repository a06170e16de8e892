"""`GET /api/boards/{slug}?at=<seq>`: the board as the live GET showed it right after that
seq, rebuilt from checkpoints and events, on both backends; across checkpoints, retention,
private boards and a re-created slug."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.store import checkpoints
from switchboard.store.events import TRIM_EVERY, find_board
from tests.conftest import BACKENDS, backend_settings
from tests.helpers import LiveServer, start_server


class Recorder:
    """Writes to one board, and the live GET right after each (by seq)."""

    def __init__(self, live: LiveServer, slug: str) -> None:
        self.live, self.slug = live, slug
        self.seen: dict[int, dict[str, Any]] = {}

    async def snap(self) -> int:
        body: dict[str, Any] = (await self.live.http.get(f"/api/boards/{self.slug}")).json()
        self.seen[body["seq"]] = body
        return int(body["seq"])

    async def send(self, method: str, path: str, body: Any = None) -> None:
        url = f"/api/boards/{self.slug}{path}"
        response = await self.live.http.request(method, url, json=body)
        assert response.status_code < 300, response.text
        await self.snap()

    async def mixed(self, rounds: int) -> None:
        """`rounds` rounds of every kind of write: PUT (create, replace, kind change),
        PATCH (value, title, config), batch, points, deletes, board fields."""
        for i in range(rounds):
            await self.send("PUT", f"/widgets/n{i % 4}", {"kind": "number", "value": i})
            await self.send("PATCH", f"/widgets/n{i % 4}", {"value": i * 10})
            await self.send("PUT", "/widgets/s", {"kind": "series", "config": {"max_points": 4}})
            await self.send("POST", "/widgets/s/points", {"points": [{"v": i}, {"v": i + 1}]})
            await self.send("POST", "/widgets/s/points", {"points": [{"v": i * 2}]})
            batch = {f"n{k}": {"value": i + k} for k in range(2) if i or k == 0}
            await self.send("PATCH", "/widgets", {"widgets": batch})
            await self.send("PATCH", "/widgets/n0", {"title": f"t{i}"})
            await self.send("PATCH", "", {"title": f"board {i}", "public": i % 2 == 0})
            await self.send("PUT", f"/widgets/x{i}", {"kind": "text", "value": f"x{i}"})
            if i:
                await self.send("DELETE", f"/widgets/x{i - 1}")

    async def check(self, seqs: list[int]) -> None:
        for seq in seqs:
            past = await self.live.http.get(f"/api/boards/{self.slug}", params={"at": seq})
            assert past.status_code == 200, (seq, past.text)
            assert "ETag" not in past.headers
            assert past.headers["Seq-Time"].endswith("Z")
            assert past.json() == self.seen[seq], seq


async def test_every_seq_matches_the_live_get(server: LiveServer, slug: str) -> None:
    """More than two checkpoints' worth of every kind of write: each seq rebuilds to
    exactly what the live GET answered right after it (timestamps included)."""
    await server.create_board(slug, title="start")
    board = Recorder(server, slug)
    await board.snap()
    while max(board.seen) <= 2 * TRIM_EVERY + 20:
        await board.mixed(3)
    head = max(board.seen)
    assert sorted(board.seen) == list(range(head + 1))
    await board.check(list(range(head + 1)))
    async with server.state.db.read() as session:
        found = await find_board(session, slug)
        for seq in range(head + 1):
            past = await checkpoints.rebuild(session, found.id, seq)
            assert past is not None
            assert past.rows <= TRIM_EVERY  # one checkpoint + at most TRIM_EVERY - 1 events
            assert seq - past.base < TRIM_EVERY


async def test_seqs_outside_the_history(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "w", value=1)
    url = f"/api/boards/{slug}"
    for at, status, code in [
        ("-1", 422, "validation_error"),
        ("2", 422, "validation_error"),
        ("x", 422, "validation_error"),
    ]:
        response = await server.http.get(url, params={"at": at})
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), at
    missing = await server.http.get("/api/boards/b-none-such", params={"at": 0})
    assert missing.status_code == 404
    first = (await server.http.get(url, params={"at": 0})).json()
    assert (first["seq"], first["widgets"]) == (0, [])
    live = await server.http.get(url)
    assert live.headers["ETag"]  # the live GET keeps it; the historic one has none
    assert (await server.http.get(url, params={"at": 1})).json() == live.json()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_retention_trims_history(
    backend: str, tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    """With the last 50 events kept, trims at 100 and 200 cut at 50 and 150: seq 150 (the
    oldest retained event's predecessor) and later rebuild, earlier ones are 410. Seqs 100
    and 200 are widget PATCHes: on PostgreSQL, the single statement, whose trim (and
    checkpoints) run after it committed."""
    settings = backend_settings(backend, tmp_path, pg_url, prefix, event_retention=50)
    async with start_server(settings) as live:
        await live.create_board(slug)
        board = Recorder(live, slug)
        await board.send("PUT", "/widgets/w", {"kind": "number", "value": 0})
        await board.send("PUT", "/widgets/s", {"kind": "trend", "config": {"max_points": 3}})
        while (seq := max(board.seen)) < 250:  # PATCHes at even seqs, points at odd ones
            if seq % 2:
                await board.send("PATCH", "/widgets/w", {"value": seq})
            else:
                await board.send("POST", "/widgets/s/points", {"points": [{"v": seq}]})
        assert live.state.db.is_sqlite == (backend == "embedded")
        for at in (0, 10, 149):
            gone = await live.http.get(f"/api/boards/{slug}", params={"at": at})
            assert gone.status_code == 410
            assert gone.json()["error"]["code"] == "history_expired"
            assert gone.headers["History-From"] == "150"
        await board.check(list(range(150, 251)))
        async with live.state.db.read() as session:
            found = await find_board(session, slug)
            assert await checkpoints.rebuild(session, found.id, 149) is None
            for seq in range(150, 251):
                past = await checkpoints.rebuild(session, found.id, seq)
                assert past is not None
                assert past.base in (150, 200)  # the cut's checkpoint, the PATCH's


async def _key(server: LiveServer, boards: list[str]) -> dict[str, str]:
    created = await server.http.post("/api/keys", json={"role": "read", "boards": boards})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


async def test_private_history_stays_private(server: LiveServer, slug: str) -> None:
    """The live GET's rule, applied to the board both as it is and as it was."""
    other = f"{slug}-other"
    await server.create_board(slug)
    await server.create_board(other)
    await server.put_widget(slug, "w", value=1)  # seq 1, private
    mine, theirs = await _key(server, [slug]), await _key(server, [other])
    url = f"/api/boards/{slug}"
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        for headers in ({}, theirs):
            response = await anonymous.get(url, params={"at": 1}, headers=headers)
            assert response.status_code == 404, headers
        assert (await anonymous.get(url, params={"at": 1}, headers=mine)).status_code == 200
        assert (await server.http.patch(url, json={"public": True})).status_code == 200  # seq 2
        assert (await anonymous.get(url, params={"at": 2})).json()["public"] is True
        assert (await anonymous.get(url, params={"at": 1})).status_code == 404  # private then
        assert (await anonymous.get(url, params={"at": 1}, headers=mine)).status_code == 200


async def test_recreated_board_starts_a_new_history(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, title="old")
    await server.put_widget(slug, "w", value=1)
    assert (await server.http.delete(f"/api/boards/{slug}")).status_code == 204  # seq 2
    url = f"/api/boards/{slug}"
    assert (await server.http.get(url, params={"at": 1})).status_code == 404  # no live board
    created = await server.create_board(slug, title="new")  # seq 3
    assert created["seq"] == 3
    for at in (0, 1, 2):
        response = await server.http.get(url, params={"at": at})
        assert response.status_code == 410, at
        assert response.headers["History-From"] == "3"
    start = (await server.http.get(url, params={"at": 3})).json()
    assert start == (await server.http.get(url)).json()
    assert (start["title"], start["widgets"]) == ("new", [])
