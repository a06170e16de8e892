"""Limits (body size, write rate across workers, connections per credential, frame floods,
Origin) and hostile input: a clear error in the SPEC's shape, nothing written, worker fine."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import backend_settings
from tests.helpers import AUTH, LiveServer, WsClient, start_server


async def _board_count(server: LiveServer) -> int:
    return len((await server.http.get("/api/boards?limit=500")).json()["items"])


async def test_body_size_limit(tmp_path: Path, pg_url: str, prefix: str, slug: str) -> None:
    settings = backend_settings("embedded", tmp_path, pg_url, prefix, max_body_bytes=4096)
    async with start_server(settings) as live:
        big = {"slug": slug, "description": "x" * 5000}
        response = await live.http.post("/api/boards", json=big)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

        async def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 1000

        streamed = await live.http.post(
            "/api/boards", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert await _board_count(live) == 0


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_write_rate_limit(
    backend: str, tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    settings = backend_settings(backend, tmp_path, pg_url, prefix, write_rate_limit=5)
    async with start_server(settings) as live:
        await live.create_board(slug)
        path = f"/api/boards/{slug}/widgets/w"
        responses = [
            await live.http.put(path, json={"kind": "number", "value": i}) for i in range(12)
        ]
        limited = [r for r in responses if r.status_code == 429]
        assert limited, [r.status_code for r in responses]
        assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
        assert limited[0].json()["error"]["code"] == "rate_limited"
        ok = sum(r.status_code in (200, 201) for r in responses)
        assert ok <= 5 * 3  # at most 5 per second, over at most three one-second windows
        board = (await live.http.get(f"/api/boards/{slug}")).json()
        assert board["seq"] == ok  # a refused write wrote nothing


async def test_write_rate_limit_is_shared_by_workers(
    tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    """Two workers on one Redis count one credential's writes together."""
    settings = backend_settings("production", tmp_path, pg_url, prefix, write_rate_limit=4)
    async with start_server(settings) as one, start_server(settings) as two:
        await one.create_board(slug)
        path = f"/api/boards/{slug}/widgets/w"
        statuses = await asyncio.gather(
            *(
                server.http.put(path, json={"kind": "number", "value": 1})
                for server in (one, two) * 6
            )
        )
        ok = sum(r.status_code in (200, 201) for r in statuses)
        assert 1 <= ok <= 8  # 4 per second in total, not 4 per worker (at most two windows)
        assert any(r.status_code == 429 for r in statuses)


