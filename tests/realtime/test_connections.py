"""The connection layer under stress, with real processes and sockets: slow consumers,
unresponsive clients, presence across workers, startup gating, and no leaks."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import backend_settings, production_env
from tests.helpers import (
    ADMIN_KEY,
    AUTH,
    LiveServer,
    RedisServer,
    ServerProcess,
    WsClient,
    eventually,
    masked_text,
    metric,
    raw_websocket,
    rss_bytes,
    serve_processes,
    spawn_server,
    start_server,
)


@pytest.fixture
async def small_queue_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_WS_QUEUE_MAX_MESSAGES": "50",
        # The cut client's close frame waits until the test reads it, however long the
        # 2,500 writes take on a loaded machine: a client that does not read answers no
        # server ping either, and would be dropped without a close frame after 40 s.
        "SWITCHBOARD_WS_CLOSE_TIMEOUT": "600",
        "SWITCHBOARD_WS_PING_INTERVAL": "600",
    }
    server = await spawn_server(env, cwd=str(tmp_path))
    yield server
    server.stop()


async def test_slow_consumer_is_cut_and_others_keep_up(
    small_queue_server: ServerProcess, slug: str
) -> None:
    """A client that stops reading gets 4008; a reading client on the same worker receives
    every event meanwhile; server memory does not follow the unread backlog; the slow
    client then resumes with `since` and misses nothing."""
    server = small_queue_server
    big = "x" * 9_000
    total = 2500  # ~23 MB of frames: far more than the socket buffers and the queue hold
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
        await http.post("/api/boards", json={"slug": slug})
        await http.put(f"/api/boards/{slug}/widgets/t", json={"kind": "text", "value": ""})
        # No client keepalive: a client that does not read cannot read the pong either, and
        # would give up on its own (1011, no close frame) once the writes outlast ~40 s.
        slow = WsClient(
            await connect(server.ws_url, additional_headers=AUTH, max_queue=1, ping_interval=None)
        )
        await slow.subscribe(slug, since=1)
        fast = WsClient(await connect(server.ws_url, additional_headers=AUTH))
        await fast.subscribe(slug, since=1)
        received: list[int] = []

        async def read_fast() -> None:
            while len(received) < total:
                frame = await fast.recv(timeout=30)
                if frame["type"] == "event":
                    received.append(frame["seq"])

        reader = asyncio.create_task(read_fast())
        rss_before = rss_bytes(server.process.pid)
        for i in range(total):
            response = await http.patch(
                f"/api/boards/{slug}/widgets/t", json={"value": big + str(i)}
            )
            assert response.status_code == 200
        await asyncio.wait_for(reader, 60)
        rss_after = rss_bytes(server.process.pid)
        slow_cuts = metric(
            (await http.get("/metrics")).text, "switchboard_slow_consumer_disconnects_total"
        )

    assert received == list(range(2, total + 2))  # every event, in order, to the reader
    assert slow_cuts >= 1
    assert rss_after - rss_before < 16 * 1024 * 1024  # not the ~24 MB the slow client missed
    frames, code = await slow.read_until_closed(timeout=10)
    assert code == 4008
    seen = [f["seq"] for f in frames if f["type"] == "event"]
    assert seen == list(range(2, 2 + len(seen)))
    assert len(seen) < total
    again = WsClient(await connect(server.ws_url, additional_headers=AUTH))
    await again.subscribe(slug, since=seen[-1] if seen else 1)
    rest = await again.events(total + 1 - (seen[-1] if seen else 1), timeout=30)
    assert [e["seq"] for e in rest] == list(range((seen[-1] if seen else 1) + 1, total + 2))
    await again.close()
    await fast.close()


async def test_client_that_stops_answering_pings_is_dropped(tmp_path: Path, slug: str) -> None:
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_WS_PING_INTERVAL": "0.3",
        "SWITCHBOARD_WS_PING_TIMEOUT": "0.3",
    }
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
            await http.post("/api/boards", json={"slug": slug})
            sock = raw_websocket(server.port, "/ws")
            sock.sendall(masked_text(f'{{"type":"subscribe","channel":"board:{slug}"}}'))

            async def gauges() -> tuple[float, float]:
                text = (await http.get("/metrics")).text
                return (
                    metric(text, "switchboard_connections"),
                    metric(text, "switchboard_subscriptions"),
                )

            for _ in range(50):
                if await gauges() == (1, 1):
                    break
                await asyncio.sleep(0.05)
            assert await gauges() == (1, 1)
            for _ in range(100):  # the socket stays open but never answers
                if await gauges() == (0, 0):
                    break
                await asyncio.sleep(0.05)
            assert await gauges() == (0, 0)
            sock.close()
    finally:
        server.stop()


async def _viewer(url: str, slug: str, credential: str | None) -> WsClient:
    headers = {"Authorization": f"Bearer {credential}"} if credential else None
    ws = WsClient(await connect(url, additional_headers=headers))
    await ws.subscribe(slug)
    assert (await ws.recv())["type"] == "snapshot"
    return ws


class PresenceView:
    """A subscriber's picture of who watches, kept from `presence` frames."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws
        self.viewers: dict[str, int] = {}
        self.notices = 0

    async def until(self, expected: dict[str, int], timeout: float = 10) -> None:
        async def follow() -> None:
            while {k: v for k, v in self.viewers.items() if v} != expected:
                frame = await self.ws.recv(timeout=timeout)
                if frame["type"] == "presence" and "changed" in frame:
                    self.notices += 1
                    self.viewers.update(frame["changed"])
                elif frame["type"] == "presence":
                    self.viewers = dict(frame["viewers"])

        await asyncio.wait_for(follow(), timeout)


