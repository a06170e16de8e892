"""A `switchboard serve` process of the test's own, for the client's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers import ServerProcess, spawn_server


def embedded_env(tmp_path: Path) -> dict[str, str]:
    """A server on SQLite (in `tmp_path`, kept across restarts) and the memory broker."""
    return {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db"}


@pytest.fixture
async def process(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    started = await spawn_server(embedded_env(tmp_path), cwd=str(tmp_path))
    try:
        yield started
    finally:
        started.stop()
