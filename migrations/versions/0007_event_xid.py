"""The change clock of the hub's catch-up: each event's writing transaction id.

On PostgreSQL, `events.xid` defaults to `pg_current_xact_id()` and is indexed where set,
so that a worker asks for the boards changed since its last poll (`store.events.
changed_since`) instead of sending every board it holds. Events written before this
revision keep NULL: they are older than any poll. The column is added without a default
first (a volatile default would rewrite the table), then given one for new rows. SQLite
leaves it NULL: its events' rowid is the clock there (one writer at a time).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SET = sa.text("xid IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("xid", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE events ALTER COLUMN xid SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    op.create_index("ix_events_xid", "events", ["xid"], postgresql_where=SET, sqlite_where=SET)


def downgrade() -> None:
    op.drop_index("ix_events_xid", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("xid")
