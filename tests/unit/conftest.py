"""Fixtures of the unit tier: the memory twins (a migrated SQLite file per test, the
in-process `MemoryBroker`) and a `Hub` on them. Nothing here listens on a socket or
needs PostgreSQL or Redis."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.broker.memory import MemoryBroker
from switchboard.realtime.hub import Hub
from switchboard.realtime.publisher import Publisher
from switchboard.store import migrate
from switchboard.store.db import Database
from tests.unit.twins import create_board


@pytest.fixture(scope="session")
async def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file brought to the head revision with `migrate.upgrade`, as the
    embedded server does at startup; each test gets a copy (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "sb.db"
    await migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def db(migrated_sqlite: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty SQLite store of this test's own, holding one public board `ops`."""
    path = tmp_path / "sb.db"
    shutil.copyfile(migrated_sqlite, path)
    database = Database(f"sqlite+aiosqlite:///{path}")
    await create_board(database)
    yield database
    await database.dispose()


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    broker = MemoryBroker()
    yield broker
    await broker.close()


@pytest.fixture
async def hub(broker: MemoryBroker, db: Database) -> AsyncIterator[Hub]:
    """A hub listening on the memory broker; its catch-up poll is not started (a test that
    wants it calls `hub.start()`), so a notification never published stays missing."""
    hub = Hub(broker, db, catchup_interval=0.05, degraded_interval=0.05)
    await broker.connect(hub)
    yield hub
    await hub.close()


@pytest.fixture
def publisher(broker: MemoryBroker) -> Publisher:
    return Publisher(broker)
