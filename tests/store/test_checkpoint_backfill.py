"""Migration 0006 gives each live board one checkpoint at its current seq, equal to what the
live GET shows, on PostgreSQL and SQLite: boards from before it can be rewound from there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from switchboard.resources import board_out
from switchboard.store import checkpoints, migrate
from switchboard.store.boards import load_board
from switchboard.store.db import Database
from switchboard.store.models import Board, Checkpoint, Widget
from tests.conftest import create_database, drop_database

WHEN = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


async def _backfilled(url: str) -> None:
    await migrate.upgrade(url, "0005_layout")
    db = Database(url)
    try:
        async with db.sessions() as session, session.begin():
            times = {"created_at": WHEN, "updated_at": WHEN}
            fields = {"title": "T", "description": "", "public": True, "version": 3, **times}
            live = await session.scalar(
                insert(Board).values(slug="live", seq=41, **fields).returning(Board.id)
            )
            await session.execute(
                insert(Board).values(slug="gone", seq=7, deleted_at=WHEN, **fields)
            )
            for key, kind, value in [("n", "number", 4.5), ("s", "series", [{"t": "x", "v": 1}])]:
                await session.execute(
                    insert(Widget).values(
                        board_id=live, key=key, kind=kind, title="", config={}, value=value,
                        version=2, **times,
                    )
                )  # fmt: skip
        await migrate.upgrade(url)
        async with db.read() as session:
            stored = list(await session.scalars(select(Checkpoint)))
            assert [(c.board_id, c.seq) for c in stored] == [(live, 41)]
            board, widgets = await load_board(session, "live")
            past = await checkpoints.rebuild(session, board.id, 41)
        assert past is not None
        assert past.state == board_out(board, widgets).model_dump(mode="json")
    finally:
        await db.dispose()


async def test_postgresql_backfill() -> None:
    name = f"switchboard_mig_{uuid.uuid4().hex[:12]}"
    url = await create_database(name)
    try:
        await _backfilled(url)
    finally:
        await drop_database(name)


async def test_sqlite_backfill(tmp_path: Path) -> None:
    await _backfilled(f"sqlite+aiosqlite:///{tmp_path}/sb.db")
