"""Engine, sessions and the write transaction.

Services receive a `Tx` and never commit; `Database.transaction` commits once
at the end, and only then are the events recorded in it handed on for
publishing (they are dropped on rollback). What a write changes once its checks
have passed is queued on the `Tx` (`Tx.queue`) and sent just before the commit,
as one statement on PostgreSQL: the board row stays locked for as few round
trips as possible.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.dml import UpdateBase

from switchboard.errors import OutcomeUnknown
from switchboard.store.models import Event

LOST = (DBAPIError, OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
"""What a COMMIT whose connection died raises (through SQLAlchemy: a `DBAPIError` that
invalidated its connection)."""

ACQUIRE_TIMEOUT = 30.0
"""Seconds a request waits for a pooled connection before it answers 503 (SQLAlchemy's
pool waits as long)."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history each board keeps: the last `count` events, and none older than `age`."""

    count: int = 10_000
    age: timedelta | None = None


@dataclass(slots=True)
class Tx:
    """A write in progress: its session, the events it has recorded (with their channel
    slug), and the statements queued to run at its end."""

    session: AsyncSession
    retention: Retention
    sqlite: bool = False
    events: list[tuple[str, Event]] = field(default_factory=list)
    queued: list[UpdateBase] = field(default_factory=list)

    def queue(self, statement: UpdateBase) -> None:
        """Run `statement` (an INSERT, UPDATE or DELETE) when the write ends, before it
        commits. What one operation queues must not touch a row twice; an operation that
        reads what it is about to change (`lock_board`) sends the queue first."""
        self.queued.append(statement)

    async def send_queued(self) -> None:
        """One round trip on PostgreSQL: the last statement, with the others as its
        data-modifying CTEs (they all run, on one snapshot). SQLite has no such CTEs:
        one statement each, in order (its writes are serialised in-process anyway)."""
        statements, self.queued = self.queued, []
        if not statements:
            return
        if self.sqlite:
            for statement in statements:
                await self.session.execute(statement)
            return
        *first, last = statements
        ctes = [statement.cte(f"w{i}") for i, statement in enumerate(first)]
        await self.session.execute(last.add_cte(*ctes) if ctes else last)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
    # The driver sends no BEGIN before a SELECT, so two SELECTs of one "transaction" could
    # see two states (a snapshot's board at seq S, its widgets at S+1). SQLAlchemy's
    # documented recipe: the driver stays out of it and we BEGIN ourselves (`_sqlite_begin`).
    dbapi_connection.isolation_level = None


async def _jsonb_codec(conn: asyncpg.Connection) -> None:
    """`jsonb` read as Python values by orjson (binary format: a version byte, the text)."""
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + orjson.dumps(value),
        decoder=lambda raw: orjson.loads(raw[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(_: asyncpg.Connection) -> None:
    """Nothing to reset on release: the direct statements set no session state (no SET,
    LISTEN or advisory lock), and asyncpg's default reset is a round trip per release."""


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def _check_alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection asyncpg already saw PostgreSQL close (a restart, a
    terminated backend, a pooler recycling it): the pool replaces it with a fresh one
    before anything is sent, so only requests in flight when their connection dies fail.
    Free, unlike a pre-ping: no round trip, asyncpg noticed the close while it was idle."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("PostgreSQL closed this pooled connection")


class Database:
    """Owns the engine; created and disposed by the app lifespan, never at import time."""

    def __init__(
        self,
        url: str,
        *,
        retention: Retention | None = None,
        pool_size: int = 10,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.retention = retention or Retention()
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            # No pre-ping: it was a round trip per checkout on the write path. A connection
            # asyncpg knows is closed is replaced at checkout (`_check_alive`); one that
            # dies while in use fails its statement, which SQLAlchemy reports as a
            # disconnect: it invalidates the pool and the request answers 503.
            # `pool_size` here and as many in `direct`'s pool: 2 × pool_size per worker.
            kwargs.update(pool_size=pool_size, max_overflow=0)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            event.listen(self.engine.sync_engine, "checkout", _check_alive)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads that combine several SELECTs (board + widgets at one seq) need one snapshot.
        snapshot_engine = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        self._snapshots = async_sessionmaker(snapshot_engine, expire_on_commit=False)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._pool_opening = asyncio.Lock()
        # SQLite has one writer at a time and no row locks; the embedded mode is a
        # single process, so serialising writes here gives the same seq guarantee
        # that `SELECT … FOR UPDATE` gives on PostgreSQL.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One committed write: everything inside succeeds together or not at all. A
        failure before the COMMIT is sent rolls it all back (the session closes; on a
        dead connection PostgreSQL does so itself); the COMMIT's answer lost on the way
        back raises `OutcomeUnknown`: it may have committed."""
        async with self._write_lock or nullcontext(), self.sessions() as session:
            tx = Tx(session, self.retention, self.is_sqlite)
            yield tx
            await tx.send_queued()
            await session.flush()
            try:
                await session.commit()
            except LOST as exc:
                if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
                    raise  # PostgreSQL answered: refused, rolled back
                raise OutcomeUnknown("the COMMIT was sent; its answer was lost") from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short read-only transaction that sees one consistent snapshot."""
        async with self._snapshots() as session, session.begin():
            yield session

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[asyncpg.Connection]:
        """A PostgreSQL connection with nothing between it and asyncpg, each statement
        committing on its own (no BEGIN, no COMMIT round trip): for the widget PATCH's two
        statements, where SQLAlchemy's execution layer was a sixth of a write's CPU
        (bench/NOTES.md). Its own pool: asyncpg replaces a connection PostgreSQL closed on
        the next acquire, and a statement on one it had not noticed yet fails with
        `asyncpg.PostgresConnectionError` or `asyncpg.InterfaceError`."""
        pool = self._pool or await self._open_pool()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            yield conn

    async def _open_pool(self) -> asyncpg.Pool:
        async with self._pool_opening:
            if self._pool is None:
                dsn = self.engine.url.set(drivername="postgresql")
                self._pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=0,
                    max_size=self._pool_size,
                    init=_jsonb_codec,
                    reset=_keep_session,
                )
            return self._pool

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        await self.engine.dispose()
