"""The event log on the real stores: the hub's catch-up queries and retention trimming."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.store import migrate
from switchboard.store.boards import create_board
from switchboard.store.db import Database, Retention
from switchboard.store.events import (
    TRIM_EVERY,
    boards_ahead,
    changed_since,
    lock_board,
    record,
)
from switchboard.store.models import Board, Event, utcnow

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


async def test_boards_ahead_beyond_the_parameter_limit(db: Database) -> None:
    """A worker may hold more channels than one statement can bind (asyncpg: 32,767):
    only the boards past the seq the worker holds come back, tombstones included."""
    real = {f"h-{uuid.uuid4().hex[:12]}": seq for seq in (0, 3, 7, 9)}
    for slug, seq in real.items():
        await _board_at(db, slug, seq)
    gone = list(real)[3]
    async with db.transaction() as tx:
        await tx.session.execute(
            update(Board).where(Board.slug == gone).values(deleted_at=utcnow())
        )
    seen = {f"none-{uuid.uuid4().hex[:12]}-{i}": 0 for i in range(40_000)}
    held = dict(zip(real, (0, 3, 5, 8), strict=True))  # behind: the third and the fourth
    seen = dict(list(seen.items())[:20_000] + list(held.items()) + list(seen.items())[20_000:])
    async with db.read() as session:
        ahead = await boards_ahead(session, list(seen), list(seen.values()))
    assert sorted(ahead) == sorted(list(real)[2:])


async def _changed(db: Database, mark: int | None) -> tuple[int, dict[str, int]]:
    async with db.read() as session:
        mark, heads = await changed_since(session, mark)
    return mark, dict(heads)


async def _write(db: Database, slug: str, events: int = 1) -> None:
    async with db.transaction() as tx:
        board = await lock_board(tx, slug)
        for _ in range(events):
            await record(tx, board, "widget.deleted", {"key": "w"})


async def test_changed_since_names_the_boards_written_and_no_others(db: Database) -> None:
    """The first call only sets the clock; each later one answers the boards written
    since the one before, with their seqs, tombstones included, then nothing more."""
    quiet, busy, gone = (f"c-{uuid.uuid4().hex[:12]}" for _ in range(3))
    for slug in (quiet, busy, gone):
        await _board_at(db, slug, 2)
    mark, heads = await _changed(db, None)
    assert heads == {}
    await _write(db, busy, 3)
    async with db.transaction() as tx:
        board = await lock_board(tx, gone)
        board.deleted_at = utcnow()
        await record(tx, board, "board.deleted", {})
    mark, heads = await _changed(db, mark)
    assert heads == {busy: 5, gone: 3}
    mark, heads = await _changed(db, mark)
    assert heads == {}


async def test_changed_since_sees_a_write_that_commits_after_a_later_one(
    tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL's transactions commit out of order: one that wrote its event first but
    commits after a poll that already saw a later writer's event is still answered by
    the next poll (the mark stays behind every transaction still running). SQLite has one
    writer at a time: a later write never commits first."""
    db = await _database("postgresql", tmp_path, pg_url, Retention(10_000, AGE))
    engine = create_async_engine(pg_url)
    slow, fast = (f"o-{uuid.uuid4().hex[:12]}" for _ in range(2))
    try:
        await _board_at(db, slow, 1)
        await _board_at(db, fast, 1)
        mark, _ = await _changed(db, None)
        async with engine.connect() as open_tx:
            await open_tx.execute(
                text(
                    "INSERT INTO events (board_id, seq, name, data, at) "
                    "SELECT id, 2, 'widget.deleted', '{}', now() FROM boards WHERE slug = :s"
                ),
                {"s": slow},
            )
            await open_tx.execute(text("UPDATE boards SET seq = 2 WHERE slug = :s"), {"s": slow})
            await _write(db, fast)
            mark, heads = await _changed(db, mark)
            assert heads == {fast: 2}  # the slow writer has not committed
            await open_tx.commit()
        mark, heads = await _changed(db, mark)
        assert heads[slow] == 2  # the fast one again too: the mark waited for the slow
        _, heads = await _changed(db, mark)
        assert heads == {}
    finally:
        await engine.dispose()
        await db.dispose()


async def _set_ages(db: Database, slug: str, old: set[int]) -> None:
    """Date the events `old` two `AGE`s back, as a worker whose clock is behind would."""
    async with db.transaction() as tx:
        board_id = (await lock_board(tx, slug)).id
        await tx.session.execute(
            update(Event)
            .where(Event.board_id == board_id, Event.seq.in_(old))
            .values(at=utcnow() - 2 * AGE)
        )


async def _record_one(db: Database, slug: str) -> None:
    async with db.transaction() as tx:
        await record(tx, await lock_board(tx, slug), "widget.deleted", {"key": "w"})


async def _stored(db: Database, slug: str) -> tuple[int, list[int]]:
    """The board's seq and the seqs its history still holds."""
    async with db.read() as session:
        board = await session.scalar(select(Board).where(Board.slug == slug))
        assert board is not None
        seqs = await session.scalars(
            select(Event.seq).where(Event.board_id == board.id).order_by(Event.seq)
        )
        return board.seq, list(seqs)


async def _trim_once(db: Database, slug: str, old: set[int]) -> list[int]:
    """Events 1..99 with `old` stamped past the age limit, then event 100, which trims:
    the seqs kept (the board is asserted to be at 100)."""
    await _board_at(db, slug, TRIM_EVERY - 1)
    await _set_ages(db, slug, old)
    await _record_one(db, slug)
    seq, kept = await _stored(db, slug)
    assert seq == TRIM_EVERY
    return kept


@pytest.mark.parametrize(
    ("old", "kept_from"),
    [
        # skewed clocks: 30 stamped late among old ones, 60 stamped early among new ones
        (set(range(1, 51)) - {30} | {60}, 61),
        # everything before the trigger is old: only the event just recorded stays
        (set(range(1, TRIM_EVERY)), TRIM_EVERY),
        # nothing is old: nothing goes
        (set(), 1),
    ],
)
async def test_age_trim_keeps_one_contiguous_range(
    db: Database, slug: str, old: set[int], kept_from: int
) -> None:
    """Timestamps come from each worker's clock, so they need not grow with seq; the trim
    cuts at a seq, and whatever survives is still gapless up to the board's seq."""
    assert await _trim_once(db, slug, old) == list(range(kept_from, TRIM_EVERY + 1))


@pytest.mark.parametrize(("old", "kept_from"), [({10}, 71), ({80}, 81)])
async def test_count_and_age_trim_together(
    tmp_path: Path, pg_url: str, slug: str, old: set[int], kept_from: int
) -> None:
    """Whichever of the two retention limits (here the last 30) reaches further decides."""
    database = await _database("postgresql", tmp_path, pg_url, Retention(30, AGE))
    try:
        assert await _trim_once(database, slug, old) == list(range(kept_from, TRIM_EVERY + 1))
    finally:
        await database.dispose()
