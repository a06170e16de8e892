"""Checkpoints of each board's state, so any retained seq is rebuilt from a bounded read.

Boards that exist when this runs get one checkpoint at their current seq, built from
their rows (exactly what `GET` shows): their history is answerable from there on.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from switchboard.resources import board_out
from switchboard.store.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
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


def _backfill(table: sa.Table) -> None:
    """One checkpoint per live board at its current seq, from its rows as they are (the
    columns this revision knows, typed as the models type them: SQLite's times are naive)."""
    boards = sa.table(
        "boards",
        *(sa.column(name) for name in ("id", "slug", "title", "description", "public", "seq")),
        sa.column("version"),
        *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at", "deleted_at")),
    )
    widgets = sa.table(
        "widgets",
        *(sa.column(name) for name in ("id", "board_id", "key", "kind", "title", "version")),
        sa.column("config", JSON),
        sa.column("value", JSON),
        *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
    )
    bind = op.get_bind()
    rows = []
    for board in bind.execute(sa.select(boards).where(boards.c.deleted_at.is_(None))):
        query = sa.select(widgets).where(widgets.c.board_id == board.id).order_by(widgets.c.id)
        state = board_out(board, bind.execute(query)).model_dump(mode="json")
        rows.append(
            {"board_id": board.id, "seq": board.seq, "state": state, "at": board.updated_at}
        )
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("checkpoints")
