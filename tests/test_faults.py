"""Fault injection with real processes: Redis stopped and restarted, workers killed,
clients reconnecting elsewhere with `since`. Every subscriber must end with every
committed event exactly once, in seq order, agreeing with the REST history."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.config import Settings
from tests.conftest import PG_ADMIN_URL, backend_settings, own_database
from tests.helpers import (
    ADMIN_KEY,
    AUTH,
    LiveServer,
    RedisServer,
    ServerProcess,
    WsClient,
    eventually,
    spawn_servers,
    start_server,
)


def _env(pg_url: str, redis: RedisServer, prefix: str) -> dict[str, str]:
    return {
        "SWITCHBOARD_DATABASE_URL": pg_url,
        "SWITCHBOARD_BROKER_URL": redis.url,
        "SWITCHBOARD_BROKER_PREFIX": prefix,
        "SWITCHBOARD_LOG_LEVEL": "warning",
    }


class Watcher:
    """A subscriber that survives anything: on any disconnect it reconnects to a live
    worker with `since` = the last seq it holds, like a well-written client."""

    def __init__(self, slug: str, workers: list[ServerProcess], start: int) -> None:
        self.slug = slug
        self.workers = workers
        self.seqs: list[int] = []
        self.frames: dict[int, dict[str, Any]] = {}
        self.position = 0
        self.reconnects = 0
        self._turn = itertools.cycle(range(len(workers)))
        for _ in range(start):
            next(self._turn)
        self.task = asyncio.create_task(self._run())

    def _next_worker(self) -> ServerProcess:
        for _ in range(len(self.workers)):
            worker = self.workers[next(self._turn)]
            if worker.process.poll() is None:
                return worker
        raise RuntimeError("no live worker")

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with connect(
                    self._next_worker().ws_url, open_timeout=3, additional_headers=AUTH
                ) as conn:
                    ws = WsClient(conn)
                    if first:
                        await ws.subscribe(self.slug)
                        snapshot = await ws.recv()
                        assert snapshot["type"] == "snapshot"
                        self.position = snapshot["seq"]
                        first = False
                    else:
                        await ws.subscribe(self.slug, since=self.position)
                    async for raw in conn:
                        frame = orjson.loads(raw)
                        assert frame["type"] == "event", frame
                        self.seqs.append(frame["seq"])
                        self.frames[frame["seq"]] = frame
                        self.position = frame["seq"]
            except (ConnectionClosed, OSError, TimeoutError):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _write(workers: list[ServerProcess], slug: str, writer: int, count: int) -> int:
    """PATCH `count` values, retrying each on another worker with the same Idempotency-Key."""
    turn = itertools.cycle(workers)
    async with httpx.AsyncClient(timeout=5, headers=AUTH) as http:
        for i in range(count):
            key = uuid.uuid4().hex
            while True:
                worker = next(turn)
                if worker.process.poll() is not None:
                    continue
                try:
                    response = await http.patch(
                        f"{worker.base_url}/api/boards/{slug}/widgets/w{writer}",
                        json={"value": i},
                        headers={"Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code == 200:
                    break
                assert response.status_code in (409, 503), response.text
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.01)
    return count


async def test_redis_restarts_and_a_killed_worker_lose_nothing(
    pg_url: str, redis_server: RedisServer, prefix: str, slug: str
) -> None:
    env = _env(pg_url, redis_server, prefix)
    workers = await spawn_servers(env, 3)
    watchers: list[Watcher] = []
    try:
        async with httpx.AsyncClient(headers=AUTH, base_url=workers[0].base_url) as http:
            assert (await http.post("/api/boards", json={"slug": slug})).status_code == 201
            for writer in range(3):
                response = await http.put(
                    f"/api/boards/{slug}/widgets/w{writer}", json={"kind": "number", "value": 0}
                )
                assert response.status_code == 201
        watchers = [Watcher(slug, workers, n) for n in range(9)]
        await eventually(lambda: all(w.position >= 3 for w in watchers), timeout=10)

        writes = asyncio.gather(*(_write(workers, slug, n, 150) for n in range(3)))
        for _ in range(3):
            await asyncio.sleep(0.7)
            redis_server.stop()
            await asyncio.sleep(0.7)
            redis_server.start()
        workers[1].kill(signal.SIGKILL)
        assert sum(await writes) == 450

        async with httpx.AsyncClient(headers=AUTH, base_url=workers[0].base_url) as http:
            head = (await http.get(f"/api/boards/{slug}")).json()["seq"]
            history: list[dict[str, Any]] = []
            after = 0
            while after < head:
                page = (await http.get(f"/api/boards/{slug}/events?after={after}&limit=500")).json()
                history.extend(page["items"])
                after = history[-1]["seq"]
        assert head == 3 + 450
        assert [e["seq"] for e in history] == list(range(1, head + 1))

        await eventually(lambda: all(w.position == head for w in watchers), timeout=20)
        by_seq = {e["seq"]: e for e in history}
        for watcher in watchers:
            start = watcher.seqs[0]
            assert watcher.seqs == list(range(start, head + 1))  # in order, no gap, no duplicate
            assert start <= 4
            for seq, frame in watcher.frames.items():
                assert {k: v for k, v in frame.items() if k != "type"} == by_seq[seq]
        assert sum(w.reconnects for w in watchers) >= 3  # the killed worker's clients moved
    finally:
        for watcher in watchers:
            await watcher.stop()
        for worker in workers:
            worker.stop()


async def test_writes_and_delivery_continue_while_redis_is_down(
    pg_url: str, redis_server: RedisServer, prefix: str, slug: str
) -> None:
    """REST writes commit while Redis is gone, without waiting on it (neither the rate
    limit nor the publish does); the store poll delivers them meanwhile."""
    settings = backend_settings(
        "production", Path(), pg_url, prefix, broker_url=redis_server.url, write_rate_limit=100
    )
    async with start_server(settings) as live:
        await live.create_board(slug)
        await live.put_widget(slug, "n", value=0)
        ws = await live.ws()
        await ws.subscribe(slug, since=1)
        redis_server.freeze()  # unreachable, not refusing: every Redis call would wait
        ready = await _readyz(live.http, 503, timeout=30)
        assert ready.json()["broker"] == "unavailable"
        started = time.monotonic()
        for value in range(1, 6):
            await live.set_value(slug, "n", value)
        # Each took 2.5 s or more when they waited for the dead Redis: 5 s is a wide margin.
        assert time.monotonic() - started < 5
        events = await ws.events(5, timeout=5)
        assert [e["seq"] for e in events] == [2, 3, 4, 5, 6]
        redis_server.freeze(False)
        redis_server.stop()
        redis_server.start()
        await _readyz(live.http, 200)
        await live.set_value(slug, "n", 7)
        assert [e["seq"] for e in await ws.events(1)] == [7]
        await ws.close()


async def _readyz(http: httpx.AsyncClient, status: int, timeout: float = 5) -> httpx.Response:
    """Poll `/readyz` until it answers `status` (the broker state changes in the background)."""
    for _ in range(int(timeout / 0.05)):
        response = await http.get("/readyz")
        if response.status_code == status:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never answered {status}")


async def test_reconnect_after_missing_a_thousand_events(production: LiveServer, slug: str) -> None:
    await production.create_board(slug)
    await production.put_widget(slug, "s", kind="series", config={"max_points": 3})
    ws = await production.ws()
    await ws.subscribe(slug)
    seen = (await ws.recv())["seq"]
    await ws.close()
    path = f"/api/boards/{slug}/widgets/s/points"
    for i in range(1000):
        assert (await production.http.post(path, json={"points": [{"v": i}]})).status_code == 200
    ws = await production.ws()
    await ws.subscribe(slug, since=seen)
    events = await ws.events(1000, timeout=30)
    assert [e["seq"] for e in events] == list(range(seen + 1, seen + 1001))
    await ws.close()


async def test_database_down_means_503_and_nothing_half_done(slug: str) -> None:
    """With PostgreSQL unreachable, writes answer 503 in the error shape; nothing is published."""
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", admin_key=ADMIN_KEY
    )
    async with start_server(settings) as live:
        ws = await live.ws()
        await ws.send({"type": "subscribe", "channel": f"board:{slug}", "id": 1})
        reply = await ws.recv()
        assert (reply["type"], reply["code"], reply["id"]) == ("error", "unavailable", 1)
        response = await live.http.post("/api/boards", json={"slug": slug})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        ready = await live.http.get("/readyz")
        assert (ready.status_code, ready.json()["database"]) == (503, "unavailable")
        await ws.send({"type": "ping", "id": 2})
        assert await ws.recv() == {"type": "pong", "id": 2}
        await ws.close()


async def _drop_connections(database: str) -> int:
    """What a PostgreSQL restart does to a worker's pool: every connection to `database`
    is closed by the server, and the worker learns it only when it next uses one."""
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        killed = await conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        )
    await admin.dispose()
    return int(killed or 0)


async def test_writes_after_postgresql_dropped_every_connection(prefix: str, slug: str) -> None:
    """No pre-ping on checkout (bench/NOTES.md, write path): a write on a connection the
    server closed answers 503 in the error shape, or succeeds; never 500. The disconnect
    invalidates the pool, so the write after it succeeds, on every kind of write. A widget
    PATCH that reads first learns it on its read, before writing anything, and simply
    reads again; one on a widget its worker remembers (`store.patch.Recent`) sends its
    write first, and answers 503 if that meets the closed connection."""
    async with (
        own_database() as (name, url),
        start_server(backend_settings("production", Path(), url, prefix)) as live,
    ):
        await live.create_board(slug)
        await live.put_widget(slug, "w", value=0)
        path = f"/api/boards/{slug}/widgets/w"

        def patch(i: int) -> Awaitable[httpx.Response]:
            return live.http.patch(path, json={"value": i})

        writes: list[tuple[Callable[[int], Awaitable[httpx.Response]], bool]] = [
            (patch, True),  # nothing remembered: the PATCH reads first
            (patch, False),
            (lambda i: live.http.put(path, json={"kind": "number", "value": i}), False),
            (
                lambda i: live.http.patch(
                    f"/api/boards/{slug}/widgets", json={"widgets": {"w": {"value": i}}}
                ),
                False,
            ),
        ]
        for write, reads_first in writes:
            await asyncio.gather(*(live.set_value(slug, "w", i) for i in range(4)))  # a pool
            if reads_first:
                live.state.recent.rows.clear()
            assert await _drop_connections(name) > 0
            first = await write(1)
            if reads_first:  # its read failed, so it read again: done
                assert first.status_code == 200, first.text
            assert first.status_code in (200, 503), first.text
            if first.status_code == 503:
                assert first.json()["error"]["code"] == "unavailable"
            second = await write(2)
            assert second.status_code == 200, second.text
        history = (await live.http.get(f"/api/boards/{slug}/events")).json()["items"]
        seqs = [e["seq"] for e in history]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_reads_after_postgresql_dropped_every_connection(prefix: str, slug: str) -> None:
    """Once PostgreSQL has closed a worker's idle pooled connections (a restart, a failover,
    a pooler recycling them), reads and writes made afterwards are answered: a connection
    the driver already knows is closed is replaced when it is checked out, not used. Only
    a request already in flight when its connection dies may fail."""
    async with (
        own_database() as (name, url),
        start_server(backend_settings("production", Path(), url, prefix)) as live,
    ):
        await live.create_board(slug)
        await live.put_widget(slug, "w", value=0)
        path = f"/api/boards/{slug}"
        for round_ in range(3):
            pooled = await asyncio.gather(*(live.http.get(path) for _ in range(8)))
            assert {r.status_code for r in pooled} == {200}
            assert await _drop_connections(name) > 0
            await asyncio.sleep(0.3)  # the closing notices reach the worker's event loop
            at_once = await asyncio.gather(*(live.http.get(path) for _ in range(8)))
            one_by_one = [await live.http.get(path) for _ in range(4)]
            listed = await live.http.get("/api/boards")
            events = await live.http.get(f"{path}/events")
            created = await live.http.post("/api/boards", json={"slug": f"{slug}-{round_}"})
            answers = [*at_once, *one_by_one, listed, events, created]
            assert [r.status_code for r in answers] == [200] * 14 + [201], [
                r.text for r in answers if r.status_code >= 300
            ]
