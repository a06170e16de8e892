"""The migrations build exactly the models' schema, on PostgreSQL and SQLite, and undo it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.store import migrate
from switchboard.store.models import Base
from tests.conftest import create_database, drop_database

TABLES = {"boards", "widgets", "events", "idempotency_keys", "api_keys", "settings"}


async def _inspect(url: str) -> tuple[set[str], list[Any]]:
    """The tables present, and what autogenerate would still change to match the models."""

    def look(connection: Connection) -> tuple[set[str], list[Any]]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return set(inspect(connection).get_table_names()), compare_metadata(context, Base.metadata)

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


async def _round_trip(url: str) -> None:
    await migrate.upgrade(url)
    tables, diff = await _inspect(url)
    assert tables >= TABLES
    assert diff == []
    await migrate.downgrade(url, "0001")
    tables, _ = await _inspect(url)
    assert "idempotency_keys" not in tables
    assert "api_keys" not in tables
    assert tables >= {"boards", "widgets", "events"}
    await migrate.downgrade(url, "base")
    tables, _ = await _inspect(url)
    assert tables & TABLES == set()
    await migrate.upgrade(url)
    tables, diff = await _inspect(url)
    assert tables >= TABLES
    assert diff == []


async def test_postgresql_up_down_up() -> None:
    name = f"switchboard_mig_{uuid.uuid4().hex[:12]}"
    url = await create_database(name)
    try:
        await _round_trip(url)
    finally:
        await drop_database(name)


async def test_sqlite_up_down_up(tmp_path: Path) -> None:
    await _round_trip(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/sb.db")


@pytest.mark.parametrize("revision", ["head"])
async def test_upgrade_is_idempotent(tmp_path: Path, revision: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/sb.db"
    await migrate.upgrade(url, revision)
    await migrate.upgrade(url, revision)
    assert (await _inspect(url))[1] == []
