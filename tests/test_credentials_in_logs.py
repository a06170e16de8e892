"""Credentials never reach a log, at any level, on either side: a full session against a
server at `SWITCHBOARD_LOG_LEVEL=debug` (which logs every WebSocket frame and handshake
header), driven partly by the Python client with DEBUG logging on, and then both logs are
searched for every credential used: whole, and every 8-character piece of its secret."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from switchboard_client import AsyncClient
from tests.conftest import production_env
from tests.helpers import ServerProcess, spawn_server

ODD_ADMIN_KEY = f"odd~Admin.{secrets.token_urlsafe(30)}"
"""A bootstrap key that looks like nothing the server knows (not `sbk_…`, not a JWT)."""
SIGNING_SECRET = secrets.token_urlsafe(32)


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _secret_part(credential: str) -> str:
    """What must never show, even in part: an API key's secret (its id is logged on
    purpose), a token's signature (its header and claims are no secret), else all of it."""
    if credential.startswith("sbk_"):
        return credential.split("_", 2)[2]
    if credential.count(".") == 2:
        return credential.rsplit(".", 1)[1]
    return credential


def _pieces(secret: str, size: int = 8) -> Iterator[str]:
    """Every `size`-character piece: any longer substring of `secret` contains one."""
    for start in range(len(secret) - size + 1):
        yield secret[start : start + size]


def _leaks(text: str, credentials: list[str]) -> list[str]:
    found = [c for c in credentials if c in text]
    found += [p for c in credentials for p in _pieces(_secret_part(c)) if p in text]
    return found


@contextlib.contextmanager
def _client_debug_log(path: Path) -> Iterator[None]:
    """Every DEBUG line of this process (the client, httpx, websockets) into `path`."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root, client = logging.getLogger(), logging.getLogger("switchboard_client")
    levels = root.level, client.level  # in-process servers set `switchboard` to theirs
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    client.setLevel(logging.DEBUG)  # as docs/python-client.md says to
    try:
        yield
    finally:
        root.setLevel(levels[0])
        client.setLevel(levels[1])
        root.removeHandler(handler)
        handler.close()


async def _session(server: ServerProcess, slug: str) -> list[str]:
    """Every way a credential travels, once: returns the credentials used."""
    admin = httpx.AsyncClient(base_url=server.base_url, headers=_bearer(ODD_ADMIN_KEY))
    async with admin:
        created = await admin.post("/api/boards", json={"slug": slug, "public": False})
        assert created.status_code == 201, created.text
        key = (await admin.post("/api/keys", json={"role": "write"})).json()["key"]
        tokens = []
        for minter in (key, key, ODD_ADMIN_KEY):
            minted = await admin.post(
                "/api/tokens", json={"role": "write"}, headers=_bearer(minter)
            )
            assert minted.status_code == 201, minted.text
            tokens.append(minted.json()["token"])
        path = f"/api/boards/{slug}/widgets/n"
        written = await admin.put(path, json={"kind": "number", "value": 1}, headers=_bearer(key))
        assert written.status_code in (200, 201), written.text
        patched = await admin.patch(path, json={"value": 2}, headers=_bearer(tokens[0]))
        assert patched.status_code == 200, patched.text
        refused = await admin.get(f"/api/boards/{slug}", headers=_bearer(f"{key}x"))
        assert refused.status_code == 401

        # WebSocket: `?token=`, then an `auth` frame for each credential (the server logs
        # every frame at debug), and one with the credential in the handshake's header.
        async with connect(f"{server.ws_url}?token={tokens[0]}") as ws:
            await ws.send(orjson.dumps({"type": "subscribe", "channel": f"board:{slug}"}).decode())
            for credential in (tokens[1], key, ODD_ADMIN_KEY, tokens[2]):
                await ws.send(
                    orjson.dumps({"type": "auth", "token": credential, "id": "a"}).decode()
                )
            await ws.send('{"type":"auth","token":"' + tokens[1])  # broken JSON, cut short
            with contextlib.suppress(TimeoutError):
                while True:
                    await asyncio.wait_for(ws.recv(), 1)
        async with connect(server.ws_url, additional_headers=_bearer(key)) as ws:
            await ws.send('{"type": "ping"}')
            await ws.recv()

        # SSE with `?token=`.
        stream = f"/api/boards/{slug}/stream"
        async with admin.stream("GET", stream, params={"token": tokens[1]}, headers={}) as sse:
            assert sse.status_code == 200
            async for line in sse.aiter_lines():
                if line.startswith("data:"):
                    break

    return [ODD_ADMIN_KEY, SIGNING_SECRET, key, *tokens]


async def _client_session(server: ServerProcess, slug: str, credential: str) -> None:
    """The Python client: REST writes and reads, and a watch (a WebSocket whose handshake
    carries the credential in `Authorization`)."""
    async with AsyncClient(server.base_url, token=credential) as client:
        await client.set(slug, "n", 3)
        await client.get_board(slug)
        watching = client.watch(slug)
        async for _frame in watching:
            break
        await watching.aclose()


@pytest.mark.timeout(120)
async def test_no_credential_reaches_either_log_at_debug(
    tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    server_log, client_log = tmp_path / "server.log", tmp_path / "client.log"
    env = production_env(
        pg_url, prefix, SWITCHBOARD_LOG_LEVEL="debug", SWITCHBOARD_SECRET=SIGNING_SECRET
    )
    server = await spawn_server(env, cwd=str(tmp_path), admin_key=ODD_ADMIN_KEY, log=server_log)
    try:
        credentials = await _session(server, slug)
        with _client_debug_log(client_log):
            for credential in credentials[2:4]:  # a key, and a token minted from it
                await _client_session(server, slug, credential)
    finally:
        server.stop()
    logged = server_log.read_text(errors="replace")
    client_logged = client_log.read_text(errors="replace")
    assert _leaks(logged, credentials) == []
    assert _leaks(client_logged, credentials) == []
    # The lines this test is about were written, with the credentials hidden: the server's
    # frames and handshake headers, the client's handshake.
    assert '< TEXT \'{"type":"auth","token":"[redacted]","id":"a"}\'' in logged
    assert "< authorization: [redacted]" in logged
    assert "> GET /ws" in client_logged
    assert "> Authorization: [redacted]" in client_logged