@pytest.fixture
async def two_workers(pg_url: str, prefix: str) -> AsyncIterator[list[ServerProcess]]:
    env = production_env(
        pg_url, prefix, SWITCHBOARD_PRESENCE_INTERVAL="0.2", SWITCHBOARD_PRESENCE_TTL="2"
    )
    async with serve_processes(env, 2) as workers:
        yield workers


async def test_presence_across_workers(two_workers: list[ServerProcess], slug: str) -> None:
    one, two = two_workers
    async with httpx.AsyncClient(headers=AUTH) as http:
        await http.post(f"{one.base_url}/api/boards", json={"slug": slug, "public": True})
        key: dict[str, Any] = (
            await http.post(f"{one.base_url}/api/keys", json={"role": "read"})
        ).json()
    watcher = await _viewer(two.ws_url, slug, ADMIN_KEY)
    view = PresenceView(watcher)
    keyed = await _viewer(one.ws_url, slug, key["key"])
    await watcher.send({"type": "presence", "channel": f"board:{slug}"})
    await view.until({"bootstrap": 1, f"key:{key['id']}": 1})
    anonymous = await asyncio.gather(*(_viewer(one.ws_url, slug, None) for _ in range(20)))
    view.notices = 0
    await view.until({"bootstrap": 1, f"key:{key['id']}": 1, "anonymous": 20})
    assert view.notices < 20  # twenty joins, coalesced into a few frames
    await keyed.close()
    await view.until({"bootstrap": 1, "anonymous": 20})
    for ws in anonymous:
        await ws.close()
    await view.until({"bootstrap": 1})
    await watcher.close()


async def _watched(
    one: ServerProcess, two: ServerProcess, slug: str
) -> tuple[WsClient, PresenceView, list[WsClient]]:
    """A public board watched (with presence) through worker `two`, and two anonymous
    viewers on worker `one`, all seen by the watcher."""
    async with httpx.AsyncClient(headers=AUTH) as http:
        await http.post(f"{one.base_url}/api/boards", json={"slug": slug, "public": True})
    watcher = await _viewer(two.ws_url, slug, ADMIN_KEY)
    view = PresenceView(watcher)
    await watcher.send({"type": "presence", "channel": f"board:{slug}"})
    viewers = [await _viewer(one.ws_url, slug, None) for _ in range(2)]
    await view.until({"bootstrap": 1, "anonymous": 2})
    return watcher, view, viewers


