"""Checkpoints: each board's whole state every `events.TRIM_EVERY` seqs, so that the board
as it was after any retained seq is rebuilt from one checkpoint and fewer than that many
events (`board_at`), however long the history.

They are written where retention trims (`events.trim`, on every write path, every
`TRIM_EVERY` seqs): one at the seq just written, and one at the cut, so the oldest
retained event's predecessor always has one; the checkpoints below the cut go with the
events. Each is built from the checkpoint below it and the events between (`replay`),
never from the live rows, so a trim that runs after its write committed (the widget
PATCH's) builds the same one. A board's life starts with one (`start`), and ends with
all of them (`forget`): a re-created board's history starts at its re-creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.errors import Gone, ValidationFailed
from switchboard.resources import board_out
from switchboard.store.db import Tx
from switchboard.store.models import Base, Board, Checkpoint
from switchboard.store.replay import ReplayError, replay

log = structlog.get_logger(__name__)

CHECKPOINTS = Base.metadata.tables["checkpoints"]
EVENTS = Base.metadata.tables["events"]

HISTORY_FROM = "History-From"
"""The header of a 410 to `?at=`: the oldest seq the board can still be rewound to."""


@dataclass(frozen=True, slots=True)
class Past:
    """A board as `GET` showed it right after `state["seq"]`, that event's time, the seq of
    the checkpoint it was rebuilt from, and the rows read to rebuild it."""

    state: dict[str, Any]
    at: datetime
    base: int
    rows: int


async def rebuild(session: AsyncSession, board_id: int, seq: int) -> Past | None:
    """The board after `seq`, from the newest checkpoint at or below it and the events
    after that; `None` if there is no such checkpoint or an event between is missing.
    Core rows, not ORM objects: up to a hundred of them per rebuild."""
    base = (
        await session.execute(
            select(CHECKPOINTS.c.seq, CHECKPOINTS.c.state, CHECKPOINTS.c.at)
            .where(CHECKPOINTS.c.board_id == board_id, CHECKPOINTS.c.seq <= seq)
            .order_by(CHECKPOINTS.c.seq.desc())
            .limit(1)
        )
    ).first()
    if base is None:
        return None
    if base.seq == seq:
        return Past(base.state, base.at, base.seq, 1)
    events = (
        await session.execute(
            select(EVENTS.c.seq, EVENTS.c.name, EVENTS.c.data, EVENTS.c.at)
            .where(EVENTS.c.board_id == board_id, EVENTS.c.seq > base.seq, EVENTS.c.seq <= seq)
            .order_by(EVENTS.c.seq)
        )
    ).all()
    if [event.seq for event in events] != list(range(base.seq + 1, seq + 1)):
        return None  # trimmed meanwhile (a trim that ran late): nothing to build on
    return Past(replay(base.state, events), events[-1].at, base.seq, 1 + len(events))


async def board_at(session: AsyncSession, board: Board, seq: int) -> Past:
    """The live `board` as it was right after `seq`: 422 for a seq it has not reached,
    `Gone` (410) for one before its retained history (or before its re-creation), which
    names the oldest seq that can be asked for in `HISTORY_FROM`."""
    if seq > board.seq:
        raise ValidationFailed(
            f"board {board.slug!r} is at seq {board.seq}: it has no seq {seq} yet",
            details=[{"loc": ["query", "at"], "msg": f"at most {board.seq}"}],
        )
    past = await rebuild(session, board.id, seq)
    if past is None:
        oldest = await session.scalar(
            select(func.min(Checkpoint.seq)).where(Checkpoint.board_id == board.id)
        )
        headers = {} if oldest is None else {HISTORY_FROM: str(oldest)}
        raise Gone(f"seq {seq} of board {board.slug!r} is no longer retained", headers=headers)
    return past


async def ensure(tx: Tx, board_id: int, seq: int) -> None:
    """A checkpoint at `seq`, unless one is there or none below it can be built on (a board
    from before checkpoints had none; its history is answerable from its first one). It
    runs inside writes: an event without a replay rule (a bug) is logged, never a failed
    write."""
    try:
        past = await rebuild(tx.session, board_id, seq)
    except ReplayError as exc:
        log.error("checkpoint_failed", board_id=board_id, seq=seq, error=str(exc))
        return
    if past is None or past.base == seq:
        return
    await _insert(tx, board_id, past.state, past.at)


async def start(tx: Tx, board: Board) -> None:
    """The first checkpoint of a board's life: the board as created, with no widgets."""
    state = board_out(board, []).model_dump(mode="json")
    await _insert(tx, board.id, state, board.created_at)


async def forget(tx: Tx, board_id: int, *, below: int) -> None:
    """Drop the board's checkpoints below seq `below` (retention's cut, or its life's end)."""
    await tx.session.execute(
        delete(Checkpoint).where(Checkpoint.board_id == board_id, Checkpoint.seq < below)
    )


async def _insert(tx: Tx, board_id: int, state: dict[str, Any], at: datetime) -> None:
    """Write a checkpoint; one already at that seq (two trims that raced) is the same."""
    insert = sqlite_insert if tx.sqlite else pg_insert
    await tx.session.execute(
        insert(Checkpoint)
        .values(board_id=board_id, seq=state["seq"], state=state, at=at)
        .on_conflict_do_nothing()
    )
