"""The event log on the real stores: the hub's head query and retention trimming."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from switchboard.store import migrate
from switchboard.store.boards import create_board
from switchboard.store.db import Database, Retention
from switchboard.store.events import board_heads, record

AGE = timedelta(hours=1)


async def _database(backend: str, tmp_path: Path, pg_url: str, retention: Retention) -> Database:
    """A migrated store: the session's PostgreSQL database, or a fresh SQLite file."""
    if backend == "postgresql":
        return Database(pg_url, retention=retention, pool_size=2)
    url = f"sqlite+aiosqlite:///{tmp_path}/events.db"
    await migrate.upgrade(url)
    return Database(url, retention=retention)


@pytest.fixture(params=["postgresql", "sqlite"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str
) -> AsyncIterator[Database]:
    """A store on each backend, keeping 10,000 events per board and none older than `AGE`."""
    database = await _database(request.param, tmp_path, pg_url, Retention(10_000, AGE))
    try:
        yield database
    finally:
        await database.dispose()


async def _board_at(db: Database, slug: str, seq: int) -> None:
    """A board whose history holds events 1..`seq`."""
    async with db.transaction() as tx:
        board = await create_board(tx, slug=slug, title="", description="", public=False)
        for _ in range(seq):
            await record(tx, board, "widget.deleted", {"key": "w"})


async def test_board_heads_beyond_the_parameter_limit(db: Database) -> None:
    """A worker may hold more channels than one statement can bind (asyncpg: 32,767)."""
    real = {f"h-{uuid.uuid4().hex[:12]}": seq for seq in (0, 3, 7)}
    for slug, seq in real.items():
        await _board_at(db, slug, seq)
    slugs = [f"none-{uuid.uuid4().hex[:12]}-{i}" for i in range(40_000)]
    for position, slug in zip((0, 20_000, 39_999), real, strict=True):
        slugs.insert(position, slug)
    async with db.read() as session:
        heads = await board_heads(session, slugs)
    assert sorted(heads) == sorted(real.items())