async def test_connections_per_credential(
    tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    settings = backend_settings(
        "embedded", tmp_path, pg_url, prefix, max_connections_per_credential=2
    )
    async with start_server(settings) as live:
        await live.create_board(slug, public=True)
        first, second = await live.ws(), await live.ws()
        third = await live.ws()
        frame = await third.recv()
        assert (frame["type"], frame["code"]) == ("error", "too_many_connections")
        assert await third.closed_with() == 4029
        stream = await live.http.get(f"/api/boards/{slug}/stream")
        assert stream.status_code == 429
        assert stream.json()["error"]["code"] == "rate_limited"
        assert stream.headers["retry-after"] == "5"
        await first.close()
        await asyncio.sleep(0.1)
        fourth = await live.ws()  # a slot was freed
        await fourth.subscribe(slug)
        for ws in (second, fourth):
            await ws.close()


async def test_frame_flood_closes_with_1008(tmp_path: Path, pg_url: str, prefix: str) -> None:
    settings = backend_settings("embedded", tmp_path, pg_url, prefix, ws_max_frames_per_second=20)
    async with start_server(settings) as live:
        ws = await live.ws()
        for i in range(100):
            await ws.send({"type": "ping", "id": i})
        assert await ws.closed_with() == 1008
        healthy = await live.ws()  # the worker is fine
        await healthy.send({"type": "ping", "id": "ok"})
        assert await healthy.recv() == {"type": "pong", "id": "ok"}
        await healthy.close()


async def test_oversize_frame_closes_with_1009(server: LiveServer) -> None:
    ws = await server.ws(max_size=None)
    await ws.send("x" * (2 * 1024 * 1024))
    assert await ws.closed_with() == 1009


async def test_browser_origins(tmp_path: Path, pg_url: str, prefix: str) -> None:
    settings = backend_settings(
        "embedded", tmp_path, pg_url, prefix, allowed_origins=["https://dash.example"]
    )
    async with start_server(settings) as live:
        with pytest.raises(InvalidStatus) as refused:
            await connect(live.ws_url, origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        host = live.base_url.removeprefix("http://")
        for origin in ("https://dash.example", f"http://{host}"):
            ws = WsClient(await connect(live.ws_url, origin=origin))  # type: ignore[arg-type]
            await ws.send({"type": "ping"})
            assert (await ws.recv())["type"] == "pong"
            await ws.close()


HOSTILE_BODIES: list[tuple[str, str, int]] = [
    ("malformed JSON", '{"slug": "x",', 400),
    ("not an object", "[1, 2, 3]", 422),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, 400),
    ("wrong type", '{"slug": 42}', 422),
    ("unknown field", '{"slug": "x", "owner": "me"}', 422),
    ("huge number", '{"slug": "x", "public": 1e999}', 422),
    ("lone surrogate", '{"slug": "x", "title": "\\ud800"}', 422),
    ("NUL in text", '{"slug": "x", "title": "a\\u0000b"}', 422),
    ("path traversal slug", '{"slug": "../etc/passwd"}', 422),
    ("SQL metacharacters", '{"slug": "x\'; DROP TABLE boards; --"}', 422),
    ("uppercase slug", '{"slug": "OPS"}', 422),
    ("overlong slug", '{"slug": "' + "a" * 65 + '"}', 422),
]


@pytest.mark.parametrize(("case", "body", "status"), HOSTILE_BODIES)
async def test_hostile_board_bodies(server: LiveServer, case: str, body: str, status: int) -> None:
    before = await _board_count(server)
    response = await server.http.post(
        "/api/boards", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, (case, response.text)
    assert set(response.json()) == {"error"}
    assert "Traceback" not in response.text
    assert await _board_count(server) == before


HOSTILE_WIDGETS: list[tuple[str, dict[str, Any]]] = [
    ("number too big", {"kind": "number", "value": 2**80}),
    ("NaN-like string", {"kind": "number", "value": "NaN"}),
    ("bool as number", {"kind": "number", "value": True}),
    (
        "deep config",
        {"kind": "text", "config": {"a": json.loads("[" * 30 + "]" * 30)}},
    ),
    ("config int beyond 2^63", {"kind": "text", "config": {"n": 2**70}}),
    ("surrogate in value", {"kind": "text", "value": "\ud800"}),
    ("control char in key", {"kind": "text", "config": {"a\u0001": 1}}),
    ("unknown kind", {"kind": "pie", "value": 1}),
    ("status too long", {"kind": "status", "value": "x" * 100}),
    ("series of junk", {"kind": "series", "value": [{"v": "a"}]}),
]


@pytest.mark.parametrize(("case", "body"), HOSTILE_WIDGETS)
async def test_hostile_widget_values(
    server: LiveServer, slug: str, case: str, body: dict[str, Any]
) -> None:
    await server.create_board(slug)
    response = await server.http.put(
        f"/api/boards/{slug}/widgets/w",
        content=json.dumps(body),  # ASCII-escaped, so a lone surrogate survives the trip
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 422), (case, response.text)
    assert set(response.json()) == {"error"}
    assert (await server.http.get(f"/api/boards/{slug}")).json()["seq"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/boards/..%2F..%2Fetc",
        "/api/boards/x'%20OR%201=1--",
        "/api/boards/%00",
        "/api/boards/" + "a" * 5000,
    ],
)
async def test_hostile_paths(server: LiveServer, path: str) -> None:
    response = await server.http.get(path)
    assert response.status_code in (404, 422)
    assert set(response.json()) == {"error"}


async def test_secrets_never_reach_the_logs(tmp_path: Path, pg_url: str, prefix: str) -> None:
    """Keys and tokens, valid or not, in headers or query strings, never appear in any log line."""
    from tests.helpers import spawn_server

    log_file = tmp_path / "server.log"
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db"}
    server = await spawn_server(env, cwd=str(tmp_path), log=log_file)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
            assert (await http.post("/api/boards", json={"slug": "ops"})).status_code == 201
            key = (await http.post("/api/keys", json={"role": "write"})).json()
            token = (
                await http.post(
                    "/api/tokens", json={}, headers={"Authorization": f"Bearer {key['key']}"}
                )
            ).json()["token"]
            secrets = [key["key"], token, AUTH["Authorization"].split()[1], "sbk_bad_guess"]
            for secret in secrets:
                await http.get("/api/boards/ops", params={"token": secret}, headers={})
                await http.get("/api/boards/ops", headers={"Authorization": f"Bearer {secret}"})
                async with connect(f"{server.ws_url}?token={secret}") as ws:
                    with contextlib.suppress(ConnectionClosed):  # a bad one is refused
                        await ws.send('{"type": "ping"}')
                        await ws.recv()
            await http.delete(f"/api/keys/{key['id']}")
    finally:
        server.stop()
    logged = log_file.read_text(errors="replace")
    assert "/ws?token=[redacted]" in logged  # the access log ran, and redacted
    for secret in secrets:
        assert secret not in logged
