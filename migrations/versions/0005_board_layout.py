"""Boards carry a layout: their widgets' order and sizes, `[]` (kinds' defaults) until set.

Revision ID: 0005_layout
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005_layout"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    with op.batch_alter_table("boards") as batch:
        batch.add_column(sa.Column("layout", json, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("boards") as batch:
        batch.drop_column("layout")
