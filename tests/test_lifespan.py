"""A worker whose startup fails part-way releases everything it had opened: no task left
running, no Redis or PostgreSQL connection left open (the lifespan is one AsyncExitStack)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.app import create_app
from switchboard.broker import client_name
from switchboard.realtime.presence import Presence
from tests.conftest import REDIS_URL, backend_settings
from tests.helpers import LiveServer


async def _open_connections(pg_url: str, prefix: str) -> tuple[int, int]:
    """This deployment's connections to Redis (by client name: other test runs may share
    the Redis), and backends on the test database (ours excluded)."""
    redis = Redis.from_url(REDIS_URL)
    try:
        name = client_name(prefix)
        clients = sum(1 for client in await redis.client_list() if client["name"] == name)
    finally:
        await redis.aclose()
    engine = create_async_engine(pg_url, poolclass=None)
    try:
        async with engine.connect() as conn:
            query = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            )
            backends = (await conn.execute(query, {"db": make_url(pg_url).database})).scalar_one()
    finally:
        await engine.dispose()
    return clients, int(backends)


async def test_a_failed_startup_releases_what_it_opened(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_url: str, prefix: str
) -> None:
    def fail(self: Presence) -> None:
        raise RuntimeError("injected: the last startup step fails")

    # The last step: by then the store, Redis, the broker's reader, the hub's poll and the
    # credential watch are all running.
    monkeypatch.setattr(Presence, "start", fail)
    app = create_app(backend_settings("production", tmp_path, pg_url, prefix))
    await asyncio.sleep(0.1)
    tasks_before = set(asyncio.all_tasks())
    connections_before = await _open_connections(pg_url, prefix)

    with pytest.raises(RuntimeError, match="injected"):
        async with app.router.lifespan_context(app):
            pass

    await asyncio.sleep(0.3)
    left = {t for t in asyncio.all_tasks() - tasks_before if not t.done()}
    left.discard(asyncio.current_task())
    assert left == set(), [t.get_name() for t in left]
    assert await _open_connections(pg_url, prefix) == connections_before


async def test_a_running_workers_redis_connections_carry_its_name(
    production: LiveServer, pg_url: str, prefix: str
) -> None:
    """What the test above counts: a started worker's Redis connections, by name (at least
    the broker's subscriber connection, held open while the worker runs)."""
    clients, _ = await _open_connections(pg_url, prefix)
    assert clients >= 1
