"""The trust boundary, tried as an attacker would: every reproduction of the second-round
security review, against a real server (embedded, and PostgreSQL + Redis where the
path differs)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from switchboard.store.models import IdempotencyKey
from tests.conftest import backend_settings
from tests.helpers import (
    ADMIN_KEY,
    AUTH,
    TOKEN_SECRET,
    LiveServer,
    ServerProcess,
    SseStream,
    WsClient,
    start_server,
)

ROOT = Path(__file__).resolve().parents[2]


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def make_key(server: LiveServer, role: str, **extra: Any) -> str:
    response = await server.http.post("/api/keys", json={"role": role, **extra})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


# 1. An Idempotency-Key replays only to the credential that made it, and never in clear.


async def test_idempotency_replays_only_to_its_own_credential(
    server: LiveServer, slug: str
) -> None:
    reader = await make_key(server, "read")
    writer = await make_key(server, "write")
    body, once = {"role": "admin", "name": "ops"}, {"Idempotency-Key": "K1"}
    first = await server.http.post("/api/keys", json=body, headers=once)
    assert first.status_code == 201
    secret = first.json()["key"]

    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        stolen = await anonymous.post("/api/keys", json=body, headers=once)
    assert stolen.status_code == 401
    assert secret not in stolen.text
    as_reader = await server.http.post("/api/keys", json=body, headers={**once, **bearer(reader)})
    assert as_reader.status_code == 403
    assert secret not in as_reader.text
    again = await server.http.post("/api/keys", json=body, headers=once)  # the admin's retry
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["key"] == secret
    listing = (await server.http.get("/api/keys")).json()["items"]
    assert sum(1 for k in listing if k["name"] == "ops") == 1  # created once

    # Tokens and writes to private boards: the same.
    minted = await server.http.post("/api/tokens", json={}, headers={"Idempotency-Key": "K2"})
    assert minted.status_code == 201
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        assert (
            await anonymous.post("/api/tokens", json={}, headers={"Idempotency-Key": "K2"})
        ).status_code == 401
    await server.create_board(slug)  # private
    path = f"/api/boards/{slug}/widgets/w"
    widget = {"kind": "text", "value": "private-value"}
    created = await server.http.put(path, json=widget, headers={"Idempotency-Key": "K3"})
    assert created.status_code == 201
    other = await server.http.put(
        path, json=widget, headers={"Idempotency-Key": "K3", **bearer(writer)}
    )  # another credential's K3 is another record: its own write, not the admin's response
    assert other.status_code == 200
    assert "idempotent-replayed" not in other.headers

    # At rest: no clear secret, no raw key.
    async with server.state.db.read() as session:
        rows = list(await session.scalars(select(IdempotencyKey)))
    assert rows
    for row in rows:
        assert row.key not in ("K1", "K2", "K3")
        assert secret.encode() not in (row.body or b"")
        assert b"private-value" not in (row.body or b"")


# 2. Refused and rate-limited writes release their key; nobody can claim another's key.


@pytest.fixture(params=["embedded", "production"])
async def limited_server(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str, pg_url: str
) -> AsyncIterator[LiveServer]:
    settings = backend_settings(request.param, tmp_path, pg_url, prefix, write_rate_limit=5)
    async with start_server(settings) as live:
        yield live


async def test_rate_limited_write_is_not_replayed(limited_server: LiveServer, slug: str) -> None:
    server = limited_server
    await server.create_board(slug)
    path = f"/api/boards/{slug}/widgets/n"
    await server.put_widget(slug, "n", value=0)
    for attempt in range(3):  # the budget is per second: spend it, then send the keyed write
        for _ in range(6):
            await server.http.patch(path, json={"value": 0})
        limited = await server.http.patch(
            path, json={"value": 99}, headers={"Idempotency-Key": f"R{attempt}"}
        )
        if limited.status_code == 429:
            break
    assert limited.status_code == 429
    key = limited.request.headers["idempotency-key"]
    await asyncio.sleep(float(limited.headers["retry-after"]) + 0.1)
    retried = await server.http.patch(path, json={"value": 99}, headers={"Idempotency-Key": key})
    assert retried.status_code == 200
    assert retried.json()["value"] == 99
    assert "idempotent-replayed" not in retried.headers


async def test_nobody_claims_another_callers_key(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    path = f"/api/boards/{slug}/widgets/w"
    body = {"kind": "number", "value": 1}
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        assert (
            await anonymous.put(path, json=body, headers={"Idempotency-Key": "C"})
        ).status_code == 401
        assert (
            await anonymous.put(
                path, json=body, headers={"Idempotency-Key": "C", **bearer("sbk_ab12_nope")}
            )
        ).status_code == 401
    reader = await make_key(server, "read")
    refused = await server.http.put(
        path, json=body, headers={"Idempotency-Key": "C", **bearer(reader)}
    )
    assert refused.status_code == 403
    mine = await server.http.put(path, json=body, headers={"Idempotency-Key": "C"})
    assert mine.status_code == 201
    assert "idempotent-replayed" not in mine.headers


# 3. Tokens are read or write only, and every one has a live, revocable key behind it.


async def test_tokens_cannot_manage_keys(server: LiveServer) -> None:
    refused = await server.http.post("/api/tokens", json={"role": "admin"})
    assert refused.status_code == 422
    minted = await server.http.post("/api/tokens", json={"role": "write"})
    assert minted.status_code == 201
    token = minted.json()["token"]
    as_token = await server.http.post("/api/keys", json={"role": "admin"}, headers=bearer(token))
    assert as_token.status_code == 403
    assert (
        await server.http.post("/api/tokens", json={}, headers=bearer(token))
    ).status_code == 403
    # An admin token signed with the real secret (as the old server minted them) is refused.
    now = int(time.time())
    claims = {"typ": "sb-viewer", "sub": "bootstrap", "role": "admin", "boards": None}
    forged = jwt.encode({**claims, "iat": now, "exp": now + 600}, TOKEN_SECRET, "HS256")
    assert (await server.http.get("/api/keys", headers=bearer(forged))).status_code == 401


async def test_bootstrap_tokens_end_when_the_bootstrap_key_rotates(tmp_path: Path) -> None:
    first = backend_settings("embedded", tmp_path, "", "")
    async with start_server(first) as server:
        minted = await server.http.post("/api/tokens", json={"role": "write"})
        token = minted.json()["token"]
        assert (await server.http.get("/api/boards", headers=bearer(token))).status_code == 200
    rotated = backend_settings("embedded", tmp_path, "", "", admin_key=f"{ADMIN_KEY}-rotated")
    async with start_server(rotated) as server:
        refused = await server.http.get("/api/boards", headers=bearer(token))
        assert refused.status_code == 401
        assert "rotated" in refused.json()["error"]["message"]
        ws = await server.ws(credential=token)
        assert await ws.closed_with() == 4101
    unset = backend_settings("embedded", tmp_path, "", "", admin_key=None)
    async with start_server(unset) as server:
        assert (await server.http.get("/api/boards", headers=bearer(token))).status_code == 401


# 4. Access is re-checked when a board's visibility or existence changes, on every worker.


async def _anonymous_ws(process: ServerProcess, slug: str) -> WsClient:
    from websockets.asyncio.client import connect

    ws = WsClient(await connect(process.ws_url))
    await ws.subscribe(slug)
    assert (await ws.recv())["type"] == "snapshot"
    return ws


async def _quiet(ws: WsClient) -> list[dict[str, Any]]:
    """Every frame up to the reply of a ping: what the server had sent by then."""
    await ws.send({"type": "ping", "id": "q"})
    frames = []
    while (frame := await ws.recv())["type"] != "pong":
        frames.append(frame)
    return frames


async def test_visibility_flip_ends_anonymous_streams_on_every_worker(
    workers: list[ServerProcess], slug: str
) -> None:
    a, b = workers
    async with (
        httpx.AsyncClient(base_url=a.base_url, headers=AUTH) as http,
        httpx.AsyncClient(base_url=b.base_url, timeout=None) as anonymous,
    ):
        created = await http.post("/api/boards", json={"slug": slug, "public": True})
        assert created.status_code == 201
        await http.put(f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 0})
        ws_a, ws_b = await _anonymous_ws(a, slug), await _anonymous_ws(b, slug)
        from websockets.asyncio.client import connect

        owner = WsClient(await connect(b.ws_url, additional_headers=AUTH))
        await owner.subscribe(slug)
        await owner.recv()
        async with anonymous.stream("GET", f"/api/boards/{slug}/stream") as response:
            assert response.status_code == 200
            stream = SseStream(response)
            assert (await stream.next()).event == "snapshot"

            flipped = await http.patch(f"/api/boards/{slug}", json={"public": False})
            assert flipped.status_code == 200
            await http.patch(f"/api/boards/{slug}/widgets/w", json={"value": 1})

            for ws in (ws_a, ws_b):
                frame = await ws.recv()
                assert frame["type"] == "error"
                assert frame["code"] == "not_found"
                assert frame["channel"] == f"board:{slug}"
                assert await _quiet(ws) == []  # neither board.updated nor the later write
                await ws.close()
            with pytest.raises(EOFError):  # the SSE stream ends, with nothing after the flip
                await stream.next(timeout=10)
        seen = [(e["event"], e["seq"]) for e in await owner.events(2)]
        assert seen == [("board.updated", 2), ("widget.updated", 3)]
        await owner.close()
        # EventSource's reconnect is refused now.
        again = await anonymous.get(f"/api/boards/{slug}/stream", headers={"Last-Event-ID": "1"})
        assert again.status_code == 404


async def test_deleted_then_recreated_private_board_ends_anonymous_streams(
    server: LiveServer, slug: str
) -> None:
    await server.create_board(slug, public=True)
    ws = await server.ws(credential=None)
    await ws.subscribe(slug)
    assert (await ws.recv())["type"] == "snapshot"
    assert (await server.http.delete(f"/api/boards/{slug}")).status_code == 204
    deleted = await ws.recv()
    assert (deleted["type"], deleted["event"]) == ("event", "board.deleted")
    ended = await ws.recv()
    assert (ended["type"], ended["code"]) == ("error", "not_found")
    await server.create_board(slug, public=False, title="private again")
    await server.put_widget(slug, "w", value=1)
    assert await _quiet(ws) == []
    await ws.close()


# 5. A re-created board does not serve the old board's history.


async def test_recreated_board_starts_a_new_history(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)  # private
    await server.put_widget(slug, "secret", kind="text", value="old-private-value")
    assert (await server.http.delete(f"/api/boards/{slug}")).status_code == 204
    await server.create_board(slug, public=True)
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        old = await anonymous.get(f"/api/boards/{slug}/events?after=0")
        assert old.status_code == 410
        assert "old-private-value" not in old.text
        new = await anonymous.get(f"/api/boards/{slug}/events?after=2")
        assert [e["event"] for e in new.json()["items"]] == ["board.created"]
    ws = await server.ws(credential=None)
    await ws.subscribe(slug, since=0)
    frames = [await ws.recv() for _ in range(2)]
    assert [f["type"] for f in frames] == ["reset", "snapshot"]
    assert frames[1]["data"]["widgets"] == []
    assert "old-private-value" not in str(frames + await _quiet(ws))
    await ws.close()


# 6. Presence: only viewers whose access was checked; anonymous viewers see no identities.


async def test_refused_subscribers_never_show_in_presence(tmp_path: Path, slug: str) -> None:
    settings = backend_settings(
        "embedded", tmp_path, "", "", presence_interval=0.01, ws_max_frames_per_second=10_000
    )
    async with start_server(settings) as server:
        await server.create_board(slug)  # private
        watcher = await server.ws()
        await watcher.subscribe(slug)
        await watcher.recv()
        await watcher.send({"type": "presence", "channel": f"board:{slug}", "id": "p"})
        intruder = await server.ws(credential=None)
        for _ in range(300):
            await intruder.send({"type": "subscribe", "channel": f"board:{slug}"})
            refused = await intruder.recv()
            assert refused["code"] == "not_found"
        await asyncio.sleep(0.1)
        frames = await _quiet(watcher)
        await intruder.close()
        await watcher.close()
    presence = [f for f in frames if f["type"] == "presence"]
    assert presence  # the watcher's own answer at least
    assert all("anonymous" not in f.get("changed", f.get("viewers", {})) for f in presence)


async def test_anonymous_viewers_see_counts_not_identities(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, public=True)
    reader = await make_key(server, "read")
    keyed = await server.ws(credential=reader)
    await keyed.subscribe(slug)
    await keyed.recv()
    viewer = await server.ws(credential=None)
    await viewer.subscribe(slug)
    await viewer.recv()
    await viewer.send({"type": "presence", "channel": f"board:{slug}", "id": "p"})
    answer = await viewer.recv()
    assert answer["viewers"] == {"anonymous": 1, "authenticated": 1}
    await keyed.send({"type": "presence", "channel": f"board:{slug}", "id": "p"})
    assert any(i.startswith("key:") for i in (await keyed.recv())["viewers"])
    await keyed.close()
    await asyncio.sleep(2.5)  # a presence report carries the leave
    notices = [f for f in await _quiet(viewer) if f["type"] == "presence"]
    assert notices
    assert all(not any(i.startswith(("key:", "token:")) for i in f["changed"]) for f in notices)
    await viewer.close()


# 7. No known credential in the deployment files, none logged by the load balancer.


def test_deploy_files_hold_and_log_no_credentials() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    assert re.search(r"SWITCHBOARD_ADMIN_KEY: \$\{SWITCHBOARD_ADMIN_KEY:\?", compose)
    assert "change-me" not in compose
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    formats = re.findall(r"log_format\s+(\w+)([^;]*);", nginx)
    assert formats
    for _, fields in formats:
        for leaky in ("$request ", '$request"', "$request_uri", "$args", "$query_string"):
            assert leaky not in fields
        assert "$http_referer" not in fields
    access_logs = re.findall(r"access_log\s+([^;]+);", nginx)
    assert access_logs
    assert all(line.split()[-1] in {name for name, _ in formats} for line in access_logs)
