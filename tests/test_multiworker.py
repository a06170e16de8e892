"""Several server processes sharing PostgreSQL and Redis, as in production."""

from __future__ import annotations

import asyncio

import httpx
from websockets.asyncio.client import connect

from tests.conftest import REDIS_URL
from tests.helpers import AUTH, ServerProcess, WsClient, spawn_server


async def _watch(url: str, slug: str) -> tuple[WsClient, int]:

    ws = WsClient(await connect(url, additional_headers=AUTH))
    await ws.subscribe(slug)
    snapshot = await ws.recv()
    assert snapshot["type"] == "snapshot"
    return ws, snapshot["seq"]


async def test_write_on_one_worker_reaches_the_other(
    workers: list[ServerProcess], slug: str
) -> None:
    a, b = workers
    async with httpx.AsyncClient(headers=AUTH, base_url=a.base_url) as http:
        assert (await http.post("/api/boards", json={"slug": slug})).status_code == 201
        ws_b, _ = await _watch(b.ws_url, slug)
        ws_a, _ = await _watch(a.ws_url, slug)
        response = await http.put(
            f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 7}
        )
        assert response.status_code == 201
    for ws in (ws_a, ws_b):
        (event,) = await ws.events(1)
        assert (event["seq"], event["event"], event["data"]["value"]) == (1, "widget.created", 7)
        await ws.close()


async def test_concurrent_writers_on_both_workers_give_gapless_seq(
    workers: list[ServerProcess], slug: str
) -> None:
    """Writers on both workers at once: every subscriber sees 1..N in order, once each."""
    a, b = workers
    per_writer = 40
    async with httpx.AsyncClient(headers=AUTH, base_url=a.base_url) as http:
        await http.post("/api/boards", json={"slug": slug})
        await http.put(f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 0})
    watchers = [await _watch(w.ws_url, slug) for w in (a, b, a, b)]

    async def write(base_url: str, writer: int) -> None:
        async with httpx.AsyncClient(headers=AUTH, base_url=base_url) as http:
            for i in range(per_writer):
                response = await http.patch(
                    f"/api/boards/{slug}/widgets/w", json={"value": writer * 1000 + i}
                )
                assert response.status_code == 200

    await asyncio.gather(*(write(w.base_url, n) for n, w in enumerate((a, b, a, b))))
    total = 1 + 4 * per_writer
    async with httpx.AsyncClient(headers=AUTH, base_url=b.base_url) as http:
        history = []
        after = 0
        while True:
            page = (await http.get(f"/api/boards/{slug}/events", params={"after": after})).json()
            history += page["items"]
            if page["next_after"] is None:
                break
            after = page["next_after"]
    assert [e["seq"] for e in history] == list(range(1, total + 1))
    for ws, start in watchers:
        events = await ws.events(total - start, timeout=20)
        assert [e["seq"] for e in events] == list(range(start + 1, total + 1))
        assert [{k: v for k, v in e.items() if k != "type"} for e in events] == history[start:]
        await ws.close()


async def test_reconnect_to_other_worker_with_since(
    workers: list[ServerProcess], slug: str
) -> None:
    a, b = workers
    async with httpx.AsyncClient(headers=AUTH, base_url=a.base_url) as http:
        await http.post("/api/boards", json={"slug": slug})
        ws, _ = await _watch(a.ws_url, slug)
        await http.put(f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 0})
        (first,) = await ws.events(1)
        await ws.close()
        for i in range(1, 26):
            await http.patch(f"/api/boards/{slug}/widgets/w", json={"value": i})

    again = WsClient(await connect(b.ws_url, additional_headers=AUTH))
    await again.subscribe(slug, since=first["seq"])
    events = await again.events(25)
    assert [e["seq"] for e in events] == list(range(2, 27))
    assert events[-1]["data"]["value"] == 25


async def test_serve_with_two_workers(pg_url: str, prefix: str, slug: str) -> None:
    """`switchboard serve --workers 2`: both workers share the port and deliver."""
    env = {
        "SWITCHBOARD_DATABASE_URL": pg_url,
        "SWITCHBOARD_BROKER_URL": REDIS_URL,
        "SWITCHBOARD_BROKER_PREFIX": prefix,
        "SWITCHBOARD_LOG_LEVEL": "warning",
    }
    server = await spawn_server(env, workers=2)
    try:
        async with httpx.AsyncClient(headers=AUTH, base_url=server.base_url) as http:
            await http.post("/api/boards", json={"slug": slug})
            clients = [await _watch(server.ws_url, slug) for _ in range(8)]
            await http.put(f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 1})
            for ws, _ in clients:
                (event,) = await ws.events(1)
                assert event["seq"] == 1
                await ws.close()
    finally:
        server.stop()


async def test_idempotency_key_holds_across_workers(
    workers: list[ServerProcess], slug: str
) -> None:
    """A write retried on another worker returns the first answer and is not repeated."""
    a, b = workers
    headers = {"Idempotency-Key": f"retry-{slug}"}
    path = f"/api/boards/{slug}/widgets/s/points"
    async with httpx.AsyncClient(headers=AUTH) as http:
        await http.post(f"{a.base_url}/api/boards", json={"slug": slug})
        await http.put(f"{a.base_url}/api/boards/{slug}/widgets/s", json={"kind": "series"})
        first = await http.post(f"{a.base_url}{path}", json={"points": [{"v": 1}]}, headers=headers)
        retry = await http.post(f"{b.base_url}{path}", json={"points": [{"v": 1}]}, headers=headers)
        widget = (await http.get(f"{b.base_url}/api/boards/{slug}/widgets/s")).json()
    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert len(widget["value"]) == 1


async def test_revocation_reaches_every_worker(workers: list[ServerProcess], slug: str) -> None:
    """A key revoked through one worker stops working on the other at once, and the other
    closes the WebSockets it authenticated with that key (4101)."""
    a, b = workers
    async with httpx.AsyncClient(headers=AUTH) as http:
        await http.post(f"{a.base_url}/api/boards", json={"slug": slug})
        key = (await http.post(f"{a.base_url}/api/keys", json={"role": "read"})).json()
        bearer = {"Authorization": f"Bearer {key['key']}"}
        assert (
            await http.get(f"{b.base_url}/api/boards/{slug}", headers=bearer)
        ).status_code == 200
        ws = WsClient(await connect(b.ws_url, additional_headers=bearer))
        await ws.subscribe(slug)
        await ws.recv()
        assert (await http.delete(f"{a.base_url}/api/keys/{key['id']}")).status_code == 204
        assert await ws.closed_with() == 4101
        refused = await http.get(f"{b.base_url}/api/boards/{slug}", headers=bearer)
        assert refused.status_code == 401