async def test_killed_workers_viewers_expire(two_workers: list[ServerProcess], slug: str) -> None:
    one, two = two_workers
    watcher, view, doomed = await _watched(one, two, slug)
    one.kill(signal.SIGKILL)
    # Gone within the TTL (2 s) plus a presence interval, although nobody said goodbye.
    await view.until({"bootstrap": 1}, timeout=6)
    for ws in doomed:  # their worker is gone: their connections too
        await asyncio.wait_for(ws.connection.wait_closed(), 5)
    await watcher.close()


async def test_presence_survives_a_redis_restart(
    pg_url: str, prefix: str, redis_server: RedisServer, slug: str
) -> None:
    """A restarted Redis has lost every worker's counts and every message sent meanwhile:
    each worker writes its counts again when its channels are re-subscribed, so viewers on
    both workers, including one that arrived during the outage, are all there after."""
    env = {
        **production_env(
            pg_url, prefix, SWITCHBOARD_PRESENCE_INTERVAL="0.2", SWITCHBOARD_PRESENCE_TTL="2"
        ),
        "SWITCHBOARD_BROKER_URL": redis_server.url,
    }
    async with serve_processes(env, 2) as (one, two):
        watcher, view, viewers = await _watched(one, two, slug)
        redis_server.stop()
        viewers.append(await _viewer(one.ws_url, slug, None))  # from the store, Redis down
        redis_server.start()  # empty
        await asyncio.sleep(1)
        await watcher.send({"type": "presence", "channel": f"board:{slug}"})
        await view.until({"bootstrap": 1, "anonymous": 3}, timeout=15)
        for ws in [*viewers, watcher]:
            await ws.close()


async def test_websockets_wait_for_the_broker_at_startup(
    tmp_path: Path, pg_url: str, prefix: str, redis_server: RedisServer, slug: str
) -> None:
    redis_server.stop()
    settings = backend_settings("production", tmp_path, pg_url, prefix, broker_url=redis_server.url)
    async with start_server(settings) as live:
        with pytest.raises(InvalidStatus) as refused:
            await live.ws()
        assert refused.value.response.status_code == 403
        redis_server.start()
        await eventually(lambda: live.state.realtime.hub.ready, timeout=10)
        await live.create_board(slug)
        ws = await live.ws()
        await ws.subscribe(slug)
        await ws.close()


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_no_leak_after_many_connections(
    backend: str, tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    """Connect, subscribe, leave — 10,000 times: nothing is left behind (tasks, channels,
    broker subscriptions, presence entries, connection slots, registered connections)."""
    cycles = 10_000 if backend == "embedded" else 2_000
    settings = backend_settings(backend, tmp_path, pg_url, prefix)
    async with start_server(settings) as live:
        await live.create_board(slug, public=True)
        state = live.state
        realtime = state.realtime
        broker_channels = (
            state.broker._channels  # type: ignore[attr-defined]
            if backend == "embedded"
            else state.broker._link.wanted  # type: ignore[attr-defined]
        )
        await asyncio.sleep(0.2)
        tasks_before = len(asyncio.all_tasks())
        wanted_before = set(broker_channels)
        # Metrics are per process, and this process runs other tests' servers: compare.
        gauges_before = await _gauges(live)

        async def cycle(worker: int) -> None:
            for _ in range(cycles // 50):
                async with connect(live.ws_url) as conn:
                    ws = WsClient(conn)
                    await ws.subscribe(slug)
                    await ws.recv()

        await asyncio.gather(*(cycle(n) for n in range(50)))
        hub = realtime.hub
        await eventually(lambda: not hub.channels and not hub._closing, timeout=10)
        await asyncio.sleep(0.5)
        assert len(asyncio.all_tasks()) <= tasks_before
        assert set(broker_channels) == wanted_before
        assert realtime.presence.local == {}
        assert list(realtime.connections.principals()) == []
        assert realtime.connections._counts == {}
        assert await _gauges(live) == gauges_before


async def _gauges(live: LiveServer) -> tuple[float, float]:
    text = (await live.http.get("/metrics")).text
    return metric(text, "switchboard_connections"), metric(text, "switchboard_subscriptions")
