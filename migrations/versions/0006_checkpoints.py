"""Checkpoints of each board's state, so any retained seq is rebuilt from a bounded read.

Boards that exist when this runs get one checkpoint at their current seq, built from
their rows (exactly what `GET` shows, `tests/store/test_checkpoint_backfill.py`): their
history is answerable from there on.

Revision ID: 0006
Revises: 0005_layout
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005_layout"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    table = op.create_table(
        "checkpoints",
        sa.Column("board_id", BIG_ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["board_id"], ["boards.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("board_id", "seq"),
    )
    _backfill(table)


BOARD = (
    "slug", "title", "description", "public", "layout", "seq", "version", "created_at",
    "updated_at",
)  # fmt: skip
WIDGET = ("key", "kind", "title", "config", "value", "version", "created_at", "updated_at")
"""The fields of `GET /api/boards/{slug}` at this revision, in its order."""


def _iso(value: datetime) -> str:
    """The API's one timestamp format (UTC, milliseconds, `Z`); SQLite's times are naive UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _shown(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in names}
    return {name: _iso(v) if isinstance(v, datetime) else v for name, v in values.items()}


def _backfill(table: sa.Table) -> None:
    """One checkpoint per live board at its current seq: the board as `GET` shows it, built
    here from its rows (a migration imports nothing from `switchboard`, whose shapes move on)."""
    boards = sa.table(
        "boards",
        *(sa.column(name) for name in ("id", "slug", "title", "description", "seq", "version")),
        sa.column("public", sa.Boolean()),
        sa.column("layout", JSON),
        *(sa.column(name, TIME) for name in ("created_at", "updated_at", "deleted_at")),
    )
    widgets = sa.table(
        "widgets",
        *(sa.column(name) for name in ("id", "board_id", "key", "kind", "title", "version")),
        sa.column("config", JSON),
        sa.column("value", JSON),
        *(sa.column(name, TIME) for name in ("created_at", "updated_at")),
    )
    bind = op.get_bind()
    rows = []
    for board in bind.execute(sa.select(boards).where(boards.c.deleted_at.is_(None))):
        query = sa.select(widgets).where(widgets.c.board_id == board.id).order_by(widgets.c.id)
        state = {
            **_shown(board, BOARD),
            "widgets": [_shown(widget, WIDGET) for widget in bind.execute(query)],
        }
        at = board.updated_at if board.updated_at.tzinfo else board.updated_at.replace(tzinfo=UTC)
        rows.append({"board_id": board.id, "seq": board.seq, "state": state, "at": at})
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("checkpoints")
