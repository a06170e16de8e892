"""ORM models: boards, widgets and the per-board event log.

A deleted board is kept as a tombstone (`deleted_at`) so that its `seq` never
restarts: a client holding `since=N` for a slug can always be answered
exactly, even across a delete and a re-create.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY, so BIGINT falls back to INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Board(Base):
    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    layout: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list, server_default="[]")
    """Widget order and sizes: `[{"key", "w", "h"}, …]` (`resources.LayoutEntry`)."""
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    widgets: Mapped[list[Widget]] = relationship(
        back_populates="board",
        order_by="Widget.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )


class Widget(Base):
    __tablename__ = "widgets"
    __table_args__ = (UniqueConstraint("board_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    value: Mapped[Any] = mapped_column(Json, nullable=True, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    board: Mapped[Board] = relationship(back_populates="widgets", lazy="raise")


class Event(Base):
    """One committed change; `(board_id, seq)` is gapless from 1 per board."""

    __tablename__ = "events"
    __table_args__ = (
        Index(
            "ix_events_xid",
            "xid",
            postgresql_where=text("xid IS NOT NULL"),
            sqlite_where=text("xid IS NOT NULL"),
        ),
    )

    board_id: Mapped[int] = mapped_column(
        ForeignKey("boards.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    xid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())
    """The writing transaction's id, PostgreSQL's default (`pg_current_xact_id()`): the
    change clock of the hub's catch-up (`store.events.changed_since`). NULL on SQLite,
    whose rowid serves, and on events older than the column."""


class Checkpoint(Base):
    """A board as `GET` showed it right after `seq` (`state`, its JSON), with that event's
    time: `store.checkpoints` rebuilds any retained seq from the nearest one below."""

    __tablename__ = "checkpoints"

    board_id: Mapped[int] = mapped_column(
        ForeignKey("boards.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """A write's `Idempotency-Key`: claimed before the write runs, answered with it.

    `key` is an HMAC (under the server's secret) of the presented credential and
    the header's value, so a key is never shared between credentials and the
    credential is not stored; `body` is encrypted under a key derived the same way.
    `committed` is set inside the write's own transaction, with the response
    (`status`, `headers`, `body`), so a key whose write happened is never run
    again and its retry gets that write's answer, even if the answer to its
    COMMIT was lost or the worker died right after. `board` ties the record to
    one life of that board: deleting the board deletes it.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("ix_idempotency_keys_expires_at", "expires_at"),
        Index("ix_idempotency_keys_board", "board"),
    )

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    board: Mapped[str | None] = mapped_column(String(64), default=None)
    fingerprint: Mapped[str] = mapped_column(String(64))
    committed: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    headers: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; `id` is the public part of the key itself."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(8))
    boards: Mapped[list[str] | None] = mapped_column(Json, nullable=True, default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Setting(Base):
    """Values the deployment generates once and every worker shares (the token secret)."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
