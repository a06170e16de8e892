"""A read is one snapshot on both backends: a write that commits between two SELECTs of one
`Database.read` is invisible to the second, so a board snapshot's seq and widgets agree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from switchboard.store import migrate
from switchboard.store.boards import create_board
from switchboard.store.db import Database
from switchboard.store.events import find_board
from switchboard.store.models import Widget
from switchboard.store.widgets import put_widget, update_widget


@pytest.fixture(params=["embedded", "production"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str
) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/sb.db" if request.param == "embedded" else pg_url
    if request.param == "embedded":
        await migrate.upgrade(url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def test_a_read_does_not_see_a_write_committed_during_it(db: Database, slug: str) -> None:
    async with db.transaction() as tx:
        await create_board(tx, slug=slug, title="", description="", public=False)
    async with db.transaction() as tx:
        await put_widget(tx, slug, "n", kind="number", title="", config={}, value=1, if_match=None)
    async with db.read() as session:
        board = await find_board(session, slug)
        async with db.transaction() as tx:  # another connection commits meanwhile
            await update_widget(tx, slug, "n", {"value": 2}, if_match=None)
        value = await session.scalar(select(Widget.value).where(Widget.board_id == board.id))
    assert (board.seq, value) == (1, 1)
    async with db.read() as session:
        board = await find_board(session, slug)
        assert board.seq == 2
