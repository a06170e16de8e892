"""Fixtures: a fresh PostgreSQL database per run, a Redis key prefix per test,
and real Switchboard servers (in-process uvicorn, or subprocesses) on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.config import Settings
from switchboard.store import migrate
from tests.cluster import LocalCluster
from tests.helpers import (
    ADMIN_KEY,
    TOKEN_SECRET,
    LiveServer,
    RedisServer,
    ServerProcess,
    serve_processes,
    start_server,
)

PG_ADMIN_URL = os.environ.get(
    "SWITCHBOARD_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def create_database(name: str) -> str:
    """Create an empty PostgreSQL database and return its URL."""
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(name: str) -> None:
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@asynccontextmanager
async def own_database() -> AsyncIterator[tuple[str, str]]:
    """A migrated PostgreSQL database of one test's own, as (name, URL): for a test that
    does to its database what no other test may see (drops its connections, adds a trigger)."""
    name = f"switchboard_test_{uuid.uuid4().hex[:12]}"
    url = await create_database(name)
    try:
        await migrate.upgrade(url)
        yield name, url
    finally:
        await drop_database(name)


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database owned by this test run, dropped at the end."""
    name = f"switchboard_test_{uuid.uuid4().hex[:12]}"
    url = await create_database(name)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        await drop_database(name)


@pytest.fixture
def prefix() -> str:
    """A Redis channel prefix owned by one test."""
    return f"sbtest-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of this test's own, on its own port, that the test may stop and restart."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A Redis Cluster of this run's own (3 masters, 3 replicas on loopback), started on
    first use; a test that injects a fault leaves it whole again (`LocalCluster.heal`)."""
    cluster = LocalCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slug() -> str:
    """A board slug no other test uses."""
    return f"b-{uuid.uuid4().hex[:12]}"


BACKENDS = ["embedded", "production"]


def backend_settings(
    backend: str, tmp_path: Path, pg_url: str, prefix: str, **overrides: Any
) -> Settings:
    """Settings for the embedded default (SQLite + memory) or production (PostgreSQL + Redis)."""
    overrides.setdefault("admin_key", ADMIN_KEY)
    overrides.setdefault("secret", TOKEN_SECRET)
    overrides.setdefault("write_rate_limit", 0)  # the limit has its own tests
    if backend == "embedded":
        return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/sb.db", **overrides)
    overrides.setdefault("broker_url", REDIS_URL)
    return Settings(database_url=pg_url, broker_prefix=prefix, **overrides)


@pytest.fixture(params=BACKENDS)
async def server(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str, pg_url: str
) -> AsyncIterator[LiveServer]:
    """A running server, once on the embedded default and once in production mode."""
    async with start_server(backend_settings(request.param, tmp_path, pg_url, prefix)) as live:
        yield live


@pytest.fixture
async def production(pg_url: str, prefix: str) -> AsyncIterator[LiveServer]:
    """A running server on PostgreSQL + Redis."""
    async with start_server(backend_settings("production", Path(), pg_url, prefix)) as live:
        yield live


def production_env(pg_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a `switchboard serve` process on PostgreSQL + Redis."""
    return {
        "SWITCHBOARD_DATABASE_URL": pg_url,
        "SWITCHBOARD_BROKER_URL": REDIS_URL,
        "SWITCHBOARD_BROKER_PREFIX": prefix,
        "SWITCHBOARD_LOG_LEVEL": "warning",
        **extra,
    }


@pytest.fixture
async def workers(pg_url: str, prefix: str) -> AsyncIterator[list[ServerProcess]]:
    """Two separate `switchboard serve` processes on different ports, sharing PG + Redis."""
    async with serve_processes(production_env(pg_url, prefix), 2) as started:
        yield started
