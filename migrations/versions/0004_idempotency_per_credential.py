"""Idempotency records are scoped to the credential and tied to a board's life.

Rows written before this revision hold keys shared by every caller and
response bodies in clear (the secrets of created API keys among them): they
are deleted rather than carried over. They would have expired within a day.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM idempotency_keys"))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("board", sa.String(length=64), nullable=True))
        batch.create_index("ix_idempotency_keys_board", ["board"])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM idempotency_keys"))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_index("ix_idempotency_keys_board")
        batch.drop_column("board")
