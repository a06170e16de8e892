"""The event log: seq allocation under the board's row lock, history and retention.

Every write locks its board row first (`SELECT … FOR UPDATE` on PostgreSQL; the
embedded SQLite store serialises writes in-process), then takes `board.seq + 1`.
Two writers on different workers therefore commit their events in seq order,
and a committed seq N implies every seq below N is committed too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    String,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnClause

from switchboard.errors import DATABASE_ERRORS, Gone, NotFound
from switchboard.store import checkpoints
from switchboard.store.db import Database, Tx
from switchboard.store.models import Base, Board, Event, utcnow

log = structlog.get_logger(__name__)

TRIM_EVERY = 100  # trim retention in batches: at most this many extra rows are kept
HEADS_BATCH = 5_000  # slugs per head query on SQLite: well under its bind-parameter limit
EventData = dict[str, Any] | Callable[[], dict[str, Any]]  # a function: see `record`


BOARDS = Base.metadata.tables["boards"]
EVENTS = Base.metadata.tables["events"]


# Fragments of a single-statement write (`store.patch` composes them): data-modifying
# CTEs in raw SQL for asyncpg, each reading the CTEs named before it. Arguments are SQL
# expressions (bind parameters such as `$1`, or CTE columns).


def lock_board_sql(name: str, board: str) -> str:
    """CTE `name`: the live board `board` (an id), locked until the statement commits;
    no row if it was deleted. Every later step requires it, so none runs without it."""
    return f"{name} AS (SELECT id FROM boards WHERE id = {board} AND deleted_at IS NULL FOR UPDATE)"


def next_seq_sql(name: str, board: str, after: str) -> str:
    """CTE `name` (column `seq`): the board's seq + 1, taken only if CTE `after` has a
    row. Read under the board lock, so it is never stale and commits in seq order."""
    return (
        f"{name} AS (UPDATE boards SET seq = seq + 1 WHERE id = {board}"
        f" AND EXISTS (SELECT FROM {after}) RETURNING seq)"
    )


def insert_event_sql(
    name: str, *, source: str, board: str, seq: str, event: str, data: str, at: str
) -> str:
    """CTE `name`: the event row, one per row of `source` (the CTEs it reads, e.g. the
    seq's and the changed row's); nothing if any of them is empty."""
    return (
        f"{name} AS (INSERT INTO events (board_id, seq, name, data, at)"
        f" SELECT {board}, {seq}, {event}, {data}, {at} FROM {source})"
    )


@dataclass(slots=True)
class Head:
    """A locked board as a widget write needs it (read with Core, no ORM object)."""

    id: int
    slug: str
    seq: int


async def lock_board(tx: Tx, slug: str) -> Board:
    """The live board, locked until the transaction ends; `NotFound` otherwise."""
    await tx.send_queued()  # an earlier write of this transaction, read back as it left it
    board = await tx.session.scalar(
        select(Board)
        .where(Board.slug == slug, Board.deleted_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if board is None:
        raise NotFound(f"board {slug!r} not found")
    return board


async def record(
    tx: Tx, board: Board | Head, name: str, data: EventData, *, at: datetime | None = None
) -> Event:
    """Append the board's next event to the transaction (the board must be locked): the
    event row, and a `Head`'s new seq, are queued (`Tx.queue`), sent with the write's
    other changes just before it commits (an ORM `Board`'s seq is flushed with the rest
    of the row, so it is not written twice).

    `data` may be a function, called once the seq is allocated: data that shows the
    board itself must show this event's seq, not the one before it. `at` (now by default)
    is the event's time: a change whose data leaves out the widget's new `updated_at`
    passes that, so replaying the event restores it (`store.replay`)."""
    board.seq += 1
    if callable(data):
        data = data()
    at = at or utcnow()
    if isinstance(board, Head):  # an ORM `Board` is written by the session's own flush
        tx.queue(update(BOARDS).where(BOARDS.c.id == board.id).values(seq=board.seq))
    tx.queue(insert(EVENTS).values(board_id=board.id, seq=board.seq, name=name, data=data, at=at))
    event = Event(board_id=board.id, seq=board.seq, name=name, data=data, at=at)  # not added
    tx.events.append((board.slug, event))
    if trim_due(board.seq):
        await trim(tx, board)
    return event


def trim_due(seq: int) -> bool:
    """Whether the write that took `seq` trims retention: every `TRIM_EVERY` seqs, on
    every write path (inside `record`'s transaction, or after commit: `trim_committed`)."""
    return seq % TRIM_EVERY == 0


async def trim_committed(db: Database, head: Head) -> None:
    """Retention for a write that committed on its own (the widget PATCH's one statement),
    run once it has been published (a trim is a DELETE of its own: run before the
    PUBLISH, it delayed every hundredth event by tens of milliseconds, bench/NOTES.md).
    Its failure must not answer a committed write with 503 (retried, it would be written
    twice). Nothing is lost by skipping it: the next trim, `TRIM_EVERY` seqs on, cuts the
    same prefix and more."""
    try:
        async with db.transaction() as tx:
            await trim(tx, head)
    except DATABASE_ERRORS as exc:  # its COMMIT's answer lost (`OutcomeUnknown`) too
        log.warning("trim_failed", board=head.slug, seq=head.seq, error=repr(exc))


async def trim(tx: Tx, board: Board | Head) -> None:
    """Drop what retention no longer keeps, always a prefix: what stays is gapless up to
    the event just recorded, which always stays. First, checkpoints at that event and at
    the cut (`store.checkpoints`): every retained seq stays rebuildable."""
    await tx.send_queued()  # the event just recorded, which the checkpoint replays
    await checkpoints.ensure(tx, board.id, board.seq)
    cut = board.seq - tx.retention.count
    if tx.retention.age is not None:
        cut = max(cut, await _newest_expired(tx, board, utcnow() - tx.retention.age))
    cut = min(cut, board.seq - 1)
    if cut > 0:
        await checkpoints.ensure(tx, board.id, cut)
        await checkpoints.forget(tx, board.id, below=cut)
        await tx.session.execute(delete(Event).where(Event.board_id == board.id, Event.seq <= cut))


async def _newest_expired(tx: Tx, board: Board | Head, cutoff: datetime) -> int:
    """The highest seq stamped before `cutoff` (0 if none). Stamps come from each worker's
    clock and need not grow with seq, so age picks a cut point, never single rows."""
    newest = await tx.session.scalar(
        select(func.max(Event.seq)).where(Event.board_id == board.id, Event.at < cutoff)
    )
    return 0 if newest is None else int(newest)


async def end_life(tx: Tx, board: Board) -> None:
    """The board was deleted or re-created: drop every earlier event, so one life's history
    (its values, seen by whoever could read it then) never reaches the next. Only the
    event just recorded stays; `since` from before it gets `reset`, `/events` 410, and
    no checkpoint: `?at=` from before it is 410 too."""
    await tx.session.execute(delete(Event).where(Event.board_id == board.id, Event.seq < board.seq))
    await checkpoints.forget(tx, board.id, below=board.seq + 1)


async def first_retained(session: AsyncSession, board: Board) -> int:
    """The oldest seq still stored (board.seq + 1 when nothing is)."""
    oldest = await session.scalar(select(func.min(Event.seq)).where(Event.board_id == board.id))
    return board.seq + 1 if oldest is None else int(oldest)


async def events_after(
    session: AsyncSession, board: Board, after: int, *, limit: int
) -> list[Event]:
    """Stored events with seq > `after`, oldest first; `Gone` if some were already trimmed."""
    if after < board.seq and after + 1 < await first_retained(session, board):
        raise Gone(
            f"events after seq {after} of board {board.slug!r} are no longer retained",
        )
    return await load_events(session, board.id, after, limit=limit)


async def load_events(
    session: AsyncSession, board_id: int, after: int, *, up_to: int | None = None, limit: int
) -> list[Event]:
    """Stored events of a board with `after < seq <= up_to`, oldest first."""
    query = select(Event).where(Event.board_id == board_id, Event.seq > after)
    if up_to is not None:
        query = query.where(Event.seq <= up_to)
    return list(await session.scalars(query.order_by(Event.seq).limit(limit)))


async def find_board(session: AsyncSession, slug: str, *, deleted: bool = False) -> Board:
    """The live board (or, with `deleted`, its tombstone too), not locked; else `NotFound`."""
    query = select(Board).where(Board.slug == slug)
    if not deleted:
        query = query.where(Board.deleted_at.is_(None))
    board = await session.scalar(query)
    if board is None:
        raise NotFound(f"board {slug!r} not found")
    return board


async def visibility(session: AsyncSession, slugs: list[str]) -> dict[str, bool]:
    """Whether each named live board is public, in one query (a deleted board is absent).
    For at most one connection's subscriptions: well under the bind-parameter limit."""
    rows = await session.execute(
        select(Board.slug, Board.public).where(Board.slug.in_(slugs), Board.deleted_at.is_(None))
    )
    return {row.slug: row.public for row in rows}


async def boards_ahead(session: AsyncSession, slugs: list[str], seqs: list[int]) -> list[str]:
    """Which of the named boards (tombstones included) have events past the seq given for
    each, for the hub's catch-up: on PostgreSQL, one statement that answers only those
    boards, with the names and seqs sent as two arrays; elsewhere (SQLite, one process,
    few boards) `HEADS_BATCH` names at a time, compared here."""
    if session.get_bind().dialect.name == "postgresql":
        held = (
            func.unnest(
                bindparam("slugs", slugs, type_=ARRAY(String)),
                bindparam("seqs", seqs, type_=ARRAY(BigInteger)),
            )
            .table_valued("slug", "seq")
            .render_derived()
        )
        query = select(Board.slug).join(held, Board.slug == held.c.slug)
        return list((await session.scalars(query.where(Board.seq > held.c.seq))).all())
    seen = dict(zip(slugs, seqs, strict=True))
    ahead: list[str] = []
    for start in range(0, len(slugs), HEADS_BATCH):
        batch = slugs[start : start + HEADS_BATCH]
        rows = await session.execute(select(Board.slug, Board.seq).where(Board.slug.in_(batch)))
        ahead.extend(slug for slug, seq in rows if seq > seen[slug])
    return ahead


XMIN = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
"""The oldest transaction still running: every one before it has ended, committed or not."""
ROWID: ColumnClause[int] = literal_column("events.rowid", BigInteger)


async def changed_since(
    session: AsyncSession, mark: int | None
) -> tuple[int, list[tuple[str, int]]]:
    """The boards (tombstones included) with events written since `mark`, with their seqs,
    and the mark to pass next time; with `mark` None, only the mark. The hub's catch-up:
    its cost follows the boards written, not the boards held.

    On PostgreSQL the clock is the writing transaction's id (`events.xid`), and the mark
    is the oldest transaction still running when the session's snapshot was taken:
    transactions commit out of order, so one that began before the mark may commit after
    this read, but every one before the mark has ended and is in the snapshot. An event
    is seen by the first read whose mark passes its transaction (perhaps by others
    before: a caller compares seqs). On SQLite (one writer at a time, committing in
    rowid order) the clock is the rowid of the newest event read."""
    postgres = session.get_bind().dialect.name == "postgresql"
    query = XMIN if postgres else select(func.max(ROWID)).select_from(EVENTS)
    next_mark = int(await session.scalar(query) or 0)
    if mark is None:
        return next_mark, []
    since = Event.xid >= mark if postgres else ROWID > mark  # noqa: SIM300 (a column, not a constant)
    written = select(Event.board_id).where(since)
    rows = await session.execute(select(Board.slug, Board.seq).where(Board.id.in_(written)))
    return next_mark, [(slug, seq) for slug, seq in rows]
