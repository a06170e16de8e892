"""Token refresh without reconnecting: the `auth` frame replaces a WebSocket's credential;
an SSE stream comes back with a new `?token=` and `Last-Event-ID` instead."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.conftest import backend_settings
from tests.helpers import TOKEN_SECRET, LiveServer, WsClient, sse, start_server


async def mint(server: LiveServer, ttl: int, credential: str | None = None, **body: Any) -> str:
    headers = {"Authorization": f"Bearer {credential}"} if credential else None
    response = await server.http.post("/api/tokens", json={"ttl": ttl, **body}, headers=headers)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def make_key(server: LiveServer, role: str = "admin", **extra: Any) -> tuple[str, str]:
    response = await server.http.post("/api/keys", json={"role": role, **extra})
    assert response.status_code == 201, response.text
    return response.json()["key"], response.json()["id"]


async def reply_to(ws: WsClient, id_: str | int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Frames up to the reply carrying `id_` (those before it, and the reply)."""
    before: list[dict[str, Any]] = []
    while (frame := await ws.recv()).get("id") != id_:
        before.append(frame)
    return before, frame


def expiry_of(token: str) -> float:
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


async def test_a_refreshed_connection_outlives_the_old_token(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, public=False)
    await server.put_widget(slug, "n", value=0)
    old = await mint(server, ttl=3)
    ws = await server.ws(credential=old)
    await ws.subscribe(slug)
    await ws.recv()  # snapshot
    new = await mint(server, ttl=7)
    await ws.send({"type": "auth", "token": new, "id": "a"})
    _, authed = await reply_to(ws, "a")
    assert authed["type"] == "authed"
    assert datetime.fromisoformat(authed["expires_at"]).timestamp() == expiry_of(new)
    await asyncio.sleep(max(0.0, expiry_of(old) - time.time()) + 1.0)  # past the old expiry
    await server.set_value(slug, "n", 1)
    [event] = await ws.events(1)
    assert event["data"]["value"] == 1
    # The timer was armed again for the new token, not cancelled: it ends the connection.
    assert await ws.closed_with(timeout=10) == 4101
    assert time.time() >= expiry_of(new) - 0.5


async def test_a_refused_credential_leaves_the_old_one(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, public=False)
    await server.put_widget(slug, "n", value=0)
    key, _ = await make_key(server)
    other, _ = await make_key(server)
    now = int(time.time())
    claims = {"sub": "x", "role": "read", "typ": "viewer", "iat": now - 60, "exp": now - 1}
    expired = jwt.encode(claims, TOKEN_SECRET, "HS256")
    ws = await server.ws(credential=key)
    await ws.subscribe(slug)
    await ws.recv()
    refused = ["garbage", "a.b.c", expired, other, await mint(server, 60, other)]
    for i, credential in enumerate(refused):
        await ws.send({"type": "auth", "token": credential, "id": i})
        _, reply = await reply_to(ws, i)
        assert (reply["type"], reply["code"]) == ("error", "unauthorized"), reply
        assert "channel" not in reply
    await ws.send('{"type": "auth", "token": "", "id": "e"}')  # not a valid frame
    _, reply = await reply_to(ws, "e")
    assert (reply["type"], reply["code"]) == ("error", "invalid_frame")
    await server.set_value(slug, "n", 1)
    assert (await ws.events(1))[0]["data"]["value"] == 1
    anonymous = await server.ws(credential=None)  # no key behind it: nothing to take over
    await anonymous.send({"type": "auth", "token": await mint(server, 60), "id": "x"})
    _, reply = await reply_to(anonymous, "x")
    assert (reply["type"], reply["code"]) == ("error", "unauthorized")
    for client in (ws, anonymous):
        await client.close()


async def test_a_narrower_credential_ends_what_it_cannot_read(
    server: LiveServer, slug: str
) -> None:
    kept, lost, public = f"{slug}-kept", f"{slug}-lost", f"{slug}-pub"
    for board in (kept, lost):
        await server.create_board(board, public=False)
    await server.create_board(public, public=True)
    for board in (kept, lost, public):
        await server.put_widget(board, "n", value=0)
    key, key_id = await make_key(server)
    ws = await server.ws(credential=key)
    for board in (kept, lost, public):
        await ws.subscribe(board)
        await ws.recv()
    await ws.send({"type": "presence", "channel": f"board:{kept}", "id": "p1"})
    _, viewers = await reply_to(ws, "p1")
    assert viewers["viewers"] == {f"key:{key_id}": 1}
    token = await mint(server, 60, key, role="read", boards=[kept])
    await ws.send({"type": "auth", "token": token, "id": "a"})
    before, authed = await reply_to(ws, "a")
    assert authed["type"] == "authed"
    assert before == [
        {
            "type": "error",
            "code": "not_found",
            "message": f"board:{lost} is no longer readable by this connection",
            "channel": f"board:{lost}",
        }
    ]
    # Presence moved to the new identity; the lost board counts nobody.
    await ws.send({"type": "presence", "channel": f"board:{kept}", "id": "p2"})
    _, viewers = await reply_to(ws, "p2")
    assert viewers["viewers"] == {f"token:{key_id}": 1}
    assert server.state.realtime.presence.local.get(f"board:{lost}") is None
    for board in (lost, kept, public):
        await server.set_value(board, "n", 1)
    events = await ws.events(2)
    assert [e["channel"] for e in events] == [f"board:{kept}", f"board:{public}"]
    # Revocation reads the connection's credential of the moment: the token's key.
    assert (await server.http.delete(f"/api/keys/{key_id}")).status_code == 204
    assert await ws.closed_with() == 4101


async def test_the_auth_frame_counts_for_the_rate_limit(tmp_path: Path) -> None:
    settings = backend_settings("embedded", tmp_path, "", "", ws_max_frames_per_second=3)
    async with start_server(settings) as server:
        token = await mint(server, 60)
        ws = await server.ws(credential=token)
        for i in range(5):
            await ws.send({"type": "auth", "token": token, "id": i})
        assert await ws.closed_with() == 1008


async def test_sse_resumes_with_a_new_token_and_nothing_lost(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, public=False)
    await server.put_widget(slug, "n", value=0)
    path = f"/api/boards/{slug}/stream"
    seen: list[int] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as browser:
        first = await mint(server, 60)
        async with sse(browser, f"{path}?token={first}") as stream:
            snapshot = await stream.next()
            assert snapshot.event == "snapshot"
            for value in (1, 2):
                await server.set_value(slug, "n", value)
            seen += [e.id for e in await stream.events(2) if e.id is not None]
        for value in (3, 4, 5):  # between the two streams
            await server.set_value(slug, "n", value)
        second = await mint(server, 60)
        headers = {"Last-Event-ID": str(seen[-1])}
        async with sse(browser, f"{path}?token={second}", headers) as stream:
            seen += [e.id for e in await stream.events(3) if e.id is not None]
            await server.set_value(slug, "n", 6)
            seen += [e.id for e in await stream.events(1) if e.id is not None]
    start = snapshot.data["seq"]
    assert seen == list(range(start + 1, start + 7))
