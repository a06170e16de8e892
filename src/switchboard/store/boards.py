"""Board operations. Services take a `Tx` or a session and never commit.

A slug's seq never goes back, but each life of a board (create … delete) keeps
its own history: deleting drops the events before `board.deleted`, re-creating
drops that too, and the board's idempotency records go with its deletion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.errors import Conflict, PreconditionFailed
from switchboard.resources import board_summary_data
from switchboard.store import checkpoints
from switchboard.store.db import Tx
from switchboard.store.events import end_life, find_board, lock_board, record
from switchboard.store.idempotency import forget_board
from switchboard.store.models import Board, Widget, utcnow


def check_version(current: int, expected: int | None, what: str) -> None:
    """Honour `If-Match`: `expected` is the version the client last saw."""
    if expected is not None and expected != current:
        raise PreconditionFailed(f"{what} is at version {current}, not {expected}")


async def create_board(tx: Tx, *, slug: str, title: str, description: str, public: bool) -> Board:
    """A new board at seq 0; a slug whose board was deleted is reused and keeps counting."""
    now = utcnow()
    board = await tx.session.scalar(select(Board).where(Board.slug == slug).with_for_update())
    if board is None:
        board = Board(
            slug=slug,
            title=title,
            description=description,
            public=public,
            layout=[],
            seq=0,
            version=1,
            created_at=now,
            updated_at=now,
        )
        tx.session.add(board)
        await tx.session.flush()
        await checkpoints.start(tx, board)
        return board
    if board.deleted_at is None:
        raise Conflict(f"board {slug!r} already exists")
    board.title, board.description, board.public = title, description, public
    board.layout = []
    board.version += 1
    board.created_at = board.updated_at = now
    board.deleted_at = None
    await record(tx, board, "board.created", lambda: board_summary_data(board))
    await end_life(tx, board)
    await checkpoints.start(tx, board)
    return board


async def update_board(
    tx: Tx, slug: str, changes: dict[str, Any], *, if_match: int | None
) -> Board:
    board = await lock_board(tx, slug)
    check_version(board.version, if_match, f"board {slug!r}")
    for name, value in changes.items():
        setattr(board, name, value)
    board.version += 1
    board.updated_at = utcnow()
    await record(tx, board, "board.updated", lambda: board_summary_data(board))
    return board


async def delete_board(tx: Tx, slug: str, *, if_match: int | None) -> None:
    """Delete the widgets and leave a tombstone, so the slug's seq never goes back."""
    board = await lock_board(tx, slug)
    check_version(board.version, if_match, f"board {slug!r}")
    await tx.session.execute(delete(Widget).where(Widget.board_id == board.id))
    board.deleted_at = board.updated_at = utcnow()
    board.version += 1
    await record(tx, board, "board.deleted", {"slug": slug})
    await end_life(tx, board)
    await forget_board(tx, slug)


async def load_board(session: AsyncSession, slug: str) -> tuple[Board, list[Widget]]:
    """The live board and its widgets, as of one snapshot (use `Database.read`)."""
    board = await find_board(session, slug)
    widgets = await session.scalars(
        select(Widget).where(Widget.board_id == board.id).order_by(Widget.id)
    )
    return board, list(widgets)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which boards a listing may show: all, or the public ones plus `slugs`."""

    everything: bool = False
    slugs: frozenset[str] = frozenset()


async def list_boards(
    session: AsyncSession, *, after: str | None, limit: int, scope: Scope
) -> list[Board]:
    """Live boards in `scope` ordered by slug, after the slug `after` (keyset pagination)."""
    query = select(Board).where(Board.deleted_at.is_(None))
    if not scope.everything:
        query = query.where(or_(Board.public.is_(True), Board.slug.in_(sorted(scope.slugs))))
    if after is not None:
        query = query.where(Board.slug > after)
    return list(await session.scalars(query.order_by(Board.slug).limit(limit)))
